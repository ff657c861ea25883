import Tensors
import Training
import XCTest

final class ClassificationMetricsTests: XCTestCase {
    private func outcome(_ index: Int, _ confidence: Double, _ correct: Bool) -> SampleOutcome {
        SampleOutcome(index: index, label: 0, confidence: confidence, negativeLogLikelihood: -log(confidence),
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
        XCTAssertEqual(ClassificationMetrics(outcomes: outcomes, eceBins: 15),
                       ClassificationMetrics(outcomes: shuffled, eceBins: 15))
    }

    func testOutcomesSkipPaddingAndFindTopFive() {
        let probabilities = Tensor(shape: [2, 6], values: [0.05, 0.1, 0.15, 0.2, 0.25, 0.25, 1, 0, 0, 0, 0, 0])
        let outcomes = SampleOutcome.outcomes(probabilities: probabilities, labels: [0, 0], indices: [7, 8],
                                              isPadding: [false, true])
        XCTAssertEqual(outcomes.count, 1)
        XCTAssertEqual(outcomes[0].index, 7)
        XCTAssertFalse(outcomes[0].isCorrect)
        XCTAssertFalse(outcomes[0].isInTopFive)  // class 0 is the least probable of six
        XCTAssertEqual(outcomes[0].confidence, 0.25, accuracy: 1e-7)
    }
}
