import Tensors
import TestSupport
import XCTest

@testable import Optimizers

/// References for three steps on three scalar parameters, computed by hand from PyTorch's
/// documented algorithms (torch.optim.SGD with dampening 0; "SGDW" shrinks p by (1 − lr·wd)
/// before the step; torch.optim.AdamW; Adam with an L2 penalty added to the gradient) in Double.
final class OptimizerTests: XCTestCase {
    private let initial: [Float] = [1.0, -2.0, 0.5]
    /// Gradients per step: step t uses gradients[t].
    private let gradients: [[Float]] = [[0.5, 0.1, -1.0], [-0.25, 0.3, 0.0], [1.0, -0.2, 2.0]]

    /// Runs three steps and returns the parameters after each.
    private func run(_ optimizer: any Optimizer, learningRate: Float) -> [[Float]] {
        let parameters = Tensor(shape: [3], values: initial)
        var trajectory: [[Float]] = []
        for step in 0..<3 {
            let g = Tensor(shape: [3], values: gradients[step])
            optimizer.step(parameters: parameters, gradients: g, learningRate: learningRate)
            trajectory.append(parameters.scalars)
        }
        return trajectory
    }

    /// `expected[parameter][step]` → per-step rows.
    private func assertTrajectory(_ actual: [[Float]], _ expected: [[Double]], file: StaticString = #filePath, line: UInt = #line) {
        for step in 0..<3 {
            assertClose(
                actual[step], expected.map { Float($0[step]) }, absolute: 1e-6, relative: 1e-5,
                "step \(step + 1)", file: file, line: line)
        }
    }

    func testSGDMomentumL2MatchesPyTorch() {
        // p=1, g=0.5,-0.25,1, lr 0.1, momentum 0.9, wd 0.01 by hand:
        // d1 = 0.51, buf = 0.51, p = 0.949; d2 = -0.24051, buf = 0.21849, p = 0.927151;
        // d3 = 1.00927151, buf = 1.20591251, p = 0.806559749.
        let sgd = SGD(parameterCount: 3, momentum: 0.9, nesterov: false, weightDecay: 0.01, weightDecayStyle: .l2)
        assertTrajectory(
            run(sgd, learningRate: 0.1),
            [
                [0.949, 0.927151, 0.806559749],
                [-2.008, -2.043192, -2.052821608],
                [0.5995, 0.6884505, 0.5678174995],
            ])
        XCTAssertEqual(sgd.stepCount, 3)
    }

    func testSGDNesterovL2MatchesPyTorch() {
        // Step 1 by hand: d = 0.51, buf = 0.51, update = d + 0.9·buf = 0.969, p = 0.9031.
        let sgd = SGD(parameterCount: 3, momentum: 0.9, nesterov: true, weightDecay: 0.01, weightDecayStyle: .l2)
        assertTrajectory(
            run(sgd, learningRate: 0.1),
            [
                [0.9031, 0.90757411, 0.698189208191],
                [-2.0152, -2.07485112, -2.061408590872],
                [0.68905, 0.768335805, 0.4588533364705],
            ])
    }

    func testSGDMomentumDecoupledMatchesSGDW() {
        // Step 1 by hand: p·(1 − 0.001) − 0.1·0.5 = 0.999 − 0.05 = 0.949.
        let sgd = SGD(parameterCount: 3, momentum: 0.9, nesterov: false, weightDecay: 0.01, weightDecayStyle: .decoupled)
        assertTrajectory(
            run(sgd, learningRate: 0.1),
            [
                [0.949, 0.928051, 0.809122949],
                [-2.008, -2.044992, -2.058047008],
                [0.5995, 0.6889005, 0.5692115995],
            ])
    }

    func testSGDNesterovDecoupledMatchesSGDW() {
        let sgd = SGD(parameterCount: 3, momentum: 0.9, nesterov: true, weightDecay: 0.01, weightDecayStyle: .decoupled)
        assertTrajectory(
            run(sgd, learningRate: 0.1),
            [
                [0.904, 0.910096, 0.702985904],
                [-2.017, -2.080083, -2.071592917],
                [0.6895, 0.7698105, 0.4619406895],
            ])
    }

