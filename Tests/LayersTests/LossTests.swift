import Layers
import Tensors
import TestSupport
import XCTest

final class LossTests: XCTestCase {
    /// Soft target rows: random positive weights normalised to sum to 1.
    private func softTargets(_ rows: Int, _ classes: Int, seed: UInt64) -> Tensor {
        let t = randomTensor([rows, classes], seed: seed, in: 0.05...1)
        for r in 0..<rows {
            let sum = (0..<classes).reduce(Float(0)) { $0 + t[r * classes + $1] }
            for c in 0..<classes { t[r * classes + c] /= sum }
        }
        return t
    }

    /// mean_r −Σ_c t log softmax(z) in Double.
    private func referenceLoss(_ z: Tensor, _ t: Tensor) -> Double {
        let (rows, classes) = (z.shape[0], z.shape[1])
        var total = 0.0
        for r in 0..<rows {
            let row = (0..<classes).map { Double(z[r * classes + $0]) }
            let m = row.max()!
            let logSum = m + log(row.reduce(0) { $0 + exp($1 - m) })
            for c in 0..<classes { total -= Double(t[r * classes + c]) * (row[c] - logSum) }
        }
        return total / Double(rows)
    }

    func testLossProbabilitiesAndGradientsMatchTheDefinition() throws {
        let loss = SoftmaxCrossEntropy()
        let z = normalTensor([4, 5], seed: 1, standardDeviation: 2), t = softTargets(4, 5, seed: 2)
        let result = try loss(logits: z, targets: t)
        assertClose(result.loss, referenceLoss(z, t), absolute: 1e-6, relative: 1e-6)
        for r in 0..<4 {
            let exps = (0..<5).map { exp(Double(z[r * 5 + $0])) }
            let sum = exps.reduce(0, +)
            for c in 0..<5 {
                XCTAssertEqual(Double(result.probabilities[r * 5 + c]), exps[c] / sum, accuracy: 1e-6)
                XCTAssertEqual(Double(result.logitGradients[r * 5 + c]), (exps[c] / sum - Double(t[r * 5 + c])) / 4, accuracy: 1e-6)
            }
        }
    }

    func testFiniteDifferenceOfLogitGradientsWithSoftTargets() throws {
        let loss = SoftmaxCrossEntropy()
        let z = normalTensor([3, 6], seed: 3, standardDeviation: 1.5), t = softTargets(3, 6, seed: 4)
        let analytic = try loss(logits: z, targets: t).logitGradients.scalars
        let report = try GradientCheck(absoluteTolerance: 1e-4, relativeTolerance: 2e-3)
            .check([GradientCheck.Target(name: "logits", value: z, analytic: analytic)]) {
                try loss(logits: z, targets: t).loss
            }
        assertGradientsCorrect(report)
        XCTAssertEqual(report.checked, 18)
        // And the checker would notice gradients without the 1/N.
        let unscaled = analytic.map { $0 * 3 }
        XCTAssertFalse(
            try GradientCheck(absoluteTolerance: 1e-4, relativeTolerance: 2e-3)
                .check([GradientCheck.Target(name: "logits", value: z, analytic: unscaled)]) { try loss(logits: z, targets: t).loss }
                .passed)
    }

    func testOneHotTargetsGiveMinusLogProbabilityOfTheLabel() throws {
        let loss = SoftmaxCrossEntropy()
        let labels = [2, 0, 4]
        let targets = SoftmaxCrossEntropy.oneHot(labels, classes: 5)
        XCTAssertEqual(targets.shape, [3, 5])
        XCTAssertEqual(targets.scalars, [0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1])
        let z = normalTensor([3, 5], seed: 5)
        let result = try loss(logits: z, targets: targets)
        let expected =
            labels.enumerated().reduce(0.0) { sum, item in
                sum - log(Double(result.probabilities[item.offset * 5 + item.element]))
            } / 3
        assertClose(result.loss, expected, absolute: 1e-6, relative: 1e-6)
    }

