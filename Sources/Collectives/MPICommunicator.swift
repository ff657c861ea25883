import CMPI
import Platform

/// A failed MPI call: names the function and gives MPI's own explanation.
public struct MPIError: CollectiveError {
    /// The MPI function that failed.
    public let function: String
    /// Its return code.
    public let code: Int32
    /// `MPI_Error_string` for the code.
    public let explanation: String
    public var description: String { "\(function) failed with code \(code): \(explanation)" }
}

/// Turns an MPI return code into a thrown `MPIError`: the one choke point for MPI results.
@inline(__always)
func check(_ code: Int32, _ function: @autoclosure () -> String) throws(MPIError) {
    guard code != MPI_SUCCESS else { return }
    var length: Int32 = 0
    var text = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
    let explanation =
        MPI_Error_string(code, &text, &length) == MPI_SUCCESS
        ? cString(text, length: length)
        : "unknown MPI error"
    throw MPIError(function: function(), code: code, explanation: explanation)
}

/// The world communicator of an MPI job. Create one per process (it calls `MPI_Init_thread`
/// and sets `MPI_ERRORS_RETURN`, so failures come back as errors instead of silent aborts)
/// and call `finalize()` before exiting.
public final class MPICommunicator: LaunchedCommunicator {
    public let rank: Int
    public let size: Int
    private let world: MPI_Comm

    /// Initialises MPI (funneled threading: only the main thread calls MPI).
    public init() throws {
        var provided: Int32 = 0
        try check(MPI_Init_thread(nil, nil, Int32(MPI_THREAD_FUNNELED), &provided), "MPI_Init_thread")
        world = pskd_mpi_comm_world()
        try check(MPI_Comm_set_errhandler(world, pskd_mpi_errors_return()), "MPI_Comm_set_errhandler")
        var rank: Int32 = 0, size: Int32 = 0
        try check(MPI_Comm_rank(world, &rank), "MPI_Comm_rank")
        try check(MPI_Comm_size(world, &size), "MPI_Comm_size")
        self.rank = Int(rank)
        self.size = Int(size)
    }

    /// Whether this process was started by an MPI launcher (so MPI should be initialised).
    public static var isLaunched: Bool {
        ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"].contains { (name: String) in getenv(name) != nil }
    }

    /// Every rank of an MPI job was started by its launcher.
    public var isLaunchedRank: Bool { true }

    /// Open MPI's library version string.
    public static var libraryVersion: String {
        var length: Int32 = 0
        var text = [CChar](repeating: 0, count: Int(MPI_MAX_LIBRARY_VERSION_STRING) + 1)
        guard MPI_Get_library_version(&text, &length) == MPI_SUCCESS else { return "unknown" }
        return cString(text, length: length)
            .split(separator: "\n").first.map(String.init) ?? ""
    }

