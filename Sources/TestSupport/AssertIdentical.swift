import Tensors
import XCTest

/// Asserts that two `Float` arrays are the same bit for bit (NaNs included), naming how many
/// elements differ and the first of them instead of printing both arrays.
public func assertBitIdentical(
    _ actual: [Float], _ expected: [Float], _ message: @autoclosure () -> String = "",
    file: StaticString = #filePath, line: UInt = #line
) {
    guard actual.count == expected.count else {
        XCTFail("counts differ: \(actual.count) vs expected \(expected.count). \(message())", file: file, line: line)
        return
    }
    let differing = actual.indices.filter { actual[$0].bitPattern != expected[$0].bitPattern }
    guard let first = differing.first else { return }
    XCTFail(
        "\(differing.count) of \(actual.count) elements differ; first at \(first): \(actual[first]) vs "
            + "expected \(expected[first]) (difference \(actual[first] - expected[first])). \(message())",
        file: file, line: line)
}

/// Asserts that two tensors have the same shape and the same elements bit for bit.
public func assertBitIdentical(
    _ actual: Tensor, _ expected: Tensor, _ message: @autoclosure () -> String = "",
    file: StaticString = #filePath, line: UInt = #line
) {
    guard actual.shape == expected.shape else {
        XCTFail("shapes differ: \(actual.shape) vs expected \(expected.shape). \(message())", file: file, line: line)
        return
    }
    assertBitIdentical(actual.scalars, expected.scalars, message(), file: file, line: line)
}

/// Runs `body` once for each worker count (`Parallel.workers`), restoring the count afterwards,
/// and returns the results in order: for tests that a computation does not depend on threads.
public func withEachWorkerCount<Result>(_ counts: [Int] = [1, 2, 3], _ body: (Int) throws -> Result) rethrows -> [Result] {
    let saved = Parallel.workers
    defer { Parallel.workers = saved }
    return try counts.map { count in
        Parallel.workers = count
        return try body(count)
    }
}
