import CBLAS

/// Whether a GEMM operand is used as stored or transposed.
public enum Transpose: Sendable {
    case none, transposed
    @usableFromInline var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
}

/// The matrix products of pskd: every call into BLAS goes through here.
///
/// OpenBLAS itself runs single-threaded: a rank's threads are `Parallel`'s workers, which split
/// large products into slabs of the result (one OpenBLAS call each) and elementwise passes
/// alike. One pool, so no OpenBLAS thread spins for work while the layers' workers run.
public enum BLAS {
    /// `C = alpha · op(A) · op(B) + beta · C` on row-major matrices given by pointers and leading
    /// dimensions. `op(A)` is `m × k`, `op(B)` is `k × n`, `C` is `m × n`. A large product is
    /// split over `Parallel.workers` by rows or columns of `C`. Call from the main thread.
    public static func gemm(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        countOperations(products: 1, m: m, n: n, k: k)
        let slabs = max(1, min(concurrentCalls, m * n * k / minimumSlabWork, max(m, n) / slabAlignment))
        guard slabs > 1 else {
            serialGemm(transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                       beta: beta, c: c, ldc: ldc)
            return
        }
        let splitRows = m >= n
        let blocks = ((splitRows ? m : n) + slabAlignment - 1) / slabAlignment
        let pointers = UncheckedSendable((a, b, c))
        Parallel.forEachPart(of: blocks, minimumPart: max(1, blocks / slabs), maximumParts: slabs) { part in
            let (a, b, c) = pointers.value
            let first = part.lowerBound * slabAlignment
            let last = min(part.upperBound * slabAlignment, splitRows ? m : n)
            if splitRows {  // rows first..<last of op(A) and C
                serialGemm(transA, transB, m: last - first, n: n, k: k, alpha: alpha,
                           a: a + first * (transA == .none ? lda : 1), lda: lda, b: b, ldb: ldb,
                           beta: beta, c: c + first * ldc, ldc: ldc)
            } else {  // columns first..<last of op(B) and C
                serialGemm(transA, transB, m: m, n: last - first, k: k, alpha: alpha, a: a, lda: lda,
                           b: b + first * (transB == .none ? 1 : ldb), ldb: ldb,
                           beta: beta, c: c + first, ldc: ldc)
            }
        }
    }

    /// One OpenBLAS call on the caller's thread: neither split nor counted, so workers of
    /// `Parallel` may run products of their own concurrently (and count them with
    /// `countOperations` on the main thread).
    public static func serialGemm(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        _ = openBLASSingleThreaded
        cblas_sgemm(CblasRowMajor, transA.cblas, transB.cblas, Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// How many `serialGemm` calls may run at once: `Parallel.workers`, or one when OpenBLAS is
    /// a sequential build, which may lack the locks that make concurrent calls safe.
    public static var concurrentCalls: Int { isSequentialBuild ? 1 : Parallel.workers }

    /// Whether the OpenBLAS in use was built without threading (`openblas_get_parallel() == 0`).
    public static let isSequentialBuild = openblas_get_parallel() == 0

    /// OpenBLAS's own thread count, set to one before the first product.
    private static let openBLASSingleThreaded: Void = openblas_set_num_threads(1)

    /// The fewest multiply-adds of a slab. Besides paying for a second worker's start, this keeps
    /// every slab above the sizes below which OpenBLAS switches to kernels that round differently
    /// (its small-matrix kernels below about 10⁶; on Skylake-X its "direct" sgemm below
    /// 28·512² ≈ 7.3·10⁶), so results do not depend on the number of workers (tested).
    static let minimumSlabWork = 1 << 23
    /// Slabs start at multiples of this many rows or columns (whole micro-kernel panels).
    static let slabAlignment = 16

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
    /// read it before and after a step. Not synchronised: only the main thread updates it.
    public nonisolated(unsafe) static var floatingPointOperations = 0

    /// Adds `products` products of `m × k` by `k × n` to `floatingPointOperations`.
    public static func countOperations(products: Int, m: Int, n: Int, k: Int) {
        floatingPointOperations &+= products * 2 * m * n * k
    }

    /// The threads a rank computes with: `Parallel`'s workers, which split large products and
    /// elementwise passes. Setting it also keeps OpenBLAS's own threads at one.
    public static var threads: Int {
        get { Parallel.workers }
        set {
            openblas_set_num_threads(1)
            Parallel.workers = max(1, newValue)
        }
    }

    /// OpenBLAS's build configuration string (version, threading model, kernel).
    public static var configuration: String { String(cString: openblas_get_config()) }

    /// The CPU kernel OpenBLAS selected for this machine.
    public static var coreName: String { String(cString: openblas_get_corename()) }
}
