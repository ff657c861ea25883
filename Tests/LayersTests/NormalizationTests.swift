import Layers
import Tensors
import TestSupport
import XCTest

final class NormalizationTests: XCTestCase {
    /// A bound BatchNorm with γ in [0.5, 1.5] and β in [−0.5, 0.5] (not the trivial 1 and 0).
    private func makeBatchNorm(_ channels: Int, activation: Activation = .identity, seed: UInt64 = 1) -> BatchNorm {
        let bn = BatchNorm(channels, activation: activation)
        bindParameters(bn, seed: seed)
        bn.weight.value.assign(randomTensor([channels], seed: seed + 1, in: 0.5...1.5))
        bn.bias.value.assign(randomTensor([channels], seed: seed + 2, in: -0.5...0.5))
        return bn
    }

    /// Per-channel mean and biased variance over every leading position, in Double.
    private func statistics(_ x: Tensor, channels: Int) -> (mean: [Double], variance: [Double]) {
        let rows = x.count / channels
        var mean = [Double](repeating: 0, count: channels), variance = mean
        for r in 0..<rows { for c in 0..<channels { mean[c] += Double(x[r * channels + c]) / Double(rows) } }
        for r in 0..<rows {
            for c in 0..<channels { variance[c] += pow(Double(x[r * channels + c]) - mean[c], 2) / Double(rows) }
        }
        return (mean, variance)
    }

    /// `act((x − mean)/√(var + ε)·γ + β)` per channel.
    private func affine(_ x: Tensor, _ bn: BatchNorm, mean: [Double], variance: [Double]) -> [Float] {
        (0..<x.count).map { i in
            let c = i % bn.channels
            let v =
                (Double(x[i]) - mean[c]) / (variance[c] + Double(bn.epsilon)).squareRoot()
                * Double(bn.weight.value[c]) + Double(bn.bias.value[c])
            return Float(bn.activation == .relu ? max(v, 0) : v)
        }
    }

    func testTrainingForwardUsesBatchStatistics() throws {
        for shape in [[8, 3], [2, 3, 4, 5]] {
            for activation in [Activation.identity, .relu] {
                let bn = makeBatchNorm(shape.last!, activation: activation)
                let x = normalTensor(shape, seed: 4, mean: 2, standardDeviation: 3)
                let (mean, variance) = statistics(x, channels: bn.channels)
                assertClose(
                    try bn.forward(x, mode: .training), affine(x, bn, mean: mean, variance: variance),
                    absolute: 1e-5, relative: 1e-4, "\(shape) \(activation)")
            }
        }
    }

    func testNamesAndInitialValues() {
        let bn = BatchNorm(4)
        XCTAssertEqual(bn.namedParameters().map(\.name), ["weight", "bias"])
        XCTAssertEqual(bn.namedBuffers().map(\.name), ["running_mean", "running_var"])
        bindParameters(bn)
        XCTAssertEqual(bn.weight.value.scalars, [1, 1, 1, 1])
        XCTAssertEqual(bn.bias.value.scalars, [0, 0, 0, 0])
        XCTAssertEqual(bn.runningMean.value.scalars, [0, 0, 0, 0])
        XCTAssertEqual(bn.runningVariance.value.scalars, [1, 1, 1, 1])
        XCTAssertEqual(bn.momentum, 0.1)
        XCTAssertEqual(bn.epsilon, 1e-5)
    }

    func testGradients1D() throws {
        let bn = makeBatchNorm(3)
        assertLayerGradients(bn, input: normalTensor([6, 3], seed: 5))
    }

    func testGradients1DWithFusedReLU() throws {
        let bn = makeBatchNorm(3, activation: .relu, seed: 3)
        assertLayerGradients(bn, input: normalTensor([8, 3], seed: 6))
    }

    func testGradients2D() throws {
        let bn = makeBatchNorm(4, seed: 5)
        assertLayerGradients(bn, input: normalTensor([2, 3, 3, 4], seed: 7, mean: 1, standardDeviation: 2))
    }

    func testGradients2DWithFusedReLU() throws {
        let bn = makeBatchNorm(4, activation: .relu, seed: 7)
        let x = normalTensor([2, 3, 3, 4], seed: 8)
        let active = try bn.forward(x, mode: .training).scalars.filter { $0 > 0 }.count
        XCTAssert(active > 18 && active < 54, "both sides of the ReLU are exercised (\(active) of 72)")
        assertLayerGradients(bn, input: x)
    }

    func testParameterGradientsHaveTheClosedForm() throws {
        // dβ = Σ dy, dγ = Σ dy·x̂ per channel.
        let bn = makeBatchNorm(3)
        let x = normalTensor([5, 3], seed: 9), dy = normalTensor([5, 3], seed: 10)
        _ = try bn.forward(x, mode: .training)
        let (mean, variance) = statistics(x, channels: 3)
        _ = bn.backward(dy.copy())
        var dgamma = [Float](repeating: 0, count: 3), dbeta = dgamma
        for i in 0..<15 {
            let c = i % 3
            dbeta[c] += dy[i]
            dgamma[c] += dy[i] * Float((Double(x[i]) - mean[c]) / (variance[c] + 1e-5).squareRoot())
        }
        assertClose(bn.bias.gradient, dbeta, absolute: 1e-5, relative: 1e-5)
        assertClose(bn.weight.gradient, dgamma, absolute: 1e-5, relative: 1e-4)
    }

