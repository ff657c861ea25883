import Collectives
import Crypto

/// One rank's heartbeat: a fixed-size record sent over UDP a few times a second.
///
/// Layout (little-endian, `Heartbeat.size` bytes): magic "PSKH", format version, phase,
/// collective (0 = none), flags (0); rank; epoch; step (UInt32 each); progress count (UInt64);
/// median step seconds (Float32); sequence number (UInt64); then the HMAC-SHA256 of those
/// `Heartbeat.bodySize` bytes under the job's key (`HeartbeatKey`), 32 bytes.
///
/// The record carries only what the sender observed of itself at the moment it sent: the
/// monitor measures every duration (silence, time without progress) on its own clock, so a
/// stale or forged number cannot shorten or lengthen a verdict. A datagram of any other size,
/// magic or version, or whose code does not verify, is not a heartbeat and is dropped.
struct Heartbeat: Equatable {
    static let bodySize = 40
    static let size = bodySize + HeartbeatKey.codeSize
    static let magic: [UInt8] = Array("PSKH".utf8)
    static let version: UInt8 = 2

    var rank: Int
    var state: ProgressState
    /// Strictly increasing per sender within a job: a record not newer than the last one
    /// accepted from its rank is a replay.
    var sequence: UInt64

    /// The record's bytes, authenticated with `key`.
    func encoded(key: HeartbeatKey) -> [UInt8] {
        var bytes = Heartbeat.magic
        bytes += [Heartbeat.version, state.phase.rawValue, state.collective?.rawValue ?? 0, 0]
        bytes.appendLittleEndian(UInt32(clamping: rank))
        bytes.appendLittleEndian(UInt32(clamping: state.epoch))
        bytes.appendLittleEndian(UInt32(clamping: state.step))
        bytes.appendLittleEndian(state.progress)
        bytes.appendLittleEndian(Float(state.medianStepSeconds).bitPattern)
        bytes.appendLittleEndian(sequence)
        return bytes + key.code(for: bytes)
    }

    /// The heartbeat in `bytes`, or nil unless they are exactly one record authenticated with
    /// `key`, well formed, from a rank below `ranks`.
    init?(decoding bytes: ArraySlice<UInt8>, key: HeartbeatKey, ranks: Int) {
        guard bytes.count == Heartbeat.size else { return nil }
        let b = Array(bytes)
        guard key.verifies(b[Heartbeat.bodySize...], for: b[..<Heartbeat.bodySize]) else { return nil }
        guard Array(b[0..<4]) == Heartbeat.magic, b[4] == Heartbeat.version, let phase = TrainingPhase(rawValue: b[5]) else {
            return nil
        }
        let collective = CollectiveKind(rawValue: b[6])
        guard b[6] == 0 || collective != nil else { return nil }
        let rank = Int(b.littleEndian(UInt32.self, at: 8))
        guard rank < ranks else { return nil }
        var state = ProgressState()
        state.phase = phase
        state.collective = collective
        state.epoch = Int(b.littleEndian(UInt32.self, at: 12))
        state.step = Int(b.littleEndian(UInt32.self, at: 16))
        state.progress = b.littleEndian(UInt64.self, at: 20)
        state.medianStepSeconds = Double(Float(bitPattern: b.littleEndian(UInt32.self, at: 28)))
        guard state.medianStepSeconds.isFinite, state.medianStepSeconds >= 0 else { return nil }
        self.init(rank: rank, state: state, sequence: b.littleEndian(UInt64.self, at: 32))
    }

    init(rank: Int, state: ProgressState, sequence: UInt64) {
        (self.rank, self.state, self.sequence) = (rank, state, sequence)
    }
}

/// The job's heartbeat key: 32 random bytes drawn by rank 0 and given to the others through
/// MPI once, never sent on the heartbeats' network. Heartbeats carry an HMAC-SHA256 under it,
/// so nobody without it can make a record the monitor accepts.
struct HeartbeatKey {
    static let size = 32, codeSize = 32
    private let key: SymmetricKey

    init(bytes: [UInt8]) {
        precondition(bytes.count == Self.size, "a heartbeat key is \(Self.size) bytes")
        key = SymmetricKey(data: bytes)
    }

    /// `size` bytes from the kernel's random source.
    static func randomBytes() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    /// The HMAC-SHA256 of `message`.
    func code(for message: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: key))
    }

    /// Whether `code` is `message`'s HMAC-SHA256 (compared in constant time).
    func verifies(_ code: ArraySlice<UInt8>, for message: ArraySlice<UInt8>) -> Bool {
        code.count == Self.codeSize && HMAC<SHA256>.isValidAuthenticationCode(Array(code), authenticating: Array(message), using: key)
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
