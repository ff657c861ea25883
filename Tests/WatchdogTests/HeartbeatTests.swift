import Collectives
import XCTest

@testable import Watchdog

/// Heartbeats survive the wire exactly, and nothing but a well-formed record authenticated with
/// the job's key, from a rank of the job, is read as one.
final class HeartbeatTests: XCTestCase {
    private let key = HeartbeatKey(bytes: Array(1...32))

    private func sample(rank: Int = 2, sequence: UInt64 = 42) -> Heartbeat {
        var state = ProgressState()
        (state.phase, state.collective, state.epoch, state.step, state.progress) = (.teacherExchange, .allGather, 3, 117, 123_456_789_012)
        state.medianStepSeconds = 0.25
        return Heartbeat(rank: rank, state: state, sequence: sequence)
    }

    func testRecordRoundTripsAtItsFixedSize() throws {
        let bytes = sample().encoded(key: key)
        XCTAssertEqual(bytes.count, Heartbeat.size)
        XCTAssertEqual(Heartbeat.size, 72)
        let decoded = try XCTUnwrap(Heartbeat(decoding: bytes[...], key: key, ranks: 3))
        XCTAssertEqual(decoded, sample())
        XCTAssertEqual(decoded.state.progress, 123_456_789_012)
        XCTAssertEqual(decoded.state.medianStepSeconds, 0.25)
    }