    func testParameterGradientsWithoutInputGradient() throws {
        let bn = makeBatchNorm(3, activation: .relu)
        let x = normalTensor([6, 3], seed: 11), dy = normalTensor([6, 3], seed: 12)
        _ = try bn.forward(x, mode: .training)
        _ = bn.backward(dy.copy())
        let (dgamma, dbeta) = (bn.weight.gradient.scalars, bn.bias.gradient.scalars)
        bn.computesInputGradient = false
        bn.zeroParameterGradients()
        _ = try bn.forward(x, mode: .training)
        XCTAssertEqual(bn.backward(dy.copy()).count, 0, "no input gradient: the empty placeholder")
        XCTAssertEqual(bn.weight.gradient.scalars, dgamma)
        XCTAssertEqual(bn.bias.gradient.scalars, dbeta)
    }

    func testRunningStatisticsFollowPyTorch() throws {
        for shape in [[6, 3], [2, 2, 3, 3]] {
            let bn = makeBatchNorm(3)
            var runningMean = [Double](repeating: 0, count: 3), runningVariance = [Double](repeating: 1, count: 3)
            let rows = Double(shape.reduce(1, *) / 3)
            for batch in 0..<4 {
                let x = normalTensor(shape, seed: UInt64(20 + batch), mean: Float(batch), standardDeviation: 2)
                _ = try bn.forward(x, mode: .training)
                let (mean, variance) = statistics(x, channels: 3)
                for c in 0..<3 {
                    runningMean[c] = 0.9 * runningMean[c] + 0.1 * mean[c]
                    runningVariance[c] = 0.9 * runningVariance[c] + 0.1 * variance[c] * rows / (rows - 1)  // unbiased
                }
            }
            assertClose(bn.runningMean.value, runningMean.map { Float($0) }, absolute: 1e-5, relative: 1e-5, "\(shape)")
            assertClose(bn.runningVariance.value, runningVariance.map { Float($0) }, absolute: 1e-5, relative: 1e-5, "\(shape)")
            XCTAssertEqual(bn.batchesTracked, 4)
        }
    }

    func testEvaluationUsesRunningStatisticsAndChangesNothing() throws {
        for activation in [Activation.identity, .relu] {
            for shape in [[6, 3], [2, 2, 2, 3]] {
                let bn = makeBatchNorm(3, activation: activation)
                for batch in 0..<3 {
                    _ = try bn.forward(normalTensor(shape, seed: UInt64(30 + batch), mean: 1, standardDeviation: 2), mode: .training)
                }
                let (rm, rv) = (bn.runningMean.value.scalars, bn.runningVariance.value.scalars)
                XCTAssertNotEqual(rm, [0, 0, 0])
                let x = normalTensor(shape, seed: 40)
                let y = try bn.forward(x, mode: .evaluation)
                assertClose(
                    y, affine(x, bn, mean: rm.map(Double.init), variance: rv.map(Double.init)),
                    absolute: 1e-5, relative: 1e-5, "\(activation) \(shape)")
                XCTAssertEqual(bn.runningMean.value.scalars, rm, "evaluation must not update the running mean")
                XCTAssertEqual(bn.runningVariance.value.scalars, rv)
                XCTAssertEqual(bn.batchesTracked, 3)
                // A single sample is fine in evaluation.
                XCTAssertEqual(try bn.forward(x.rows(0..<1), mode: .evaluation).shape, [1] + Array(shape.dropFirst()))
            }
        }
    }

    func testTrainingNeedsMoreThanOneValuePerChannel() {
        let bn = makeBatchNorm(3)
        assertShapeError(containing: ["[1, 3]"]) { () throws(ShapeError) in try bn.forward(Tensor(zeros: [1, 3]), mode: .training) }
        XCTAssertEqual(try bn.forward(Tensor(zeros: [1, 2, 1, 3]), mode: .training).shape, [1, 2, 1, 3])
    }

    func testConstantChannelNormalisesToBeta() throws {
        // Zero variance: x̂ = 0 (ε keeps it finite), so y = β, and the input gradient is finite.
        // y is computed as x·(γ/√ε) + (β − μ·γ/√ε), as PyTorch's CPU kernel does: the cancellation
        // costs about |μ|·γ/√ε ulps (≈ 1e-4 here), hence the tolerance.
        let bn = makeBatchNorm(2)
        let x = Tensor(shape: [4, 2], values: [3, 1, 3, 2, 3, 3, 3, 4])
        let y = try bn.forward(x, mode: .training)
        for r in 0..<4 { XCTAssertEqual(y[r * 2], bn.bias.value[0], accuracy: 2e-4) }
        let dx = bn.backward(normalTensor([4, 2], seed: 1))
        XCTAssert(dx.scalars.allSatisfy(\.isFinite))
    }
}
