import Layers
import Tensors
import TestSupport
import XCTest

final class ResidualTests: XCTestCase {
    /// Sets every BatchNorm of `layer` to γ in [0.5, 1.5], β in [−0.5, 0.5].
    private func randomiseBatchNorms(_ layer: any Layer, seed: UInt64) {
        for (index, bn) in layer.descendants().compactMap({ $0 as? BatchNorm }).enumerated() {
            bn.weight.value.assign(randomTensor([bn.channels], seed: seed + UInt64(2 * index), in: 0.5...1.5))
            bn.bias.value.assign(randomTensor([bn.channels], seed: seed + UInt64(2 * index + 1), in: -0.5...0.5))
        }
    }

    func testIdentityShortcutStructureAndForward() throws {
        for identity in [PreActBlock.IdentityShortcut.preActivation, .input] {
            let block = PreActBlock(3, 3, identity: identity)
            bindParameters(block)
            randomiseBatchNorms(block, seed: 1)
            XCTAssertNil(block.shortcut)
            XCTAssertEqual(
                block.namedParameters().map(\.name),
                ["bn1.weight", "bn1.bias", "conv1.weight", "bn2.weight", "bn2.bias", "conv2.weight"])
            XCTAssertEqual(
                block.namedBuffers().map(\.name),
                ["bn1.running_mean", "bn1.running_var", "bn2.running_mean", "bn2.running_var"])
            let x = normalTensor([2, 4, 4, 3], seed: 2)
            let y = try block.forward(x, mode: .training).copy()
            // y = conv2(relu(bn2(conv1(a)))) + shortcut, a = relu(bn1(x)), the sublayers called one by one;
            // the shortcut is a (PS-KD's official block) or x (He et al.).
            let a = try block.bn1.forward(x, mode: .training).copy()
            let main = try block.conv2.forward(block.bn2.forward(block.conv1.forward(a, mode: .training), mode: .training), mode: .training)
            let side = identity == .preActivation ? a : x
            assertClose(y, (0..<x.count).map { main[$0] + side[$0] }, absolute: 1e-5, relative: 1e-5)
            XCTAssertEqual(try block.outputShape(for: x.shape), [2, 4, 4, 3])
        }
    }

    /// The official block's forward and backward against a direct computation of
    /// `y = conv2(relu(bn2(conv1(a)))) + a`, `a = relu(bn1(x))`, written with separate layers
    /// holding the same parameters: dx = bn1ᵀ(conv1ᵀ(bn2ᵀ(conv2ᵀ(dy))) + dy), and the parameter
    /// gradients of each sublayer.
    func testOfficialBlockForwardAndBackwardAgainstDirectComputation() throws {
        let block = PreActBlock(3, 3)
        bindParameters(block, seed: 19)
        randomiseBatchNorms(block, seed: 20)
        let (bn1, conv1) = (BatchNorm(3, activation: .relu), Conv2d(3, 3, kernelSize: 3, padding: 1, bias: false))
        let (bn2, conv2) = (BatchNorm(3, activation: .relu), Conv2d(3, 3, kernelSize: 3, padding: 1, bias: false))
        let direct = Sequential(named: [("bn1", bn1), ("conv1", conv1), ("bn2", bn2), ("conv2", conv2)])
        bindParameters(direct)
        for ((_, mine), (_, theirs)) in zip(direct.namedParameters(), block.namedParameters()) { mine.value.assign(theirs.value) }
        let x = normalTensor([2, 5, 5, 3], seed: 21), dy = normalTensor([2, 5, 5, 3], seed: 22)

        let y = try block.forward(x, mode: .training).copy()
        let a = try bn1.forward(x, mode: .training).copy()
        let main = try conv2.forward(bn2.forward(conv1.forward(a, mode: .training), mode: .training), mode: .training)
        assertClose(y, (0..<y.count).map { main[$0] + a[$0] }, absolute: 1e-5, relative: 1e-5)

        block.zeroParameterGradients()
        direct.zeroParameterGradients()
        let dx = block.backward(dy).copy()
        let da = conv1.backward(bn2.backward(conv2.backward(dy))).copy()
        let expected = bn1.backward(Tensor(shape: da.shape, values: (0..<da.count).map { da[$0] + dy[$0] }))
        assertClose(dx, expected.scalars, absolute: 1e-5, relative: 1e-5)
        for ((name, mine), (_, theirs)) in zip(direct.namedParameters(), block.namedParameters()) {
            assertClose(theirs.gradient, mine.gradient.scalars, absolute: 1e-5, relative: 1e-5, name)
        }
    }

