import Layers
import Tensors
import TestSupport
import XCTest

/// torchvision's post-activation blocks (`ResidualBlock`): BasicBlock and Bottleneck, with and
/// without the `downsample` projection.
final class ResidualBlockTests: XCTestCase {
    /// Sets every BatchNorm of `layer` to γ in [0.5, 1.5], β in [−0.5, 0.5].
    private func randomiseBatchNorms(_ layer: any Layer, seed: UInt64) {
        for (index, bn) in layer.descendants().compactMap({ $0 as? BatchNorm }).enumerated() {
            bn.weight.value.assign(randomTensor([bn.channels], seed: seed + UInt64(2 * index), in: 0.5...1.5))
            bn.bias.value.assign(randomTensor([bn.channels], seed: seed + UInt64(2 * index + 1), in: -0.5...0.5))
        }
    }

    /// (design, in, planes, stride, input [N, H, W]) covering both designs, the identity and the
    /// projection, a width change alone and a stride change.
    private let configurations: [(ResidualBlock.Design, Int, Int, Int, [Int])] = [
        (.basic, 3, 3, 1, [2, 4, 4]),  // identity shortcut
        (.basic, 3, 4, 2, [2, 5, 5]),  // stride 2 and width: downsample
        (.basic, 2, 3, 1, [2, 3, 3]),  // width change alone: downsample
        (.bottleneck, 8, 2, 1, [2, 3, 3]),  // 4 × 2 = 8 out: identity
        (.bottleneck, 3, 2, 1, [2, 4, 4]),  // layer1.0 of a ResNet-50: stride 1, widening projection
        (.bottleneck, 4, 2, 2, [2, 5, 5]),  // stride on the 3×3 convolution, and in the projection
    ]

    private func make(_ config: (ResidualBlock.Design, Int, Int, Int, [Int]), seed: UInt64) -> (ResidualBlock, Tensor) {
        let (design, inputs, planes, stride, nhw) = config
        let block = ResidualBlock(design, inputs, planes: planes, stride: stride)
        bindParameters(block, seed: seed)
        randomiseBatchNorms(block, seed: seed + 1)
        return (block, normalTensor(nhw + [inputs], seed: seed + 2))
    }

    func testNamesAndShapesAreTorchvisions() throws {
        let basic = ResidualBlock(.basic, 64, planes: 128, stride: 2)
        XCTAssertEqual(
            basic.namedParameters().map(\.name),
            [
                "conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight", "bn2.bias",
                "downsample.0.weight", "downsample.1.weight", "downsample.1.bias",
            ])
        XCTAssertEqual(
            basic.namedParameters().map(\.parameter.shape),
            [[128, 64, 3, 3], [128], [128], [128, 128, 3, 3], [128], [128], [128, 64, 1, 1], [128], [128]])
        XCTAssertEqual(basic.namedBuffers().map(\.name).suffix(2), ["downsample.1.running_mean", "downsample.1.running_var"])
        XCTAssertEqual(basic.branch.children.map(\.name), ["conv1", "bn1", "conv2", "bn2"])
        XCTAssertEqual((basic.branch.children[0].layer as? Conv2d)?.stride, 2)

        let bottleneck = ResidualBlock(.bottleneck, 256, planes: 128, stride: 2)
        XCTAssertEqual(bottleneck.outputChannels, 512)
        XCTAssertEqual(
            bottleneck.namedParameters().filter { $0.name.hasSuffix("weight") && $0.parameter.shape.count == 4 }.map(\.parameter.shape),
            [[128, 256, 1, 1], [128, 128, 3, 3], [512, 128, 1, 1], [512, 256, 1, 1]])
        let convolutions = bottleneck.descendants().compactMap { $0 as? Conv2d }
        XCTAssertEqual(convolutions.map(\.stride), [1, 2, 1, 2], "v1.5: the stride is on the 3×3 convolution (and the projection)")
        XCTAssertEqual(convolutions.map(\.padding), [0, 1, 0, 0])
        XCTAssert(convolutions.allSatisfy { $0.bias == nil })
        XCTAssertEqual(
            bottleneck.children.map(\.name), ["conv1", "bn1", "conv2", "bn2", "conv3", "bn3", "downsample"], "torchvision's order")

        XCTAssertNil(ResidualBlock(.basic, 64, planes: 64).downsample)
        XCTAssertNil(ResidualBlock(.bottleneck, 256, planes: 64).downsample)
        XCTAssertNotNil(ResidualBlock(.bottleneck, 64, planes: 64).downsample, "ResNet-50's layer1.0 widens 64 → 256")
    }

