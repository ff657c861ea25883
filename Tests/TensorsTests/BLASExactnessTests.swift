import TestSupport
import XCTest

@testable import Tensors

/// The decomposition rule for products: a product is cut into slabs by its shape alone, so one,
/// two or three workers make the same OpenBLAS calls and give the same bits, whatever kernel
/// OpenBLAS runs (`launch/check-kernels.sh` runs these tests under several).
final class BLASExactnessTests: XCTestCase {
    /// Shapes (m, k, n) from one slab to many, split along rows (m ≥ n) and columns, with slab
    /// edges off the 16-wide panels: the mlp's and cnn's products among them.
    private let shapes = [
        (300, 97, 70), (70, 97, 300), (128, 256, 300), (300, 256, 128), (128, 784, 1024),
        (1024, 128, 784), (128, 1024, 1024), (1000, 300, 1000), (129, 3136, 256),
    ]

    func testSlabsCutTheLongerSideIntoWholePanelsByTheShapeAlone() {
        for (m, k, n) in shapes + [(1, 1, 1), (16, 1 << 20, 16), (5000, 5000, 5000)] {
            let slabs = BLAS.Slabs(m: m, n: n, k: k)
            let label = "m \(m) k \(k) n \(n): \(slabs.count) slabs"
            XCTAssertEqual(slabs.alongRows, m >= n, label)
            XCTAssertEqual(slabs.length, max(m, n), label)
            XCTAssertEqual(slabs.count & (slabs.count - 1), 0, "a power of two, \(label)")
            XCTAssertLessThanOrEqual(slabs.count, BLAS.Slabs.maximum, label)
            let ranges = (0..<slabs.count).map(slabs.range)
            XCTAssertEqual(ranges.first?.lowerBound, 0, label)
            XCTAssertEqual(ranges.last?.upperBound, slabs.length, label)
            for (previous, next) in zip(ranges, ranges.dropFirst()) {
                XCTAssertEqual(previous.upperBound, next.lowerBound, label)
            }
            for range in ranges {
                XCTAssertFalse(range.isEmpty, label)
                XCTAssertEqual(range.lowerBound % BLAS.Slabs.alignment, 0, label)
                if slabs.count > 1 {
                    let work = range.count * min(m, n) * k
                    XCTAssertGreaterThanOrEqual(2 * work, BLAS.Slabs.minimumWork, "no slab far below the minimum, \(label)")
                }
            }
        }
        XCTAssertEqual(BLAS.Slabs(m: 300, n: 70, k: 97).count, 1, "a small product is one call")
        XCTAssertGreaterThan(BLAS.Slabs(m: 128, n: 1024, k: 1024).count, 1, "the mlp's hidden layer is split")
    }

    /// Every transpose combination, leading dimensions wider than the matrices, β = 0 (where
    /// OpenBLAS may take its "direct" path for small products) and β ≠ 0: two and three
    /// workers give one worker's bits, and the definition's values.
    func testWorkersGiveOneWorkersBitsExactly() throws {
        for (m, k, n) in shapes {
            for transA in [Transpose.none, .transposed] {
                for transB in [Transpose.none, .transposed] {
                    for beta: Float in [0, 0.5] {
                        try assertWorkersAgree(
                            m: m, k: k, n: n, transA, transB, beta: beta,
                            "m \(m) k \(k) n \(n) \(transA) \(transB) β \(beta)")
                    }
                }
            }
        }
    }

    private func assertWorkersAgree(
        m: Int, k: Int, n: Int, _ transA: Transpose, _ transB: Transpose,
        beta: Float, _ label: String
    ) throws {
        let a = randomTensor(transA == .none ? [m, k + 3] : [k, m + 3], seed: UInt64(m + k))
        let b = randomTensor(transB == .none ? [k, n + 5] : [n, k + 5], seed: UInt64(n + k))
        let (lda, ldb) = (a.shape[1], b.shape[1])
        let results = withEachWorkerCount { _ in
            let c = Tensor(shape: [m, n + 2], repeating: 1)
            BLAS.gemm(
                transA, transB, m: m, n: n, k: k, a: a.pointer, lda: lda, b: b.pointer, ldb: ldb,
                beta: beta, c: c.pointer, ldc: n + 2)
            return c.scalars
        }
        assertBitIdentical(results[1], results[0], "2 workers, \(label)")
        assertBitIdentical(results[2], results[0], "3 workers, \(label)")
        // Spot checks against the definition; the two columns past n stay untouched.
        for (i, j) in [(0, 0), (m - 1, n - 1), (m / 2, n / 3), (17, 15), (15, 17)] {
            var sum = 0.0
            for p in 0..<k {
                let x = transA == .none ? a[i * lda + p] : a[p * lda + i]
                let y = transB == .none ? b[p * ldb + j] : b[j * ldb + p]
                sum += Double(x) * Double(y)
            }
            XCTAssertEqual(Double(results[0][i * (n + 2) + j]), sum + Double(beta), accuracy: 1e-3 * max(1, abs(sum)), label)
        }
        XCTAssertEqual(results[0][n], 1, label)
        XCTAssertEqual(results[0][(m - 1) * (n + 2) + n + 1], 1, label)
    }
}
