import CBLAS

/// Whether a GEMM operand is used as stored or transposed.
public enum Transpose: Sendable {
    case none, transposed
    @usableFromInline var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
}

/// The matrix products of pskd: every call into BLAS goes through here.
///
/// OpenBLAS itself runs single-threaded: a rank's threads are `Parallel`'s workers. A large
/// product is cut into slabs of the result (one OpenBLAS call each) by its shape alone (see
/// `Slabs` and the decomposition rule in Parallel.swift), so one worker or many make exactly the
/// same calls. One pool, so no OpenBLAS thread spins for work while the layers' workers run.
public enum BLAS {
    /// `C = alpha · op(A) · op(B) + beta · C` on row-major matrices given by pointers and leading
    /// dimensions. `op(A)` is `m × k`, `op(B)` is `k × n`, `C` is `m × n`. A large product is
    /// cut into `Slabs(m:n:k:)`, run by `Parallel`'s workers. Call from the main thread.
    public static func gemm(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        countOperations(products: 1, m: m, n: n, k: k)
        let slabs = Slabs(m: m, n: n, k: k)
        let pointers = UncheckedSendable((a, b, c))
        Parallel.forEachPiece(slabs.count, maximumWorkers: concurrentCalls) { slab in
            let (a, b, c) = pointers.value
            let part = slabs.range(slab)
            if slabs.alongRows {  // rows of op(A) and C
                serialGemm(
                    transA, transB, m: part.count, n: n, k: k, alpha: alpha,
                    a: a + part.lowerBound * (transA == .none ? lda : 1), lda: lda, b: b, ldb: ldb,
                    beta: beta, c: c + part.lowerBound * ldc, ldc: ldc)
            } else {  // columns of op(B) and C
                serialGemm(
                    transA, transB, m: m, n: part.count, k: k, alpha: alpha, a: a, lda: lda,
                    b: b + part.lowerBound * (transB == .none ? 1 : ldb), ldb: ldb,
                    beta: beta, c: c + part.lowerBound, ldc: ldc)
            }
        }
    }

    /// How a product `m × k` by `k × n` is cut into slabs of its result, from the three sizes
    /// alone: `count` runs of whole `alignment`-wide panels along the longer side of `C` (so the
    /// operand every slab re-reads is the smaller one), each of at least `minimumWork`
    /// multiply-adds, `count` a power of two (even work for 1, 2, 4, … workers) up to `maximum`.
    public struct Slabs: Sendable, Equatable {
        /// The fewest multiply-adds of a slab (2²⁵ ≈ 3.4·10⁷): each slab is one OpenBLAS call
        /// that packs the shared operand again. Measured on the mlp (products of 1.0–1.3·10⁸):
        /// one thread runs 2–4 slabs as fast as one call (2²⁴, 4–8 slabs, cost about 2 %), and
        /// two threads as fast as with two slabs per product.
        public static let minimumWork = 1 << 25
        /// The most slabs of one product.
        public static let maximum = 64
        /// Slabs start at multiples of this many rows or columns (whole micro-kernel panels).
        public static let alignment = 16

        /// The number of slabs (1: one call for the whole product).
        public let count: Int
        /// Whether slabs are runs of rows of `C` (else of columns).
        public let alongRows: Bool
        /// The rows (or columns) of `C` cut into slabs.
        public let length: Int

        public init(m: Int, n: Int, k: Int) {
            alongRows = m >= n
            length = alongRows ? m : n
            let panels = (length + Slabs.alignment - 1) / Slabs.alignment
            let limit = min(Slabs.maximum, panels, m * n * k / Slabs.minimumWork)
            var count = 1
            while count * 2 <= limit { count *= 2 }
            self.count = count
        }

        /// The rows (or columns) of slab `slab`.
        public func range(_ slab: Int) -> Range<Int> {
            let panels = (length + Slabs.alignment - 1) / Slabs.alignment
            let first = panels * slab / count * Slabs.alignment
            let last = min(panels * (slab + 1) / count * Slabs.alignment, length)
            return first..<last
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
        cblas_sgemm(
            CblasRowMajor, transA.cblas, transB.cblas, Int32(m), Int32(n), Int32(k),
            alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// How many `serialGemm` calls may run at once: `Parallel.workers`, or one when OpenBLAS is
    /// a sequential build, which may lack the locks that make concurrent calls safe.
    public static var concurrentCalls: Int { isSequentialBuild ? 1 : Parallel.workers }

    /// Whether the OpenBLAS in use was built without threading (`openblas_get_parallel() == 0`).
    public static let isSequentialBuild = openblas_get_parallel() == 0

    /// OpenBLAS's own thread count, set to one before the first product.
    private static let openBLASSingleThreaded: Void = openblas_set_num_threads(1)

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
            throw ShapeError(
                "matmul inner dimensions differ: \(a.shape)\(transA == .none ? "" : "ᵀ") × \(b.shape)\(transB == .none ? "" : "ᵀ")")
        }
        guard c.shape == [m, n] else {
            throw ShapeError("matmul result \([m, n]) does not fit output \(c.shape)")
        }
        gemm(
            transA, transB, m: m, n: n, k: k, alpha: alpha, a: a.pointer, lda: a.shape[1],
            b: b.pointer, ldb: b.shape[1], beta: beta, c: c.pointer, ldc: n)
    }

    /// The floating-point operations (2·m·n·k per product) of every `gemm` so far; benchmarks
    /// read it before and after a step. Not synchronised: only the main thread updates it.
    public nonisolated(unsafe) static var floatingPointOperations = 0

    /// Adds `products` products of `m × k` by `k × n` to `floatingPointOperations`.
    public static func countOperations(products: Int, m: Int, n: Int, k: Int) {
        floatingPointOperations &+= products * 2 * m * n * k
    }

    /// The threads a rank computes with: `Parallel`'s workers, which run the pieces of large
    /// products and elementwise passes. Setting it also keeps OpenBLAS's own threads at one.
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
