import Layers
import Tensors
import XCTest

/// A finite-difference gradient checker.
///
/// It compares analytic gradients with central differences `(L(v + ε) − L(v − ε)) / 2ε` of a
/// scalar loss computed in `Double`. For a layer, the loss is `Σ R ⊙ forward(x)` for a fixed
/// random projection `R` of the output, so `backward(R)` must return ∂L/∂x and write ∂L/∂θ.
/// Every coordinate of a small tensor is checked; for a large one a fixed random subset
/// (always including the first and last element).
///
/// A coordinate passes when `|analytic − numeric| ≤ absolute + relative · max(|analytic|, |numeric|)`.
/// When it does not, the difference is re-taken with ε/2 and ε/4: if those two agree, the loss
/// is smooth within ε/2 and the ε/4 difference decides; if they disagree, a kink (ReLU,
/// max-pool) lies inside the step and the coordinate is counted as skipped instead of failed.
/// A wrong gradient gives consistent differences that disagree with it, so it fails. A report passes when no coordinate failed and at most `maxSkippedFraction`
/// were skipped.
public struct GradientCheck: Sendable {
    /// A tensor whose gradient is checked: its live values (perturbed in place and restored)
    /// and the analytic gradient computed before the check.
    public struct Target {
        public let name: String
        public let value: Tensor
        public let analytic: [Float]
        public init(name: String, value: Tensor, analytic: [Float]) {
            precondition(
                value.count == analytic.count,
                "gradient of \(name) has \(analytic.count) elements for a value of shape \(value.shape)")
            self.name = name
            self.value = value
            self.analytic = analytic
        }
    }

    /// The outcome for one target.
    public struct TargetResult: CustomStringConvertible, Sendable {
        public let name: String
        public let shape: [Int]
        /// Coordinates compared (including skipped ones).
        public let checked: Int
        /// Coordinates where the loss was not smooth within the step.
        public let skipped: Int
        /// Coordinates outside tolerance.
        public let failed: Int
        /// The coordinate with the largest error-to-tolerance ratio among those not skipped.
        public let worstIndex: Int?
        public let worstAnalytic: Double, worstNumeric: Double
        /// Largest `|analytic − numeric| / tolerance` among coordinates not skipped (≤ 1 passes).
        public let worstRatio: Double
        /// Largest `|analytic − numeric|` among coordinates not skipped.
        public let maxAbsoluteError: Double

        public var description: String {
            let position = worstIndex.map { Closeness.position(of: $0, in: shape) } ?? "none"
            return "\(name) \(shape): \(failed) failed, \(skipped) skipped of \(checked); worst at \(position): "
                + "analytic \(worstAnalytic) vs numeric \(worstNumeric) (ratio \(worstRatio), |error| \(maxAbsoluteError))"
        }
    }

    /// The outcome for every target.
    public struct Report: CustomStringConvertible, Sendable {
        public let results: [TargetResult]
        public let maxSkippedFraction: Double

        public var checked: Int { results.reduce(0) { $0 + $1.checked } }
        public var skipped: Int { results.reduce(0) { $0 + $1.skipped } }
        public var failed: Int { results.reduce(0) { $0 + $1.failed } }
        /// The largest error-to-tolerance ratio over all targets (≤ 1 passes).
        public var worstRatio: Double { results.map(\.worstRatio).max() ?? 0 }
        /// The largest absolute error over all targets.
        public var maxAbsoluteError: Double { results.map(\.maxAbsoluteError).max() ?? 0 }
        /// The result of the target called `name`.
        public func result(_ name: String) -> TargetResult? { results.first { $0.name == name } }

        /// No failure, few skips and at least one coordinate checked.
        public var passed: Bool {
            checked > 0 && failed == 0 && Double(skipped) <= maxSkippedFraction * Double(checked)
        }

        public var description: String {
            "gradient check \(passed ? "passed" : "FAILED") (\(failed) failed, \(skipped) skipped of \(checked); "
                + "worst ratio \(worstRatio)):\n" + results.map { "  \($0)" }.joined(separator: "\n")
        }
    }

    /// The central-difference step, in the units of the values.
    public var epsilon: Float
    public var absoluteTolerance: Double
    public var relativeTolerance: Double
    /// Tensors with more elements are checked on this many coordinates.
    public var maxCoordinatesPerTensor: Int
    /// The largest fraction of non-smooth (skipped) coordinates a passing report may have.
    public var maxSkippedFraction: Double
    /// Seeds the output projection and the coordinate subsets.
    public var seed: UInt64

