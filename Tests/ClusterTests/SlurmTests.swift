import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `launch/slurm.sbatch` in a real one-node Slurm cluster (slurmctld + slurmd started by the test):
/// a job completes with the ranks of its allocation, a requeued job resumes from its checkpoint,
/// and a cancelled job leaves no rank behind.
final class SlurmTests: XCTestCase {
    private let finished: Set<String> = [
        "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE",
    ]

    /// A cluster, a runs folder for the job's run directories, and the environment sbatch passes on.
    private func start(_ name: String) throws -> (SlurmCluster, runs: URL, environment: [String: String]) {
        try ClusterFixture.requireRoot()
        let scratch = try ClusterFixture.scratch(self, name)
        let cluster = try SlurmCluster(scratch: scratch, test: self)
        let runs = scratch.appendingPathComponent("runs")
        return (cluster, runs, ["PSKD_RUNS": runs.path])
    }

    private func jobOutput(_ runs: URL, _ id: String) -> String {
        (try? String(contentsOf: runs.appendingPathComponent("slurm-\(id).out"), encoding: .utf8)) ?? "(no output file)"
    }

    private func options(_ runs: URL) -> [String] {
        ["-n", "2", "--output", runs.path + "/slurm-%j.out", "--chdir", ClusterFixture.root.path]
    }

    /// Starts a requeued (pending) job at once instead of after Slurm's delay, once the node has
    /// finished cleaning up after the killed instance (started earlier, slurmd refuses the job
    /// as "already killed" and it fails).
    private func startRequeuedJobNow(_ id: String, _ cluster: SlurmCluster) throws {
        let idle = ClusterFixture.wait(timeout: 60) {
            let state = (try? ClusterFixture.command(["sinfo", "-h", "-o", "%T"], environment: cluster.environment).output) ?? ""
            return state.trimmingCharacters(in: .whitespacesAndNewlines) == "idle"
        }
        XCTAssertTrue(idle, "the node did not become idle after the requeue: \(cluster.job(id))")
        sleep(2)
        try ClusterFixture.mustRun(["scontrol", "update", "JobId=\(id)", "StartTime=now"], environment: cluster.environment)
    }

    /// sbatch -n 2: the job reaches COMPLETED, mpirun took 2 ranks from the allocation (no -np),
    /// and the run directory named after the job holds the metrics of every epoch.
    func testBatchJobCompletesWithRanksOfItsAllocation() throws {
        let (cluster, runs, environment) = try start("slurm-complete")
        try FileManager.default.createDirectory(at: runs, withIntermediateDirectories: true)
        let id = try cluster.submit(options(runs), ClusterFixture.recipe(epochs: 2, trainSamples: 288), environment: environment)
        let state = cluster.waitForState(id, in: finished, timeout: 180)
        let output = jobOutput(runs, id)
        XCTAssertEqual(state, "COMPLETED", "\(cluster.job(id))\n\(output)\n\(cluster.logs)")
        XCTAssertEqual(cluster.job(id)["ExitCode"], "0:0")
        let command = output.split(separator: "\n").first { $0.hasPrefix("+ mpirun") }.map(String.init) ?? ""
        XCTAssertFalse(
            command.isEmpty || command.contains("-np") || command.contains(" -n "),
            "mpirun must take its ranks from the allocation: \(output)")
        XCTAssertTrue(command.contains("--resume"), output)
        XCTAssertTrue(output.contains("over 2 rank(s)"), output)
        XCTAssertTrue(output.contains("identical on all 2 rank(s)"), output)
        XCTAssertEqual(output.split(separator: "\n").filter { $0.contains("MCW rank") && $0.contains("bound to") }.count, 2, output)
        XCTAssertEqual(ClusterFixture.metricEpochs(runs.appendingPathComponent("slurm-\(id)")), [1, 2])
    }

    /// `scontrol requeue` after the first epoch's checkpoint: the job runs again under the same
    /// id and run directory and resumes from the checkpoint instead of starting over.
    func testRequeuedJobResumesFromCheckpoint() throws {
        let (cluster, runs, environment) = try start("slurm-requeue")
        try FileManager.default.createDirectory(at: runs, withIntermediateDirectories: true)
        let id = try cluster.submit(options(runs), ClusterFixture.recipe(epochs: 3, trainSamples: 960), environment: environment)
        let run = runs.appendingPathComponent("slurm-\(id)")
        let checkpointed = ClusterFixture.wait(timeout: 180) {
            FileManager.default.fileExists(atPath: ClusterFixture.checkpointFile(run, epoch: 1, "COMPLETE").path)
        }
        XCTAssertTrue(checkpointed, "no checkpoint after the first epoch\n\(jobOutput(runs, id))\n\(cluster.logs)")
        try ClusterFixture.mustRun(["scontrol", "requeue", id], environment: cluster.environment)
        let requeued = Date()
        // A requeued job waits about two minutes before it may start again; let it start now.
        XCTAssertEqual(cluster.waitForState(id, in: ["PENDING"], timeout: 60), "PENDING", "\(cluster.job(id))")
        try startRequeuedJobNow(id, cluster)
        let state = cluster.waitForState(id, in: finished, timeout: 180)
        let output = jobOutput(runs, id)
        XCTAssertEqual(state, "COMPLETED", "\(cluster.job(id))\n\(output)\n\(cluster.logs)")
        print("requeued job finished \(String(format: "%.1f", Date().timeIntervalSince(requeued))) s after scontrol requeue")
        XCTAssertEqual(cluster.job(id)["Restarts"], "1")
        let attempts = output.components(separatedBy: "(attempt 2)")
        XCTAssertEqual(attempts.count, 2, "the job should have run twice:\n\(output)")
        let second = attempts.last ?? ""
        XCTAssertTrue(second.contains("pskd: resumed from \(run.path)/checkpoints/epoch-000"), output)
        XCTAssertFalse(second.contains("starting from epoch 1"), output)
        XCTAssertFalse(second.contains("\nepoch 1:"), "the requeued job trained epoch 1 again:\n\(output)")
        XCTAssertEqual(ClusterFixture.metricEpochs(run), [1, 2, 3])
    }

