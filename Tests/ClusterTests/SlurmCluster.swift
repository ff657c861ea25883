import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A one-node Slurm cluster on this machine for one test: slurmctld and slurmd from Debian's
/// `slurm-wlm` with a throw-away configuration (no munge: `auth/none`, `cred/none`), state,
/// spool and logs in the test's scratch folder, ports of its own. Stopped at the end of the test,
/// also when it fails, after cancelling its jobs.
final class SlurmCluster {
    let directory: URL
    let configuration: URL
    private var daemons: [Launched] = []

    /// The environment that points Slurm's clients at this cluster.
    var environment: [String: String] { ["SLURM_CONF": configuration.path] }

    init(scratch: URL, test: XCTestCase) throws {
        try ClusterFixture.requireTools(["slurmctld", "slurmd", "sbatch", "scontrol", "scancel", "squeue", "sinfo", "mpirun"])
        directory = scratch.appendingPathComponent("slurm")
        configuration = directory.appendingPathComponent("slurm.conf")
        for folder in ["state", "spool"] {
            try FileManager.default.createDirectory(at: directory.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        // This machine as Slurm sees it: "NodeName=… CPUs=… Boards=… … RealMemory=…".
        let node = try ClusterFixture.mustRun(["slurmd", "-C"]).split(separator: "\n")
            .first { $0.hasPrefix("NodeName=") }.map(String.init)
        guard let node, let name = node.split(separator: " ").first?.dropFirst("NodeName=".count) else {
            throw ClusterTestError("`slurmd -C` printed no NodeName line")
        }
        let port = 20_000 + Int(getpid() % 10_000) * 2
        let dir = directory.path
        let text = """
            ClusterName=pskdtest
            SlurmctldHost=\(name)(127.0.0.1)
            SlurmctldPort=\(port)
            SlurmdPort=\(port + 1)
            SlurmUser=root
            SlurmdUser=root
            AuthType=auth/none
            CredType=cred/none
            StateSaveLocation=\(dir)/state
            SlurmdSpoolDir=\(dir)/spool
            SlurmctldPidFile=\(dir)/slurmctld.pid
            SlurmdPidFile=\(dir)/slurmd.pid
            SlurmctldLogFile=\(dir)/slurmctld.log
            SlurmdLogFile=\(dir)/slurmd.log
            ProctrackType=proctrack/linuxproc
            TaskPlugin=task/none
            SelectType=select/cons_tres
            SelectTypeParameters=CR_Core
            MpiDefault=none
            MailProg=/bin/true
            ReturnToService=2
            KillWait=5
            SchedulerType=sched/builtin
            \(node) NodeAddr=127.0.0.1 State=UNKNOWN
            PartitionName=pskd Nodes=\(name) Default=YES MaxTime=INFINITE State=UP

            """
        try text.write(to: configuration, atomically: true, encoding: .utf8)
        test.addTeardownBlock { [self] in stop() }
        daemons.append(try Launched(["slurmctld", "-D", "-c", "-f", configuration.path], environment: environment))
        daemons.append(try Launched(["slurmd", "-D", "-f", configuration.path], environment: environment))
        let idle = ClusterFixture.wait(timeout: 30) {
            (try? ClusterFixture.command(["sinfo", "-h", "-o", "%t"], timeout: 10, environment: environment).output)?
                .trimmingCharacters(in: .whitespacesAndNewlines) == "idle"
        }
        guard idle else { throw ClusterTestError("the Slurm node did not become idle within 30 s\n\(logs)") }
    }

    /// The daemons' output and the tails of their logs, for failure messages.
    var logs: String {
        let tails = ["slurmctld.log", "slurmd.log"].map { name -> String in
            let text = (try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)) ?? ""
            return "--- \(name):\n" + text.split(separator: "\n").suffix(15).joined(separator: "\n")
        }
        return (daemons.map(\.output) + tails).joined(separator: "\n")
    }

    /// Submits `launch/slurm.sbatch` from the repository with `options` for sbatch and
    /// `arguments` for `pskd train`; returns the job id.
    func submit(_ options: [String], _ arguments: [String], environment extra: [String: String]) throws -> String {
        let output = try ClusterFixture.mustRun(
            ["sbatch", "--parsable"] + options + [ClusterFixture.script("slurm.sbatch")] + arguments,
            environment: environment.merging(extra) { $1 })
        guard let id = output.split(separator: "\n").last?.split(separator: ";").first.map(String.init), Int(id) != nil else {
            throw ClusterTestError("sbatch printed no job id: \(output)")
        }
        return id
    }

    /// The fields of `scontrol show job -o ID` (JobState, Restarts, ExitCode, …).
    func job(_ id: String) -> [String: String] {
        let line = (try? ClusterFixture.command(["scontrol", "show", "job", "-o", id], timeout: 10, environment: environment).output) ?? ""
        var fields: [String: String] = [:]
        for word in line.split(whereSeparator: \.isWhitespace) {
            let parts = word.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        return fields
    }

    /// Polls the job's state every 250 ms until it is one of `states`; returns it, or the last
    /// state seen after `timeout` seconds.
    @discardableResult
    func waitForState(_ id: String, in states: Set<String>, timeout: Double) -> String {
        var state = ""
        ClusterFixture.wait(timeout: timeout) {
            state = job(id)["JobState"] ?? ""
            if states.contains(state) { return true }
            usleep(200_000)
            return false
        }
        return state
    }

    /// Cancels every job of this cluster, waits for them to go, and stops the daemons.
    func stop() {
        guard !daemons.isEmpty else { return }
        let queue = (try? ClusterFixture.command(["squeue", "-h", "-o", "%i"], timeout: 10, environment: environment).output) ?? ""
        let jobs = queue.split(whereSeparator: \.isWhitespace).map(String.init)
        if !jobs.isEmpty {
            _ = try? ClusterFixture.command(["scancel"] + jobs, timeout: 10, environment: environment)
            ClusterFixture.wait(timeout: 20) {
                ((try? ClusterFixture.command(["squeue", "-h", "-o", "%i"], timeout: 10, environment: environment).output) ?? "")
                    .trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
            }
        }
        for daemon in daemons.reversed() where daemon.exitTime == nil {
            kill(daemon.pid, SIGTERM)
            if daemon.waitForExit(timeout: 10) == nil { daemon.kill() }
        }
        daemons = []
    }
}
