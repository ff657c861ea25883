import Collectives
import XCTest

final class CommunicatorTests: XCTestCase {
    /// A value whose stride (16) is larger than its size (9), like the evaluator's outcomes:
    /// the typed all-gather must step by stride, or every element after the first is garbage.
    private struct Padded: Equatable, BitwiseCopyable {
        var value: Int64
        var flag: Bool
    }

    func testTypedAllGatherRoundTripsValuesWithPadding() throws {
        XCTAssertGreaterThan(MemoryLayout<Padded>.stride, MemoryLayout<Padded>.size)
        let values = [Padded(value: -1, flag: true), Padded(value: 1 << 40, flag: false), Padded(value: 7, flag: true)]
        XCTAssertEqual(try LocalCommunicator().allGatherV(values), values)
        XCTAssertEqual(try LocalCommunicator().allGatherV([Padded]()), [])
    }

    /// One process is the whole job: a mean over one rank leaves values unchanged bit for bit
    /// (no division by the size, which would round), and a sum of one value is that value.
    func testLocalCollectivesAreTheOneRankCase() throws {
        let communicator = LocalCommunicator()
        XCTAssertEqual(communicator.size, 1)
        XCTAssertTrue(communicator.isRoot)
        let original: [Float] = [0.1, -3.7e-20, .greatestFiniteMagnitude, 1 / 3]
        var values = original
        try values.withUnsafeMutableBufferPointer { try communicator.allReduceMean($0) }
        XCTAssertEqual(values.map(\.bitPattern), original.map(\.bitPattern))
        XCTAssertEqual(try communicator.sum(2.5), 2.5)
        var bytes: [UInt8] = [9, 8, 7]
        try bytes.withUnsafeMutableBytes { try communicator.broadcast($0, root: 0) }
        XCTAssertEqual(bytes, [9, 8, 7])
    }

    /// Only a rank of a launched job says so (Progress draws its bar only outside one); the
    /// wrappers answer for the communicator they wrap; MPI is a registered launch backend.
    func testOnlyRanksOfALaunchedJobSayTheyAreLaunched() {
        XCTAssertFalse(LocalCommunicator().isLaunchedRank)
        XCTAssertFalse(MonitoredCommunicator(LocalCommunicator()).isLaunchedRank)
        XCTAssertFalse(TimedCommunicator(LocalCommunicator()).isLaunchedRank)
        XCTAssertTrue(CollectiveBackends.all.contains { ObjectIdentifier($0) == ObjectIdentifier(MPICommunicator.self) })
    }

    /// One process sends itself its whole buffer; a count that does not match is a programming
    /// error, not a silent truncation.
    func testLocalAllToAllCopiesTheBufferToItself() throws {
        let sent: [UInt8] = [1, 2, 3, 4, 5]
        var received = [UInt8](repeating: 0, count: 5)
        try sent.withUnsafeBytes { send in
            try received.withUnsafeMutableBytes { receive in
                try LocalCommunicator().allToAllV(send, sendCounts: [5], into: receive, receiveCounts: [5])
            }
        }
        XCTAssertEqual(received, sent)
    }
}
