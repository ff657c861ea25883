import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The stall watchdog with real processes: a stopped rank (SIGSTOP, as a hung node looks from
/// outside), a stopped rank 0, a rank that spins without reaching the next collective and a rank
/// cut off on another node each end the job within the timeout + 10 s, with exit code 75, the
/// rank named, `stall.json` written and no process left; a short pause, a slow evaluation and
/// packets from strangers do not.
final class StallTests: XCTestCase {
    private static let stallExit: Int32 = 75

    private func local(_ ranks: Int, _ arguments: [String]) -> [String] {
        [ClusterFixture.script("local.sh"), "-n", String(ranks), "--time-limit", "300"] + arguments
    }

    /// Stops `rank` with SIGSTOP once training is under way and checks that the watchdog ends
    /// the job within `bound` seconds, naming it; returns the seconds it took.
    @discardableResult
    private func stopRank(
        _ rank: Int, of job: Launched, run: URL, bound: Double, waitFor progress: String,
        leftOver: () -> [pid_t]
    ) throws -> Double {
        XCTAssertTrue(job.waitForOutput(progress, timeout: 120), job.output)
        let victim = try ClusterFixture.rankProcess(rank, of: run)
        kill(victim, SIGSTOP)
        let stopped = Date()
        let status = job.waitForExit(timeout: bound + 30)
        let seconds = (job.exitTime ?? Date()).timeIntervalSince(stopped)
        print(
            "SIGSTOP to rank \(rank): the job ended with status \(status.map(String.init) ?? "none") after \(String(format: "%.1f", seconds)) s"
        )
        XCTAssertEqual(status, Self.stallExit, job.output)
        XCTAssertLessThan(seconds, bound, job.output)
        XCTAssertTrue(job.output.contains("pskd: rank \(rank) (host "), job.output)
        XCTAssertTrue(job.output.contains("pid \(victim)) has made no progress for"), job.output)
        try assertStallReport(run, names: rank)
        XCTAssertTrue(
            ClusterFixture.wait(timeout: 10) { leftOver().isEmpty },
            "processes left: \(leftOver().compactMap(ClusterFixture.commandLine))")
        return seconds
    }

    private func stallReport(_ run: URL) throws -> [String: Any] {
        let data = try Data(contentsOf: run.appendingPathComponent("stall.json"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    private func assertStallReport(_ run: URL, names rank: Int) throws {
        let report = try stallReport(run)
        XCTAssertEqual(report["rank"] as? Int, rank)
        XCTAssertEqual(report["exit_code"] as? Int, Int(Self.stallExit))
        let ranks = try XCTUnwrap(report["ranks"] as? [[String: Any]])
        XCTAssertEqual(ranks.compactMap { $0["rank"] as? Int }, Array(0..<ranks.count))
        XCTAssertTrue(ranks.allSatisfy { $0["phase"] is String && $0["pid"] is Int }, "\(ranks)")
    }

    /// With the default timeout (a minute for these models), a stopped rank 1 ends the job
    /// within 120 s; `launch/local.sh` says how to continue, and that command finishes the run.
    func testStoppedRankEndsJobWithinTwoMinutesByDefaultAndResumes() throws {
        try ClusterFixture.requireRoot()
        let scratch = try ClusterFixture.scratch(self, "stall-default")
        let run = scratch.appendingPathComponent("run")
        let arguments = local(2, ClusterFixture.recipe(epochs: 3, trainSamples: 960) + ["--out", run.path])
        let job = try Launched(arguments)
        let seconds = try stopRank(
            1, of: job, run: run, bound: 120, waitFor: "epoch 2/3 step",
            leftOver: { ClusterFixture.processes(mentioning: run.path) })
        XCTAssertGreaterThan(seconds, 55, "the default is a minute: \(job.output)")
        XCTAssertTrue(job.output.contains("; the other rank is waiting in "), job.output)
        XCTAssertTrue(job.output.contains("Continue from the newest complete checkpoint with:"), job.output)
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: ClusterFixture.checkpointFile(run, epoch: 1, "COMPLETE").path),
            "the last complete checkpoint is kept")
        let resumed = try ClusterFixture.command(arguments + ["--resume"], timeout: 300)
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.output.contains("resumed from \(run.path)/checkpoints/epoch-000"), resumed.output)
        XCTAssertEqual(ClusterFixture.metricEpochs(run), [1, 2, 3])
    }

    /// Rank 0 itself stopped: the watcher (the last rank) ends the job.
    func testStoppedRankZeroIsCaughtByTheWatcher() throws {
        try ClusterFixture.requireRoot()
        let scratch = try ClusterFixture.scratch(self, "stall-rank0")
        let run = scratch.appendingPathComponent("run")
        let job = try Launched(
            local(3, ClusterFixture.recipe(epochs: 50, trainSamples: 960) + ["--out", run.path, "--stall-timeout", "5"]))
        try stopRank(
            0, of: job, run: run, bound: 15, waitFor: "epoch 1: ",
            leftOver: { ClusterFixture.processes(mentioning: run.path) })
        XCTAssertTrue(job.output.contains("[rank 2] pskd: rank 0 (host"), "the watcher, rank 2, acts:\n\(job.output)")
        // Open MPI wakes the stopped rank (SIGCONT) while it ends the job: rank 0 knows it stood
        // still and judges nobody, so no second verdict and stall.json is the watcher's.
        XCTAssertFalse(job.output.contains("[rank 0] pskd: rank "), "the woken rank 0 judged from its stale view:\n\(job.output)")
        XCTAssertFalse(job.output.contains("[rank 1] pskd: rank "), job.output)
        XCTAssertEqual(try stallReport(run)["detected_by_rank"] as? Int, 2)
    }

    /// Every rank of the job stopped at once (Slurm's `scontrol suspend`, a preempting scheduler,
    /// a paused machine) for twice the timeout, then continued: no alarm; each rank says it was
    /// suspended, and the run finishes as if nothing happened.
    func testWholeJobSuspendedAndResumedGoesOn() throws {
        try ClusterFixture.requireRoot()
        let scratch = try ClusterFixture.scratch(self, "stall-suspend-all")
        let run = scratch.appendingPathComponent("run")
        let job = try Launched(local(2, ClusterFixture.recipe(epochs: 4, trainSamples: 960) + ["--out", run.path, "--stall-timeout", "5"]))
        XCTAssertTrue(job.waitForOutput("epoch 1: ", timeout: 120), job.output)
        let ranks = try [0, 1].map { try ClusterFixture.rankProcess($0, of: run) }
        ranks.forEach { kill($0, SIGSTOP) }
        sleep(10)
        ranks.forEach { kill($0, SIGCONT) }
        XCTAssertEqual(job.waitForExit(timeout: 200), 0, job.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.appendingPathComponent("stall.json").path), job.output)
        XCTAssertTrue(job.output.contains("this rank was suspended for 1"), "10 s, give or take a second:\n\(job.output)")
        XCTAssertEqual(ClusterFixture.metricEpochs(run), Array(1...4))
    }

    /// A rank stopped 3 s of every 3.3 s — each pause shorter than the 5 s timeout — still
    /// completes steps whenever it runs: it is slow, not stalled, and the job finishes.
    func testSlowRankThatKeepsAdvancingIsNoStall() throws {
        try ClusterFixture.requireRoot()
        let scratch = try ClusterFixture.scratch(self, "stall-slow")
        let run = scratch.appendingPathComponent("run")
        let job = try Launched(
            local(2, ClusterFixture.recipe(epochs: 8, trainSamples: 960) + ["--out", run.path, "--stall-timeout", "5"]))
        XCTAssertTrue(job.waitForOutput("epoch 1: ", timeout: 120), job.output)
        let victim = try ClusterFixture.rankProcess(1, of: run)
        for _ in 0..<10 where job.exitTime == nil {
            kill(victim, SIGSTOP)
            usleep(3_000_000)
            kill(victim, SIGCONT)
            usleep(300_000)
        }
        XCTAssertNil(job.exitTime, "the job must outlast the pauses to show anything:\n\(job.output)")
        XCTAssertEqual(job.waitForExit(timeout: 300), 0, job.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.appendingPathComponent("stall.json").path), job.output)
    }

    /// A rank that busy-loops (test-only fault injection) keeps its heartbeat but never reaches
    /// the all-reduce: it is named as running without progress.
    func testSpinningRankIsNamed() throws {
        try ClusterFixture.requireRoot()
        let scratch = try ClusterFixture.scratch(self, "stall-spin")
        let run = scratch.appendingPathComponent("run")
        let job = try Launched(
            local(2, ClusterFixture.recipe(epochs: 3, trainSamples: 960) + ["--out", run.path, "--stall-timeout", "5"]),
            environment: ["PSKD_TEST_FAULT": "spin rank=1 epoch=2 step=3"])
        XCTAssertTrue(job.waitForOutput("epoch 2/3 step 2/", timeout: 120), job.output)
        let status = job.waitForExit(timeout: 40)
        XCTAssertEqual(status, Self.stallExit, job.output)
        XCTAssertTrue(job.output.contains("pskd: rank 1 (host "), job.output)
        XCTAssertTrue(job.output.contains("phase forward/backward, epoch 2, step 3; its heartbeat goes on"), job.output)
        XCTAssertTrue(job.output.contains("the other rank is waiting in all-reduce"), job.output)
        try assertStallReport(run, names: 1)
        XCTAssertTrue(ClusterFixture.wait(timeout: 10) { ClusterFixture.processes(mentioning: run.path).isEmpty })
    }

    /// A rank paused for 15 s that then goes on does not end the job under the defaults.
    func testFifteenSecondPauseIsNoStall() throws {
        try ClusterFixture.requireRoot()
        let scratch = try ClusterFixture.scratch(self, "stall-pause")
        let run = scratch.appendingPathComponent("run")
        let job = try Launched(local(2, ClusterFixture.recipe(epochs: 6, trainSamples: 960) + ["--out", run.path]))
        XCTAssertTrue(job.waitForOutput("epoch 1: ", timeout: 120), job.output)
        let victim = try ClusterFixture.rankProcess(1, of: run)
        kill(victim, SIGSTOP)
        sleep(15)
        kill(victim, SIGCONT)
        XCTAssertEqual(job.waitForExit(timeout: 200), 0, job.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.appendingPathComponent("stall.json").path), job.output)
        XCTAssertEqual(ClusterFixture.metricEpochs(run), Array(1...6))
    }

    /// Evaluation far longer than a short timeout (rank 1 sleeps before each batch while rank 0
    /// waits for its results) is progress, not a stall.
    func testSlowEvaluationUnderShortTimeoutIsNoStall() throws {
        try ClusterFixture.requireRoot()
        let scratch = try ClusterFixture.scratch(self, "stall-evaluation")
        let run = scratch.appendingPathComponent("run")
        let arguments = [
            "--model", "mlp", "--epochs", "1", "--batch-size", "48", "--max-train-samples", "288",
            "--max-test-samples", "1280", "--stall-timeout", "3", "--out", run.path,
        ]
        let job = try ClusterFixture.command(
            local(2, arguments), timeout: 200,
            environment: ["PSKD_TEST_FAULT": "slow-evaluation rank=1 seconds=1.5"])
        XCTAssertEqual(job.status, 0, job.output)
        XCTAssertGreaterThan(job.seconds, 7.5, "rank 1 scores 5 blocks of 128 at 1.5 s each")
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.appendingPathComponent("stall.json").path), job.output)
    }

    /// Datagrams from strangers to the observers' ports — noise, wrong sizes, heartbeat-shaped
    /// records without the job's key — change nothing: the run ends normally with the same
    /// parameters, bit for bit, as a run nobody disturbed.
    func testStrayAndForgedPacketsChangeNothing() throws {
        try ClusterFixture.requireRoot()
        let scratch = try ClusterFixture.scratch(self, "stall-packets")
        let recipe = ClusterFixture.recipe(epochs: 3, trainSamples: 960) + ["--stall-timeout", "4"]
        let reference = scratch.appendingPathComponent("quiet"), run = scratch.appendingPathComponent("disturbed")
        let quiet = try ClusterFixture.command(local(2, recipe + ["--out", reference.path]), timeout: 200)
        XCTAssertEqual(quiet.status, 0, quiet.output)

        let job = try Launched(local(2, recipe + ["--out", run.path]))
        XCTAssertTrue(job.waitForOutput("heartbeats over UDP to ", timeout: 60), job.output)
        let ports = try heartbeatPorts(job.output)
        XCTAssertEqual(ports.count, 2, job.output)
        var sent = 0
        while job.exitTime == nil && sent < 20_000 {
            for port in ports { sent += sendStrangers(to: port) }
        }
        print("sent \(sent) stray and forged datagrams to ports \(ports)")
        XCTAssertEqual(job.waitForExit(timeout: 200), 0, job.output)
        XCTAssertGreaterThan(sent, 100)
        XCTAssertTrue(job.output.contains("pskd: stall watchdog on rank 0: "), "rank 0 counts what it dropped:\n\(job.output)")
        XCTAssertTrue(job.output.contains("failed authentication, 0 replayed)"), job.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.appendingPathComponent("stall.json").path), job.output)
        XCTAssertEqual(
            try Data(contentsOf: ClusterFixture.checkpointFile(run, epoch: 3)),
            try Data(contentsOf: ClusterFixture.checkpointFile(reference, epoch: 3)))
    }

    /// The ports of "heartbeats over UDP to 127.0.0.1:P and 127.0.0.1:Q".
    private func heartbeatPorts(_ output: String) throws -> [UInt16] {
        let line = try XCTUnwrap(output.split(separator: "\n").first { $0.contains("heartbeats over UDP to ") })
        let tail = line.components(separatedBy: "heartbeats over UDP to ").last ?? ""
        return tail.components(separatedBy: " and ").compactMap { $0.split(separator: ":").last.flatMap { UInt16($0) } }
    }

    /// One round of strangers' datagrams to 127.0.0.1:`port`; returns how many were sent.
    private func sendStrangers(to port: UInt16) -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(descriptor) }
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        target.sin_port = port.bigEndian
        target.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var generator = SystemRandomNumberGenerator()
        // A heartbeat-shaped record: magic, version 2, phase forward/backward, no collective,
        // rank 1, epoch 1, step 1, progress 0, median step 0.01 s, a high sequence number, and
        // a code made without the job's key.
        var forged: [UInt8] = Array("PSKH".utf8) + [2, 2, 0, 0]
        for value: UInt32 in [1, 1, 1] { forged += withUnsafeBytes(of: value.littleEndian, Array.init) }
        forged += withUnsafeBytes(of: UInt64(0).littleEndian, Array.init)
        forged += withUnsafeBytes(of: Float(0.01).bitPattern.littleEndian, Array.init)
        forged += withUnsafeBytes(of: UInt64(1 << 40).littleEndian, Array.init)
        forged += (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let datagrams: [[UInt8]] = [
            forged,
            (0..<72).map { _ in UInt8.random(in: 0...255, using: &generator) },
            (0..<Int.random(in: 1...1400, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) },
            Array(forged.prefix(71)), forged + [0], [],
        ]
        for datagram in datagrams {
            _ = datagram.withUnsafeBytes { bytes in
                withUnsafePointer(to: &target) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(descriptor, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
        }
        usleep(2000)
        return datagrams.count
    }

    /// A long job on three namespace nodes, one rank each, with `--stall-timeout 5`.
    private func threeNodeJob(_ name: String) throws -> (NamespaceNodes, URL, Launched) {
        let scratch = try ClusterFixture.scratch(self, name)
        let cluster = try NamespaceNodes(count: 3, slots: 1, scratch: scratch, test: self)
        let run = scratch.appendingPathComponent("run")
        let job = try cluster.launchCluster(
            ["--time-limit", "200"] + ClusterFixture.recipe(epochs: 50, trainSamples: 960)
                + ["--out", run.path, "--stall-timeout", "5"])
        return (cluster, run, job)
    }

    /// Root on rank 1's node sees its heartbeats and sends datagrams from its address and port
    /// (raw sockets inside that namespace node). Forgeries — an authentic heartbeat with any one
    /// byte changed — are refused while the job runs on. Once rank 1 is stopped, its authentic
    /// heartbeats replayed every 0.2 s are refused too, so the stall is found within the timeout
    /// + 10 s, not hidden; `stall.json` counts both kinds.
    func testForgedAndReplayedHeartbeatsFromTheRanksNodeAreRefused() throws {
        try ClusterFixture.requireRoot()
        let (cluster, run, job) = try threeNodeJob("stall-attack")
        XCTAssertTrue(job.waitForOutput("epoch 1: ", timeout: 120), job.output)
        let monitor = (address: "10.98.0.1", port: try XCTUnwrap(heartbeatPorts(job.output).first))
        let attacker = try NodeAttacker(inside: cluster.nodes[1])
        var forgeries = Set<[UInt8]>()
        let toMonitor = { (datagram: NodeAttacker.Datagram) in
            datagram.source.address == "10.98.0.2" && datagram.destination.address == monitor.address
                && datagram.destination.port == monitor.port && !forgeries.contains(datagram.payload)
        }
        let seen = attacker.capture(for: 2, where: toMonitor)
        let authentic = try XCTUnwrap(seen.last, "no heartbeat of rank 1 seen on its node")
        XCTAssertEqual(authentic.payload.count, 72)

        for offset in authentic.payload.indices {
            var forged = authentic.payload
            forged[offset] ^= 0x5A
            forgeries.insert(forged)
            attacker.send(forged, from: authentic.source, to: monitor)
            usleep(5000)
        }
        sleep(1)
        XCTAssertNil(job.exitTime, "forged heartbeats ended a healthy job:\n\(job.output)")

        kill(try ClusterFixture.rankProcess(1, of: run), SIGSTOP)
        let stopped = Date()
        let replays = (seen + attacker.capture(for: 0.3, where: toMonitor)).suffix(5).map(\.payload)
        var sent = 0
        while job.exitTime == nil && Date().timeIntervalSince(stopped) < 60 {
            for payload in replays { attacker.send(payload, from: authentic.source, to: monitor) }
            sent += replays.count
            usleep(200_000)
        }
        let status = job.waitForExit(timeout: 30)
        let seconds = (job.exitTime ?? Date()).timeIntervalSince(stopped)
        print("replayed \(sent) heartbeats of stopped rank 1; the job ended with \(status.map(String.init) ?? "none") after \(seconds) s")
        XCTAssertEqual(status, Self.stallExit, job.output)
        XCTAssertLessThan(seconds, 15, job.output)
        XCTAssertTrue(job.output.contains("[rank 0] pskd: rank 1 (host \(cluster.nodes[1])"), job.output)
        let report = try stallReport(run)
        XCTAssertEqual(report["rank"] as? Int, 1)
        let rejected = try XCTUnwrap(report["rejected_datagrams"] as? [String: Int], "\(report)")
        XCTAssertGreaterThanOrEqual(rejected["unauthenticated"] ?? 0, authentic.payload.count, "every forgery")
        XCTAssertGreaterThanOrEqual(rejected["replayed"] ?? 0, 5, "the replays")
    }

    /// Three namespace nodes, one rank each: the rank on the second node is stopped; rank 0 on
    /// the first node hears its silence over the nodes' network and ends the job.
    func testStoppedRankOnAnotherNodeEndsTheJob() throws {
        try ClusterFixture.requireRoot()
        let (cluster, run, job) = try threeNodeJob("stall-nodes")
        let seconds = try stopRank(
            1, of: job, run: run, bound: 15, waitFor: "epoch 1: ",
            leftOver: { cluster.processesInside().filter { ClusterFixture.commandLine(of: $0)?.contains("pskd") ?? false } })
        XCTAssertTrue(job.output.contains("(host \(cluster.nodes[1]), pid"), "the rank's node is named:\n\(job.output)")
        XCTAssertTrue(job.output.contains("heartbeats over UDP to 10.98.0.1:"), "heartbeats use the nodes' network:\n\(job.output)")
        print("3 nodes: stopped rank 1 on \(cluster.nodes[1]); ended after \(String(format: "%.1f", seconds)) s")
    }
}
