import Layers
import Models
import Optimizers
import Tensors
import TestSupport
import XCTest

/// The decomposition rule for layers: convolutions (both algorithms), BatchNorm, pooling, the
/// optimiser and whole training steps give the same bits on one, two or three threads, because
/// their pieces are cut by the shapes alone (`launch/check-kernels.sh` runs these tests under
/// several OpenBLAS kernels).
final class LayerExactnessTests: XCTestCase {
    /// Forward, input gradient and parameter gradients of `conv` on `x`, with a fixed `dy`.
    private func convolutionPasses(_ conv: Conv2d, _ x: Tensor) throws -> [Tensor] {
        let y = try conv.forward(x, mode: .training).copy()
        conv.zeroParameterGradients()
        let dx = conv.backward(normalTensor(y.shape, seed: 77)).copy()
        return [y, dx, conv.weight.gradient.copy()] + (conv.bias.map { [$0.gradient.copy()] } ?? [])
    }

    /// (in, out, kernel, stride, padding, input [N, H, W]), each under im2col and both
    /// Winograds (F(2×2, 3×3) and F(4×4, 3×3)) where they apply: several Winograd chunks and
    /// gradient groups (26 images of 14×14, whose threads take chunks on 2 workers and
    /// transform points on 3), the cnn's first layer, a stride-2 and a 1×1 convolution, an
    /// im2col product big enough to be cut into slabs (one Winograd chunk: threads take
    /// points), and a late layer of small images (one chunk).
    func testConvolutionsGiveOneWorkersBitsBothWays() throws {
        let configurations = [
            (32, 32, 3, 1, 1, [26, 14, 14]), (1, 32, 3, 1, 1, [20, 28, 28]),
            (16, 32, 3, 2, 1, [9, 15, 15]), (32, 64, 1, 1, 0, [8, 16, 16]),
            (64, 128, 3, 1, 1, [4, 16, 16]), (40, 48, 3, 1, 1, [20, 4, 4]),
        ]
        for (index, (i, o, k, s, p, nhw)) in configurations.enumerated() {
            for algorithm in [ConvolutionAlgorithm.im2col, .winograd, .winograd4] {
                let conv = Conv2d(i, o, kernelSize: k, stride: s, padding: p, bias: index % 2 == 0)
                bindParameters(conv, seed: UInt64(index))
                conv.algorithm = algorithm
                let x = normalTensor(nhw + [i], seed: UInt64(index + 10))
                let runs = try withEachWorkerCount { _ in try convolutionPasses(conv, x) }
                let label =
                    "\(i)→\(o) k\(k) s\(s) p\(p) \(nhw), \(algorithm): \(String(describing: conv.winogradVariant(height: nhw[1], width: nhw[2])))"
                for (workers, run) in zip([2, 3], runs.dropFirst()) {
                    for (name, (got, expected)) in zip(["y", "dx", "dW", "db"], zip(run, runs[0])) {
                        assertBitIdentical(got, expected, "\(name), \(workers) workers, \(label)")
                    }
                }
            }
        }
    }

    /// Forward (output and running statistics) and backward (input and parameter gradients).
    private func batchNormPasses(_ shape: [Int]) throws -> [[Float]] {
        let channels = shape.last!
        let bn = BatchNorm(channels, activation: .relu)
        bindParameters(bn)
        bn.weight.value.assign(randomTensor([channels], seed: 2, in: 0.5...1.5))
        bn.bias.value.assign(randomTensor([channels], seed: 3, in: -0.5...0.5))
        let y = try bn.forward(normalTensor(shape, seed: 4, mean: 0.5, standardDeviation: 2), mode: .training).copy()
        let dx = bn.backward(normalTensor(shape, seed: 5))
        return [
            y.scalars, bn.runningMean.value.scalars, bn.runningVariance.value.scalars,
            dx.scalars, bn.weight.gradient.scalars, bn.bias.gradient.scalars,
        ]
    }

    func testBatchNormGivesOneWorkersBits() throws {
        // 2100 and 2352 rows: several units of ChannelSums.unitRows, the last one partial;
        // 12 channels: a whole group of eight and a remainder.
        for shape in [[5, 20, 21, 12], [3, 28, 28, 32], [2100, 12]] {
            let runs = try withEachWorkerCount { _ in try batchNormPasses(shape) }
            for (workers, run) in zip([2, 3], runs.dropFirst()) {
                for (name, (got, expected)) in zip(["y", "running mean", "running var", "dx", "dγ", "dβ"], zip(run, runs[0])) {
                    assertBitIdentical(got, expected, "\(name), \(workers) workers, \(shape)")
                }
            }
        }
    }

    /// One forward and backward pass of a whole model and two SGD steps: gradients, parameters
    /// and BatchNorm statistics.
    private func trainingStep(model name: String, input shape: [Int]) throws -> [Tensor] {
        let input = ModelZoo.Input(height: shape[1], width: shape[2], channels: shape[3], classes: 10)
        let model = try ModelZoo.make(name, input: input, widthMultiplier: 0.125, generator: RandomGenerator(seed: 5))
        let x = normalTensor(shape, seed: 9)
        let labels = (0..<shape[0]).map { $0 % 10 }
        let result = try SoftmaxCrossEntropy()(
            logits: model.forward(x, mode: .training),
            targets: SoftmaxCrossEntropy.oneHot(labels, classes: 10))
        model.backward(result.logitGradients)
        let optimizer = SGD(parameterCount: model.parameters.parameterCount)
        for _ in 0..<2 { optimizer.step(parameters: model.parameters.values, gradients: model.parameters.gradients, learningRate: 0.1) }
        return [model.parameters.gradients.copy(), model.parameters.values.copy(), model.parameters.buffers.copy()]
    }

    func testTrainingStepsGiveOneWorkersBits() throws {
        for (name, shape) in [
            ("mlp", [64, 28, 28, 1]), ("cnn", [12, 28, 28, 1]), ("preact-resnet18", [3, 32, 32, 3]),
            ("resnet50", [3, 64, 64, 3]),
        ] {
            let runs = try withEachWorkerCount { _ in try trainingStep(model: name, input: shape) }
            for (workers, run) in zip([2, 3], runs.dropFirst()) {
                for (part, (got, expected)) in zip(["gradients", "parameters after SGD", "BatchNorm statistics"], zip(run, runs[0])) {
                    assertBitIdentical(got, expected, "\(name) \(part), \(workers) workers")
                }
            }
        }
    }
}
