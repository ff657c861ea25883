import Layers
import Tensors
import TestSupport
import XCTest

/// `y = x ⊙ x · w` with a backward that can be made wrong on purpose, to show the checker fails.
final class PlantedBugLayer: Layer {
    enum Bug { case none, inputGradientScaledBy(Float), parameterGradientOffBy(index: Int, amount: Float), missingFactorTwo }
    let weight = Parameter(shape: [3], initializer: .uniform(bound: 1))
    var computesInputGradient = true
    var bug: Bug
    private var input = Tensor(zeros: [0])
    private var output = Tensor(zeros: [0])

    init(bug: Bug) { self.bug = bug }

    var ownParameters: [(name: String, parameter: Parameter)] { [("weight", weight)] }
    func outputShape(for inputShape: [Int]) throws(ShapeError) -> [Int] { inputShape }

    func forward(_ input: Tensor, mode: Mode) throws(ShapeError) -> Tensor {
        self.input = input
        output = Tensor(zeros: input.shape)
        for i in 0..<input.count { output[i] = input[i] * input[i] * weight.value[i % 3] }
        return output
    }

    func backward(_ outputGradient: Tensor) -> Tensor {
        let dx = Tensor(zeros: input.shape)
        weight.gradient.fill(0)
        for i in 0..<input.count {
            let two: Float
            if case .missingFactorTwo = bug { two = 1 } else { two = 2 }
            dx[i] = outputGradient[i] * two * input[i] * weight.value[i % 3]
            weight.gradient[i % 3] += outputGradient[i] * input[i] * input[i]
        }
        switch bug {
        case .inputGradientScaledBy(let factor): for i in 0..<dx.count { dx[i] *= factor }
        case .parameterGradientOffBy(let index, let amount): weight.gradient[index] += amount
        default: break
        }
        return dx
    }
}

final class GradientCheckTests: XCTestCase {
    private let input = normalTensor([4, 3], seed: 21)

    func testCorrectBackwardPasses() throws {
        let layer = PlantedBugLayer(bug: .none)
        bindParameters(layer)
        let report = try GradientCheck().check(layer: layer, input: input)
        assertGradientsCorrect(report)
        XCTAssertEqual(report.results.map(\.name), ["input", "weight"])
        XCTAssertEqual(report.checked, 15)
        XCTAssertEqual(report.skipped, 0)
        XCTAssertLessThan(report.worstRatio, 0.2, "a correct gradient is well inside the tolerance")
    }

    func testWrongInputGradientsAreCaught() throws {
        for bug in [PlantedBugLayer.Bug.missingFactorTwo, .inputGradientScaledBy(1.05)] {
            let layer = PlantedBugLayer(bug: bug)
            bindParameters(layer)
            let report = try GradientCheck().check(layer: layer, input: input)
            XCTAssertFalse(report.passed, "\(bug) should fail:\n\(report)")
            XCTAssertGreaterThan(report.result("input")!.failed, 0)
            XCTAssertEqual(report.result("weight")!.failed, 0)
        }
    }

    func testAnOffsetInOneParameterCoordinateIsCaughtAndLocated() throws {
        let layer = PlantedBugLayer(bug: .parameterGradientOffBy(index: 2, amount: 0.25))
        bindParameters(layer)
        let report = try GradientCheck().check(layer: layer, input: input)
        XCTAssertFalse(report.passed)
        XCTAssertEqual(report.result("weight")?.failed, 1)
        XCTAssertEqual(report.result("weight")?.worstIndex, 2)
        XCTAssertTrue(report.description.contains("weight [3]"), report.description)
    }

    func testPlantedErrorsInARealLayerAreCaught() throws {
        let layer = Linear(5, 4)
        bindParameters(layer)
        let x = normalTensor([3, 5], seed: 2)
        assertGradientsCorrect(try GradientCheck().check(layer: layer, input: x))
        // 3 % too large everywhere, or one coordinate off: both must fail.
        let scaled = try GradientCheck().check(layer: layer, input: x) { name, gradient in
            if name == "weight" { gradient = gradient.map { $0 * 1.03 } }
        }
        XCTAssertFalse(scaled.passed, "\(scaled)")
        let nudged = try GradientCheck().check(layer: layer, input: x) { name, gradient in
            if name == "bias" { gradient[1] += 0.05 }
        }
        XCTAssertFalse(nudged.passed, "\(nudged)")
        let transposed = try GradientCheck().check(layer: layer, input: x) { name, gradient in
            if name == "input" { gradient.reverse() }
        }
        XCTAssertFalse(transposed.passed, "\(transposed)")
    }

