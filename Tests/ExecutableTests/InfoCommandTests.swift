import TestSupport
import XCTest

/// `pskd info` under mpirun (moved from CollectivesTests/CommunicatorTests.swift, which now
/// holds only in-process tests).
final class InfoCommandTests: XCTestCase {
    /// `pskd info` under mpirun: every rank initialises MPI, reports, and the job exits cleanly.
    func testInfoRunsOnEveryRank() throws {
        let outcome = try ExecutableRunner.mpirun(ranks: 2, ["info"], timeout: 120)
        XCTAssertEqual(outcome.status, 0, outcome.output)
        XCTAssertTrue(outcome.output.contains("Open MPI:   Open MPI v"), outcome.output)
        XCTAssertTrue(outcome.output.contains("OpenBLAS:   OpenBLAS"), outcome.output)
        XCTAssertTrue(outcome.output.contains("rank 0/2"), outcome.output)
        XCTAssertTrue(outcome.output.contains("rank 1/2"), outcome.output)
    }
}