    func testProjectionShortcutStructureAndForward() throws {
        let block = PreActBlock(3, 4, stride: 2)
        bindParameters(block)
        randomiseBatchNorms(block, seed: 3)
        XCTAssertNotNil(block.shortcut)
        XCTAssertEqual(block.namedParameters().map(\.name).last, "shortcut.0.weight")
        XCTAssertEqual(block.namedParameters().last?.parameter.shape, [4, 3, 1, 1])
        let x = normalTensor([2, 5, 5, 3], seed: 4)
        let y = try block.forward(x, mode: .training).copy()
        XCTAssertEqual(y.shape, [2, 3, 3, 4])
        // The projection is applied to relu(bn1(x)), not to x (pre-activation design).
        let a = try block.bn1.forward(x, mode: .training).copy()
        let side = try block.shortcut!.forward(a, mode: .training).copy()
        let main = try block.conv2.forward(block.bn2.forward(block.conv1.forward(a, mode: .training), mode: .training), mode: .training)
        assertClose(y, (0..<y.count).map { main[$0] + side[$0] }, absolute: 1e-5, relative: 1e-5)
        // A width change alone (stride 1) also projects.
        XCTAssertNotNil(PreActBlock(3, 5).shortcut)
    }

    func testIdentityShortcutGradients() throws {
        for identity in [PreActBlock.IdentityShortcut.preActivation, .input] {
            let block = PreActBlock(3, 3, identity: identity)
            bindParameters(block, seed: 5)
            randomiseBatchNorms(block, seed: 6)
            assertLayerGradients(block, input: normalTensor([2, 4, 4, 3], seed: 7), checker: GradientCheck(maxCoordinatesPerTensor: 30))
        }
    }

    func testProjectionShortcutGradients() throws {
        let block = PreActBlock(3, 4, stride: 2)
        bindParameters(block, seed: 8)
        randomiseBatchNorms(block, seed: 9)
        assertLayerGradients(block, input: normalTensor([2, 5, 5, 3], seed: 10), checker: GradientCheck(maxCoordinatesPerTensor: 30))
    }

    func testWidthChangeShortcutGradients() throws {
        let block = PreActBlock(2, 3)
        bindParameters(block, seed: 11)
        randomiseBatchNorms(block, seed: 12)
        assertLayerGradients(block, input: normalTensor([2, 3, 3, 2], seed: 13), checker: GradientCheck(maxCoordinatesPerTensor: 30))
    }

    func testParameterGradientsWithoutInputGradient() throws {
        for (block, shape) in [
            (PreActBlock(2, 2), [2, 3, 3, 2]), (PreActBlock(2, 2, identity: .input), [2, 3, 3, 2]),
            (PreActBlock(2, 3, stride: 2), [2, 4, 4, 2]),
        ] {
            bindParameters(block, seed: 14)
            randomiseBatchNorms(block, seed: 15)
            let x = normalTensor(shape, seed: 16)
            let dyShape = try block.outputShape(for: shape)
            _ = try block.forward(x, mode: .training)
            _ = block.backward(normalTensor(dyShape, seed: 17))
            let full = block.namedParameters().map { $0.parameter.gradient.scalars }
            block.computesInputGradient = false
            block.zeroParameterGradients()
            _ = try block.forward(x, mode: .training)
            XCTAssertEqual(block.backward(normalTensor(dyShape, seed: 17)).count, 0, "no input gradient: the empty placeholder")
            XCTAssertEqual(block.namedParameters().map { $0.parameter.gradient.scalars }, full)
        }
    }

    func testEvaluationUsesRunningStatistics() throws {
        for identity in [PreActBlock.IdentityShortcut.preActivation, .input] {
            let block = PreActBlock(2, 2, identity: identity)
            bindParameters(block)
            let x = normalTensor([2, 3, 3, 2], seed: 18)
            // Fresh running statistics are (0, 1): evaluation is then conv2(relu(conv1(a))) + shortcut,
            // a = relu(x), up to the factor 1/√(1 + ε) per BatchNorm; the shortcut is a or x.
            let y = try block.forward(x, mode: .evaluation).copy()
            XCTAssertEqual(y.shape, x.shape)
            let scale = 1 / (1 + block.bn1.epsilon).squareRoot()
            let a = Tensor(shape: x.shape, values: x.scalars.map { max($0 * scale, 0) })
            let h = try block.conv1.forward(a, mode: .evaluation)
            let h2 = Tensor(shape: h.shape, values: h.scalars.map { max($0 * scale, 0) })
            let main = try block.conv2.forward(h2, mode: .evaluation)
            let side = identity == .preActivation ? a : x
            assertClose(y, (0..<x.count).map { main[$0] + side[$0] }, absolute: 1e-5, relative: 1e-5)
        }
    }
}
