import Tensors
import XCTest

/// The largest deviation between two sequences of numbers under an absolute-plus-relative
/// tolerance: element `i` is close when `|actual − expected| ≤ absolute + relative · |expected|`.
public struct Closeness: CustomStringConvertible, Sendable {
    /// The index (row-major) of the element furthest outside its tolerance, or nil when empty.
    public let worstIndex: Int?
    /// `|actual − expected| / (absolute + relative · |expected|)` at `worstIndex`; ≤ 1 means close.
    /// Infinite when a value is NaN or infinite on one side only.
    public let worstRatio: Double
    /// The largest absolute difference over all elements.
    public let maxAbsoluteError: Double
    /// The two values at `worstIndex`.
    public let actual: Double, expected: Double
    /// The number of elements outside their tolerance.
    public let failures: Int
    /// The number of elements compared.
    public let count: Int
    /// The shape used to print `worstIndex` as a multi-index (nil: flat index).
    public var shape: [Int]?

    /// Whether every element is within tolerance.
    public var isClose: Bool { failures == 0 }

    /// `worstIndex` as a multi-index of `shape`, such as `[1, 0, 2, 3]`.
    public var worstPosition: String {
        guard let index = worstIndex else { return "none" }
        guard let shape else { return "[\(index)]" }
        return Closeness.position(of: index, in: shape)
    }

    public var description: String {
        "\(failures) of \(count) elements differ; worst at \(worstPosition): actual \(actual) vs expected \(expected) "
            + "(ratio to tolerance \(worstRatio)); max |error| \(maxAbsoluteError)"
    }

    /// Compares `actual` with `expected` element by element.
    public init(_ actual: [Double], _ expected: [Double], absolute: Double, relative: Double, shape: [Int]? = nil) {
        precondition(actual.count == expected.count, "Closeness needs equal counts, got \(actual.count) and \(expected.count)")
        var worst: Int? = nil, worstRatio = -1.0, maxError = 0.0, failures = 0
        for i in actual.indices {
            let (a, e) = (actual[i], expected[i])
            let ratio: Double
            if a == e {
                ratio = 0  // also equal infinities
            } else if !a.isFinite || !e.isFinite {
                ratio = .infinity
            } else {
                let error = abs(a - e)
                maxError = max(maxError, error)
                let tolerance = absolute + relative * abs(e)
                ratio = tolerance > 0 ? error / tolerance : .infinity
            }
            if ratio > 1 { failures += 1 }
            if ratio > worstRatio { (worst, worstRatio) = (i, ratio) }
        }
        self.worstIndex = worst
        self.worstRatio = max(worstRatio, 0)
        self.maxAbsoluteError = maxError
        self.actual = worst.map { actual[$0] } ?? 0
        self.expected = worst.map { expected[$0] } ?? 0
        self.failures = failures
        self.count = actual.count
        self.shape = shape
    }

    /// Compares two `Float` arrays.
    public init(_ actual: [Float], _ expected: [Float], absolute: Double, relative: Double, shape: [Int]? = nil) {
        self.init(actual.map(Double.init), expected.map(Double.init), absolute: absolute, relative: relative, shape: shape)
    }
}

/// Asserts that two tensors have the same shape and elements within `absolute + relative·|expected|`;
/// the failure message names the worst element by its multi-index.
public func assertClose(
    _ actual: Tensor, _ expected: Tensor, absolute: Double = 1e-5, relative: Double = 1e-5,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    guard actual.shape == expected.shape else {
        XCTFail("shapes differ: actual \(actual.shape) vs expected \(expected.shape). \(message())", file: file, line: line)
        return
    }
    let closeness = Closeness(actual.scalars, expected.scalars, absolute: absolute, relative: relative, shape: actual.shape)
    if !closeness.isClose {
        XCTFail("\(closeness). \(message())", file: file, line: line)
    }
}

/// Asserts that a tensor's elements equal `expected` (row-major) within tolerance.
public func assertClose(
    _ actual: Tensor, _ expected: [Float], absolute: Double = 1e-5, relative: Double = 1e-5,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    guard actual.count == expected.count else {
        XCTFail(
            "counts differ: actual \(actual.shape) has \(actual.count) elements, expected \(expected.count). \(message())",
            file: file, line: line)
        return
    }
    let closeness = Closeness(actual.scalars, expected, absolute: absolute, relative: relative, shape: actual.shape)
    if !closeness.isClose {
        XCTFail("\(closeness). \(message())", file: file, line: line)
    }
}

/// Asserts that two `Float` arrays are elementwise close.
public func assertClose(
    _ actual: [Float], _ expected: [Float], absolute: Double = 1e-5, relative: Double = 1e-5,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    assertClose(
        actual.map(Double.init), expected.map(Double.init), absolute: absolute, relative: relative,
        message(), file: file, line: line)
}

/// Asserts that two `Double` arrays are elementwise close.
public func assertClose(
    _ actual: [Double], _ expected: [Double], absolute: Double = 1e-12, relative: Double = 1e-12,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    guard actual.count == expected.count else {
        XCTFail("counts differ: \(actual.count) vs expected \(expected.count). \(message())", file: file, line: line)
        return
    }
    let closeness = Closeness(actual, expected, absolute: absolute, relative: relative)
    if !closeness.isClose {
        XCTFail("\(closeness). \(message())", file: file, line: line)
    }
}

/// Asserts that two scalars are close.
public func assertClose(
    _ actual: Double, _ expected: Double, absolute: Double = 1e-12, relative: Double = 1e-12,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    let closeness = Closeness([actual], [expected], absolute: absolute, relative: relative)
    if !closeness.isClose {
        XCTFail(
            "\(actual) is not close to \(expected) (|error| \(abs(actual - expected)), tolerance "
                + "\(absolute) + \(relative)·|expected|). \(message())", file: file, line: line)
    }
}

/// Asserts that `body` throws a `ShapeError` whose message contains every string of `fragments`
/// (typically the shapes involved, such as `"[2, 5]"`). Returns the error.
@discardableResult
public func assertShapeError<T>(
    containing fragments: [String], file: StaticString = #filePath, line: UInt = #line,
    _ body: () throws(ShapeError) -> T
) -> ShapeError? {
    do {
        let result = try body()
        XCTFail("expected a ShapeError containing \(fragments), got a result: \(result)", file: file, line: line)
        return nil
    } catch {
        for fragment in fragments where !error.message.contains(fragment) {
            XCTFail("ShapeError message \"\(error.message)\" does not contain \"\(fragment)\"", file: file, line: line)
        }
        return error
    }
}

/// A tensor of `shape` filled from a seeded generator: uniform in `range`, or normal when
/// `standardDeviation` is given.
public func randomTensor(_ shape: [Int], seed: UInt64, in range: ClosedRange<Float> = -1...1) -> Tensor {
    var generator = RandomGenerator(seed: seed)
    let tensor = Tensor(zeros: shape)
    for i in 0..<tensor.count {
        tensor[i] = range.lowerBound + (range.upperBound - range.lowerBound) * generator.nextUniform()
    }
    return tensor
}

/// A tensor of `shape` with normal entries of the given mean and standard deviation.
public func normalTensor(_ shape: [Int], seed: UInt64, mean: Float = 0, standardDeviation: Float = 1) -> Tensor {
    var generator = RandomGenerator(seed: seed)
    let tensor = Tensor(zeros: shape)
    for i in 0..<tensor.count { tensor[i] = mean + standardDeviation * generator.nextNormal() }
    return tensor
}
