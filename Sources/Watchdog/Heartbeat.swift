import Collectives

/// One rank's heartbeat: a fixed-size record sent over UDP a few times a second.
///
/// Layout (little-endian, `Heartbeat.size` bytes): magic "PSKH", format version, phase,
/// collective (0 = none), flags; the job's 16-byte token; rank; epoch; step; progress count;
/// seconds since the last progress (float32); median step seconds (float32); sequence number; 4 reserved bytes.
/// A datagram of any other size, magic, version or token is not a heartbeat and is dropped.
struct Heartbeat: Equatable {
    static let size = 64
    static let magic: [UInt8] = Array("PSKH".utf8)
    static let version: UInt8 = 1

    var rank: Int
    var state: ProgressState
    /// Seconds since the sender last made progress, by the sender's clock.
    var secondsSinceProgress: Double
    var sequence: UInt64

    /// The record's bytes, carrying `token`.
    func encoded(token: JobToken) -> [UInt8] {
        var bytes = Heartbeat.magic
        bytes += [Heartbeat.version, state.phase.rawValue, state.collective?.rawValue ?? 0, 0]
        bytes += token.bytes
        bytes.appendLittleEndian(UInt32(clamping: rank))
        bytes.appendLittleEndian(UInt32(clamping: state.epoch))
        bytes.appendLittleEndian(UInt32(clamping: state.step))
        bytes.appendLittleEndian(state.progress)
        bytes.appendLittleEndian(Float(secondsSinceProgress).bitPattern)
        bytes.appendLittleEndian(Float(state.medianStepSeconds).bitPattern)
        bytes.appendLittleEndian(sequence)
        bytes += [0, 0, 0, 0]  // reserved
        return bytes
    }

    /// The heartbeat in `bytes`, or nil unless they are exactly one well-formed record carrying
    /// `token` from a rank below `ranks`.
    init?(decoding bytes: ArraySlice<UInt8>, token: JobToken, ranks: Int) {
        guard bytes.count == Heartbeat.size else { return nil }
        let b = Array(bytes)
        guard Array(b[0..<4]) == Heartbeat.magic, b[4] == Heartbeat.version, token.matches(b[8..<24]),
            let phase = TrainingPhase(rawValue: b[5])
        else { return nil }
        let collective = CollectiveKind(rawValue: b[6])
        guard b[6] == 0 || collective != nil else { return nil }
        let rank = Int(b.littleEndian(UInt32.self, at: 24))
        guard rank < ranks else { return nil }
        var state = ProgressState()
        state.phase = phase
        state.collective = collective
        state.epoch = Int(b.littleEndian(UInt32.self, at: 28))
        state.step = Int(b.littleEndian(UInt32.self, at: 32))
        state.progress = b.littleEndian(UInt64.self, at: 36)
        let since = Double(Float(bitPattern: b.littleEndian(UInt32.self, at: 44)))
        state.medianStepSeconds = Double(Float(bitPattern: b.littleEndian(UInt32.self, at: 48)))
        guard since.isFinite, since >= 0, state.medianStepSeconds.isFinite, state.medianStepSeconds >= 0 else { return nil }
        self.init(rank: rank, state: state, secondsSinceProgress: since, sequence: b.littleEndian(UInt64.self, at: 52))
    }

    init(rank: Int, state: ProgressState, secondsSinceProgress: Double, sequence: UInt64) {
        (self.rank, self.state, self.secondsSinceProgress, self.sequence) = (rank, state, secondsSinceProgress, sequence)
    }
}

/// The job's secret: 16 random bytes drawn by rank 0 and given to the others through MPI.
/// Only datagrams carrying it are read as heartbeats.
struct JobToken: Equatable {
    let bytes: [UInt8]

    init(bytes: [UInt8]) {
        precondition(bytes.count == 16, "a job token is 16 bytes")
        self.bytes = bytes
    }

    /// 16 bytes from the kernel's random source.
    static func random() -> JobToken {
        var bytes = [UInt8](repeating: 0, count: 16)
        var generator = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255, using: &generator) }
        return JobToken(bytes: bytes)
    }

    /// Compares in constant time (no early exit that would time out the token byte by byte).
    func matches(_ other: ArraySlice<UInt8>) -> Bool {
        guard other.count == bytes.count else { return false }
        return zip(bytes, other).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

extension Array where Element == UInt8 {
    mutating func appendLittleEndian<Value: FixedWidthInteger>(_ value: Value) {
        var little = value.littleEndian
        Swift.withUnsafeBytes(of: &little) { append(contentsOf: $0) }
    }

    func littleEndian<Value: FixedWidthInteger>(_ type: Value.Type, at offset: Int) -> Value {
        var value = Value.zero
        Swift.withUnsafeMutableBytes(of: &value) { $0.copyBytes(from: self[offset..<(offset + MemoryLayout<Value>.size)]) }
        return Value(littleEndian: value)
    }
}
