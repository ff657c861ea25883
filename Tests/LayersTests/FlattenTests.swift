import Layers
import Tensors
import TestSupport
import XCTest

final class FlattenTests: XCTestCase {
    func testOrderIsPyTorchsFlattenOfNCHW() throws {
        let (n, h, w, c) = (2, 3, 4, 5)
        let x = Tensor(zeros: [n, h, w, c])
        // x[b, i, j, k] encodes its NCHW coordinates, so the output order is visible.
        for b in 0..<n {
            for i in 0..<h {
                for j in 0..<w {
                    for k in 0..<c {
                        x[((b * h + i) * w + j) * c + k] = Float(b * 1000 + k * 100 + i * 10 + j)
                    }
                }
            }
        }
        let flatten = Flatten()
        let y = try flatten.forward(x, mode: .training)
        XCTAssertEqual(y.shape, [n, c * h * w])
        // torch.flatten(x_nchw, 1)[b, k·H·W + i·W + j] = x_nchw[b, k, i, j].
        for b in 0..<n {
            for k in 0..<c {
                for i in 0..<h {
                    for j in 0..<w {
                        XCTAssertEqual(y[b * c * h * w + (k * h + i) * w + j], Float(b * 1000 + k * 100 + i * 10 + j))
                    }
                }
            }
        }
    }

    func testBackwardIsTheInversePermutation() throws {
        let flatten = Flatten()
        let x = normalTensor([2, 2, 3, 4], seed: 1)
        let y = try flatten.forward(x, mode: .training).copy()
        // Feeding the output back as the gradient must reproduce the input exactly.
        XCTAssertEqual(flatten.backward(y).scalars, x.scalars)
        XCTAssertEqual(flatten.backward(y).shape, [2, 2, 3, 4])
    }

    func testGradients() throws {
        assertLayerGradients(Flatten(), input: normalTensor([2, 3, 2, 4], seed: 2))
    }

    func testTwoDimensionalInputPassesThrough() throws {
        let flatten = Flatten()
        let x = normalTensor([3, 7], seed: 3)
        let y = try flatten.forward(x, mode: .training)
        XCTAssertEqual(y.shape, [3, 7])
        XCTAssertEqual(y.scalars, x.scalars)
        XCTAssertEqual(flatten.backward(x).shape, [3, 7])
        XCTAssertEqual(try Flatten().outputShape(for: [4, 2, 3]), [4, 6])
    }
}
