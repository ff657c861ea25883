import Layers
import Tensors
import TestSupport
import XCTest

/// The vector paths of channels-last layers give the results of the general ones: MaxPool2d's
/// 2×2 stride-2 path, and BatchNorm's blocked channel sums (independent of the thread count,
/// and accurate when a channel's mean is far from zero).
final class FastPathTests: XCTestCase {
    override func tearDown() {
        Parallel.workers = 1
        super.tearDown()
    }

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

    /// Forward (output and running statistics) and backward (input and parameter gradients).
    private func batchNormStep(_ shape: [Int], workers: Int) throws -> [[Float]] {
        Parallel.workers = workers
        let channels = shape.last!
        let bn = BatchNorm(channels, activation: .relu)
        bindParameters(bn)
        bn.weight.value.assign(randomTensor([channels], seed: 2, in: 0.5...1.5))
        bn.bias.value.assign(randomTensor([channels], seed: 3, in: -0.5...0.5))
        let y = try bn.forward(normalTensor(shape, seed: 4, mean: 0.5, standardDeviation: 2), mode: .training).copy()
        let dx = bn.backward(normalTensor(shape, seed: 5))
        return [y.scalars, bn.runningMean.value.scalars, bn.runningVariance.value.scalars,
                dx.scalars, bn.weight.gradient.scalars, bn.bias.gradient.scalars]
    }

    func testBatchNormGivesExactlyTheSameResultsOnTwoWorkers() throws {
        // 2100 and 2352 rows: several units of ChannelSums.unitRows, the last one partial;
        // 12 channels: a whole group of eight and a remainder.
        for shape in [[5, 20, 21, 12], [3, 28, 28, 32], [2100, 12]] {
            let one = try batchNormStep(shape, workers: 1)
            let two = try batchNormStep(shape, workers: 2)
            for (name, (a, b)) in zip(["y", "running mean", "running var", "dx", "dγ", "dβ"], zip(one, two)) {
                XCTAssertEqual(a, b, "\(name) \(shape)")
            }
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
