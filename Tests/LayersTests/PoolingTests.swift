import Layers
import Tensors
import TestSupport
import XCTest

final class PoolingTests: XCTestCase {
    /// A 4×4 image with two channels: channel 0 is `grid`, channel 1 is `−grid`.
    private let grid: [Float] = [
        1, 3, 2, 0,
        4, 2, 1, 5,
        0, 1, 7, 6,
        2, 8, 3, 4,
    ]
    private var twoChannelImage: Tensor {
        Tensor(shape: [1, 4, 4, 2], values: grid.flatMap { [$0, -$0] })
    }

    /// Distinct values spaced 0.05 apart in a fixed shuffled order: no near ties for max pooling.
    private func distinctValues(_ shape: [Int], seed: UInt64) -> Tensor {
        var generator = RandomGenerator(seed: seed)
        let count = shape.reduce(1, *)
        let order = (0..<count).shuffled(using: &generator)
        return Tensor(shape: shape, values: order.map { Float($0) * 0.05 - Float(count) * 0.025 })
    }

    func testMaxPoolForwardAndBackwardByHand() throws {
        let pool = MaxPool2d(kernelSize: 2)
        let y = try pool.forward(twoChannelImage, mode: .training)
        XCTAssertEqual(y.shape, [1, 2, 2, 2])
        // Channel 0: max of each window; channel 1: −min.
        XCTAssertEqual(y.scalars, [4, -1, 5, 0, 8, 0, 7, -3])
        let dx = pool.backward(Tensor(shape: [1, 2, 2, 2], values: [1, 10, 2, 20, 3, 30, 4, 40]))
        var expected = [Float](repeating: 0, count: 32)
        // Channel 0 winners: 4 at (1,0), 5 at (1,3), 8 at (3,1), 7 at (2,2).
        expected[(1 * 4 + 0) * 2] = 1; expected[(1 * 4 + 3) * 2] = 2
        expected[(3 * 4 + 1) * 2] = 3; expected[(2 * 4 + 2) * 2] = 4
        // Channel 1 winners (the minima of grid): 1 at (0,0), 0 at (0,3), 0 at (2,0), 3 at (3,2).
        expected[(0 * 4 + 0) * 2 + 1] = 10; expected[(0 * 4 + 3) * 2 + 1] = 20
        expected[(2 * 4 + 0) * 2 + 1] = 30; expected[(3 * 4 + 2) * 2 + 1] = 40
        XCTAssertEqual(dx.scalars, expected)
    }

    func testMaxPoolOverlappingWindowsAccumulateGradient() throws {
        // 3×3 with the maximum in the centre, 2×2 windows at stride 1: it wins all four.
        let x = Tensor(shape: [1, 3, 3, 1], values: [1, 2, 3, 4, 9, 5, 6, 7, 8])
        let pool = MaxPool2d(kernelSize: 2, stride: 1)
        XCTAssertEqual(try pool.forward(x, mode: .training).scalars, [9, 9, 9, 9])
        let dx = pool.backward(Tensor(shape: [1, 2, 2, 1], values: [1, 2, 3, 4]))
        XCTAssertEqual(dx.scalars, [0, 0, 0, 0, 10, 0, 0, 0, 0])
    }

    func testMaxPoolPaddingNeverWins() throws {
        // All-negative input, 3×3 windows, stride 2, padding 1: padding must not give 0.
        let x = Tensor(shape: [1, 3, 3, 1], values: [-9, -8, -7, -6, -5, -4, -3, -2, -1])
        let pool = MaxPool2d(kernelSize: 3, stride: 2, padding: 1)
        let y = try pool.forward(x, mode: .training)
        XCTAssertEqual(y.shape, [1, 2, 2, 1])
        XCTAssertEqual(y.scalars, [-5, -4, -2, -1])
        XCTAssertEqual(
            pool.backward(Tensor(shape: [1, 2, 2, 1], values: [1, 1, 1, 1])).scalars,
            [0, 0, 0, 0, 1, 1, 0, 1, 1])
    }

    func testMaxPoolGradients() throws {
        assertLayerGradients(MaxPool2d(kernelSize: 2), input: distinctValues([2, 4, 6, 3], seed: 1))
        assertLayerGradients(MaxPool2d(kernelSize: 3, stride: 2, padding: 1), input: distinctValues([2, 5, 5, 2], seed: 2))
        assertLayerGradients(MaxPool2d(kernelSize: 2, stride: 1), input: distinctValues([1, 4, 4, 2], seed: 3))
    }

    func testMaxPoolOddSizesDropTheLastRowLikePyTorch() throws {
        XCTAssertEqual(try MaxPool2d(kernelSize: 2).outputShape(for: [3, 7, 5, 4]), [3, 3, 2, 4])
        XCTAssertEqual(try MaxPool2d(kernelSize: 2).outputShape(for: [1, 28, 28, 32]), [1, 14, 14, 32])
    }

    func testAvgPoolForwardAndBackwardByHand() throws {
        let pool = AvgPool2d(kernelSize: 2)
        let y = try pool.forward(twoChannelImage, mode: .training)
        XCTAssertEqual(y.shape, [1, 2, 2, 2])
        XCTAssertEqual(y.scalars, [2.5, -2.5, 2, -2, 2.75, -2.75, 5, -5])
        let dx = pool.backward(Tensor(shape: [1, 2, 2, 2], values: [4, 8, 0, 0, 0, 0, 0, 0]))
        // The first window's four pixels get 4/4 (channel 0) and 8/4 (channel 1).
        for (h, w) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            XCTAssertEqual(dx[(h * 4 + w) * 2], 1)
            XCTAssertEqual(dx[(h * 4 + w) * 2 + 1], 2)
        }
        XCTAssertEqual(dx.scalars.reduce(0, +), 12)
    }

    func testAvgPoolGradients() throws {
        assertLayerGradients(AvgPool2d(kernelSize: 2), input: normalTensor([2, 4, 4, 3], seed: 4))
        assertLayerGradients(AvgPool2d(kernelSize: 2, stride: 1), input: normalTensor([1, 3, 4, 2], seed: 5))
        assertLayerGradients(AvgPool2d(kernelSize: 2), input: normalTensor([2, 5, 5, 1], seed: 6))  // floor mode
    }

    func testGlobalAveragePool() throws {
        let pool = GlobalAvgPool2d()
        let y = try pool.forward(twoChannelImage, mode: .training)
        XCTAssertEqual(y.shape, [1, 2])
        XCTAssertEqual(y.scalars, [49.0 / 16, -49.0 / 16])
        let dx = pool.backward(Tensor(shape: [1, 2], values: [16, 32]))
        XCTAssertEqual(dx.scalars, [Float](repeating: 0, count: 16).flatMap { _ in [Float(1), 2] })
        XCTAssertEqual(try pool.outputShape(for: [5, 3, 7, 9]), [5, 9])
    }

    func testGlobalAveragePoolGradients() throws {
        assertLayerGradients(GlobalAvgPool2d(), input: normalTensor([2, 3, 2, 4], seed: 7))
    }
}
