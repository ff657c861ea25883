import Collectives
import XCTest

@testable import Watchdog

/// Heartbeats survive the wire exactly, and nothing but a well-formed record carrying the job's
/// token from a rank of the job is read as one.
final class HeartbeatTests: XCTestCase {
    private let token = JobToken(bytes: Array(1...16))

    private func sample(rank: Int = 2) -> Heartbeat {
        var state = ProgressState()
        (state.phase, state.collective, state.epoch, state.step, state.progress) = (.teacherExchange, .allGather, 3, 117, 123_456_789_012)
        state.medianStepSeconds = 0.25
        return Heartbeat(rank: rank, state: state, secondsSinceProgress: 1.5, sequence: 42)
    }

    func testRecordRoundTripsAtItsFixedSize() throws {
        let bytes = sample().encoded(token: token)
        XCTAssertEqual(bytes.count, Heartbeat.size)
        let decoded = try XCTUnwrap(Heartbeat(decoding: bytes[...], token: token, ranks: 3))
        XCTAssertEqual(decoded.rank, 2)
        XCTAssertEqual(decoded.state.phase, .teacherExchange)
        XCTAssertEqual(decoded.state.collective, .allGather)
        XCTAssertEqual([decoded.state.epoch, decoded.state.step], [3, 117])
        XCTAssertEqual(decoded.state.progress, 123_456_789_012)
        XCTAssertEqual(decoded.state.medianStepSeconds, 0.25)
        XCTAssertEqual(decoded.secondsSinceProgress, 1.5)
        XCTAssertEqual(decoded.sequence, 42)
    }

    func testAnythingElseIsDropped() {
        let good = sample().encoded(token: token)
        XCTAssertNil(
            Heartbeat(decoding: good[...], token: JobToken(bytes: Array(repeating: 7, count: 16)), ranks: 3), "another job's token")
        XCTAssertNil(Heartbeat(decoding: good[...], token: token, ranks: 2), "a rank the job does not have")
        XCTAssertNil(Heartbeat(decoding: good.dropLast()[...], token: token, ranks: 3), "one byte short")
        XCTAssertNil(Heartbeat(decoding: (good + [0])[...], token: token, ranks: 3), "one byte long")
        for (offset, value) in [(0, UInt8(ascii: "X")), (4, 9), (5, 200), (6, 99)] {
            var forged = good
            forged[offset] = value
            XCTAssertNil(Heartbeat(decoding: forged[...], token: token, ranks: 3), "byte \(offset) = \(value)")
        }
        var nonFinite = good
        nonFinite.replaceSubrange(44..<48, with: withUnsafeBytes(of: Float.nan.bitPattern.littleEndian, Array.init))
        XCTAssertNil(Heartbeat(decoding: nonFinite[...], token: token, ranks: 3), "a NaN duration")
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<1000 {
            let noise = (0..<Heartbeat.size).map { _ in UInt8.random(in: 0...255, using: &generator) }
            XCTAssertNil(Heartbeat(decoding: noise[...], token: token, ranks: 3))
        }
    }

    func testTokensAreRandomAndCompareWhole() {
        XCTAssertNotEqual(JobToken.random(), JobToken.random())
        XCTAssertTrue(token.matches(token.bytes[...]))
        XCTAssertFalse(token.matches(token.bytes.dropLast()[...]))
        var last = token.bytes
        last[15] ^= 1
        XCTAssertFalse(token.matches(last[...]))
    }

    /// Datagrams travel between two bound sockets; the sender's address is reported, so a
    /// heartbeat from another port than the rank's own can be told apart.
    func testSocketsExchangeDatagramsAndNameTheSender() throws {
        let receiver = try HeartbeatSocket(bindingTo: .loopback), sender = try HeartbeatSocket(bindingTo: .loopback)
        XCTAssertNotEqual(receiver.endpoint.port, 0)
        XCTAssertNil(receiver.receive(waitingAtMost: 0.05), "nothing sent yet")
        let bytes = sample().encoded(token: token)
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
