import Foundation
import TestSupport
import XCTest

/// `pskd train` settings from a config file and flags, and its errors, through the real executable.
final class CommandLineTests: XCTestCase {
    private func pskd(_ arguments: [String]) throws -> ExecutableRunner.Outcome {
        try ExecutableRunner.run(ExecutableRunner.executable.path, arguments, timeout: 120)
    }

    /// Flags override the file; the saved config.json uses the same keys and can be passed back.
    func testConfigFileThenFlags() throws {
        let out = temporaryPath("config")
        let yaml = try temporaryFile(
            "run.yaml",
            """
            model: mlp
            epochs: 5
            batch_size: 64
            max-train-samples: 128
            max-test-samples: 40
            milestones: [1, 2]
            lr-schedule: step
            policy: ls
            out: \(out)
            """)
        let first = try pskd(["train", "--config", yaml, "--epochs", "1"])
        XCTAssertEqual(first.status, 0, first.output)
        let saved = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/config.json"))) as? [String: Any])
        XCTAssertEqual(saved["epochs"] as? Int, 1)
        XCTAssertEqual(saved["batch-size"] as? Int, 64)
        XCTAssertEqual(saved["policy"] as? String, "ls")
        XCTAssertEqual(saved["milestones"] as? [Int], [1, 2])
        for key in ["out", "resume", "stop-after", "overwrite"] {
            XCTAssertNil(saved[key], "config.json holds the training's settings, not the job's (\(key))")
        }
        let repeated = temporaryPath("config-repeated")
        let again = try pskd(["train", "--config", out + "/config.json", "--out", repeated])
        XCTAssertEqual(again.status, 0, again.output)
        XCTAssertTrue(again.output.contains("policy ls (ε = 0.1), 1 epochs, global batch 64"), again.output)
        XCTAssertTrue(again.output.contains("run directory \(repeated)"), again.output)
    }

    func testConfigFileErrorsNameTheFileAndTheSetting() throws {
        let unknown = try temporaryFile("unknown.yaml", "epoch: 3\n")
        var outcome = try pskd(["train", "--config", unknown])
        XCTAssertNotEqual(outcome.status, 0)
        XCTAssertTrue(outcome.output.contains("\(unknown): unknown setting 'epoch'"), outcome.output)
        let wrongType = try temporaryFile("type.yaml", "epochs: three\n")
        outcome = try pskd(["train", "--config", wrongType])
        XCTAssertTrue(outcome.output.contains("setting 'epochs' must be a whole number, found 'three'"), outcome.output)
        outcome = try pskd(["train", "--config", "/nonexistent/run.yaml"])
        XCTAssertTrue(outcome.output.contains("/nonexistent/run.yaml: cannot read the config file"), outcome.output)
        let twice = try temporaryFile("twice.yaml", "batch_size: 64\nbatch-size: 32\n")
        outcome = try pskd(["train", "--config", twice])
        XCTAssertNotEqual(outcome.status, 0)
        XCTAssertTrue(
            outcome.output.contains("\(twice): setting 'batch-size' is given 2 times (batch-size, batch_size): keep one"), outcome.output)
        let binary = try temporaryFile("binary.yaml", Data([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 0xff]))
        outcome = try pskd(["train", "--config", binary])
        XCTAssertTrue(outcome.output.contains("\(binary): not a text file"), outcome.output)
    }

    func testMissingDataDirectoryNamesTheFileAndTheFix() throws {
        let outcome = try pskd(["train", "--data-dir", "/nonexistent-data", "--epochs", "1", "--out", temporaryPath("no-data")])
        XCTAssertNotEqual(outcome.status, 0)
        XCTAssertTrue(outcome.output.contains("/nonexistent-data"), outcome.output)
    }

    /// Negative numbers parse as values (not as unknown flags) and are refused by name; bad
    /// values that used to crash, hang or be taken silently are refused before anything starts.
    func testOutOfRangeValuesAreRefusedBeforeAnythingStarts() throws {
        let cases: [([String], String)] = [
            (["train", "--seed", "-7"], "setting 'seed' must be a whole number ≥ 0, found '-7'"),
            (["train", "--batch-size", "-4"], "batch-size must be at least 2"),
            (["train", "--prefetch", "-1"], "prefetch must be 0...64, got -1"),
            (["train", "--threads", "0"], "threads must be 1...1024, got 0"),
            (["train", "--lr", "inf"], "lr must be a positive finite number, got inf"),
            (["train", "--ece-bins", "100000000"], "ece-bins must be 1...1000, got 100000000"),
            (["train", "--milestones", "5,0,-3"], "milestones must be increasing epochs ≥ 1"),
            (["evaluate", "--checkpoint", "/nonexistent", "--ece-bins", "0"], "--ece-bins must be in 1...1000, got 0"),
            (["evaluate", "--checkpoint", "/nonexistent", "--ece-bins", "-1"], "--ece-bins must be in 1...1000, got -1"),
        ]
        let cases2: [([String], String)] = [
            (
                ["train", "--batch-size", "100000", "--max-test-samples", "10", "--out", temporaryPath("huge-batch")],
                "batch-size 100000 is larger than the 60000 training samples"
            ),
            (
                ["train", "--out", "/etc/hostname/run"],
                "cannot create the run directory /etc/hostname/run: /etc/hostname is a file, not a directory; choose another --out"
            ),
        ]
        for (arguments, expected) in cases + cases2 {
            let outcome = try ExecutableRunner.run(ExecutableRunner.executable.path, arguments, timeout: 30)
            XCTAssertNotEqual(outcome.status, 0, "\(arguments): \(outcome.output)")
            XCTAssertTrue(outcome.output.contains(expected), "\(arguments): expected “\(expected)” in \(outcome.output)")
            XCTAssertLessThan(outcome.seconds, 20, "\(arguments) refused at once")
        }
    }
}