    /// Logits putting p(label) at e^−200 (far below Float's smallest value): the loss is 200, not
    /// capped by the underflowed probability, and `logSumExp` gives the same NLL in Double.
    func testConfidentlyWrongSampleCostsItsExactNegativeLogLikelihood() throws {
        let z = Tensor(shape: [1, 2], values: [0, 200])  // p(0) = 1 / (1 + e^200) ≈ e^−200
        let result = try SoftmaxCrossEntropy()(logits: z, targets: SoftmaxCrossEntropy.oneHot([0], classes: 2))
        XCTAssertEqual(result.probabilities[0], 0, "the float probability underflows")
        assertClose(result.loss, 200, absolute: 1e-3, relative: 0)
        assertClose(SoftmaxCrossEntropy.logSumExp(z.pointer, count: 2) - Double(z[0]), 200, absolute: 1e-3, relative: 0)
    }

    func testLogSumExpMatchesTheDefinition() {
        let z = normalTensor([1, 7], seed: 12)
        let direct = log((0..<7).reduce(0.0) { $0 + exp(Double(z[$1])) })
        assertClose(SoftmaxCrossEntropy.logSumExp(z.pointer, count: 7), direct, absolute: 1e-12, relative: 1e-12)
    }

    func testProbabilityRowsSumToOne() throws {
        let loss = SoftmaxCrossEntropy()
        let z = normalTensor([8, 10], seed: 6, standardDeviation: 5)
        let p = try loss(logits: z, targets: softTargets(8, 10, seed: 7)).probabilities
        for r in 0..<8 {
            let row = (0..<10).map { p[r * 10 + $0] }
            XCTAssertEqual(row.reduce(0, +), 1, accuracy: 1e-5)
            XCTAssert(row.allSatisfy { $0 >= 0 && $0 <= 1 })
        }
        // Gradient rows sum to zero when target rows sum to one.
        let g = try loss(logits: z, targets: softTargets(8, 10, seed: 7)).logitGradients
        for r in 0..<8 { XCTAssertEqual((0..<10).reduce(Float(0)) { $0 + g[r * 10 + $1] }, 0, accuracy: 1e-6) }
    }

    func testLargeLogitsAreStable() throws {
        let loss = SoftmaxCrossEntropy()
        // Logits around ±1e4: naive exp overflows. Shifting a row by a constant changes nothing.
        let base = normalTensor([3, 4], seed: 8, standardDeviation: 3)
        let t = softTargets(3, 4, seed: 9)
        let reference = try loss(logits: base, targets: t)
        let (refLoss, refP, refG) = (reference.loss, reference.probabilities.copy(), reference.logitGradients.copy())
        let shifted = Tensor(shape: [3, 4], values: (0..<12).map { base[$0] + ($0 / 4 == 1 ? -10_000 : 10_000) })
        let result = try loss(logits: shifted, targets: t)
        XCTAssert(result.loss.isFinite)
        XCTAssert(result.probabilities.scalars.allSatisfy(\.isFinite))
        XCTAssert(result.logitGradients.scalars.allSatisfy(\.isFinite))
        // Float spacing at 1e4 is ≈ 1e-3, so the shifted logits are the base ones within that.
        assertClose(result.loss, refLoss, absolute: 5e-3, relative: 0)
        assertClose(result.probabilities, refP, absolute: 5e-3, relative: 0)
        assertClose(result.logitGradients, refG, absolute: 2e-3, relative: 0)
        // Widely separated huge logits: one class takes all the probability, loss −log p is exact.
        let extreme = Tensor(shape: [1, 3], values: [10_000, -10_000, 0])
        let r = try loss(logits: extreme, targets: SoftmaxCrossEntropy.oneHot([2], classes: 3))
        XCTAssertEqual(r.loss, 10_000, accuracy: 1e-2)
        XCTAssertEqual(r.probabilities.scalars, [1, 0, 0])
    }

    func testPerfectPredictionHasZeroLossAndGradient() throws {
        let loss = SoftmaxCrossEntropy()
        let z = Tensor(shape: [2, 3], values: [50, 0, 0, 0, 0, 50])
        let result = try loss(logits: z, targets: SoftmaxCrossEntropy.oneHot([0, 2], classes: 3))
        XCTAssertEqual(result.loss, 0, accuracy: 1e-6)
        XCTAssert(result.logitGradients.scalars.allSatisfy { abs($0) < 1e-6 })
    }

    func testUniformTargetsOverUniformLogitsGiveLogC() throws {
        let loss = SoftmaxCrossEntropy()
        let classes = 10
        let result = try loss(
            logits: Tensor(zeros: [2, classes]),
            targets: Tensor(shape: [2, classes], repeating: 1 / Float(classes)))
        XCTAssertEqual(result.loss, log(Double(classes)), accuracy: 1e-5)
    }
}
