import Layers
import Tensors
import TestSupport
import XCTest

/// `DistillationDivergence`: weight · KL(q ‖ softmax(z/τ)) and its gradient, against the
/// definition and finite differences.
final class DistillationDivergenceTests: XCTestCase {
    /// A random `[rows, classes]` probability table.
    private func distributions(_ rows: Int, _ classes: Int, seed: UInt64) -> Tensor {
        let raw = normalTensor([rows, classes], seed: seed, standardDeviation: 1)
        let q = Tensor(zeros: [rows, classes])
        DistillationDivergence.softenedDistribution(logits: raw, temperature: 1, into: q)
        return q
    }

    func testValueIsTheWeightedDivergenceAtTheTemperature() {
        let z = normalTensor([2, 5], seed: 1, standardDeviation: 2), q = distributions(2, 5, seed: 2)
        let gradients = Tensor(zeros: [2, 5])
        let value = DistillationDivergence().accumulate(
            logits: z, teacher: q, temperature: 4, weight: 16, gradientRows: 2, into: gradients)
        var expected = 0.0
        for r in 0..<2 {
            let row = (0..<5).map { Double(z[r * 5 + $0]) / 4 }
            let logSum = log(row.map { exp($0) }.reduce(0, +))
            for c in 0..<5 {
                let t = Double(q[r * 5 + c])
                expected += t * (log(t) - (row[c] - logSum))
            }
        }
        XCTAssertEqual(value, 16 * expected / 2, accuracy: 1e-5)
    }

    func testFiniteDifferenceOfTheGradientAtSeveralTemperatures() throws {
        for temperature: Float in [1, 4, 20] {
            let z = normalTensor([3, 6], seed: 3, standardDeviation: 1.5), q = distributions(3, 6, seed: 4)
            let term = DistillationDivergence()
            let gradients = Tensor(zeros: [3, 6])
            _ = term.accumulate(logits: z, teacher: q, temperature: temperature, weight: 2.5, gradientRows: 3, into: gradients)
            let report = try GradientCheck(absoluteTolerance: 1e-4, relativeTolerance: 3e-3)
                .check([GradientCheck.Target(name: "logits τ=\(temperature)", value: z, analytic: gradients.scalars)]) {
                    term.accumulate(
                        logits: z, teacher: q, temperature: temperature, weight: 2.5, gradientRows: 3,
                        into: Tensor(zeros: [3, 6]))
                }
            assertGradientsCorrect(report)
        }
    }

    /// The gradient is added to what the buffer holds (the cross-entropy term's), and averages
    /// over the batch's rows, not the micro-batch's.
    func testGradientAccumulatesAndAveragesOverTheBatchRows() {
        let z = normalTensor([2, 3], seed: 5, standardDeviation: 1), q = distributions(2, 3, seed: 6)
        let alone = Tensor(zeros: [2, 3]), onTop = Tensor(shape: [2, 3], repeating: 1)
        let term = DistillationDivergence()
        _ = term.accumulate(logits: z, teacher: q, temperature: 2, weight: 1, gradientRows: 8, into: alone)
        _ = term.accumulate(logits: z, teacher: q, temperature: 2, weight: 1, gradientRows: 8, into: onTop)
        let soft = Tensor(zeros: [2, 3])
        DistillationDivergence.softenedDistribution(logits: z, temperature: 2, into: soft)
        for i in 0..<6 {
            XCTAssertEqual(alone[i], (soft[i] - q[i]) / 2 / 8, accuracy: 1e-7)
            XCTAssertEqual(onTop[i], 1 + alone[i], accuracy: 1e-6)
        }
    }

    /// Equal distributions cost nothing and push nothing.
    func testMatchingTheTeacherCostsNothing() {
        let z = normalTensor([2, 4], seed: 7, standardDeviation: 3)
        let q = Tensor(zeros: [2, 4])
        DistillationDivergence.softenedDistribution(logits: z, temperature: 3, into: q)
        let gradients = Tensor(zeros: [2, 4])
        let value = DistillationDivergence().accumulate(logits: z, teacher: q, temperature: 3, weight: 9, gradientRows: 2, into: gradients)
        XCTAssertEqual(value, 0, accuracy: 1e-6)
        XCTAssertEqual(gradients.scalars.map(abs).max()!, 0, accuracy: 1e-7)
    }
}