    public init(
        epsilon: Float = 1e-2, absoluteTolerance: Double = 1e-3, relativeTolerance: Double = 5e-3,
        maxCoordinatesPerTensor: Int = 40, maxSkippedFraction: Double = 0.1, seed: UInt64 = 0x5EED
    ) {
        self.epsilon = epsilon
        self.absoluteTolerance = absoluteTolerance
        self.relativeTolerance = relativeTolerance
        self.maxCoordinatesPerTensor = maxCoordinatesPerTensor
        self.maxSkippedFraction = maxSkippedFraction
        self.seed = seed
    }

    // MARK: - Closure form

    /// Checks every target's analytic gradient against central differences of `loss`, which
    /// must read the targets' current values. Values are restored exactly afterwards.
    public func check(_ targets: [Target], loss: () throws -> Double) rethrows -> Report {
        var generator = RandomGenerator(seed: seed).split(2)
        var results: [TargetResult] = []
        for target in targets {
            let indices = coordinates(count: target.value.count, using: &generator)
            var skipped = 0, failed = 0, worstRatio = 0.0, maxError = 0.0
            var worst: (index: Int, analytic: Double, numeric: Double)? = nil
            for index in indices {
                let analytic = Double(target.analytic[index])
                let numeric = try difference(target.value, index, epsilon, loss)
                var ratio = self.ratio(analytic, numeric)
                var used = numeric
                if ratio > 1 {
                    // Either the gradient is wrong or a kink lies within ε. Closer steps tell:
                    // if ε/2 and ε/4 agree the loss is smooth there and ε/4 is the judge.
                    let half = try difference(target.value, index, epsilon / 2, loss)
                    let quarter = try difference(target.value, index, epsilon / 4, loss)
                    guard self.ratio(half, quarter) <= 1 else {
                        skipped += 1
                        continue
                    }
                    (ratio, used) = (self.ratio(analytic, quarter), quarter)
                }
                if ratio > 1 { failed += 1 }
                maxError = max(maxError, abs(analytic - used))
                if worst == nil || ratio > worstRatio {
                    worstRatio = ratio
                    worst = (index, analytic, used)
                }
            }
            results.append(
                TargetResult(
                    name: target.name, shape: target.value.shape, checked: indices.count, skipped: skipped,
                    failed: failed, worstIndex: worst?.index, worstAnalytic: worst?.analytic ?? 0,
                    worstNumeric: worst?.numeric ?? 0, worstRatio: worstRatio, maxAbsoluteError: maxError))
        }
        return Report(results: results, maxSkippedFraction: maxSkippedFraction)
    }

    // MARK: - Layer form

    /// Checks `layer`'s input gradient (when `checkInput` and the layer computes it) and every
    /// parameter gradient from `namedParameters()`, in training mode, for the loss
    /// `Σ R ⊙ forward(input)` with a fixed normal projection `R`. The analytic gradients come
    /// from the second of two forward/backward passes (the first with another projection, its
    /// parameter gradients zeroed in between as an optimiser step would), so stale workspace
    /// contents are caught too.
    ///
    /// Bind the layer first (`ParameterStore(root: layer, generator: …)`), so its parameters
    /// have initialised values and gradient views. `adjustAnalytic` may alter the analytic
    /// gradients before the comparison (the checker's own tests use it to plant an error).
    public func check(
        layer: any Layer, input: Tensor, checkInput: Bool = true,
        adjustAnalytic: ((_ name: String, _ gradient: inout [Float]) -> Void)? = nil
    ) throws -> Report {
        let projection = try self.projection(for: layer, input: input)
        let outputShape = try layer.outputShape(for: input.shape)
        // A first pass with another projection leaves every workspace dirty, so a backward that
        // accumulates into a buffer it forgot to clear fails the check.
        var generator = RandomGenerator(seed: seed).split(3)
        _ = try layer.forward(input, mode: .training)
        _ = layer.backward(Tensor(shape: outputShape, values: projection.map { _ in generator.nextNormal() }))
        // The analytic pass, into zeroed parameter gradients (backward adds to them).
        layer.zeroParameterGradients()
        _ = try layer.forward(input, mode: .training)
        let inputGradient = layer.backward(Tensor(shape: outputShape, values: projection)).scalars
        var targets: [Target] = []
        if checkInput && layer.computesInputGradient {
            var gradient = inputGradient
            adjustAnalytic?("input", &gradient)
            targets.append(Target(name: "input", value: input, analytic: gradient))
        }
        for (name, parameter) in layer.namedParameters() {
            var gradient = parameter.gradient.scalars
            adjustAnalytic?(name, &gradient)
            targets.append(Target(name: name, value: parameter.value, analytic: gradient))
        }
        return try check(targets) { try projectedLoss(layer, input, projection) }
    }