    /// The code is HMAC-SHA256 of the body: checked against RFC 4231's test case 2 and against
    /// an independent computation of the record's code.
    func testTheCodeIsHMACSHA256() {
        let rfc4231Key = Array("Jefe".utf8) + [UInt8](repeating: 0, count: 28)  // HMAC pads short keys with zeros
        let code = HeartbeatKey(bytes: rfc4231Key).code(for: Array("what do ya want for nothing?".utf8))
        XCTAssertEqual(
            code.map { String(format: "%02x", $0) }.joined(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        let bytes = sample().encoded(key: key)
        XCTAssertEqual(Array(bytes[Heartbeat.bodySize...]), key.code(for: Array(bytes[..<Heartbeat.bodySize])))
    }

    func testAnythingElseIsDropped() {
        let good = sample().encoded(key: key)
        XCTAssertNil(Heartbeat(decoding: good[...], key: HeartbeatKey(bytes: Array(repeating: 7, count: 32)), ranks: 3), "another key")
        XCTAssertNil(Heartbeat(decoding: good[...], key: key, ranks: 2), "a rank the job does not have")
        XCTAssertNil(Heartbeat(decoding: good.dropLast()[...], key: key, ranks: 3), "one byte short")
        XCTAssertNil(Heartbeat(decoding: (good + [0])[...], key: key, ranks: 3), "one byte long")
        for offset in good.indices {
            for bit in 0..<8 {
                var forged = good
                forged[offset] ^= 1 << bit
                XCTAssertNil(Heartbeat(decoding: forged[...], key: key, ranks: 3), "byte \(offset), bit \(bit) flipped")
            }
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<1000 {
            let noise = (0..<Heartbeat.size).map { _ in UInt8.random(in: 0...255, using: &generator) }
            XCTAssertNil(Heartbeat(decoding: noise[...], key: key, ranks: 3))
        }
    }

    /// A body the key authenticates is still refused when it is not a valid record.
    func testAuthenticRecordsMustStillBeWellFormed() {
        for (offset, value) in [(0, UInt8(ascii: "X")), (4, 9), (5, 200), (6, 99)] {
            var body = Array(sample().encoded(key: key)[..<Heartbeat.bodySize])
            body[offset] = value
            XCTAssertNil(Heartbeat(decoding: (body + key.code(for: body))[...], key: key, ranks: 3), "byte \(offset) = \(value)")
        }
        var body = Array(sample().encoded(key: key)[..<Heartbeat.bodySize])
        body.replaceSubrange(28..<32, with: withUnsafeBytes(of: Float.nan.bitPattern.littleEndian, Array.init))
        XCTAssertNil(Heartbeat(decoding: (body + key.code(for: body))[...], key: key, ranks: 3), "a NaN duration")
    }

    func testKeysAreRandom() {
        XCTAssertNotEqual(HeartbeatKey.randomBytes(), HeartbeatKey.randomBytes())
        XCTAssertEqual(HeartbeatKey.randomBytes().count, 32)
    }

    /// The inbox takes a rank's authentic, newer records from its own address; it counts and
    /// drops forgeries, replays (the same record again, an older one, or one relayed from
    /// another address), and leaves the rank's view as it was.
    func testInboxDropsAndCountsForgeriesAndReplays() {
        let home = Endpoint(address: Endpoint.loopback.address, port: 4000)
        let elsewhere = Endpoint(address: Endpoint.loopback.address, port: 4001)
        let views = (0..<3).map { RankView(rank: $0, host: "node", pid: 1, endpoint: $0 == 2 ? home : elsewhere, since: 0) }
        var inbox = HeartbeatInbox(views: views, key: key)
        let first = sample(sequence: 7).encoded(key: key), second = sample(sequence: 8).encoded(key: key)
        XCTAssertEqual(inbox.receive(first[...], from: home, at: 1), .accepted)
        XCTAssertEqual(inbox.views[2].last?.sequence, 7)
        XCTAssertEqual(inbox.receive(first[...], from: home, at: 2), .replayed, "the same record again")
        XCTAssertEqual(inbox.receive(second[...], from: elsewhere, at: 2), .replayed, "relayed from another address")
        XCTAssertEqual(inbox.receive(second[...], from: home, at: 3), .accepted)
        XCTAssertEqual(inbox.receive(first[...], from: home, at: 4), .replayed, "an older record")
        var forged = second
        forged[20] ^= 0xFF
        XCTAssertEqual(inbox.receive(forged[...], from: home, at: 4), .unauthenticated)
        XCTAssertEqual(inbox.receive([1, 2, 3][...], from: home, at: 4), .unauthenticated)
        XCTAssertEqual(inbox.views[2].last?.sequence, 8)
        XCTAssertEqual(inbox.views[2].silence(at: 10), 7, "heard last at 3")
        XCTAssertEqual(inbox.rejected, RejectedDatagrams(unauthenticated: 2, replayed: 3))
        XCTAssertEqual(inbox.rejected.description, "5 datagrams rejected (2 failed authentication, 3 replayed)")
        XCTAssertEqual(RejectedDatagrams().description, "no datagram rejected")
    }

    /// Datagrams travel between two bound sockets; the sender's address is reported, so a
    /// heartbeat from another port than the rank's own can be told apart.
    func testSocketsExchangeDatagramsAndNameTheSender() throws {
        let receiver = try HeartbeatSocket(bindingTo: .loopback), sender = try HeartbeatSocket(bindingTo: .loopback)
        XCTAssertNotEqual(receiver.endpoint.port, 0)
        XCTAssertNil(receiver.receive(waitingAtMost: 0.05), "nothing sent yet")
        let bytes = sample().encoded(key: key)
        sender.send(bytes, to: receiver.endpoint)
        let received = try XCTUnwrap(receiver.receive(waitingAtMost: 2))
        XCTAssertEqual(Array(received.bytes), bytes)
        XCTAssertEqual(received.sender, sender.endpoint)
        XCTAssertEqual(received.sender.description, "127.0.0.1:\(sender.endpoint.port)")
        sender.send([UInt8](repeating: 1, count: 2000), to: receiver.endpoint)
        let long = try XCTUnwrap(receiver.receive(waitingAtMost: 2))
        XCTAssertEqual(long.bytes.count, 512, "a long datagram is cut, never read as a heartbeat")
    }

    func testNetworksMatchAddresses() {
        func address(_ text: String) -> UInt32 {
            var value = in_addr()
            XCTAssertEqual(inet_pton(AF_INET, text, &value), 1)
            return value.s_addr
        }
        XCTAssertTrue(HeartbeatAddress.network("10.98.0.0/24", contains: address("10.98.0.3")))
        XCTAssertFalse(HeartbeatAddress.network("10.98.0.0/24", contains: address("10.98.1.3")))
        XCTAssertTrue(HeartbeatAddress.network("0.0.0.0/0", contains: address("192.168.1.1")))
        XCTAssertFalse(HeartbeatAddress.network("eth0", contains: address("10.98.0.3")))
        XCTAssertEqual(try HeartbeatAddress.choose(singleNode: true), .loopback)
    }
}
