#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// An IPv4 address and UDP port.
struct Endpoint: Equatable, CustomStringConvertible {
    /// The address in network byte order (as `in_addr.s_addr`).
    var address: UInt32
    var port: UInt16

    var description: String {
        let octets = withUnsafeBytes(of: address) { Array($0) }
        return octets.map(String.init).joined(separator: ".") + ":\(port)"
    }

    fileprivate var socketAddress: sockaddr_in {
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = port.bigEndian
        socketAddress.sin_addr.s_addr = address
        return socketAddress
    }

    fileprivate init(_ socketAddress: sockaddr_in) {
        (address, port) = (socketAddress.sin_addr.s_addr, UInt16(bigEndian: socketAddress.sin_port))
    }

    init(address: UInt32, port: UInt16) { (self.address, self.port) = (address, port) }

    /// 127.0.0.1.
    static let loopback = Endpoint(address: UInt32(0x7F00_0001).bigEndian, port: 0)
}

/// A non-blocking UDP socket bound to one address, for heartbeats.
final class HeartbeatSocket {
    private let descriptor: Int32
    /// The address and port it is bound to.
    let endpoint: Endpoint

    /// Binds to `address` on a port the kernel picks.
    init(bindingTo address: Endpoint) throws(WatchdogError) {
        let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        self.descriptor = descriptor
        guard descriptor >= 0 else { throw WatchdogError("cannot open a UDP socket: \(String(cString: strerror(errno)))") }
        var requested = address.socketAddress
        requested.sin_port = 0
        let bound = withUnsafePointer(to: &requested) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw WatchdogError("cannot bind a UDP socket to \(address.description.split(separator: ":")[0]): \(reason)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        endpoint = Endpoint(actual)
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
    }

    deinit { close(descriptor) }

    /// Sends `bytes` as one datagram; a failure (a full buffer, an unreachable peer) is ignored:
    /// the next heartbeat follows soon.
    func send(_ bytes: [UInt8], to destination: Endpoint) {
        var target = destination.socketAddress
        _ = bytes.withUnsafeBytes { buffer in
            withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(descriptor, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT), $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }

    /// The next datagram (at most 512 bytes are read; a longer one is reported as 512 bytes and
    /// so never has a heartbeat's size) and its sender, waiting at most `seconds`; nil if none came.
    func receive(waitingAtMost seconds: Double) -> (bytes: ArraySlice<UInt8>, sender: Endpoint)? {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(max(0, seconds * 1000))) > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 513)
        var sender = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let count = buffer.withUnsafeMutableBytes { bytes in
            withUnsafeMutablePointer(to: &sender) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(descriptor, bytes.baseAddress, 512, 0, $0, &length) }
            }
        }
        guard count >= 0 else { return nil }
        return (buffer[0..<count], Endpoint(sender))
    }
}

/// The address heartbeats use on this node: the loopback address when the whole job runs on
/// one node; otherwise the first IPv4 address of an interface that is up and not the loopback,
/// restricted to what Open MPI was told to use (`--mca btl_tcp_if_include` / `oob_tcp_if_include`,
/// which mpirun passes to every rank as `OMPI_MCA_…` variables: names like `eth1` or networks
/// like `10.0.0.0/24`), so heartbeats travel the network MPI uses.
enum HeartbeatAddress {
    static func choose(singleNode: Bool) throws(WatchdogError) -> Endpoint {
        if singleNode { return .loopback }
        let variables: [String] = ["OMPI_MCA_btl_tcp_if_include", "OMPI_MCA_oob_tcp_if_include"]
        let include = variables.compactMap { (name: String) -> String? in getenv(name).map { String(cString: $0) } }.first { !$0.isEmpty }
        let filters = include.map { $0.split(separator: ",").map(String.init) } ?? []
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { throw WatchdogError("cannot list network interfaces: \(String(cString: strerror(errno)))") }
        defer { freeifaddrs(list) }
        var candidate = list
        while let entry = candidate?.pointee {
            defer { candidate = entry.ifa_next }
            guard let address = entry.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET),
                entry.ifa_flags & UInt32(IFF_UP) != 0, entry.ifa_flags & UInt32(IFF_LOOPBACK) == 0
            else { continue }
            let name = String(cString: entry.ifa_name)
            let ipv4 = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr.s_addr }
            if filters.isEmpty || filters.contains(where: { $0 == name || Self.network($0, contains: ipv4) }) {
                return Endpoint(address: ipv4, port: 0)
            }
        }
        throw WatchdogError(
            "no network interface that is up"
                + (include.map { " and matches Open MPI's interface setting '\($0)'" } ?? "")
                + " for the stall watchdog's heartbeats: fix the interface setting, or run with --stall-timeout 0 (no watchdog)")
    }

    /// Whether `address` (network byte order) is in `cidr` ("10.0.0.0/24").
    static func network(_ cidr: String, contains address: UInt32) -> Bool {
        let parts = cidr.split(separator: "/")
        guard parts.count == 2, let bits = Int(parts[1]), (0...32).contains(bits) else { return false }
        var network = in_addr()
        guard inet_pton(AF_INET, String(parts[0]), &network) == 1 else { return false }
        let mask: UInt32 = bits == 0 ? 0 : ~UInt32(0) << (32 - bits)
        return UInt32(bigEndian: network.s_addr) & mask == UInt32(bigEndian: address) & mask
    }
}

/// The stall watchdog cannot start.
public struct WatchdogError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
