import Platform

/// A communicator that forwards to another and adds up the wall-clock time spent in each kind
/// of collective, to measure communication's share of a step.
public final class TimedCommunicator: Communicator {
    public let base: any Communicator
    /// Seconds spent in all-reduce, all-gather, all-to-all and broadcast/barrier calls so far.
    public private(set) var allReduceSeconds = 0.0, allGatherSeconds = 0.0, allToAllSeconds = 0.0, otherSeconds = 0.0

    public init(_ base: any Communicator) { self.base = base }

    public var rank: Int { base.rank }
    public var size: Int { base.size }
    public var isLaunchedRank: Bool { base.isLaunchedRank }
    /// All seconds spent communicating.
    public var totalSeconds: Double { allReduceSeconds + allGatherSeconds + allToAllSeconds + otherSeconds }

    /// Sets every counter back to zero.
    public func reset() { (allReduceSeconds, allGatherSeconds, allToAllSeconds, otherSeconds) = (0, 0, 0, 0) }

    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ operation: ReduceOperation) throws {
        try timed(&allReduceSeconds) { try base.allReduce(buffer, operation) }
    }

    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Double>, _ operation: ReduceOperation) throws {
        try timed(&allReduceSeconds) { try base.allReduce(buffer, operation) }
    }

    public func allGather(_ bytes: UnsafeRawBufferPointer) throws -> [UInt8] {
        try timed(&allGatherSeconds) { try base.allGather(bytes) }
    }

    public func allGatherV(_ bytes: UnsafeRawBufferPointer) throws -> [UInt8] {
        try timed(&allGatherSeconds) { try base.allGatherV(bytes) }
    }

    public func allToAllV(
        _ send: UnsafeRawBufferPointer, sendCounts: [Int],
        into receive: UnsafeMutableRawBufferPointer, receiveCounts: [Int]
    ) throws {
        try timed(&allToAllSeconds) { try base.allToAllV(send, sendCounts: sendCounts, into: receive, receiveCounts: receiveCounts) }
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {
        try timed(&otherSeconds) { try base.broadcast(buffer, root: root) }
    }

    public func barrier() throws { try timed(&otherSeconds) { try base.barrier() } }

    public func abort(_ message: String, code: Int32) -> Never { base.abort(message, code: code) }

    private func timed<Result>(_ counter: inout Double, _ body: () throws -> Result) rethrows -> Result {
        let stopwatch = Stopwatch()
        defer { counter += stopwatch.elapsedSeconds }
        return try body()
    }
}
