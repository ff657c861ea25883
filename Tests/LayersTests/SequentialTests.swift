import Layers
import Tensors
import TestSupport
import XCTest

final class SequentialTests: XCTestCase {
    func testForwardComposesInOrderAndNamesFollowPyTorch() throws {
        let first = Linear(4, 5, activation: .relu), second = Linear(5, 3)
        let sequential = Sequential([first, second])
        bindParameters(sequential)
        XCTAssertEqual(sequential.namedParameters().map(\.name), ["0.weight", "0.bias", "1.weight", "1.bias"])
        let x = normalTensor([2, 4], seed: 1)
        let y = try sequential.forward(x, mode: .training).copy()
        let expected = try second.forward(first.forward(x, mode: .training), mode: .training)
        XCTAssertEqual(y.scalars, expected.scalars)
        XCTAssertEqual(try sequential.outputShape(for: [7, 4]), [7, 3])
    }

    func testNamedChildrenAndNesting() {
        let inner = Sequential(named: [("conv", Conv2d(1, 2, kernelSize: 3)), ("bn", BatchNorm(2))])
        let outer = Sequential(named: [("features", inner), ("head", Linear(2, 2))])
        XCTAssertEqual(
            outer.namedParameters().map(\.name),
            [
                "features.conv.weight", "features.conv.bias", "features.bn.weight", "features.bn.bias",
                "head.weight", "head.bias",
            ])
        XCTAssertEqual(outer.namedBuffers().map(\.name), ["features.bn.running_mean", "features.bn.running_var"])
        XCTAssertEqual(outer.descendants().count, 5)
    }

    func testGradientsOfAMiniatureCNN() throws {
        // conv → BN+ReLU → max-pool → flatten → linear+ReLU → linear, end to end.
        let network = Sequential([
            Conv2d(2, 3, kernelSize: 3, padding: 1), BatchNorm(3, activation: .relu), MaxPool2d(kernelSize: 2),
            Flatten(), Linear(12, 5, activation: .relu), Linear(5, 3),
        ])
        bindParameters(network, seed: 2)
        let report = assertLayerGradients(
            network, input: normalTensor([3, 4, 4, 2], seed: 3),
            checker: GradientCheck(maxCoordinatesPerTensor: 30))
        XCTAssertEqual(report?.results.count, 9)  // input + 8 parameter tensors
    }

    func testInputGradientFlagReachesTheFirstLayerOnly() throws {
        let first = Linear(3, 3), second = Linear(3, 2)
        let sequential = Sequential([first, second])
        sequential.computesInputGradient = false
        XCTAssertFalse(first.computesInputGradient)
        XCTAssertTrue(second.computesInputGradient)
        // Parameter gradients are still written.
        bindParameters(sequential)
        _ = try sequential.forward(normalTensor([2, 3], seed: 4), mode: .training)
        _ = sequential.backward(normalTensor([2, 2], seed: 5))
        XCTAssert(first.weight.gradient.scalars.contains { $0 != 0 })
    }

    func testShapeErrorsPropagateFromTheFailingChild() {
        let sequential = Sequential([Linear(4, 5), Linear(6, 2)])
        assertShapeError(containing: ["[N, 6]", "[3, 5]"]) { () throws(ShapeError) in try sequential.outputShape(for: [3, 4]) }
    }
}
