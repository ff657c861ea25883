import Layers
import Tensors
import TestSupport
import XCTest

/// The contract every layer keeps (Layer.swift): backward adds parameter gradients (so K
/// micro-batches sum theirs) and never changes its output-gradient argument.
final class LayerContractTests: XCTestCase {
    /// `conv`, computed by Winograd F(4×4, 3×3).
    private func winograd4(_ conv: Conv2d) -> Conv2d {
        conv.algorithm = .winograd4
        return conv
    }

    /// One layer of every kind, each with an input it accepts; the 3×3 convolutions with 8
    /// channels in run Winograd (F(2×2, 3×3) and F(4×4, 3×3)), the others im2col.
    private func everyLayerKind() -> [(name: String, layer: any Layer, input: [Int])] {
        [
            ("Linear", Linear(5, 4), [3, 5]),
            ("Linear+relu", Linear(5, 4, activation: .relu), [3, 5]),
            ("Conv2d im2col", Conv2d(2, 3, kernelSize: 3, stride: 2, padding: 1), [2, 5, 5, 2]),
            ("Conv2d Winograd", Conv2d(8, 8, kernelSize: 3, padding: 1), [2, 6, 6, 8]),
            ("Conv2d Winograd F(4×4, 3×3)", winograd4(Conv2d(8, 9, kernelSize: 3, padding: 1)), [2, 7, 6, 8]),
            ("BatchNorm+relu", BatchNorm(3, activation: .relu), [4, 3, 3, 3]),
            ("PreActBlock", PreActBlock(2, 2), [2, 4, 4, 2]),
            ("PreActBlock He identity", PreActBlock(2, 2, identity: .input), [2, 4, 4, 2]),
            ("PreActBlock projection", PreActBlock(2, 3, stride: 2), [2, 4, 4, 2]),
            ("ResidualBlock basic", ResidualBlock(.basic, 2, planes: 2), [2, 4, 4, 2]),
            ("ResidualBlock basic downsample", ResidualBlock(.basic, 2, planes: 3, stride: 2), [2, 4, 4, 2]),
            ("ResidualBlock bottleneck downsample", ResidualBlock(.bottleneck, 2, planes: 1, stride: 2), [2, 5, 5, 2]),
            ("MaxPool2d ResNet stem", MaxPool2d(kernelSize: 3, stride: 2, padding: 1), [2, 5, 5, 3]),
            ("ReLU", ReLU(), [3, 4]),
            ("MaxPool2d", MaxPool2d(kernelSize: 2), [2, 4, 4, 3]),
            ("Flatten", Flatten(), [2, 3, 3, 2]),
            ("Sequential", Sequential([Conv2d(1, 2, kernelSize: 3, padding: 1), ReLU(), Flatten(), Linear(32, 3)]), [2, 4, 4, 1]),
        ]
    }

    func testBackwardAddsParameterGradients() throws {
        for (name, layer, shape) in everyLayerKind() where !layer.namedParameters().isEmpty {
            _ = bindParameters(layer)
            let x = normalTensor(shape, seed: 1)
            let dy = normalTensor(try layer.outputShape(for: shape), seed: 2)
            layer.zeroParameterGradients()
            _ = try layer.forward(x, mode: .training)
            _ = layer.backward(dy)
            let once = layer.namedParameters().map { $0.parameter.gradient.scalars }
            _ = try layer.forward(x, mode: .training)
            _ = layer.backward(dy)
            let twice = layer.namedParameters().map { $0.parameter.gradient.scalars }
            XCTAssert(once.joined().contains { $0 != 0 }, name)
            // The same pass again adds the same numbers as one addition per element: exactly
            // twice (g + g is exact). (Batches this small are one OpenBLAS block; a larger
            // batch's GEMM adds its blocks one by one, which agrees only to rounding.)
            XCTAssertEqual(twice, once.map { $0.map { 2 * $0 } }, name)
        }
    }

    func testBackwardLeavesItsArgumentUnchanged() throws {
        for (name, layer, shape) in everyLayerKind() {
            _ = bindParameters(layer)
            let y = try layer.forward(normalTensor(shape, seed: 3), mode: .training)
            let dy = normalTensor(y.shape, seed: 4), original = dy.scalars
            _ = layer.backward(dy)
            XCTAssertEqual(dy.scalars, original, name)
        }
    }

    func testWithoutInputGradientBackwardReturnsTheEmptyPlaceholder() throws {
        for (name, layer, shape) in everyLayerKind() where !layer.namedParameters().isEmpty {
            _ = bindParameters(layer)
            layer.computesInputGradient = false
            let y = try layer.forward(normalTensor(shape, seed: 5), mode: .training)
            XCTAssertEqual(layer.backward(normalTensor(y.shape, seed: 6)).count, 0, name)
        }
    }
}