    /// A rank stopped with SIGSTOP: the stall watchdog ends the job with exit code 75,
    /// `launch/slurm.sbatch` requeues it, and it resumes from its checkpoint to COMPLETED.
    func testStalledJobRequeuesItselfAndCompletes() throws {
        let (cluster, runs, environment) = try start("slurm-stall")
        try FileManager.default.createDirectory(at: runs, withIntermediateDirectories: true)
        let id = try cluster.submit(
            options(runs), ClusterFixture.recipe(epochs: 3, trainSamples: 960) + ["--stall-timeout", "5"],
            environment: environment)
        let run = runs.appendingPathComponent("slurm-\(id)")
        let checkpointed = ClusterFixture.wait(timeout: 180) {
            FileManager.default.fileExists(atPath: ClusterFixture.checkpointFile(run, epoch: 1, "COMPLETE").path)
        }
        XCTAssertTrue(checkpointed, "no checkpoint after the first epoch\n\(jobOutput(runs, id))\n\(cluster.logs)")
        let rank1 = ClusterFixture.processes(mentioning: run.path).first {
            (ClusterFixture.commandLine(of: $0)?.hasPrefix(ClusterFixture.pskd + " ") ?? false)
                && ClusterFixture.environment(of: $0, "OMPI_COMM_WORLD_RANK") == "1"
        }
        let victim = try XCTUnwrap(rank1, "rank 1 not found\n\(jobOutput(runs, id))")
        kill(victim, SIGSTOP)
        // The job requeues itself; a requeued job waits about two minutes before it may start again: let it start now.
        XCTAssertEqual(cluster.waitForState(id, in: ["PENDING"], timeout: 60), "PENDING", "\(cluster.job(id))\n\(jobOutput(runs, id))")
        try startRequeuedJobNow(id, cluster)
        let state = cluster.waitForState(id, in: finished, timeout: 180)
        let output = jobOutput(runs, id)
        XCTAssertEqual(state, "COMPLETED", "\(cluster.job(id))\n\(output)\n\(cluster.logs)")
        XCTAssertEqual(cluster.job(id)["Restarts"], "1")
        XCTAssertTrue(output.contains("pskd: rank 1 (host "), output)
        XCTAssertTrue(output.contains("launch/slurm.sbatch: the stall watchdog ended the job"), output)
        let second = output.components(separatedBy: "(attempt 2)").last ?? ""
        XCTAssertTrue(second.contains("pskd: resumed from \(run.path)/checkpoints/epoch-000"), output)
        XCTAssertEqual(ClusterFixture.metricEpochs(run), [1, 2, 3])
        // The resumed attempt moved the first attempt's stall report aside (stall-<UTC time>.json).
        let files = try FileManager.default.contentsOfDirectory(atPath: run.path)
        XCTAssertEqual(files.filter { $0.hasPrefix("stall-") && $0.hasSuffix(".json") }.count, 1, "\(files)")
        XCTAssertFalse(files.contains("stall.json"), "the second attempt did not stall: \(files)")
    }

    /// `scancel` on a running job: it ends CANCELLED and none of its processes is left.
    func testCancelledJobLeavesNoRank() throws {
        let (cluster, runs, environment) = try start("slurm-cancel")
        try FileManager.default.createDirectory(at: runs, withIntermediateDirectories: true)
        let id = try cluster.submit(options(runs), ClusterFixture.recipe(epochs: 100, trainSamples: 960), environment: environment)
        let run = runs.appendingPathComponent("slurm-\(id)")
        let training = ClusterFixture.wait(timeout: 180) { jobOutput(runs, id).contains("epoch 1/100 step") }
        XCTAssertTrue(training, "the job did not start training\n\(jobOutput(runs, id))\n\(cluster.logs)")
        let ranks = ClusterFixture.processes(mentioning: run.path).filter {
            ClusterFixture.commandLine(of: $0)?.hasPrefix(ClusterFixture.pskd + " ") ?? false
        }
        XCTAssertEqual(ranks.count, 2, "2 ranks should run: \(ranks.compactMap(ClusterFixture.commandLine))")
        try ClusterFixture.mustRun(["scancel", id], environment: cluster.environment)
        let cancelled = Date()
        XCTAssertEqual(cluster.waitForState(id, in: finished, timeout: 60), "CANCELLED", "\(cluster.job(id))")
        let gone = ClusterFixture.wait(timeout: 30) { ClusterFixture.processes(mentioning: run.path).isEmpty }
        print("scancel: every process of the job gone after \(String(format: "%.2f", Date().timeIntervalSince(cancelled))) s")
        XCTAssertTrue(gone, "left behind: \(ClusterFixture.processes(mentioning: run.path).compactMap(ClusterFixture.commandLine))")
    }
}
