import Collectives
import TestSupport
import XCTest

final class CommunicatorTests: XCTestCase {
    func testLocalCommunicatorIsIdentity() throws {
        let communicator = LocalCommunicator()
        var values: [Float] = [1, 2, 3]
        try values.withUnsafeMutableBufferPointer { try communicator.allReduceMean($0) }
        XCTAssertEqual(values, [1, 2, 3])
        XCTAssertEqual(try communicator.allGatherV([UInt64(7), 9]), [7, 9])
        XCTAssertEqual(try [UInt8(1), 2].withUnsafeBytes { try communicator.allGather($0) }, [1, 2])
        XCTAssertEqual(try communicator.sum(2.5), 2.5)
        XCTAssertTrue(communicator.isRoot)
    }

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
