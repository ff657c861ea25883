import CBLAS

/// Whether a GEMM operand is used as stored or transposed.
public enum Transpose: Sendable {
    case none, transposed
    @usableFromInline var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
}

/// The matrix products of pskd: every call into BLAS goes through here.
public enum BLAS {
    /// `C = alpha · op(A) · op(B) + beta · C` on row-major matrices given by pointers and leading
    /// dimensions. `op(A)` is `m × k`, `op(B)` is `k × n`, `C` is `m × n`.
    @inlinable public static func gemm(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        floatingPointOperations &+= 2 * m * n * k
        cblas_sgemm(CblasRowMajor, transA.cblas, transB.cblas, Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// `C = alpha · op(A) · op(B) + beta · C` on 2-D tensors; throws when the shapes do not fit.
    public static func matmul(
        _ a: Tensor, _ transA: Transpose, _ b: Tensor, _ transB: Transpose,
        into c: Tensor, alpha: Float = 1, beta: Float = 0
    ) throws(ShapeError) {
        guard a.rank == 2, b.rank == 2, c.rank == 2 else {
            throw ShapeError("matmul needs 2-D operands, got \(a.shape) × \(b.shape) into \(c.shape)")
        }
        let (m, k) = transA == .none ? (a.shape[0], a.shape[1]) : (a.shape[1], a.shape[0])
        let (kb, n) = transB == .none ? (b.shape[0], b.shape[1]) : (b.shape[1], b.shape[0])
        guard k == kb else {
            throw ShapeError("matmul inner dimensions differ: \(a.shape)\(transA == .none ? "" : "ᵀ") × \(b.shape)\(transB == .none ? "" : "ᵀ")")
        }
        guard c.shape == [m, n] else {
            throw ShapeError("matmul result \([m, n]) does not fit output \(c.shape)")
        }
        gemm(transA, transB, m: m, n: n, k: k, alpha: alpha, a: a.pointer, lda: a.shape[1],
             b: b.pointer, ldb: b.shape[1], beta: beta, c: c.pointer, ldc: n)
    }

    /// The floating-point operations (2·m·n·k per product) of every `gemm` so far; benchmarks
    /// read it before and after a step. Not synchronised: only the main thread calls BLAS.
    public nonisolated(unsafe) static var floatingPointOperations = 0

    /// The number of threads OpenBLAS uses for one call; the layers' elementwise passes
    /// (`Parallel.workers`) use as many.
    public static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set {
            openblas_set_num_threads(Int32(newValue))
            Parallel.workers = max(1, newValue)
        }
    }

    /// OpenBLAS's build configuration string (version, threading model, kernel).
    public static var configuration: String { String(cString: openblas_get_config()) }

    /// The CPU kernel OpenBLAS selected for this machine.
    public static var coreName: String { String(cString: openblas_get_corename()) }
}
