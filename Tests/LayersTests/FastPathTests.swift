import Layers
import Tensors
import TestSupport
import XCTest

/// The vector paths of channels-last layers give the results of the general ones: MaxPool2d's
/// 2×2 stride-2 path, and BatchNorm's blocked channel sums (accurate when a channel's mean is
/// far from zero; `LayerExactnessTests` checks they do not depend on the thread count).
final class FastPathTests: XCTestCase {
    /// Values on a coarse grid (many ties within a window), with a NaN and −∞ at fixed places.
    private func tiedValues(_ shape: [Int], seed: UInt64) -> Tensor {
        let x = randomTensor(shape, seed: seed, in: -2...2)
        for i in 0..<x.count { x[i] = (x[i] * 2).rounded() / 2 }
        x[5] = .nan
        x[x.count / 2] = -.infinity
        return x
    }

    /// 2×2 stride-2 pooling against 2×2 stride-1 pooling (the general path) at even positions:
    /// same windows visited in the same order, so equal maxima, ties won by the same pixel,
    /// hence the same input gradient.
    func testTwoByTwoPoolingMatchesTheGeneralPath() throws {
        for (index, shape) in [[2, 8, 8, 8], [3, 7, 9, 16], [2, 5, 6, 32], [2, 6, 5, 3]].enumerated() {
            let x = tiedValues(shape, seed: UInt64(index + 1))
            let fast = MaxPool2d(kernelSize: 2), general = MaxPool2d(kernelSize: 2, stride: 1)
            let y = try fast.forward(x, mode: .training)
            let yAll = try general.forward(x, mode: .training)
            let (oh, ow, c) = (y.shape[1], y.shape[2], y.shape[3])
            let dy = normalTensor(y.shape, seed: UInt64(index + 10))
            let dyAll = Tensor(zeros: yAll.shape)
            var expected = [Float]()
            for n in 0..<shape[0] {
                for i in 0..<oh {
                    for j in 0..<ow {
                        for ch in 0..<c {
                            let at = ((n * yAll.shape[1] + 2 * i) * yAll.shape[2] + 2 * j) * c + ch
                            expected.append(yAll[at])
                            dyAll[at] = dy[((n * oh + i) * ow + j) * c + ch]
                        }
                    }
                }
            }
            XCTAssertEqual(y.scalars.map(\.bitPattern), expected.map(\.bitPattern), "forward \(shape)")
            XCTAssertEqual(fast.backward(dy).scalars, general.backward(dyAll).scalars, "backward \(shape)")
        }
    }

    /// A channel with mean 300 and standard deviation 0.5: E[x²] − E[x]² summed naively in
    /// Float would lose every digit of the variance.
    func testBatchNormStatisticsStayAccurateFarFromZero() throws {
        let shape = [8, 28, 28, 4], channels = 4
        let x = normalTensor(shape, seed: 6, mean: 300, standardDeviation: 0.5)
        let bn = BatchNorm(channels, momentum: 1)  // running statistics = this batch's
        bindParameters(bn)
        _ = try bn.forward(x, mode: .training)
        let rows = x.count / channels
        var sum = [Double](repeating: 0, count: channels), squares = sum
        for r in 0..<rows {
            for c in 0..<channels { sum[c] += Double(x[r * channels + c]) }
        }
        for r in 0..<rows {
            for c in 0..<channels { squares[c] += pow(Double(x[r * channels + c]) - sum[c] / Double(rows), 2) }
        }
        assertClose(bn.runningMean.value, sum.map { Float($0 / Double(rows)) }, absolute: 0, relative: 1e-6)
        assertClose(bn.runningVariance.value, squares.map { Float($0 / Double(rows - 1)) }, absolute: 0, relative: 1e-6)
    }
}