    /// The name of the node this rank runs on.
    public func processorName() throws -> String {
        var length: Int32 = 0
        var text = [CChar](repeating: 0, count: Int(MPI_MAX_PROCESSOR_NAME) + 1)
        try check(MPI_Get_processor_name(&text, &length), "MPI_Get_processor_name")
        return cString(text, length: length)
    }

    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ operation: ReduceOperation) throws {
        try reduceInPlace(
            UnsafeMutableRawPointer(buffer.baseAddress), count: buffer.count,
            datatype: pskd_mpi_float(), operation)
    }

    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Double>, _ operation: ReduceOperation) throws {
        try reduceInPlace(
            UnsafeMutableRawPointer(buffer.baseAddress), count: buffer.count,
            datatype: pskd_mpi_double(), operation)
    }

    /// `MPI_Allreduce` in place, split into pieces of at most `Int32.max` elements.
    private func reduceInPlace(
        _ base: UnsafeMutableRawPointer?, count: Int, datatype: MPI_Datatype,
        _ operation: ReduceOperation
    ) throws {
        guard let base, count > 0 else { return }
        var elementSize: Int32 = 0
        try check(MPI_Type_size(datatype, &elementSize), "MPI_Type_size")
        var offset = 0
        while offset < count {
            let piece = min(count - offset, Int(Int32.max))
            try check(
                MPI_Allreduce(
                    pskd_mpi_in_place(), base + offset * Int(elementSize), Int32(piece),
                    datatype, operation.mpi, world), "MPI_Allreduce(\(piece) elements)")
            offset += piece
        }
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {
        guard let base = buffer.baseAddress else { return }
        var offset = 0
        while offset < buffer.count {
            let piece = min(buffer.count - offset, Int(Int32.max))
            try check(
                MPI_Bcast(base + offset, Int32(piece), pskd_mpi_byte(), Int32(root), world),
                "MPI_Bcast(\(piece) bytes from rank \(root))")
            offset += piece
        }
    }

    public func allGather(_ bytes: UnsafeRawBufferPointer) throws -> [UInt8] {
        guard bytes.count * size <= Int(Int32.max) else { return try allGatherV(bytes) }
        var result = [UInt8](repeating: 0, count: bytes.count * size)
        try check(
            MPI_Allgather(
                bytes.baseAddress, Int32(bytes.count), pskd_mpi_byte(), &result, Int32(bytes.count),
                pskd_mpi_byte(), world), "MPI_Allgather(\(bytes.count) bytes per rank)")
        return result
    }

    public func allGatherV(_ bytes: UnsafeRawBufferPointer) throws -> [UInt8] {
        var mine = Int64(bytes.count)
        var counts = [Int64](repeating: 0, count: size)
        try check(MPI_Allgather(&mine, 1, pskd_mpi_int64(), &counts, 1, pskd_mpi_int64(), world), "MPI_Allgather(sizes)")
        let total = Int(counts.reduce(0, +))
        var result = [UInt8](repeating: 0, count: total)
        // Rounds of at most `piece` bytes per rank keep every MPI count and displacement in Int32.
        let piece = Int(Int32.max) / max(size, 1)
        var sent = [Int](repeating: 0, count: size)
        while zip(sent, counts).contains(where: { $0 < Int($1) }) {
            let roundCounts = (0..<size).map { Int32(min(piece, Int(counts[$0]) - sent[$0])) }
            var displacements = [Int32](repeating: 0, count: size)
            for r in 1..<max(size, 1) { displacements[r] = displacements[r - 1] + roundCounts[r - 1] }
            var received = [UInt8](repeating: 0, count: Int(roundCounts.reduce(0, +)))
            let sendBase = bytes.baseAddress.map { $0 + sent[rank] }
            try check(
                MPI_Allgatherv(
                    sendBase, roundCounts[rank], pskd_mpi_byte(), &received, roundCounts,
                    displacements, pskd_mpi_byte(), world), "MPI_Allgatherv(\(received.count) bytes)")
            var rankStart = 0
            for r in 0..<size {
                let destination = Int(counts[..<r].reduce(0, +)) + sent[r]
                result.replaceSubrange(
                    destination..<(destination + Int(roundCounts[r])),
                    with: received[rankStart..<(rankStart + Int(roundCounts[r]))])
                rankStart += Int(roundCounts[r])
                sent[r] += Int(roundCounts[r])
            }
        }
        return result
    }

    public func allToAllV(
        _ send: UnsafeRawBufferPointer, sendCounts: [Int],
        into receive: UnsafeMutableRawBufferPointer, receiveCounts: [Int]
    ) throws {
        precondition(sendCounts.count == size && receiveCounts.count == size, "one count per rank")
        precondition(
            sendCounts.reduce(0, +) <= send.count && receiveCounts.reduce(0, +) <= receive.count,
            "the counts exceed the buffers: \(sendCounts) of \(send.count), \(receiveCounts) of \(receive.count)")
        let (sendStarts, receiveStarts) = (Self.starts(sendCounts), Self.starts(receiveCounts))
        let limit = Int(Int32.max)
        if sendCounts.reduce(0, +) <= limit && receiveCounts.reduce(0, +) <= limit {
            try check(
                MPI_Alltoallv(
                    send.baseAddress, sendCounts.map(Int32.init), sendStarts.map(Int32.init), pskd_mpi_byte(),
                    receive.baseAddress, receiveCounts.map(Int32.init), receiveStarts.map(Int32.init),
                    pskd_mpi_byte(), world),
                "MPI_Alltoallv(\(sendCounts.reduce(0, +)) bytes sent, \(receiveCounts.reduce(0, +)) received)")
            return
        }
        // Rounds of at most `piece` bytes per pair keep every MPI count and displacement in
        // Int32; both sides derive the same rounds from the counts alone.
        let piece = limit / max(size, 1)
        let rounds = ((sendCounts + receiveCounts).max()! + piece - 1) / piece
        for round in 0..<rounds {
            let part = { (count: Int) in Int32(max(0, min(piece, count - round * piece))) }
            let (sendParts, receiveParts) = (sendCounts.map(part), receiveCounts.map(part))
            var sendBuffer = [UInt8](), receiveBuffer = [UInt8](repeating: 0, count: Int(receiveParts.reduce(0, +)))
            for r in 0..<size { sendBuffer += send[(sendStarts[r] + round * piece)...].prefix(Int(sendParts[r])) }
            try check(
                MPI_Alltoallv(
                    sendBuffer, sendParts, Self.displacements(sendParts), pskd_mpi_byte(),
                    &receiveBuffer, receiveParts, Self.displacements(receiveParts), pskd_mpi_byte(), world),
                "MPI_Alltoallv(round \(round + 1) of \(rounds): \(sendBuffer.count) bytes sent, \(receiveBuffer.count) received)")
            var offset = 0
            for r in 0..<size where receiveParts[r] > 0 {
                let target = receive.baseAddress! + receiveStarts[r] + round * piece
                receiveBuffer.withUnsafeBytes { target.copyMemory(from: $0.baseAddress! + offset, byteCount: Int(receiveParts[r])) }
                offset += Int(receiveParts[r])
            }
        }
    }

    /// Where each rank's part starts when parts of `counts` bytes follow one another.
    private static func starts(_ counts: [Int]) -> [Int] {
        counts.indices.map { counts[..<$0].reduce(0, +) }
    }

    /// `starts` as MPI displacements.
    private static func displacements(_ counts: [Int32]) -> [Int32] {
        starts(counts.map(Int.init)).map(Int32.init)
    }

    public func barrier() throws {
        try check(MPI_Barrier(world), "MPI_Barrier")
    }

    public func abort(_ message: String, code: Int32) -> Never {
        printError("[rank \(rank)] \(message)")
        MPI_Abort(world, code)
        exit(code)
    }

    /// Ends MPI; call once, after the last collective.
    public func finalize() throws {
        try check(MPI_Finalize(), "MPI_Finalize")
    }
}

/// The text of an MPI string output of `length` characters, without trailing NULs.
private func cString(_ text: [CChar], length: Int32) -> String {
    String(decoding: text.prefix(Int(length)).prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

extension ReduceOperation {
    var mpi: MPI_Op {
        switch self {
        case .sum: pskd_mpi_sum()
        case .max: pskd_mpi_max()
        case .min: pskd_mpi_min()
        }
    }
}

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
