/// A communicator that tells a `ProgressBeacon` when this rank is inside a collective, so the
/// stall watchdog can tell a rank that waits for the others from the rank they wait for.
public final class MonitoredCommunicator: Communicator {
    public let base: any Communicator
    private let beacon: ProgressBeacon

    public init(_ base: any Communicator, beacon: ProgressBeacon = .shared) {
        (self.base, self.beacon) = (base, beacon)
    }

    public var rank: Int { base.rank }
    public var size: Int { base.size }
    public var isLaunchedRank: Bool { base.isLaunchedRank }

    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ operation: ReduceOperation) throws {
        try beacon.during(.allReduce) { try base.allReduce(buffer, operation) }
    }

    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Double>, _ operation: ReduceOperation) throws {
        try beacon.during(.allReduce) { try base.allReduce(buffer, operation) }
    }

    public func allGather(_ bytes: UnsafeRawBufferPointer) throws -> [UInt8] {
        try beacon.during(.allGather) { try base.allGather(bytes) }
    }

    public func allGatherV(_ bytes: UnsafeRawBufferPointer) throws -> [UInt8] {
        try beacon.during(.allGather) { try base.allGatherV(bytes) }
    }

    public func allToAllV(
        _ send: UnsafeRawBufferPointer, sendCounts: [Int],
        into receive: UnsafeMutableRawBufferPointer, receiveCounts: [Int]
    ) throws {
        try beacon.during(.allToAll) { try base.allToAllV(send, sendCounts: sendCounts, into: receive, receiveCounts: receiveCounts) }
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {
        try beacon.during(.broadcast) { try base.broadcast(buffer, root: root) }
    }

    public func barrier() throws { try beacon.during(.barrier) { try base.barrier() } }

    public func abort(_ message: String, code: Int32) -> Never { base.abort(message, code: code) }
}