    /// The fixed projection `R` of `layer`'s output for `input`: standard normal entries.
    public func projection(for layer: any Layer, input: Tensor) throws -> [Float] {
        let count = Tensor.elementCount(try layer.outputShape(for: input.shape))
        var generator = RandomGenerator(seed: seed).split(1)
        return (0..<count).map { _ in generator.nextNormal() }
    }

    /// `Σ R ⊙ forward(input)` in `Double`, in training mode.
    public func projectedLoss(_ layer: any Layer, _ input: Tensor, _ projection: [Float]) throws -> Double {
        let output = try layer.forward(input, mode: .training)
        precondition(output.count == projection.count)
        var sum = 0.0
        for i in 0..<output.count { sum += Double(projection[i]) * Double(output[i]) }
        return sum
    }

    // MARK: - Pieces

    private func ratio(_ a: Double, _ b: Double) -> Double {
        let tolerance = absoluteTolerance + relativeTolerance * max(abs(a), abs(b))
        let error = abs(a - b)
        return error.isNaN ? .infinity : error / tolerance
    }

    /// The central difference of `loss` in coordinate `index` of `value`, restoring the value.
    private func difference(
        _ value: Tensor, _ index: Int, _ step: Float,
        _ loss: () throws -> Double
    ) rethrows -> Double {
        let original = value[index]
        let plus = original + step, minus = original - step
        defer { value[index] = original }
        value[index] = plus
        let lossPlus = try loss()
        value[index] = minus
        let lossMinus = try loss()
        return (lossPlus - lossMinus) / (Double(plus) - Double(minus))
    }

    /// Every index when `count` is small; otherwise the first, the last and a random subset.
    private func coordinates(count: Int, using generator: inout RandomGenerator) -> [Int] {
        guard count > maxCoordinatesPerTensor else { return Array(0..<count) }
        var chosen: Set<Int> = [0, count - 1]
        while chosen.count < maxCoordinatesPerTensor { chosen.insert(generator.nextIndex(below: count)) }
        return chosen.sorted()
    }
}

extension Closeness {
    /// `index` as a multi-index of `shape` (`[i]` when the shape does not fit).
    public static func position(of index: Int, in shape: [Int]) -> String {
        guard !shape.isEmpty, index < Tensor.elementCount(shape) else { return "[\(index)]" }
        var rest = index
        var position = [Int](repeating: 0, count: shape.count)
        for axis in shape.indices.reversed() {
            position[axis] = rest % max(shape[axis], 1)
            rest /= max(shape[axis], 1)
        }
        return "\(position)"
    }
}

/// Binds `layer`'s parameters to a fresh `ParameterStore` initialised from `seed`, as a model
/// would, and returns the store.
@discardableResult
public func bindParameters(_ layer: any Layer, seed: UInt64 = 7) -> ParameterStore {
    ParameterStore(root: layer, generator: RandomGenerator(seed: seed))
}

/// Asserts that a gradient check passed, printing the per-tensor report otherwise.
public func assertGradientsCorrect(
    _ report: GradientCheck.Report, _ message: @autoclosure () -> String = "",
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertTrue(report.passed, "\(message())\n\(report)", file: file, line: line)
}

/// Runs `checker` on `layer` (bind its parameters first)
/// and asserts that every gradient is correct; returns the report.
@discardableResult
public func assertLayerGradients(
    _ layer: any Layer, input: Tensor, checker: GradientCheck = GradientCheck(), checkInput: Bool = true,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) -> GradientCheck.Report? {
    do {
        let report = try checker.check(layer: layer, input: input, checkInput: checkInput)
        assertGradientsCorrect(report, message(), file: file, line: line)
        if ProcessInfo.processInfo.environment["PSKD_GRADIENT_CHECK_VERBOSE"] != nil {
            print("\(file):\(line) \(message())\n\(report)")
        }
        return report
    } catch {
        XCTFail("gradient check threw \(error). \(message())", file: file, line: line)
        return nil
    }
}