    func testSGDWithoutMomentumOrDecayIsPlainGradientDescent() {
        let sgd = SGD(parameterCount: 3, momentum: 0, nesterov: false, weightDecay: 0)
        let trajectory = run(sgd, learningRate: 0.5)
        var p = initial.map(Double.init)
        for step in 0..<3 {
            for i in 0..<3 { p[i] -= 0.5 * Double(gradients[step][i]) }
            assertClose(trajectory[step], p.map { Float($0) }, absolute: 1e-6, relative: 0)
        }
    }

    func testSGDMomentumBufferIsTheStateTensor() {
        let sgd = SGD(parameterCount: 3, momentum: 0.9, nesterov: false, weightDecay: 0)
        _ = run(sgd, learningRate: 0.1)
        XCTAssertEqual(sgd.stateTensors.map(\.name), ["momentum_buffer"])
        // buf = 0.9·(0.9·g1 + g2) + g3
        let expected = (0..<3).map { 0.81 * gradients[0][$0] + 0.9 * gradients[1][$0] + gradients[2][$0] }
        assertClose(sgd.stateTensors[0].tensor, expected, absolute: 1e-6, relative: 1e-6)
    }

    func testSGDResumesFromStateExactly() {
        // Restoring the momentum buffer and the step count continues the trajectory bit for bit.
        let full = SGD(parameterCount: 3, momentum: 0.9, nesterov: true, weightDecay: 5e-4)
        let reference = run(full, learningRate: 0.1)
        let first = SGD(parameterCount: 3, momentum: 0.9, nesterov: true, weightDecay: 5e-4)
        let p = Tensor(shape: [3], values: initial)
        first.step(parameters: p, gradients: Tensor(shape: [3], values: gradients[0]), learningRate: 0.1)
        let resumed = SGD(parameterCount: 3, momentum: 0.9, nesterov: true, weightDecay: 5e-4)
        resumed.velocity.assign(first.velocity)
        resumed.stepCount = first.stepCount
        for step in 1..<3 {
            resumed.step(parameters: p, gradients: Tensor(shape: [3], values: gradients[step]), learningRate: 0.1)
        }
        XCTAssertEqual(p.scalars, reference[2])
    }

    func testAdamWMatchesPyTorch() {
        // Step 1 by hand (p = 1, g = 0.5, lr 0.01, wd 0.1): p·(1 − 0.001) = 0.999; m̂ = 0.5, v̂ = 0.25,
        // p −= 0.01 · 0.5 / (0.5 + 1e-8) → 0.989.
        let adam = AdamW(parameterCount: 3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1)
        assertTrajectory(
            run(adam, learningRate: 0.01),
            [
                [0.9890000002, 0.9853476298705847, 0.9777811663376385],
                [-2.007999999, -2.015169809780441, -2.01573367790224],
                [0.5094999999, 0.5156910823466812, 0.5117750465867754],
            ])
        XCTAssertEqual(adam.stateTensors.map(\.name), ["exp_avg", "exp_avg_sq"])
        XCTAssertEqual(adam.stepCount, 3)
    }

    func testAdamWithL2PenaltyMatchesPyTorchAdam() {
        let adam = AdamW(
            parameterCount: 3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1,
            weightDecayStyle: .l2)
        assertTrajectory(
            run(adam, learningRate: 0.01),
            [
                [0.9900000001666667, 0.9853191993058599, 0.9779775547639225],
                [-1.990000001, -1.990576059408093, -1.984707021470341],
                [0.5099999998947369, 0.5162918294231745, 0.5125398011574597],
            ])
    }

    func testAdamWFirstStepMovesEachParameterByTheLearningRate() {
        // Bias correction makes the first update lr·g/|g| whatever the gradient's scale.
        let adam = AdamW(parameterCount: 4, weightDecay: 0)
        let p = Tensor(shape: [4], values: [0, 0, 0, 0])
        adam.step(parameters: p, gradients: Tensor(shape: [4], values: [1e-3, -5, 40, -0.2]), learningRate: 0.01)
        assertClose(p, [-0.01, 0.01, -0.01, 0.01], absolute: 1e-7, relative: 1e-4)
    }
}
