import Foundation
import TestSupport
import Training
import XCTest

/// Run directories written by the release before issue 23 (`Tests/Fixtures/run-0.1.0`, see its
/// README) still decode, resume and report: `config.json` and the checkpoints share
/// `TrainConfig`'s `Codable` coding, which decodes over the defaults.
final class RunDirectoryCompatibilityTests: XCTestCase {
    private let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/run-0.1.0")

    private func pskd(_ arguments: [String]) throws -> ExecutableRunner.Outcome {
        try ExecutableRunner.run(ExecutableRunner.executable.path, arguments, timeout: 300)
    }

    /// The release's `config.json` decodes to the settings it was trained with, and this release
    /// writes the same settings as the same bytes.
    func testTheReleasesConfigJSONDecodesAndIsWrittenAlike() throws {
        let data = try Data(contentsOf: fixture.appendingPathComponent("config.json"))
        let config = try TrainConfig.decode(settingsJSON: data, source: "config.json")
        var expected = TrainConfig()
        (expected.model, expected.dataset, expected.epochs, expected.batchSize) = ("mlp", "synthetic", 2, 32)
        (expected.syntheticSamples, expected.syntheticTestSamples) = (256, 64)
        (expected.syntheticFeatures, expected.syntheticClasses) = (16, 4)
        (expected.learningRateSchedule, expected.milestones, expected.labelNoise, expected.teacher) = (.step, [1], 0.1, .sharded)
        XCTAssertEqual(config, expected)
        XCTAssertEqual(String(decoding: try config.settingsJSON(), as: UTF8.self), String(decoding: data, as: UTF8.self))
    }

    /// Missing keys keep their defaults, every setting survives a round trip, the job's own
    /// settings are not taken from a file, and an unknown key is refused naming the nearest.
    func testDecodingIsOverTheDefaultsAndRefusesUnknownKeys() throws {
        XCTAssertEqual(try TrainConfig.decode(settingsJSON: Data("{}".utf8), source: "c.json"), TrainConfig())
        var config = TrainConfig()
        (config.maxTrainSamples, config.maxTestSamples, config.dataDirectory, config.threads) = (100, 50, "d", 2)
        (config.cropPadding, config.horizontalFlip, config.stallTimeout, config.accumulateSteps) = (2, false, 30, 2)
        (config.kdTemperature, config.kdWeight, config.kdMultiplier, config.teacherCheckpoint) = (4, 1, 10, "runs/ce")
        (config.policy, config.optimizer, config.weightDecayStyle, config.seed, config.nesterov) = (
            "tf-kd-self", .adamw, .decoupled, 9, false
        )
        XCTAssertEqual(try JSONDecoder().decode(TrainConfig.self, from: JSONEncoder().encode(config)), config, "a checkpoint's copy")
        XCTAssertEqual(try TrainConfig.decode(settingsJSON: config.settingsJSON(), source: "c.json"), config, "config.json")
        let job = try TrainConfig.decode(settingsJSON: Data(#"{"out": "elsewhere", "resume": true, "epochs": 4}"#.utf8), source: "c.json")
        XCTAssertEqual(job.outputDirectory, TrainConfig().outputDirectory)
        XCTAssertFalse(job.resume)
        XCTAssertEqual(job.epochs, 4)
        XCTAssertThrowsError(try TrainConfig.decode(settingsJSON: Data(#"{"epoch": 3}"#.utf8), source: "c.json")) {
            XCTAssertEqual("\($0)", "c.json: unknown setting 'epoch'; did you mean 'epochs'?")
        }
        XCTAssertThrowsError(try TrainConfig.decode(settingsJSON: Data(#"{"epochs": "x"}"#.utf8), source: "c.json")) {
            XCTAssertTrue("\($0)".hasPrefix("c.json: setting 'epochs' must be a whole number"), "\($0)")
        }
    }

    /// `pskd train --resume` on the release's run directory (without its checkpoints: it starts
    /// from epoch 1 with its config.json's settings) trains the same epochs again, and `pskd
    /// report` reads the release's directory.
    func testTheReleasesRunDirectoryResumesAndReports() throws {
        let resumed = temporaryPath("run-0.1.0-resumed")
        try FileManager.default.createDirectory(atPath: resumed, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: fixture.appendingPathComponent("config.json").path, toPath: resumed + "/config.json")
        let outcome = try pskd(["train", "--resume", "--out", resumed])
        XCTAssertEqual(outcome.status, 0, outcome.output)
        func records(_ path: String) throws -> [[String: Any]] {
            try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
                try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
            }
        }
        let (old, new) = (try records(fixture.appendingPathComponent("metrics.jsonl").path), try records(resumed + "/metrics.jsonl"))
        XCTAssertEqual(new.count, old.count)
        for (before, after) in zip(old, new) {
            for key in ["epoch", "lr", "alpha", "flipped_labels", "train_loss", "test_nll", "test_top1_error", "test_ece", "test_samples"] {
                XCTAssertEqual("\(after[key] ?? "none")", "\(before[key] ?? "none")", "epoch \(before["epoch"] ?? "?"): \(key)")
            }
        }
        let copy = temporaryPath("run-0.1.0-report")
        try FileManager.default.copyItem(atPath: fixture.path, toPath: copy)
        let html = temporaryPath("run-0.1.0-report.html")
        let report = try pskd(["report", copy, "-o", html])
        XCTAssertEqual(report.status, 0, report.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: html), report.output)
    }
}