    func testLargeTensorsAreSampledDeterministically() throws {
        let layer = Linear(30, 20)
        bindParameters(layer)
        let x = normalTensor([4, 30], seed: 3)
        let checker = GradientCheck(maxCoordinatesPerTensor: 25)
        let first = try checker.check(layer: layer, input: x)
        let second = try checker.check(layer: layer, input: x)
        assertGradientsCorrect(first)
        XCTAssertEqual(first.results.map(\.checked), [25, 25, 20])
        XCTAssertEqual(first.results.map(\.worstIndex), second.results.map(\.worstIndex))
    }

    func testClosureFormAndValueRestoration() throws {
        // f(a, b) = Σ a_i² b_i in Double: ∂f/∂a = 2ab, ∂f/∂b = a².
        let a = Tensor(shape: [3], values: [0.5, -1, 2]), b = Tensor(shape: [3], values: [3, 0.25, -1])
        let (aBefore, bBefore) = (a.scalars, b.scalars)
        let loss = { (0..<3).reduce(0.0) { $0 + Double(a[$1]) * Double(a[$1]) * Double(b[$1]) } }
        let targets = [
            GradientCheck.Target(name: "a", value: a, analytic: (0..<3).map { 2 * a[$0] * b[$0] }),
            GradientCheck.Target(name: "b", value: b, analytic: (0..<3).map { a[$0] * a[$0] }),
        ]
        assertGradientsCorrect(GradientCheck().check(targets, loss: loss))
        XCTAssertEqual(a.scalars, aBefore)
        XCTAssertEqual(b.scalars, bBefore)
        let wrong = [GradientCheck.Target(name: "a", value: a, analytic: (0..<3).map { a[$0] * b[$0] })]
        XCTAssertFalse(GradientCheck().check(wrong, loss: loss).passed)
    }

    func testKinksAreSkippedNotFailed() throws {
        // |x| at x = 0.001 with ε = 0.01: the step straddles the kink. A correct gradient (sign)
        // is skipped as non-smooth; elsewhere it is checked.
        let x = Tensor(shape: [3], values: [0.001, 0.7, -0.4])
        let loss = { (0..<3).reduce(0.0) { $0 + abs(Double(x[$1])) } }
        let report = GradientCheck(maxSkippedFraction: 0.5)
            .check([GradientCheck.Target(name: "x", value: x, analytic: [1, 1, -1])], loss: loss)
        XCTAssertEqual(report.skipped, 1)
        XCTAssertEqual(report.failed, 0)
        XCTAssertTrue(report.passed)
        XCTAssertFalse(
            GradientCheck().check(
                [GradientCheck.Target(name: "x", value: x, analytic: [1, 1, -1])],
                loss: loss
            ).passed, "one skip in three exceeds the default 10 %")
    }

    func testClosenessNamesTheWorstIndex() {
        let closeness = Closeness([1.0, 2, 3, 4, 5, 6], [1.0, 2, 3, 4, 5.5, 6], absolute: 1e-3, relative: 1e-3, shape: [2, 3])
        XCTAssertFalse(closeness.isClose)
        XCTAssertEqual(closeness.worstIndex, 4)
        XCTAssertEqual(closeness.worstPosition, "[1, 1]")
        XCTAssertEqual(closeness.failures, 1)
        XCTAssertTrue(closeness.description.contains("[1, 1]"))
        XCTAssertTrue(Closeness([1.0, 2], [1.0005, 2], absolute: 1e-3, relative: 0).isClose)
        XCTAssertFalse(Closeness([Float.nan], [1], absolute: 1, relative: 1).isClose)
        XCTAssertFalse(Closeness([Float.infinity], [1], absolute: 1, relative: 1).isClose)
        XCTAssertTrue(Closeness([100.0], [101.0], absolute: 0, relative: 0.01).isClose)
    }
}
