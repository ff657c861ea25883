import Foundation
import XCTest

/// A real multi-node job on one machine: three network namespaces are the nodes, mpirun starts
/// its daemons in them through `launch/netns-agent.sh`, ranks talk TCP across nodes and shared
/// memory within one, and the training equals the same training on one node.
final class MultiNodeTests: XCTestCase {
    /// `launch/cluster.sh` runs 2 ranks on each of 3 namespace nodes; every rank reports its node;
    /// the PS-KD training agrees on the teacher table and its final parameters are bit-identical
    /// to 6 ranks on one node with `launch/local.sh`.
    func testTrainingAcrossNamespaceNodesEqualsOneNode() throws {
        try ClusterFixture.requireRoot()
        let scratch = try ClusterFixture.scratch(self, "multinode")
        let cluster = try NamespaceNodes(count: 3, slots: 2, scratch: scratch, test: self)

        // Where the ranks run: `pskd info` prints each rank's node (its processor name).
        let info = try cluster.launchCluster(["--ranks-per-node", "2", "--time-limit", "60", "--command", "info"])
        XCTAssertEqual(info.waitForExit(timeout: 70), 0, info.output)
        for node in cluster.nodes {
            let ranks = info.output.split(separator: "\n").filter { $0.hasPrefix("rank ") && $0.contains("node \(node),") }
            XCTAssertEqual(ranks.count, 2, "2 ranks should run in namespace \(node):\n\(info.output)")
        }

        // The training across the nodes.
        let recipe = ClusterFixture.recipe(epochs: 2, trainSamples: 288)
        let acrossRun = scratch.appendingPathComponent("across")
        let across = try cluster.launchCluster(["--ranks-per-node", "2", "--time-limit", "200"] + recipe + ["--out", acrossRun.path])
        // While it trains: 2 ranks in each namespace, each with TCP connections to ranks of the
        // other nodes, and shared-memory segments within each node.
        XCTAssertTrue(across.waitForOutput("epoch 1/2 step 1/", timeout: 120), across.output)
        let ranks = ClusterFixture.processes(mentioning: acrossRun.path).filter {
            ClusterFixture.commandLine(of: $0)?.hasPrefix(ClusterFixture.pskd + " ") ?? false
        }
        let ranksByNode = Dictionary(grouping: ranks) { cluster.node(of: $0) ?? "this machine's namespace" }
        let peersByRank = Dictionary(uniqueKeysWithValues: ranks.map { ($0, Self.tcpPeers(of: $0)) })
        let segments = (try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? []
        XCTAssertEqual(ranksByNode.keys.sorted(), cluster.nodes, "ranks by namespace: \(ranksByNode)")
        for (index, node) in cluster.nodes.enumerated() {
            XCTAssertEqual(ranksByNode[node]?.count, 2, "ranks by namespace: \(ranksByNode)")
            for rank in ranksByNode[node] ?? [] {
                let peers = peersByRank[rank] ?? []
                XCTAssertTrue(
                    peers.contains { $0.hasPrefix("10.98.0.") && $0 != "10.98.0.\(index + 1)" },
                    "rank \(rank) in \(node) has no TCP connection to another node (peers \(peers))")
            }
            XCTAssertTrue(
                segments.contains { $0.hasPrefix("vader_segment.\(node).") },
                "no shared-memory (vader) segment of \(node) in /dev/shm: \(segments)")
        }
        let acrossStatus = across.waitForExit(timeout: 210)
        let acrossOutput = across.output
        XCTAssertEqual(acrossStatus, 0, acrossOutput)
        print("multi-node training (3 nodes × 2 ranks): \(String(format: "%.1f", across.seconds)) s")
        // The script chose TCP between nodes on the nodes' network, shared memory within, keep-alive, binding.
        for expected in [
            "--mca btl self,vader,tcp", "--mca btl_tcp_if_include \(cluster.subnet)",
            "--mca oob_tcp_if_include \(cluster.subnet)", "--mca oob_tcp_keepalive_time 5",
            "--map-by ppr:2:node:PE=1 --bind-to core", "OPENBLAS_NUM_THREADS=1",
        ] {
            XCTAssertTrue(acrossOutput.contains(expected), "cluster.sh should pass \(expected):\n\(acrossOutput)")
        }
        XCTAssertFalse(acrossOutput.contains("--oversubscribe"), "2 ranks on 2-core nodes need no oversubscription")
        for node in cluster.nodes {
            let bound = acrossOutput.split(separator: "\n").filter { $0.hasPrefix("[\(node):") && $0.contains("bound to") }
            XCTAssertEqual(bound.count, 2, "2 ranks should be bound on \(node):\n\(acrossOutput)")
        }
        let acrossHash = try XCTUnwrap(ClusterFixture.teacherHash(acrossOutput), acrossOutput)
        XCTAssertTrue(acrossOutput.contains("identical on all 6 rank(s)"), acrossOutput)

        // The same training with the same number of ranks on one node.
        let oneNodeRun = scratch.appendingPathComponent("one-node")
        let oneNode = try ClusterFixture.command(
            [ClusterFixture.script("local.sh"), "-n", "6", "--time-limit", "200"]
                + recipe + ["--out", oneNodeRun.path], timeout: 210)
        XCTAssertEqual(oneNode.status, 0, oneNode.output)
        XCTAssertEqual(ClusterFixture.teacherHash(oneNode.output), acrossHash, "teacher tables differ from one node's")
        let acrossModel = try Data(contentsOf: ClusterFixture.checkpointFile(acrossRun, epoch: 2))
        let oneNodeModel = try Data(contentsOf: ClusterFixture.checkpointFile(oneNodeRun, epoch: 2))
        XCTAssertTrue(acrossModel == oneNodeModel, "final parameters across nodes differ from one node's")
        XCTAssertEqual(ClusterFixture.metricEpochs(acrossRun), [1, 2])
        XCTAssertTrue(
            ClusterFixture.wait(timeout: 10) { cluster.processesInside().isEmpty },
            "processes left in the namespaces: \(cluster.processesInside())")
    }

    /// The remote IPv4 addresses of the established TCP connections a process holds, read from
    /// its network namespace's /proc/PID/net/tcp and its socket descriptors.
    static func tcpPeers(of pid: pid_t) -> [String] {
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        let sockets = Set(
            descriptors.compactMap { fd -> String? in
                guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"),
                    target.hasPrefix("socket:[")
                else { return nil }
                return String(target.dropFirst("socket:[".count).dropLast())
            })
        let table = (try? String(contentsOfFile: "/proc/\(pid)/net/tcp", encoding: .utf8)) ?? ""
        return table.split(separator: "\n").dropFirst().compactMap { line -> String? in
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …
            let fields = line.split(separator: " ")
            guard fields.count > 9, fields[3] == "01", sockets.contains(String(fields[9])),
                let address = fields[2].split(separator: ":").first, let value = UInt32(address, radix: 16)
            else { return nil }
            return [0, 8, 16, 24].map { String((value >> $0) & 0xFF) }.joined(separator: ".")  // stored little-endian
        }
    }
}
