import Foundation
import RunFixtures
import TestSupport
import XCTest

/// `pskd report` as a command: an experiment folder with one damaged run is still reported
/// (status 0), the damaged run named with the reason; a folder with no readable run fails.
final class ReportCommandTests: XCTestCase {
    func testAnUnreadableRunIsNamedAndTheOthersReported() throws {
        let fixture = try FixtureRuns(self)
        try fixture.experiment(seeds: [1], epochs: 2)
        let broken = fixture.root.appendingPathComponent("broken")
        try FileManager.default.createDirectory(at: broken, withIntermediateDirectories: true)
        try Data("{\"epochs\": \"many\"}".utf8).write(to: broken.appendingPathComponent("config.json"))
        let page = fixture.root.appendingPathComponent("report.html").path

        let outcome = try ExecutableRunner.run(
            ExecutableRunner.executable.path, ["report", fixture.root.path, "--output", page], timeout: 60)
        XCTAssertEqual(outcome.status, 0, outcome.output)
        XCTAssertTrue(outcome.output.contains("warning: \(broken.path) is not in the report: "), outcome.output)
        XCTAssertTrue(outcome.output.contains("is not a pskd configuration"), outcome.output)
        XCTAssertTrue(
            outcome.output.contains("pskd report: 3 runs, 3 policies → \(page); 1 run(s) left out, unreadable: \(broken.path)"),
            outcome.output)
        XCTAssertTrue(try String(contentsOfFile: page, encoding: .utf8).contains("is not in the report"))

        let none = try ExecutableRunner.run(
            ExecutableRunner.executable.path, ["report", broken.path, "--output", page], timeout: 60)
        XCTAssertNotEqual(none.status, 0, none.output)
        XCTAssertTrue(none.output.contains("is not a pskd configuration"), none.output)
    }

    /// `--failed RUN`: the run is named on the page and in the output, the others are reported,
    /// the exit status is 1; with every run failed there is no report.
    func testFailedRunsAreNamedAndMakeTheStatusOne() throws {
        let fixture = try FixtureRuns(self)
        let paths = try fixture.experiment(seeds: [1], epochs: 2)
        let page = fixture.root.appendingPathComponent("report.html").path
        let failed = fixture.root.appendingPathComponent("cs-kd-seed1").path
        let outcome = try ExecutableRunner.run(
            ExecutableRunner.executable.path, ["report"] + paths + ["--failed", failed, "--output", page], timeout: 60)
        XCTAssertEqual(outcome.status, 1, outcome.output)
        XCTAssertTrue(outcome.output.contains("1 of 4 runs failed and are not in the report: \(failed)"), outcome.output)
        XCTAssertTrue(try String(contentsOfFile: page, encoding: .utf8).contains("\(failed) failed and is not in the report"))
        let none = try ExecutableRunner.run(
            ExecutableRunner.executable.path, ["report", "--failed", failed, "--output", page], timeout: 60)
        XCTAssertEqual(none.status, 1, none.output)
        XCTAssertTrue(none.output.contains("every run failed (\(failed)): no report"), none.output)
    }

    /// Every recipe of launch/recipes reads, and its `train:` section, as `pskd recipe --print
    /// train-config` prints it, is a config file `pskd train --config` accepts: the run gets as
    /// far as the data (absent here), past every check of the settings.
    func testEveryRecipeFileReadsAndItsTrainSectionIsAConfigFile() throws {
        let recipes = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("launch/recipes")
        let names = try FileManager.default.contentsOfDirectory(atPath: recipes.path).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertEqual(
            names,
            [
                "cifar10-jpeg.yaml", "cifar100-paper.yaml", "fashion-mnist-clean.yaml", "fashion-mnist-full.yaml",
                "fashion-mnist-noisy.yaml", "fashion-mnist.yaml", "imagenet-paper.yaml",
            ])
        let fixture = try FixtureRuns(self)
        for name in names {
            let file = recipes.appendingPathComponent(name).path
            let summary = try ExecutableRunner.run(ExecutableRunner.executable.path, ["recipe", file, "--out", "/e"], timeout: 60)
            XCTAssertEqual(summary.status, 0, summary.output)
            XCTAssertTrue(summary.output.hasPrefix("experiment: recipe \(name.dropLast(5)): ce "), summary.output)
            let train = try ExecutableRunner.run(
                ExecutableRunner.executable.path, ["recipe", file, "--print", "train-config"], timeout: 60)
            XCTAssertEqual(train.status, 0, train.output)
            let config = fixture.root.appendingPathComponent("\(name)")
            try Data(train.output.utf8).write(to: config)
            let run = try ExecutableRunner.run(
                ExecutableRunner.executable.path,
                [
                    "train", "--config", config.path, "--policy", "pskd", "--out", fixture.root.appendingPathComponent("run-\(name)").path,
                    "--data-dir", fixture.root.appendingPathComponent("no-data").path,
                ], timeout: 120)
            XCTAssertNotEqual(run.status, 0, run.output)
            XCTAssertTrue(run.output.contains("missing file"), "\(name): \(run.output)")
        }
    }
}
