import TestSupport
import XCTest

@testable import Tensors

final class BLASTests: XCTestCase {
    /// `op(A) · op(B)` in Double by the definition, from row-major stored operands.
    private func naiveProduct(_ a: Tensor, _ transA: Transpose, _ b: Tensor, _ transB: Transpose) -> [Float] {
        let (m, k) = transA == .none ? (a.shape[0], a.shape[1]) : (a.shape[1], a.shape[0])
        let n = transB == .none ? b.shape[1] : b.shape[0]
        func opA(_ i: Int, _ p: Int) -> Double { Double(transA == .none ? a[i * a.shape[1] + p] : a[p * a.shape[1] + i]) }
        func opB(_ p: Int, _ j: Int) -> Double { Double(transB == .none ? b[p * b.shape[1] + j] : b[j * b.shape[1] + p]) }
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for p in 0..<k { sum += opA(i, p) * opB(p, j) }
                c[i * n + j] = Float(sum)
            }
        }
        return c
    }

    func testMatmulEveryTransposeCombinationMatchesTheDefinition() throws {
        for (m, k, n) in [(3, 4, 5), (17, 13, 11), (1, 7, 1)] {
            for transA in [Transpose.none, .transposed] {
                for transB in [Transpose.none, .transposed] {
                    let a = randomTensor(transA == .none ? [m, k] : [k, m], seed: UInt64(m * 100 + k))
                    let b = randomTensor(transB == .none ? [k, n] : [n, k], seed: UInt64(n * 100 + k + 1))
                    let c = Tensor(shape: [m, n], repeating: .nan)  // beta 0 must ignore C
                    try BLAS.matmul(a, transA, b, transB, into: c)
                    assertClose(
                        c, naiveProduct(a, transA, b, transB), absolute: 1e-5, relative: 1e-5,
                        "m \(m) k \(k) n \(n) \(transA) \(transB)")
                }
            }
        }
    }

    func testMatmulAlphaAndBetaAccumulate() throws {
        let a = randomTensor([4, 3], seed: 1), b = randomTensor([3, 5], seed: 2)
        let initial = randomTensor([4, 5], seed: 3)
        let c = initial.copy()
        try BLAS.matmul(a, .none, b, .none, into: c, alpha: 2, beta: 0.5)
        let product = naiveProduct(a, .none, b, .none)
        assertClose(c, (0..<20).map { 2 * product[$0] + 0.5 * initial[$0] }, absolute: 1e-5, relative: 1e-5)
    }

    func testGemmHonoursLeadingDimensions() {
        // A is the left 2×3 block of a 2×5 matrix; B the top 3×2 block of a 4×2 matrix;
        // C the middle columns of a 2×4 matrix.
        let a = Tensor(shape: [2, 5], values: [1, 2, 3, 99, 99, 4, 5, 6, 99, 99])
        let b = Tensor(shape: [4, 2], values: [1, 0, 0, 1, 1, 1, 99, 99])
        let c = Tensor(shape: [2, 4], repeating: -7)
        BLAS.gemm(
            .none, .none, m: 2, n: 2, k: 3, a: a.pointer, lda: 5, b: b.pointer, ldb: 2,
            c: c.pointer + 1, ldc: 4)
        XCTAssertEqual(c.scalars, [-7, 4, 5, -7, -7, 10, 11, -7])
    }

    func testMatmulShapeErrorsNameTheShapes() {
        let a = Tensor(zeros: [2, 3]), b = Tensor(zeros: [4, 5]), c = Tensor(zeros: [2, 5])
        assertShapeError(containing: ["[2, 3]", "[4, 5]"]) { () throws(ShapeError) in try BLAS.matmul(a, .none, b, .none, into: c) }
        assertShapeError(containing: ["[2, 3]", "[4, 5]"]) { () throws(ShapeError) in
            try BLAS.matmul(a, .transposed, b, .none, into: c)
        }
        // Right inner dimension, wrong output.
        assertShapeError(containing: ["[2, 4]", "[2, 5]"]) { () throws(ShapeError) in
            try BLAS.matmul(a, .none, Tensor(zeros: [3, 4]), .none, into: c)
        }
        assertShapeError(containing: ["[6]", "[4, 5]"]) { () throws(ShapeError) in
            try BLAS.matmul(Tensor(zeros: [6]), .none, b, .none, into: c)
        }
    }
}
