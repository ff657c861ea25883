import Layers
import Tensors
import TestSupport
import XCTest

final class LinearTests: XCTestCase {
    /// `act(x · Wᵀ + b)` by the definition, W in PyTorch's [out, in] layout.
    private func reference(_ x: Tensor, _ layer: Linear) -> [Float] {
        let (n, i, o) = (x.shape[0], layer.inputFeatures, layer.outputFeatures)
        var y = [Float](repeating: 0, count: n * o)
        for r in 0..<n {
            for c in 0..<o {
                var sum = Double(layer.bias?.value[c] ?? 0)
                for k in 0..<i { sum += Double(x[r * i + k]) * Double(layer.weight.value[c * i + k]) }
                y[r * o + c] = layer.activation == .relu ? Float(max(sum, 0)) : Float(sum)
            }
        }
        return y
    }

    func testForwardMatchesTheDefinitionForEveryVariant() throws {
        for bias in [true, false] {
            for activation in [Activation.identity, .relu] {
                let layer = Linear(7, 5, bias: bias, activation: activation)
                bindParameters(layer, seed: 3)
                let x = normalTensor([4, 7], seed: 4)
                let y = try layer.forward(x, mode: .training)
                XCTAssertEqual(y.shape, [4, 5])
                assertClose(y, reference(x, layer), absolute: 1e-5, relative: 1e-5, "bias \(bias) \(activation)")
                if activation == .relu {
                    XCTAssert(y.scalars.contains(0) && y.scalars.contains { $0 > 0 }, "the ReLU case must exercise both sides")
                }
            }
        }
    }

    func testParametersHavePyTorchNamesShapesAndInitialisation() {
        let layer = Linear(16, 3)
        XCTAssertEqual(layer.namedParameters().map(\.name), ["weight", "bias"])
        XCTAssertEqual(layer.weight.shape, [3, 16])
        XCTAssertEqual(Linear(16, 3, bias: false).namedParameters().map(\.name), ["weight"])
        bindParameters(layer)
        let bound: Float = 0.25  // 1/√16
        for v in layer.weight.value.scalars + layer.bias!.value.scalars { XCTAssertLessThanOrEqual(abs(v), bound) }
        XCTAssertGreaterThan(layer.weight.value.scalars.map(abs).max()!, 0.2, "uses the whole U(±1/√in) range")
    }

    func testGradientsWithBias() throws {
        let layer = Linear(6, 4)
        bindParameters(layer)
        assertLayerGradients(layer, input: normalTensor([3, 6], seed: 1))
    }

    func testGradientsWithoutBias() throws {
        let layer = Linear(6, 4, bias: false)
        bindParameters(layer)
        let report = assertLayerGradients(layer, input: normalTensor([3, 6], seed: 2))
        XCTAssertEqual(report?.results.map(\.name), ["input", "weight"])
    }

    func testGradientsWithFusedReLU() throws {
        for bias in [true, false] {
            let layer = Linear(6, 5, bias: bias, activation: .relu)
            bindParameters(layer, seed: 11)
            let x = normalTensor([4, 6], seed: 5)
            let y = try layer.forward(x, mode: .training)
            let active = y.scalars.filter { $0 > 0 }.count
            XCTAssert(active > 4 && active < 16, "both sides of the ReLU are exercised (\(active) of 20 active)")
            // A small step: with ε = 1e-2, one pre-activation close to zero puts the kink inside
            // the step for a whole weight row, which the checker would skip as non-smooth.
            let report = assertLayerGradients(layer, input: x, checker: GradientCheck(epsilon: 1e-3), "bias \(bias)")
            XCTAssertEqual(report?.skipped, 0)
        }
    }

    func testReLUGradientIsZeroWhereTheOutputIsClamped() throws {
        let layer = Linear(2, 2, activation: .relu)
        bindParameters(layer)
        layer.weight.value.assign(Tensor(shape: [2, 2], values: [1, 0, 0, 1]))
        layer.bias!.value.fill(0)
        let x = Tensor(shape: [1, 2], values: [-1, 2])
        _ = try layer.forward(x, mode: .training)
        let dx = layer.backward(Tensor(shape: [1, 2], values: [5, 7]))
        XCTAssertEqual(dx.scalars, [0, 7])
        XCTAssertEqual(layer.bias!.gradient.scalars, [0, 7])
        XCTAssertEqual(layer.weight.gradient.scalars, [0, 0, -7, 14])
    }

    /// Parameter gradients add up over backward passes (see `Layer`): the same pass twice
    /// gives exactly twice the gradient (g + g is exact in floating point).
    func testBackwardAccumulatesParameterGradients() throws {
        for activation in [Activation.identity, .relu] {
            let layer = Linear(4, 3, activation: activation)
            bindParameters(layer)
            let x = normalTensor([2, 4], seed: 6), dy = normalTensor([2, 3], seed: 7)
            _ = try layer.forward(x, mode: .training)
            _ = layer.backward(dy)
            let first = layer.weight.gradient.scalars + layer.bias!.gradient.scalars
            XCTAssert(first.contains { $0 != 0 })
            _ = try layer.forward(x, mode: .training)
            _ = layer.backward(dy)
            XCTAssertEqual(layer.weight.gradient.scalars + layer.bias!.gradient.scalars, first.map { 2 * $0 })
        }
    }

    func testParameterGradientsWithoutInputGradient() throws {
        let layer = Linear(4, 3), reference = Linear(4, 3)
        bindParameters(layer, seed: 1)
        bindParameters(reference, seed: 1)
        layer.computesInputGradient = false
        let x = normalTensor([5, 4], seed: 8), dy = normalTensor([5, 3], seed: 9)
        _ = try layer.forward(x, mode: .training)
        _ = layer.backward(dy.copy())
        _ = try reference.forward(x, mode: .training)
        _ = reference.backward(dy.copy())
        XCTAssertEqual(layer.weight.gradient.scalars, reference.weight.gradient.scalars)
        XCTAssertEqual(layer.bias!.gradient.scalars, reference.bias!.gradient.scalars)
    }

    func testBatchSizeCanChangeBetweenCalls() throws {
        let layer = Linear(3, 2)
        bindParameters(layer)
        for n in [4, 1, 6] {
            let x = normalTensor([n, 3], seed: UInt64(n))
            assertClose(try layer.forward(x, mode: .evaluation), reference(x, layer), absolute: 1e-6, relative: 1e-5)
        }
        assertLayerGradients(layer, input: normalTensor([1, 3], seed: 10))
    }
}
