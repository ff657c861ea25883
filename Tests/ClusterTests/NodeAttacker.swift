import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What root on one node of a cluster can do to the traffic of that node: see every IPv4 packet
/// it sends or receives (a packet socket), and send IPv4 packets with any source address and
/// port (a raw socket). The sockets are opened inside the node's network namespace.
final class NodeAttacker {
    private let sniffer: Int32
    private let sender: Int32

    /// One UDP datagram seen on the node.
    struct Datagram {
        let source: (address: String, port: UInt16)
        let destination: (address: String, port: UInt16)
        let payload: [UInt8]
    }

    /// Opens the sockets inside namespace `node` (as `ip netns exec` would run a program there).
    init(inside node: String) throws {
        // setns changes the namespace of the calling thread only: open the sockets on a thread
        // of their own, which then ends; the sockets stay in the namespace they were made in.
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var opened: Result<(Int32, Int32), ClusterTestError> = .failure(ClusterTestError("not opened"))
        Thread.detachNewThread {
            opened = NodeAttacker.openSockets(inside: node)
            done.signal()
        }
        done.wait()
        (sniffer, sender) = try opened.get()
    }

    deinit {
        close(sniffer)
        close(sender)
    }

    private static func openSockets(inside node: String) -> Result<(Int32, Int32), ClusterTestError> {
        let clone_newnet: Int32 = 0x4000_0000
        typealias SetNamespace = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "setns") else { return .failure(ClusterTestError("no setns in libc")) }
        let namespace = open("/var/run/netns/\(node)", O_RDONLY)
        guard namespace >= 0, unsafeBitCast(symbol, to: SetNamespace.self)(namespace, clone_newnet) == 0 else {
            return .failure(ClusterTestError("cannot enter namespace \(node): \(String(cString: strerror(errno)))"))
        }
        close(namespace)
        // ETH_P_ALL: a socket for one protocol sees only incoming packets, not the node's own.
        let everyProtocol = Int32(UInt16(0x0003).bigEndian)
        let sniffer = socket(AF_PACKET, Int32(SOCK_DGRAM.rawValue), everyProtocol)
        let sender = socket(AF_INET, Int32(SOCK_RAW.rawValue), Int32(IPPROTO_RAW))
        guard sniffer >= 0, sender >= 0 else {
            return .failure(ClusterTestError("cannot open raw sockets in \(node): \(String(cString: strerror(errno)))"))
        }
        return .success((sniffer, sender))
    }

    /// The UDP datagrams seen within `seconds` that satisfy `wanted`, in order.
    func capture(for seconds: Double, where wanted: (Datagram) -> Bool) -> [Datagram] {
        var seen: [Datagram] = []
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            var poller = pollfd(fd: sniffer, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(max(1, deadline.timeIntervalSinceNow * 1000))) > 0 else { continue }
            let count = recv(sniffer, &buffer, buffer.count, 0)
            guard count > 0, let datagram = Self.parse(buffer[0..<count]), wanted(datagram) else { continue }
            seen.append(datagram)
        }
        return seen
    }

    /// Sends `payload` as a UDP datagram from `source` to `destination`, whatever the source.
    func send(_ payload: [UInt8], from source: (address: String, port: UInt16), to destination: (address: String, port: UInt16)) {
        var packet: [UInt8] = [0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0]  // the kernel fills length, id and checksum
        packet += Self.bytes(of: source.address) + Self.bytes(of: destination.address)
        packet += Self.bigEndian(source.port) + Self.bigEndian(destination.port) + Self.bigEndian(UInt16(8 + payload.count)) + [0, 0]
        packet += payload
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, destination.address, &target.sin_addr)
        _ = packet.withUnsafeBytes { bytes in
            withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(sender, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }

    /// The UDP datagram in an IPv4 packet, or nil (also for other protocols' packets).
    private static func parse(_ packet: ArraySlice<UInt8>) -> Datagram? {
        let ip = Array(packet)
        guard ip.count >= 28, ip[0] >> 4 == 4, ip[9] == 17 else { return nil }
        let header = Int(ip[0] & 0x0F) * 4
        guard ip.count >= header + 8 else { return nil }
        let length = Int(ip[header + 4]) << 8 | Int(ip[header + 5])
        guard length >= 8, header + length <= ip.count else { return nil }
        func address(_ offset: Int) -> String { ip[offset..<(offset + 4)].map(String.init).joined(separator: ".") }
        func port(_ offset: Int) -> UInt16 { UInt16(ip[offset]) << 8 | UInt16(ip[offset + 1]) }
        return Datagram(
            source: (address(12), port(header)), destination: (address(16), port(header + 2)),
            payload: Array(ip[(header + 8)..<(header + length)]))
    }

    private static func bytes(of address: String) -> [UInt8] { address.split(separator: ".").compactMap { UInt8($0) } }
    private static func bigEndian(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
}