    /// Forward and backward against the same computation written with separate layers holding
    /// the same parameters: `y = relu(branch(x) + s)`, `s = downsample(x)` or `x`;
    /// `g = dy · [y > 0]`, `dx = branchᵀ(g) + downsampleᵀ(g)` (or `+ g`), and each sublayer's
    /// parameter gradients.
    func testForwardAndBackwardAgainstDirectComputation() throws {
        for (index, config) in configurations.enumerated() {
            let (block, x) = make(config, seed: 30 + UInt64(10 * index))
            let (design, inputs, planes, stride, _) = config
            let twin = ResidualBlock(design, inputs, planes: planes, stride: stride)
            bindParameters(twin, seed: 99)
            for ((_, mine), (_, theirs)) in zip(twin.namedParameters(), block.namedParameters()) { mine.value.assign(theirs.value) }
            let message = "\(config)"

            let y = try block.forward(x, mode: .training).copy()
            let main = try twin.branch.forward(x, mode: .training).copy()
            let side = try twin.downsample?.forward(x, mode: .training).copy() ?? x
            XCTAssertEqual(y.shape, main.shape, message)
            assertClose(y, (0..<y.count).map { max(main[$0] + side[$0], 0) }, absolute: 1e-5, relative: 1e-5, message)
            XCTAssert(y.scalars.contains(0) && y.scalars.contains { $0 > 0 }, "the ReLU cuts somewhere: \(message)")

            let dy = normalTensor(y.shape, seed: 7 + UInt64(index))
            block.zeroParameterGradients()
            twin.zeroParameterGradients()
            let dx = block.backward(dy).copy()
            let g = Tensor(shape: dy.shape, values: (0..<dy.count).map { y[$0] > 0 ? dy[$0] : 0 })
            let branchGradient = twin.branch.backward(g).copy()
            let sideGradient = twin.downsample?.backward(g) ?? g
            assertClose(dx, (0..<dx.count).map { branchGradient[$0] + sideGradient[$0] }, absolute: 1e-5, relative: 1e-5, message)
            for ((name, theirs), (_, mine)) in zip(twin.namedParameters(), block.namedParameters()) {
                assertClose(mine.gradient, theirs.gradient.scalars, absolute: 1e-5, relative: 1e-5, "\(name) \(message)")
            }
        }
    }

    /// Finite differences with ε = 3·10⁻³ rather than the default 10⁻²: at these sizes a
    /// parameter moves every value of its channel through up to three ReLUs (the branch's and the
    /// one after the sum), so with ε = 10⁻² several kinks fall inside one step often enough to
    /// fail a correct gradient (a quarter of random seeds did); 3·10⁻³ is still far above the
    /// Float rounding of the loss.
    func testGradients() throws {
        for (index, config) in configurations.enumerated() {
            let (block, x) = make(config, seed: 100 + UInt64(10 * index))
            assertLayerGradients(block, input: x, checker: GradientCheck(epsilon: 3e-3, maxCoordinatesPerTensor: 30), "\(config)")
        }
    }

    func testParameterGradientsWithoutInputGradient() throws {
        for (index, config) in configurations.enumerated() {
            let (block, x) = make(config, seed: 200 + UInt64(10 * index))
            let dy = normalTensor(try block.outputShape(for: x.shape), seed: 17)
            _ = try block.forward(x, mode: .training)
            _ = block.backward(dy)
            let full = block.namedParameters().map { $0.parameter.gradient.scalars }
            block.computesInputGradient = false
            block.zeroParameterGradients()
            _ = try block.forward(x, mode: .training)
            XCTAssertEqual(block.backward(dy).count, 0, "no input gradient: the empty placeholder")
            XCTAssertEqual(block.namedParameters().map { $0.parameter.gradient.scalars }, full, "\(config)")
            XCTAssertFalse(block.branch.children[0].layer.computesInputGradient)
            if let downsample = block.downsample { XCTAssertFalse(downsample.children[0].layer.computesInputGradient) }
        }
    }

    func testEvaluationUsesRunningStatistics() throws {
        // Fresh running statistics are (0, 1): evaluation is then relu(branch + shortcut) with
        // every BatchNorm the factor 1/√(1 + ε) (ReLU'd where torchvision has a ReLU).
        let block = ResidualBlock(.bottleneck, 4, planes: 2, stride: 2)
        bindParameters(block, seed: 3)
        let x = normalTensor([2, 5, 5, 4], seed: 4)
        let y = try block.forward(x, mode: .evaluation).copy()
        let scale = 1 / (1 + Float(1e-5)).squareRoot()
        func bn(_ t: Tensor, relu: Bool) -> Tensor {
            Tensor(shape: t.shape, values: t.scalars.map { relu ? max($0 * scale, 0) : $0 * scale })
        }
        let convolutions = block.descendants().compactMap { $0 as? Conv2d }
        var h = bn(try convolutions[0].forward(x, mode: .evaluation), relu: true)
        h = bn(try convolutions[1].forward(h, mode: .evaluation), relu: true)
        h = bn(try convolutions[2].forward(h, mode: .evaluation), relu: false)
        let side = bn(try convolutions[3].forward(x, mode: .evaluation), relu: false)
        assertClose(y, (0..<y.count).map { max(h[$0] + side[$0], 0) }, absolute: 1e-5, relative: 1e-5)
    }

    func testMismatchedInputIsAShapeError() {
        XCTAssertThrowsError(try ResidualBlock(.basic, 3, planes: 3).outputShape(for: [2, 4, 4, 5])) { error in
            XCTAssert("\(error)".contains("[2, 4, 4, 5]"), "\(error)")
        }
    }
}
