import Layers
import Tensors
import TestSupport
import Training
import XCTest

final class ClassificationMetricsTests: XCTestCase {
    private func outcome(_ index: Int, _ confidence: Double, _ correct: Bool) -> SampleOutcome {
        SampleOutcome(
            index: index, label: 0, confidence: confidence, negativeLogLikelihood: -log(confidence),
            isCorrect: correct, isInTopFive: true)
    }

    /// Hand-computed: confidences 0.9 ✓, 0.8 ✗, 0.6 ✓, 0.3 ✗ with 2 bins (0, 0.5], (0.5, 1].
    func testAgainstHandComputedValues() {
        let outcomes = [outcome(0, 0.9, true), outcome(1, 0.8, false), outcome(2, 0.6, true), outcome(3, 0.3, false)]
        let m = ClassificationMetrics(outcomes: outcomes, eceBins: 2)
        XCTAssertEqual(m.top1Error, 50)
        // bin 1: 3 samples, accuracy 2/3, confidence 2.3/3; bin 0: 1 sample, accuracy 0, confidence 0.3
        let ece = 100 * (0.75 * abs(2.0 / 3 - 2.3 / 3) + 0.25 * 0.3)
        XCTAssertEqual(m.expectedCalibrationError, ece, accuracy: 1e-9)
        // risks: 0/1, 1/2, 1/3, 2/4 → AURC = (0 + 0.5 + 1/3 + 0.5) / 4
        XCTAssertEqual(m.aurc, 1000 * (0.5 + 1.0 / 3 + 0.5) / 4, accuracy: 1e-9)
        // optimal with 2 errors of 4: (1/3 + 2/4) / 4
        XCTAssertEqual(m.excessAURC, m.aurc - 1000 * (1.0 / 3 + 0.5) / 4, accuracy: 1e-9)
        XCTAssertEqual(m.negativeLogLikelihood, -(log(0.9) + log(0.8) + log(0.6) + log(0.3)) / 4, accuracy: 1e-12)
    }

    /// The metrics depend on the set of outcomes only, so ranks gathering in any order agree.
    func testOrderIndependence() {
        var generator = RandomGenerator(seed: 3)
        let outcomes = (0..<500).map { i in
            outcome(i, Double(Int(generator.nextUniformDouble() * 20)) / 20 + 0.01, generator.nextUniform() < 0.7)
        }
        var shuffled = outcomes
        shuffled.shuffle(using: &generator)
        XCTAssertEqual(
            ClassificationMetrics(outcomes: outcomes, eceBins: 15),
            ClassificationMetrics(outcomes: shuffled, eceBins: 15))
    }

    func testOutcomesSkipPaddingAndFindTopFive() {
        let probabilities: [Float] = [0.05, 0.1, 0.15, 0.2, 0.25, 0.25, 1, 0, 0, 0, 0, 0]
        let logits = Tensor(shape: [2, 6], values: probabilities.map { log(max($0, 1e-6)) })
        let outcomes = SampleOutcome.outcomes(logits: logits, labels: [0, 0], indices: [7, 8], isPadding: [false, true])
        XCTAssertEqual(outcomes.count, 1)
        XCTAssertEqual(outcomes[0].index, 7)
        XCTAssertFalse(outcomes[0].isCorrect)
        XCTAssertFalse(outcomes[0].isInTopFive)  // class 0 is the least probable of six
        XCTAssertEqual(outcomes[0].confidence, 0.25, accuracy: 1e-7)
        XCTAssertEqual(outcomes[0].negativeLogLikelihood, -log(0.05), accuracy: 1e-6)
    }

    /// p(label) = e^−200: the NLL is 200, where the former −log(max(p, 1e-30)) capped it at 69.
    func testConfidentlyWrongSampleHasItsExactNegativeLogLikelihood() {
        let logits = Tensor(shape: [1, 2], values: [0, 200])
        let outcome = SampleOutcome.outcomes(logits: logits, labels: [0], indices: [0], isPadding: [false])[0]
        XCTAssertEqual(outcome.negativeLogLikelihood, 200, accuracy: 1e-3)
        XCTAssertFalse(outcome.isCorrect)
        XCTAssertEqual(outcome.confidence, 1, accuracy: 1e-12)
        let metrics = ClassificationMetrics(outcomes: [outcome], eceBins: 10)
        XCTAssertEqual(metrics.negativeLogLikelihood, 200, accuracy: 1e-3)
    }

    /// Where p(label) is not tiny, the NLL is −log of the float softmax, as before.
    func testNegativeLogLikelihoodAgreesWithTheProbabilityFormula() throws {
        let (rows, classes) = (64, 10)
        let logits = normalTensor([rows, classes], seed: 3, standardDeviation: 3)
        let labels = (0..<rows).map { $0 % classes }
        let probabilities = try SoftmaxCrossEntropy()(logits: logits, targets: SoftmaxCrossEntropy.oneHot(labels, classes: classes))
            .probabilities
        let outcomes = SampleOutcome.outcomes(
            logits: logits, labels: labels, indices: Array(0..<rows),
            isPadding: Array(repeating: false, count: rows))
        for (row, outcome) in outcomes.enumerated() {
            let p = Double(probabilities[row * classes + labels[row]])
            XCTAssertEqual(outcome.negativeLogLikelihood, -log(max(p, 1e-30)), accuracy: 1e-5 * max(1, -log(p)), "row \(row)")
            let top = (0..<classes).map { Double(probabilities[row * classes + $0]) }.max()!
            XCTAssertEqual(outcome.confidence, top, accuracy: 1e-6, "row \(row)")
        }
    }
}
