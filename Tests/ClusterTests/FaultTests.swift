import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Faults through the launch scripts, with nothing lost: a killed rank, a node cut off, a
/// corrupt checkpoint, a loss that diverges.
final class FaultTests: XCTestCase {
    private func local(_ ranks: Int, _ arguments: [String]) -> [String] {
        [ClusterFixture.script("local.sh"), "-n", String(ranks), "--time-limit", "200"] + arguments
    }

    /// SIGKILL to one rank in the middle of epoch 2: the job ends non-zero within 10 s with no
    /// process left, and `--resume` finishes with final parameters bit-identical to a run that
    /// was never interrupted.
    func testKilledRankEndsJobAndResumeIsBitIdentical() throws {
        try ClusterFixture.requireRoot()
        try ClusterFixture.requireTools(["mpirun", "timeout"])
        let scratch = try ClusterFixture.scratch(self, "killed-rank")
        let recipe = ClusterFixture.recipe(epochs: 3, trainSamples: 576)
        let reference = scratch.appendingPathComponent("uninterrupted"), run = scratch.appendingPathComponent("killed")

        let uninterrupted = try ClusterFixture.command(local(2, recipe + ["--out", reference.path]), timeout: 210)
        XCTAssertEqual(uninterrupted.status, 0, uninterrupted.output)

        let job = try Launched(local(2, recipe + ["--out", run.path]))
        XCTAssertTrue(job.waitForOutput("epoch 2/3 step", timeout: 120), job.output)
        let ranks = ClusterFixture.processes(mentioning: run.path).filter {
            ClusterFixture.commandLine(of: $0)?.hasPrefix(ClusterFixture.pskd + " ") ?? false
        }
        let victim = try XCTUnwrap(
            ranks.first { ClusterFixture.environment(of: $0, "OMPI_COMM_WORLD_RANK") == "1" },
            "rank 1 not found among \(ranks)")
        let killed = Date()
        kill(victim, SIGKILL)
        let status = job.waitForExit(timeout: 60)
        let abortSeconds = (job.exitTime ?? Date()).timeIntervalSince(killed)
        print(
            "killed rank 1: the job ended with status \(status.map(String.init) ?? "none") after \(String(format: "%.2f", abortSeconds)) s")
        XCTAssertNotNil(status, "the job did not end within 60 s of a killed rank")
        XCTAssertNotEqual(status, 0, job.output)
        XCTAssertLessThan(abortSeconds, 10, job.output)
        XCTAssertTrue(
            ClusterFixture.wait(timeout: 5) { ClusterFixture.processes(mentioning: run.path).isEmpty },
            "processes left: \(ClusterFixture.processes(mentioning: run.path).compactMap(ClusterFixture.commandLine))")
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: ClusterFixture.checkpointFile(run, epoch: 2, "COMPLETE").path),
            "the rank was killed after epoch 2 was complete; kill it earlier")

        let resumed = try Launched(local(2, recipe + ["--out", run.path, "--resume"]))
        let resumedStatus = resumed.waitForExit(timeout: 210)
        let resumedOutput = resumed.output
        XCTAssertEqual(resumedStatus, 0, resumedOutput)
        XCTAssertTrue(resumedOutput.contains("resumed from \(run.path)/checkpoints/epoch-0001 (epoch 1 of 3 done)"), resumedOutput)
        print(
            "relaunch with --resume finished in \(String(format: "%.2f", resumed.seconds)) s "
                + "(the uninterrupted 3 epochs took \(String(format: "%.2f", uninterrupted.seconds)) s)")
        XCTAssertTrue(
            try Data(contentsOf: ClusterFixture.checkpointFile(run, epoch: 3))
                == Data(contentsOf: ClusterFixture.checkpointFile(reference, epoch: 3)),
            "final parameters after kill and resume differ from the uninterrupted run's")
        XCTAssertEqual(ClusterFixture.teacherHash(resumedOutput), ClusterFixture.teacherHash(uninterrupted.output))
        XCTAssertEqual(ClusterFixture.metricEpochs(run), [1, 2, 3], "one metrics line per epoch, none repeated")
    }

    /// One node's link goes down during training (3 namespace nodes × 2 ranks): the out-of-band
    /// keep-alive set by `launch/cluster.sh` aborts the job within 30 s instead of hanging.
    func testLostNodeAbortsWithin30Seconds() throws {
        try ClusterFixture.requireRoot()
        let scratch = try ClusterFixture.scratch(self, "lost-node")
        let cluster = try NamespaceNodes(count: 3, slots: 2, scratch: scratch, test: self)
        let job = try cluster.launchCluster(
            ["--ranks-per-node", "2", "--time-limit", "120"]
                + ClusterFixture.recipe(epochs: 50, trainSamples: 288)
                + ["--out", scratch.appendingPathComponent("run").path])
        XCTAssertTrue(job.waitForOutput("epoch 1/50 step 2/", timeout: 120), job.output)
        try ClusterFixture.mustRun(["ip", "link", "set", cluster.hostLink(2), "down"])
        let cut = Date()
        let status = job.waitForExit(timeout: 60)
        let abortSeconds = (job.exitTime ?? Date()).timeIntervalSince(cut)
        print(
            "cut \(cluster.nodes[2])'s link: the job ended with status \(status.map(String.init) ?? "none") after \(String(format: "%.2f", abortSeconds)) s"
        )
        XCTAssertNotNil(status, "the job still runs 60 s after a node was cut off:\n\(job.output)")
        XCTAssertNotEqual(status, 0, job.output)
        XCTAssertLessThan(abortSeconds, 30, job.output)
        XCTAssertTrue(job.output.contains("lost communication"), job.output)
        XCTAssertTrue(
            ClusterFixture.wait(timeout: 30) { cluster.processesInside().isEmpty },
            "processes left in the namespaces 30 s after the abort: \(cluster.processesInside())")
    }

    /// The newest checkpoint is corrupt (a flipped byte) and the one before is truncated:
    /// `--resume` says so for each and continues from the newest one that verifies.
    func testCorruptNewestCheckpointsFallBackWithWarning() throws {
        try ClusterFixture.requireRoot()
        try ClusterFixture.requireTools(["mpirun", "timeout"])
        let scratch = try ClusterFixture.scratch(self, "corrupt")
        let run = scratch.appendingPathComponent("run")
        let recipe = ClusterFixture.recipe(epochs: 4, trainSamples: 288) + ["--out", run.path]
        let first = try ClusterFixture.command(local(2, recipe + ["--stop-after", "3"]), timeout: 210)
        XCTAssertEqual(first.status, 0, first.output)

        let state = ClusterFixture.checkpointFile(run, epoch: 3, "training-state.safetensors")
        var bytes = try Data(contentsOf: state)
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: state)
        let model = ClusterFixture.checkpointFile(run, epoch: 2)
        try Data(contentsOf: model).prefix(1000).write(to: model)

        let resumed = try ClusterFixture.command(local(2, recipe + ["--resume"]), timeout: 210)
        XCTAssertEqual(resumed.status, 0, resumed.output)
        let warnings = resumed.output.split(separator: "\n").filter { $0.contains("warning: skipping checkpoint") }
        XCTAssertEqual(warnings.count, 2, resumed.output)
        XCTAssertTrue(warnings.first?.contains("epoch-0003") ?? false, resumed.output)
        XCTAssertTrue(warnings.last?.contains("epoch-0002") ?? false, resumed.output)
        XCTAssertTrue(resumed.output.contains("resumed from \(run.path)/checkpoints/epoch-0001 (epoch 1 of 4 done)"), resumed.output)
        XCTAssertEqual(ClusterFixture.metricEpochs(run), [1, 2, 3, 4])
    }

    /// Training diverges (rank 1's parameters become NaN at step 3 of epoch 2, a test-only fault,
    /// and the gradient all-reduce carries the NaN everywhere, as an overflow would): every rank
    /// stops at the same step with a clear message, the job fails, the last good checkpoint stays
    /// and a resume continues from it. (`--resume --lr 1e30` is refused: a resumed run keeps its
    /// settings, and so is a config.json edited between runs, see CheckpointResumeTests.)
    func testNonFiniteLossStopsAllRanksAndKeepsLastCheckpoint() throws {
        try ClusterFixture.requireRoot()
        try ClusterFixture.requireTools(["mpirun", "timeout"])
        let scratch = try ClusterFixture.scratch(self, "nan")
        let run = scratch.appendingPathComponent("run")
        let recipe = ClusterFixture.recipe(epochs: 3, trainSamples: 288) + ["--out", run.path]
        let first = try ClusterFixture.command(local(3, recipe + ["--stop-after", "1"]), timeout: 210)
        XCTAssertEqual(first.status, 0, first.output)

        let refused = try ClusterFixture.command(local(3, recipe + ["--resume", "--lr", "1e30"]), timeout: 210)
        XCTAssertNotEqual(refused.status, 0, refused.output)
        XCTAssertTrue(refused.output.contains("lr (the run: 0.05, now: 1e+30)"), refused.output)
        let diverged = try ClusterFixture.command(
            local(3, recipe + ["--resume"]), timeout: 210, environment: ["PSKD_TEST_FAULT": "nan-parameters rank=1 epoch=2 step=3"])
        print("diverging run: ended with status \(diverged.status) after \(String(format: "%.2f", diverged.seconds)) s")
        XCTAssertNotEqual(diverged.status, 0, diverged.output)
        XCTAssertNotEqual(diverged.status, -1, "the diverging run did not end:\n\(diverged.output)")
        // "[rank R] error: the loss became nan at epoch E, step S: lower --lr or check the data"
        let reports = diverged.output.split(separator: "\n").filter { $0.contains("error: the loss became") }
        XCTAssertFalse(reports.isEmpty, diverged.output)
        let messages = Set(reports.map { $0.components(separatedBy: "] ").dropFirst().joined(separator: "] ") })
        print("diverging run: \(reports.count) of 3 ranks reported before the abort: \(messages.sorted())")
        XCTAssertEqual(messages.count, 1, "ranks stopped at different steps or for different reasons:\n\(diverged.output)")
        XCTAssertTrue(messages.first?.contains("the loss became nan at epoch 2, step 3") ?? false, diverged.output)
        XCTAssertTrue(messages.first?.contains("lower --lr") ?? false, diverged.output)

        XCTAssertFalse(
            FileManager.default.fileExists(atPath: run.appendingPathComponent("checkpoints/epoch-0002").path),
            "a diverged epoch must not be checkpointed")
        XCTAssertEqual(ClusterFixture.metricEpochs(run), [1], "a diverged epoch must not be logged")
        let recovered = try ClusterFixture.command(local(3, recipe + ["--resume"]), timeout: 210)
        XCTAssertEqual(recovered.status, 0, recovered.output)
        XCTAssertEqual(ClusterFixture.metricEpochs(run), [1, 2, 3])
    }
}
