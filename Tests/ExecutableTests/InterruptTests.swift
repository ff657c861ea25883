import Foundation
import TestSupport
import XCTest

/// Ctrl-C (SIGINT to mpirun) and SIGTERM (a batch system) stop training at a step boundary on
/// every rank: rank 0 says where it stopped and how to resume, the last complete checkpoint is
/// intact, and `--resume` continues from it.
final class InterruptTests: XCTestCase {
    private let recipe = [
        "train", "--model", "mlp", "--epochs", "400", "--batch-size", "48", "--lr", "0.05",
        "--max-train-samples", "480", "--max-test-samples", "50", "--prefetch", "1",
    ]

    /// Starts `mpirun -np 2 pskd train …` and returns it with a pipe that collects its output.
    private func launch(out: String) throws -> (Process, Pipe) {
        let (process, pipe) = ExecutableRunner.process(
            "/usr/bin/env",
            ["mpirun"] + ExecutableRunner.mpirunOptions(ranks: 2)
                + [ExecutableRunner.executable.path] + recipe + ["--out", out])
        try process.run()
        return (process, pipe)
    }

    private func assertStopsAndResumes(_ signal: Int32, name: String) throws {
        let out = temporaryPath("interrupt-\(name)")
        let (job, pipe) = try launch(out: out)
        defer { if job.isRunning { kill(job.processIdentifier, SIGKILL) } }
        let firstCheckpoint = out + "/checkpoints/epoch-0002/COMPLETE"
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: firstCheckpoint), job.isRunning, Date() < deadline { usleep(50_000) }
        XCTAssertTrue(job.isRunning, "the job ended before it was interrupted")
        kill(job.processIdentifier, signal)
        let stopDeadline = Date().addingTimeInterval(30)
        while job.isRunning, Date() < stopDeadline { usleep(50_000) }
        XCTAssertFalse(job.isRunning, "\(name) did not end the job within 30 s")
        if job.isRunning { kill(job.processIdentifier, SIGKILL) }
        job.waitUntilExit()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertNotEqual(job.terminationStatus, 0, output)
        XCTAssertTrue(output.contains("pskd: stopped by "), output)
        XCTAssertTrue(output.contains(": continue with `pskd train --resume --out \(out)`"), output)

        let resumed = try ExecutableRunner.mpirun(ranks: 2, ["train", "--out", out, "--resume", "--stop-after", "3"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.output.contains("pskd: resumed from \(out)/checkpoints/epoch-"), resumed.output)
        XCTAssertFalse(resumed.output.contains("skipping checkpoint"), "the last complete checkpoint is intact: \(resumed.output)")
    }

    func testControlCStopsAtAStepAndSaysHowToResume() throws {
        try assertStopsAndResumes(SIGINT, name: "SIGINT")
    }

    func testTerminationStopsAtAStepAndSaysHowToResume() throws {
        try assertStopsAndResumes(SIGTERM, name: "SIGTERM")
    }
}
