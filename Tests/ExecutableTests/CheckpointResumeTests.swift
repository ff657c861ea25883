import Foundation
import TestSupport
import XCTest

/// Checkpoints written by real runs: exact resume, resume on other rank counts, corruption.
final class CheckpointResumeTests: XCTestCase {
    private let recipe = [
        "train", "--model", "mlp", "--epochs", "3", "--batch-size", "48", "--lr", "0.05",
        "--max-train-samples", "250", "--max-test-samples", "100", "--prefetch", "1",
    ]

    @discardableResult
    private func train(ranks: Int, out: String, _ extra: [String] = []) throws -> String {
        let outcome = try ExecutableRunner.mpirun(ranks: ranks, recipe + ["--out", out] + extra, timeout: 300)
        XCTAssertEqual(outcome.status, 0, outcome.output)
        return outcome.output
    }

    private func modelBytes(_ out: String, epoch: Int) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: out + String(format: "/checkpoints/epoch-%04d/model.safetensors", epoch)))
    }

    private func teacherHash(after marker: String, in output: String) -> String? {
        output.split(separator: "\n").first { $0.contains(marker) }
            .flatMap { $0.components(separatedBy: "teacher table hash ").last?.split(separator: " ").first.map(String.init) }
    }

    /// Stopping after epoch 1 and resuming gives the same final parameters, bit for bit.
    func testInterruptedAndResumedEqualsUninterrupted() throws {
        let whole = temporaryPath("whole"), parts = temporaryPath("parts")
        let wholeOutput = try train(ranks: 2, out: whole)
        try train(ranks: 2, out: parts, ["--stop-after", "1"])
        let resumed = try train(ranks: 2, out: parts, ["--resume"])
        XCTAssertTrue(resumed.contains("resumed from"), resumed)
        XCTAssertEqual(try modelBytes(whole, epoch: 3), try modelBytes(parts, epoch: 3))
        XCTAssertEqual(teacherHash(after: "identical on all", in: wholeOutput), teacherHash(after: "identical on all", in: resumed))
        let lines = try String(contentsOfFile: parts + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 3, "one metrics line per epoch, none repeated")
    }

    /// A checkpoint written by 2 ranks continues on 1 and on 3 ranks with the same teacher table.
    func testCheckpointResumesOnOtherRankCounts() throws {
        let source = temporaryPath("two")
        let written = try train(ranks: 2, out: source, ["--stop-after", "1"])
        let expected = try XCTUnwrap(teacherHash(after: "identical on all 2", in: written))
        for ranks in [1, 3] {
            let copy = temporaryPath("resume\(ranks)")
            try FileManager.default.copyItem(atPath: source, toPath: copy)
            let output = try train(ranks: ranks, out: copy, ["--resume"])
            XCTAssertEqual(teacherHash(after: "resumed from", in: output), expected, output)
            XCTAssertTrue(output.contains("identical on all \(ranks) rank(s)"), output)
        }
    }

    /// A truncated newest checkpoint is detected; the previous complete one is used, with a warning.
    func testCorruptNewestCheckpointFallsBackToPrevious() throws {
        let out = temporaryPath("corrupt")
        try train(ranks: 1, out: out, ["--stop-after", "2"])
        let newest = out + "/checkpoints/epoch-0002/model.safetensors"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: newest))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: newest))
        let output = try train(ranks: 1, out: out, ["--resume"])
        XCTAssertTrue(output.contains("skipping checkpoint"), output)
        XCTAssertTrue(output.contains("epoch-0001 (epoch 1 of 3 done)"), output)
    }

    /// Resuming a run with fewer --epochs than it completed is refused at once (it used to
    /// train on past --epochs); resuming a finished run trains nothing and says so.
    func testResumingPastTheEpochsIsRefused() throws {
        let out = temporaryPath("past")
        try train(ranks: 1, out: out, ["--stop-after", "2"])
        let fewer = try ExecutableRunner.mpirun(ranks: 1, recipe + ["--out", out, "--resume", "--epochs", "1"], timeout: 120)
        XCTAssertNotEqual(fewer.status, 0, fewer.output)
        XCTAssertTrue(fewer.output.contains("has completed 2 epochs, more than --epochs 1"), fewer.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/checkpoints/epoch-0003"), "nothing trained")
        let done = try ExecutableRunner.mpirun(ranks: 1, recipe + ["--out", out, "--resume", "--epochs", "2"], timeout: 120)
        XCTAssertEqual(done.status, 0, done.output)
        XCTAssertTrue(done.output.contains("2 of 2 epochs are already complete: nothing to train"), done.output)
    }

    /// Issue 24: a config.json edited between jobs (policy pskd → ls) resumed silently as ls. The
    /// checkpoint's own settings are compared with config.json's and the command line's: a
    /// difference is refused, naming the setting and both values, and nothing trains.
    func testACheckpointTrainedWithOtherSettingsThanConfigJSONIsRefused() throws {
        let out = temporaryPath("edited-config")
        try train(ranks: 1, out: out, ["--stop-after", "1"])
        let path = out + "/config.json"
        var saved = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        XCTAssertEqual(saved["policy"] as? String, "pskd")
        (saved["policy"], saved["lr"]) = ("ls", 0.2)
        try JSONSerialization.data(withJSONObject: saved, options: [.sortedKeys]).write(to: URL(fileURLWithPath: path))
        let refused = try ExecutableRunner.mpirun(ranks: 1, ["train", "--out", out, "--resume"], timeout: 120)
        XCTAssertNotEqual(refused.status, 0, refused.output)
        XCTAssertTrue(
            refused.output.contains(
                "--resume: the checkpoint \(out)/checkpoints/epoch-0001 was trained with other settings than \(out)/config.json and this "
                    + #"command give: lr (the checkpoint: 0.05, now: 0.2), policy (the checkpoint: "pskd", now: "ls")"#), refused.output)
        XCTAssertTrue(refused.output.contains("Put the checkpoint's values back in config.json"), refused.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/checkpoints/epoch-0002"), "nothing trained")
        let edited = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        XCTAssertEqual(edited["policy"] as? String, "ls", "the refused job did not rewrite config.json")
    }

    /// A checkpoint without its COMPLETE marker is skipped with a warning that says so; when no
    /// checkpoint is usable, the restart from epoch 1 says that too.
    func testSkippedCheckpointsAreNamedWithTheReason() throws {
        let out = temporaryPath("unmarked")
        try train(ranks: 1, out: out, ["--stop-after", "2"])
        try FileManager.default.removeItem(atPath: out + "/checkpoints/epoch-0002/COMPLETE")
        var output = try train(ranks: 1, out: out, ["--resume", "--stop-after", "2"])
        XCTAssertTrue(output.contains("skipping checkpoint \(out)/checkpoints/epoch-0002: it has no COMPLETE marker"), output)
        XCTAssertTrue(output.contains("epoch-0001 (epoch 1 of 3 done)"), output)
        for epoch in [1, 2] {
            try FileManager.default.removeItem(atPath: out + String(format: "/checkpoints/epoch-%04d/COMPLETE", epoch))
        }
        output = try train(ranks: 1, out: out, ["--resume", "--stop-after", "1"])
        XCTAssertTrue(
            output.contains("none of the 2 checkpoint(s) in \(out)/checkpoints is usable (see the warnings above): starting from epoch 1"),
            output)
    }

    /// A last line of metrics.jsonl cut off (a job that ended while writing it) is not dropped
    /// silently: the line is named, and the record of the checkpoint's epoch is restored from the
    /// checkpoint's copy, byte for byte; an epoch that no checkpoint holds is named as missing.
    func testResumeOverACutOffMetricsLineRestoresTheRecordFromTheCheckpoint() throws {
        let out = temporaryPath("cut-metrics")
        try train(ranks: 1, out: out, ["--stop-after", "2", "--keep-checkpoints", "1"])
        let url = URL(fileURLWithPath: out + "/metrics.jsonl")
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 2)
        try Data((lines[0] + "\n" + lines[1].prefix(lines[1].count / 2)).utf8).write(to: url)

        var output = try train(ranks: 1, out: out, ["--resume", "--stop-after", "2"])
        XCTAssertTrue(output.contains("line 2 of \(url.path) is not a whole epoch record"), output)
        XCTAssertTrue(output.contains("had no whole record of epoch 2: restored it from \(out)/checkpoints/epoch-0002"), output)
        XCTAssertEqual(try String(contentsOf: url, encoding: .utf8), lines.joined(separator: "\n") + "\n")

        // Epoch 1's line lost as well: no checkpoint holds it any more (--keep-checkpoints 1).
        try Data(("{\"epoch\": 1, \"alph" + "\n" + lines[1] + "\n").utf8).write(to: url)
        output = try train(ranks: 1, out: out, ["--resume"])
        XCTAssertTrue(output.contains("line 1 of \(url.path) is not a whole epoch record"), output)
        XCTAssertTrue(output.contains("has no record of epoch(s) 1 and no checkpoint holds one"), output)
        let epochs = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
            (try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["epoch"] as? Int
        }
        XCTAssertEqual(epochs, [2, 3])
    }

    /// Each metrics.jsonl row records its test sample count; after a resume on fewer test
    /// samples the best epoch is chosen among the rows evaluated like the final one, and pskd
    /// says which epochs it left out.
    func testRowsRecordTheirTestSampleCountAndTheBestEpochComparesLikeWithLike() throws {
        let out = temporaryPath("test-samples")
        try train(ranks: 1, out: out, ["--stop-after", "2"])
        let output = try train(ranks: 1, out: out, ["--resume", "--max-test-samples", "40"])
        let rows = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        XCTAssertEqual(rows.map { $0["test_samples"] as? Int }, [100, 100, 40])
        XCTAssertTrue(output.contains("pskd: best top-1 epoch 3: "), output)
        XCTAssertTrue(
            output.contains("epoch(s) 1, 2 were evaluated on 100 test samples, the final epoch on 40"), output)
    }
}
