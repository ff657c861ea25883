import Foundation
import XCTest

/// The launch scripts check their own options before starting anything: a count that is not a
/// positive whole number, or an option without its value, is refused with a message naming the
/// script and the option, and exit status 2 (no bash arithmetic error, no `unbound variable`, no
/// job started with a default instead).
final class LaunchOptionTests: XCTestCase {
    /// Runs a launch script (PSKD_BIN is the test build, so nothing is missing but the option).
    private func refused(_ arguments: [String], environment: [String: String] = [:]) throws -> String {
        let outcome = try ClusterFixture.command(arguments, timeout: 60, environment: environment)
        XCTAssertEqual(outcome.status, 2, "\(arguments): \(outcome.output)")
        XCTAssertFalse(outcome.output.contains("unbound variable"), outcome.output)
        XCTAssertFalse(outcome.output.contains("division by 0"), outcome.output)
        XCTAssertFalse(outcome.output.contains("mpirun"), "a job was started: \(outcome.output)")
        return outcome.output
    }

    func testLocalShRefusesBadCountsAndMissingValues() throws {
        let script = ClusterFixture.script("local.sh")
        for (arguments, message) in [
            (["-n", "0"], "launch/local.sh: -n takes a whole number of ranks from 1 to 999999999, not '0'"),
            (["--ranks", "two"], "launch/local.sh: --ranks takes a whole number of ranks from 1 to 999999999, not 'two'"),
            (["-n"], "launch/local.sh: -n needs a value"),
            (["-n", "--model", "mlp"], "not '--model'"),
            (["--threads", "0"], "--threads takes a whole number of OpenBLAS threads per rank from 1"),
            (["--time-limit", "-5"], "--time-limit takes a whole number of seconds from 1"),
            (["--time-limit"], "--time-limit needs a value"),
            (["--command"], "--command needs a value"),
            (["--command", "--epochs", "1"], "--command takes a pskd subcommand (train, evaluate, bench, info, report), not '--epochs'"),
        ] {
            let output = try refused([script] + arguments)
            XCTAssertTrue(output.contains(message), "\(arguments): \(output)")
        }
    }

    func testClusterShRefusesBadCountsAndMissingValues() throws {
        let script = ClusterFixture.script("cluster.sh")
        for (arguments, message) in [
            (["-n", "0"], "launch/cluster.sh: -n takes a whole number of ranks from 1 to 999999999, not '0'"),
            (["--ranks-per-node", "0"], "--ranks-per-node takes a whole number of ranks per node from 1"),
            (["--threads", "x"], "--threads takes a whole number of OpenBLAS threads per rank from 1"),
            (["--cores-per-node", "0"], "--cores-per-node takes a whole number of cores from 1"),
            (["--time-limit", "1h"], "--time-limit takes a whole number of seconds from 1"),
            (["--hostfile"], "launch/cluster.sh: --hostfile needs a value"),
            (["--interface"], "--interface needs a value"),
            (["--launch-agent"], "--launch-agent needs a value"),
            (["--transport", "udp"], "--transport must be tcp or auto, not udp"),
            (["--command", "--lr"], "--command takes a pskd subcommand (train, evaluate, bench, info, report), not '--lr'"),
        ] {
            let output = try refused([script] + arguments)
            XCTAssertTrue(output.contains(message), "\(arguments): \(output)")
        }
        let hostfile = try ClusterFixture.scratch(self, "launch-options").appendingPathComponent("hosts")
        try "node01 slots=0\n".write(to: hostfile, atomically: true, encoding: .utf8)
        let output = try refused([script, "--hostfile", hostfile.path])
        XCTAssertTrue(output.contains("gives no node a slot (slots=0)"), output)
    }

    /// experiment.sh, also with --dry-run: no estimate from a bad --epochs, no arithmetic on 0 ranks.
    func testExperimentShRefusesBadCountsAndMissingValues() throws {
        let script = ClusterFixture.script("experiment.sh")
        for (arguments, message) in [
            (
                ["--epochs", "abc", "--dry-run"],
                "launch/experiment.sh: --epochs takes a whole number of epochs from 1 to 999999999, not 'abc'"
            ),
            (["--epochs", "0", "--dry-run"], "--epochs takes a whole number of epochs from 1"),
            (["--ranks", "0", "--dry-run"], "--ranks takes a whole number of ranks from 1 to 999999999, not '0'"),
            (["-n", "-2", "--dry-run"], "-n takes a whole number of ranks from 1"),
            (["--time-limit", "soon", "--dry-run"], "--time-limit takes a whole number of seconds from 1"),
            (["--train-samples", "some", "--dry-run"], "--train-samples takes a whole number of training images (or all) from 1"),
            (["--seeds", "1 x", "--dry-run"], "--seeds takes whole numbers separated by spaces"),
            (["--dry-run", "--epochs"], "--epochs needs a value"),
            (["--dry-run", "--ranks"], "--ranks needs a value"),
            (["--dry-run", "--out"], "--out needs a value"),
            (["--dry-run", "--recipe"], "--recipe needs a value"),
            (["--dry-run", "--policies"], "--policies needs a value"),
        ] {
            let output = try refused([script] + arguments)
            XCTAssertTrue(output.contains(message), "\(arguments): \(output)")
            XCTAssertFalse(output.contains("estimate:"), output)
        }
        // A valid --train-samples all and a leading zero are accepted (the plan is printed).
        let planned = try ClusterFixture.command(
            [script, "--epochs", "04", "--train-samples", "all", "--dry-run", "--no-estimate"], timeout: 60)
        XCTAssertEqual(planned.status, 0, planned.output)
        XCTAssertTrue(planned.output.contains("--epochs 4 "), planned.output)
    }

    /// slurm.sbatch's settings are environment variables and pskd flags: checked when the job
    /// starts, not when it ends (PSKD_MAX_REQUEUES), and --overwrite, which its own --resume
    /// makes pskd refuse, is named.
    func testSlurmBatchScriptRefusesBadSettings() throws {
        let script = ClusterFixture.script("slurm.sbatch")
        let scratch = try ClusterFixture.scratch(self, "sbatch-options")
        let job = ["SLURM_JOB_ID": "4242", "PSKD_RUNS": scratch.path]
        for (arguments, environment, message) in [
            ([String](), ["PSKD_MAX_REQUEUES": "many"], "PSKD_MAX_REQUEUES takes a whole number of requeues (0 for none), not 'many'"),
            ([], ["PSKD_TRANSPORT": "ucx"], "PSKD_TRANSPORT must be tcp or auto, not 'ucx'"),
            ([], ["SLURM_CPUS_PER_TASK": "0"], "--cpus-per-task (SLURM_CPUS_PER_TASK) must be a whole number of at least 1"),
            (["--epochs", "2", "--overwrite"], [:], "--overwrite: this job always passes --resume"),
            (["--overwrite=true"], [:], "--overwrite=true: this job always passes --resume"),
        ] {
            let output = try refused(["bash", script] + arguments, environment: job.merging(environment) { $1 })
            XCTAssertTrue(output.contains("launch/slurm.sbatch: " + message) || output.contains(message), "\(arguments): \(output)")
        }
    }
}
