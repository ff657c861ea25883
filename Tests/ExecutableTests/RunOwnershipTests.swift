import Foundation
import TestSupport
import XCTest

/// A run directory belongs to one run: no silent overwrite, no second job, `--overwrite` removes
/// only what pskd wrote, and `--resume` continues the run with its own settings. Real processes.
final class RunOwnershipTests: XCTestCase {
    private let recipe = [
        "train", "--model", "mlp", "--epochs", "2", "--batch-size", "48", "--lr", "0.05",
        "--max-train-samples", "96", "--max-test-samples", "50", "--prefetch", "1",
    ]

    private func pskd(_ arguments: [String], timeout: Double = 120) throws -> ExecutableRunner.Outcome {
        try ExecutableRunner.run(ExecutableRunner.executable.path, arguments, timeout: timeout)
    }

    /// The run's files with their bytes, to show that a refusal touched nothing.
    private func snapshot(_ directory: String) throws -> [String: Data] {
        var files: [String: Data] = [:]
        let enumerator = FileManager.default.enumerator(atPath: directory)
        while let name = enumerator?.nextObject() as? String {
            var isDirectory: ObjCBool = false
            let path = directory + "/" + name
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue, name != ".pskd-lock" {
                files[name] = try Data(contentsOf: URL(fileURLWithPath: path))
            }
        }
        return files
    }

    private func trained(_ name: String, _ extra: [String] = []) throws -> String {
        let out = temporaryPath(name)
        let outcome = try pskd(recipe + ["--out", out] + extra)
        XCTAssertEqual(outcome.status, 0, outcome.output)
        return out
    }

    func testTrainingIntoAnExistingRunNeedsResumeOrOverwrite() throws {
        let out = try trained("existing")
        let before = try snapshot(out)
        let refused = try pskd(recipe + ["--out", out, "--seed", "2"])
        XCTAssertNotEqual(refused.status, 0, refused.output)
        XCTAssertTrue(refused.output.contains("already holds a run"), refused.output)
        XCTAssertTrue(refused.output.contains("--resume") && refused.output.contains("--overwrite"), refused.output)
        XCTAssertEqual(try snapshot(out), before, "a refused run touches nothing")

        let replaced = try pskd(recipe + ["--out", out, "--epochs", "1", "--overwrite"])
        XCTAssertEqual(replaced.status, 0, replaced.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/checkpoints/epoch-0002"), "the old run's checkpoints are gone")
        let lines = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "the new run's metrics only")
    }

