import Platform

/// A reduction applied elementwise across ranks.
public enum ReduceOperation: Sendable {
    case sum, max, min
}

/// The collectives pskd needs, over MPI between processes or within one process.
/// Every rank must call each collective in the same order with matching sizes.
///
/// Code that trains or evaluates takes `any Communicator`, so it runs unchanged under `mpirun`
/// (`MPICommunicator`) and in a test or a single process (`LocalCommunicator`):
///
/// ```swift
/// let communicator: any Communicator = try CollectiveBackends.launched?.init() ?? LocalCommunicator()
/// try gradients.withUnsafeMutableBufferPointer { try communicator.allReduceMean($0) }
/// let correct = try communicator.sum(Double(localCorrect))
/// if communicator.isRoot { print("accuracy \(correct / Double(testCount))") }
/// ```
///
/// Methods throw the transport's error, a `CollectiveError` (`MPIError` for MPI); a rank that
/// cannot go on calls `abort(_:code:)` so that no other rank is left waiting in a collective.
/// Code above Collectives names no transport: it sees this protocol, `CollectiveError` and
/// `CollectiveBackends` (the registered launch backends) only.
public protocol Communicator: AnyObject {
    /// This process's rank, 0 ..< size.
    var rank: Int { get }
    /// The number of ranks.
    var size: Int { get }
    /// Whether this process is one rank of a job a launcher started (mpirun, srun), even a
    /// one-rank job: its standard output is then the launcher's forwarding (under mpirun a
    /// pseudo-terminal even when mpirun's own output is a file). False for a process on its own.
    var isLaunchedRank: Bool { get }
    /// Reduces `buffer` elementwise across ranks, in place; every rank gets the result.
    func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ operation: ReduceOperation) throws
    /// Reduces `buffer` elementwise across ranks, in place; every rank gets the result.
    func allReduce(_ buffer: UnsafeMutableBufferPointer<Double>, _ operation: ReduceOperation) throws
    /// Concatenates every rank's `bytes` in rank order; every rank sends the same amount
    /// (one collective call: the cheap path for per-step exchanges).
    func allGather(_ bytes: UnsafeRawBufferPointer) throws -> [UInt8]
    /// Concatenates every rank's `bytes` in rank order; ranks may send different amounts.
    /// Sizes are 64-bit: large tables are gathered in pieces.
    func allGatherV(_ bytes: UnsafeRawBufferPointer) throws -> [UInt8]
    /// Sends each rank its own part of `send` and receives every rank's part for this rank:
    /// `send` holds `sendCounts[r]` bytes for rank r, parts in rank order; `receive` gets
    /// `receiveCounts[r]` bytes from rank r, parts in rank order. Every rank must pass receive
    /// counts equal to what the senders send it (pskd's callers compute both sides from the same
    /// plan, so no counts are exchanged). Counts are 64-bit: large parts go in rounds.
    func allToAllV(
        _ send: UnsafeRawBufferPointer, sendCounts: [Int],
        into receive: UnsafeMutableRawBufferPointer, receiveCounts: [Int]) throws
    /// Copies `root`'s bytes into every rank's `buffer`.
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws
    /// Returns once every rank has called it.
    func barrier() throws
    /// Ends every rank of the job with `code` after printing `message` (prefixed by the rank).
    func abort(_ message: String, code: Int32) -> Never
}

extension Communicator {
    /// Whether this is rank 0, the rank that logs and writes shared files.
    public var isRoot: Bool { rank == 0 }

    /// Averages `buffer` across ranks in place.
    public func allReduceMean(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        try allReduce(buffer, .sum)
        if size > 1 {
            let scale = 1 / Float(size)
            for i in buffer.indices { buffer[i] *= scale }
        }
    }

    /// Every rank's `values` concatenated in rank order.
    public func allGatherV<Element: BitwiseCopyable>(_ values: [Element]) throws -> [Element] {
        let bytes = try values.withUnsafeBytes { try allGatherV($0) }
        let stride = MemoryLayout<Element>.stride
        return bytes.withUnsafeBytes { raw in
            (0..<(bytes.count / stride)).map { raw.loadUnaligned(fromByteOffset: $0 * stride, as: Element.self) }
        }
    }

    /// The sum across ranks of one value.
    public func sum(_ value: Double) throws -> Double {
        var copy = value
        try withUnsafeMutablePointer(to: &copy) { try allReduce(UnsafeMutableBufferPointer(start: $0, count: 1), .sum) }
        return copy
    }
}

/// The error a collective throws when its transport fails (`MPIError` for MPI). Callers that
/// wrap their own failures in an error of their own let these through unchanged: the transport's
/// message names the failed call, and every rank must see the same kind of failure.
public protocol CollectiveError: Error, CustomStringConvertible {}

/// A transport that a launcher starts several ranks of: one `Communicator` class that can tell
/// whether this process was launched that way. Registered in `CollectiveBackends.all`.
public protocol LaunchedCommunicator: Communicator {
    /// Whether this process was started by this transport's launcher (so it should be initialised).
    static var isLaunched: Bool { get }
    /// Joins the job: the world communicator of the launched ranks.
    init() throws
    /// Leaves the job cleanly; call once, after the last collective.
    func finalize() throws
}

/// The launch backends pskd knows, in the order they are tried.
public enum CollectiveBackends {
    public static let all: [any LaunchedCommunicator.Type] = [MPICommunicator.self]

    /// The backend whose launcher started this process, or nil for a process on its own
    /// (which then runs as a one-rank job on a `LocalCommunicator`).
    public static var launched: (any LaunchedCommunicator.Type)? { all.first { $0.isLaunched } }
}

/// The communicator of a single process: every collective is the identity.
/// Used by unit tests and by runs started without `mpirun`.
public final class LocalCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public var isLaunchedRank: Bool { false }
    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ operation: ReduceOperation) throws {}
    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Double>, _ operation: ReduceOperation) throws {}
    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {
        precondition(root == 0, "a single process has only rank 0")
    }
    public func allGather(_ bytes: UnsafeRawBufferPointer) throws -> [UInt8] { Array(bytes) }
    public func allGatherV(_ bytes: UnsafeRawBufferPointer) throws -> [UInt8] { Array(bytes) }
    public func allToAllV(
        _ send: UnsafeRawBufferPointer, sendCounts: [Int],
        into receive: UnsafeMutableRawBufferPointer, receiveCounts: [Int]
    ) throws {
        precondition(
            sendCounts.count == 1 && receiveCounts == sendCounts && sendCounts[0] <= min(send.count, receive.count),
            "a single process receives what it sends: \(sendCounts) bytes sent, \(receiveCounts) expected")
        if let target = receive.baseAddress, let source = send.baseAddress { target.copyMemory(from: source, byteCount: sendCounts[0]) }
    }
    public func barrier() throws {}
    public func abort(_ message: String, code: Int32) -> Never {
        printError("[rank 0] \(message)")
        exit(code)
    }
}

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
