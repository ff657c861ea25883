import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Several "nodes" on this machine: one network namespace each, joined by a bridge through veth
/// pairs, with addresses in a private range that exists only inside these namespaces (the bridge
/// itself has no address). The namespace names are the host names of the hostfile; mpirun runs
/// in the first one (as on a cluster's first node) and starts its daemons in the others through
/// `launch/netns-agent.sh`. Everything is removed at the end of the test, also when it fails.
final class NamespaceNodes {
    /// The namespaces, which are also the host names.
    let nodes: [String]
    /// The network every node has an address in.
    let subnet = "10.98.0.0/24"
    /// `NAME slots=N` per node.
    let hostfile: URL
    private let bridge: String
    private let prefix: String

    /// Creates `count` nodes with `slots` slots each and registers their removal with `test`.
    init(count: Int, slots: Int, scratch: URL, test: XCTestCase) throws {
        try ClusterFixture.requireTools(["ip", "unshare", "mpirun", "timeout"])
        // Names of at most 15 characters (an interface's limit) with the test process's id, which
        // keeps concurrent runs apart and tells a leftover of a killed run.
        let prefix = "pk\(getpid())"
        self.prefix = prefix
        bridge = prefix + "br"
        nodes = (1...count).map { "\(prefix)n\($0)" }
        hostfile = scratch.appendingPathComponent("hosts")
        test.addTeardownBlock { [self] in tearDown() }
        NamespaceNodes.removeLeftovers()
        try ClusterFixture.mustRun(["ip", "link", "add", bridge, "type", "bridge"])
        try ClusterFixture.mustRun(["ip", "link", "set", bridge, "up"])
        for (index, node) in nodes.enumerated() {
            let link = hostLink(index)
            try ClusterFixture.mustRun(["ip", "netns", "add", node])
            try ClusterFixture.mustRun(["ip", "link", "add", link, "type", "veth", "peer", "name", "eth1", "netns", node])
            try ClusterFixture.mustRun(["ip", "link", "set", link, "master", bridge])
            try ClusterFixture.mustRun(["ip", "link", "set", link, "up"])
            try ClusterFixture.mustRun(["ip", "netns", "exec", node, "ip", "addr", "add", "10.98.0.\(index + 1)/24", "dev", "eth1"])
            try ClusterFixture.mustRun(["ip", "netns", "exec", node, "ip", "link", "set", "eth1", "up"])
            try ClusterFixture.mustRun(["ip", "netns", "exec", node, "ip", "link", "set", "lo", "up"])
        }
        try nodes.map { "\($0) slots=\(slots)\n" }.joined().write(to: hostfile, atomically: true, encoding: .utf8)
    }

    /// The bridge side of node `index`'s link (setting it down cuts the node off).
    func hostLink(_ index: Int) -> String { "\(prefix)v\(index + 1)" }

    /// Starts `launch/cluster.sh` on the first node with this hostfile, the namespace launch
    /// agent and the nodes' network, then `arguments`.
    func launchCluster(_ arguments: [String]) throws -> Launched {
        let script = ClusterFixture.script("cluster.sh")
        return try Launched(
            [
                "ip", "netns", "exec", nodes[0], "unshare", "--uts", "sh", "-c", "hostname \"$0\" && exec \"$@\"",
                nodes[0], script, "--hostfile", hostfile.path, "--interface", subnet,
                "--launch-agent", ClusterFixture.script("netns-agent.sh"),
            ] + arguments)
    }

    /// The node (namespace) process `pid` runs in, from its network namespace's inode.
    func node(of pid: pid_t) -> String? {
        guard let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/net") else { return nil }
        return nodes.first { node in
            var info = stat()
            return stat("/var/run/netns/\(node)", &info) == 0 && link == "net:[\(info.st_ino)]"
        }
    }

    /// Processes running inside namespace `node`.
    func processesInside(_ node: String) -> [pid_t] {
        let output = (try? ClusterFixture.command(["ip", "netns", "pids", node], timeout: 10).output) ?? ""
        return output.split(whereSeparator: \.isWhitespace).compactMap { pid_t($0) }
    }

    /// Processes running inside any of the namespaces.
    func processesInside() -> [pid_t] { nodes.flatMap(processesInside) }

    /// Removes the namespaces and links of test processes that no longer exist (killed before
    /// their teardown ran): names `pkPID…` with a dead PID.
    static func removeLeftovers() {
        func isLeftover(_ name: Substring) -> Bool {
            guard name.hasPrefix("pk"), let owner = pid_t(name.dropFirst(2).prefix { $0.isNumber }) else { return false }
            let rest = name.dropFirst(2).drop { $0.isNumber }
            guard rest == "br" || ((rest.hasPrefix("n") || rest.hasPrefix("v")) && Int(rest.dropFirst()) != nil) else { return false }
            return owner != getpid() && kill(owner, 0) != 0 && errno == ESRCH
        }
        let namespaces = (try? ClusterFixture.command(["ip", "netns", "list"], timeout: 10).output) ?? ""
        for name in namespaces.split(separator: "\n").compactMap({ $0.split(separator: " ").first }) where isLeftover(name) {
            let pids = (try? ClusterFixture.command(["ip", "netns", "pids", String(name)], timeout: 10).output) ?? ""
            pids.split(whereSeparator: \.isWhitespace).compactMap { pid_t($0) }.forEach { kill($0, SIGKILL) }
            _ = try? ClusterFixture.command(["ip", "netns", "delete", String(name)], timeout: 10)
        }
        let links = (try? ClusterFixture.command(["ip", "-o", "link", "show"], timeout: 10).output) ?? ""
        // "12: pk123br: <…" or "13: pk123v1@if2: <…"
        for line in links.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 1, let name = fields[1].split(separator: "@").first?.split(separator: ":").first,
                isLeftover(name)
            else { continue }
            _ = try? ClusterFixture.command(["ip", "link", "delete", String(name)], timeout: 10)
        }
    }

    /// Kills what still runs in the namespaces, then removes them and the bridge (the veth
    /// pairs go with their namespaces). Tolerates pieces that were never created.
    func tearDown() {
        let existing = (try? ClusterFixture.command(["ip", "netns", "list"], timeout: 10).output) ?? ""
        let names = Set(existing.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) })
        for node in nodes where names.contains(node) {
            for pid in (try? ClusterFixture.command(["ip", "netns", "pids", node], timeout: 10).output)?
                .split(whereSeparator: \.isWhitespace).compactMap({ pid_t($0) }) ?? []
            {
                kill(pid, SIGKILL)
            }
            _ = try? ClusterFixture.command(["ip", "netns", "delete", node], timeout: 10)
        }
        for index in nodes.indices { _ = try? ClusterFixture.command(["ip", "link", "delete", hostLink(index)], timeout: 10) }
        _ = try? ClusterFixture.command(["ip", "link", "delete", bridge], timeout: 10)
    }
}