    func testOverwriteRemovesOnlyWhatPskdWrote() throws {
        // A directory with a file of the user's: nothing is removed.
        let out = try trained("foreign", ["--epochs", "1"])
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: out + "/notes.txt"))
        let before = try snapshot(out)
        var outcome = try pskd(recipe + ["--out", out, "--overwrite"])
        XCTAssertNotEqual(outcome.status, 0, outcome.output)
        XCTAssertTrue(outcome.output.contains("holds files pskd did not write (notes.txt)"), outcome.output)
        XCTAssertEqual(try snapshot(out), before)

        // A checkpoints folder that is a link out of the directory: its target is never touched.
        let elsewhere = temporaryPath("elsewhere")
        try FileManager.default.createDirectory(atPath: elsewhere + "/epoch-0001", withIntermediateDirectories: true)
        try Data("precious".utf8).write(to: URL(fileURLWithPath: elsewhere + "/epoch-0001/model.safetensors"))
        let linked = temporaryPath("linked")
        try FileManager.default.createDirectory(atPath: linked, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: linked + "/checkpoints", withDestinationPath: elsewhere)
        outcome = try pskd(recipe + ["--out", linked, "--overwrite"])
        XCTAssertNotEqual(outcome.status, 0, outcome.output)
        XCTAssertTrue(outcome.output.contains("symbolic links (checkpoints)"), outcome.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: elsewhere + "/epoch-0001/model.safetensors"))

        // The root of the file system and the home folder are never emptied.
        for directory in ["/", NSHomeDirectory()] {
            outcome = try pskd(recipe + ["--out", directory, "--overwrite"], timeout: 60)
            XCTAssertNotEqual(outcome.status, 0, outcome.output)
            XCTAssertTrue(outcome.output.contains("nothing was removed") || outcome.output.contains("cannot"), outcome.output)
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: "/etc/hostname"))
    }

    /// stall.json is pskd's own file: --resume moves it aside as stall-<UTC time it was
    /// written>.json (a second one of the same second gets -2), and --overwrite removes it and the
    /// moved ones; a file only named like them (stall-notes.json) is the user's.
    func testStallReportsAreMovedAsideOnResumeAndRemovedByOverwrite() throws {
        let out = try trained("stalled", ["--epochs", "1"])
        let written = Date(timeIntervalSince1970: 1_790_000_000)  // 2026-09-21T14:13:20Z
        for round in 1...2 {
            let report = out + "/stall.json"
            try Data("{\"rank\": \(round)}".utf8).write(to: URL(fileURLWithPath: report))
            try FileManager.default.setAttributes([.modificationDate: written], ofItemAtPath: report)
            let resumed = try pskd(recipe + ["--out", out, "--resume", "--epochs", "1"])
            XCTAssertEqual(resumed.status, 0, resumed.output)
            let name = round == 1 ? "stall-20260921T141320Z.json" : "stall-20260921T141320Z-2.json"
            XCTAssertTrue(resumed.output.contains("moved the previous job's stall report aside: \(report) → \(name)"), resumed.output)
            XCTAssertFalse(FileManager.default.fileExists(atPath: report))
            XCTAssertEqual(try String(contentsOfFile: out + "/" + name, encoding: .utf8), "{\"rank\": \(round)}")
        }
        try Data("{}".utf8).write(to: URL(fileURLWithPath: out + "/stall.json"))
        let replaced = try pskd(recipe + ["--out", out, "--epochs", "1", "--overwrite"])
        XCTAssertEqual(replaced.status, 0, replaced.output)
        let left = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasPrefix("stall") }
        XCTAssertEqual(left, [], "--overwrite removes stall.json and the moved reports")

        try Data("mine".utf8).write(to: URL(fileURLWithPath: out + "/stall-notes.json"))
        let refused = try pskd(recipe + ["--out", out, "--epochs", "1", "--overwrite"])
        XCTAssertNotEqual(refused.status, 0, refused.output)
        XCTAssertTrue(refused.output.contains("holds files pskd did not write (stall-notes.json)"), refused.output)
    }

    /// While a job trains, a second one on the same directory (spelled differently) is refused,
    /// naming the first; once the first is killed, its lock is gone with it.
    func testASecondJobOnTheSameDirectoryIsRefused() throws {
        let out = temporaryPath("busy")
        let first = Process()
        first.executableURL = ExecutableRunner.executable
        first.arguments = recipe.map { $0 == "2" ? "500" : $0 } + ["--out", out]
        first.standardOutput = FileHandle.nullDevice
        first.standardError = FileHandle.nullDevice
        try first.run()
        defer { if first.isRunning { kill(first.processIdentifier, SIGKILL) } }
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: out + "/config.json"), Date() < deadline { usleep(50_000) }
        XCTAssertTrue(first.isRunning)

        let second = try pskd(recipe + ["--out", out + "/./", "--resume"])
        XCTAssertNotEqual(second.status, 0, second.output)
        XCTAssertTrue(second.output.contains("is in use by another pskd job (host "), second.output)
        XCTAssertTrue(second.output.contains("pid \(first.processIdentifier)"), second.output)

        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        let after = try pskd(recipe + ["--out", out, "--resume"])
        XCTAssertEqual(after.status, 0, "a killed job leaves no lock behind: \(after.output)")
    }

    /// Issue 24: a refused run directory is left as it was. A refused `--out /` used to leave
    /// `/.pskd-lock` behind, and a refused path left the directories made for it.
    func testARefusedRunDirectoryIsLeftAsItWas() throws {
        let foreign = temporaryPath("refused-foreign")
        try FileManager.default.createDirectory(atPath: foreign, withIntermediateDirectories: true)
        try Data("the user's".utf8).write(to: URL(fileURLWithPath: foreign + "/notes.txt"))
        var outcome = try pskd(recipe + ["--out", foreign])
        XCTAssertNotEqual(outcome.status, 0, outcome.output)
        XCTAssertTrue(outcome.output.contains("\(foreign) already holds a run (notes.txt)"), outcome.output)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: foreign), ["notes.txt"], "no .pskd-lock left behind")

        if !FileManager.default.fileExists(atPath: "/.pskd-lock") {
            outcome = try pskd(recipe + ["--out", "/"])
            XCTAssertNotEqual(outcome.status, 0, outcome.output)
            XCTAssertFalse(FileManager.default.fileExists(atPath: "/.pskd-lock"), "a refused --out / leaves no lock: \(outcome.output)")
        }

        // The parent is made, the next name is too long for the file system: both are refused and gone.
        let parent = temporaryPath("refused-parent")
        let tooLong = parent + "/" + String(repeating: "n", count: 300)
        outcome = try pskd(recipe + ["--out", tooLong])
        XCTAssertNotEqual(outcome.status, 0, outcome.output)
        XCTAssertTrue(outcome.output.contains("cannot create the run directory"), outcome.output)
        XCTAssertTrue(outcome.output.contains("File name too long; choose another --out"), outcome.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: parent), "the directory made for the refused path is removed")
    }

    /// Issue 24: `--resume` on a mistyped, missing directory used to start a new run with the
    /// default settings; it is refused, naming the directory and how to start a new run.
    func testResumingADirectoryThatDoesNotExistIsRefused() throws {
        let missing = temporaryPath("resume-missing")
        let outcome = try pskd(["train", "--out", missing, "--resume"])
        XCTAssertNotEqual(outcome.status, 0, outcome.output)
        XCTAssertTrue(
            outcome.output.contains(
                "--resume: the run directory \(missing) does not exist, so there is no run to continue (a mistyped --out?): "
                    + "give the directory of the run to continue, or drop --resume to start a new run there"), outcome.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: missing), "nothing was created")
        XCTAssertLessThan(outcome.seconds, 20, "refused before any training")
    }

    /// `--resume --out DIR` takes DIR's settings; changing one that shapes the training is refused.
    func testResumeUsesTheRunsSettingsAndRefusesChangingThem() throws {
        let out = try trained("resume-settings", ["--stop-after", "1", "--policy", "ls", "--seed", "4"])
        for (flag, value, named) in [
            ("--lr", "0.2", "lr (the run: 0.05, now: 0.2)"), ("--policy", "pskd", #"policy (the run: "ls", now: "pskd")"#),
            ("--seed", "5", "seed (the run: 4, now: 5)"),
        ] {
            let refused = try pskd(["train", "--out", out, "--resume", flag, value])
            XCTAssertNotEqual(refused.status, 0, refused.output)
            XCTAssertTrue(refused.output.contains(named), "expected “\(named)” in \(refused.output)")
        }
        let resumed = try pskd(["train", "--out", out, "--resume", "--epochs", "3", "--threads", "2"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.output.contains("training mlp"), resumed.output)
        XCTAssertTrue(resumed.output.contains("policy ls (ε = 0.1), 3 epochs, global batch 48"), resumed.output)
        XCTAssertTrue(resumed.output.contains("(epoch 1 of 3 done)"), resumed.output)
    }
}
