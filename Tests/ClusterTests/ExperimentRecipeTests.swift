import Foundation
import XCTest

/// `launch/experiment.sh --recipe NAME`: the cifar100-paper recipe trains (tiny: a few CIFAR-100
/// format images, one epoch, a narrow network) with the paper's settings, evaluates ECE with 15
/// bins as well and writes the report; the dry run prints every command in order and an
/// estimate without data; missing data and a tf-kd-self run without ce are refused up front.
final class ExperimentRecipeTests: XCTestCase {
    private var script: String { ClusterFixture.script("experiment.sh") }

    /// A folder with train.bin and test.bin in the CIFAR-100 binary layout: per image a coarse
    /// label byte (< 20), a fine label byte (< 100), then 3 × 32 × 32 pixel bytes.
    private func cifar100Files(in folder: URL, train: Int, test: Int, only: [String]? = nil) throws -> URL {
        let data = folder.appendingPathComponent("cifar-100-binary")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        for (name, count) in [("train.bin", train), ("test.bin", test)] where only?.contains(name) ?? true {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(count * 3074)
            for image in 0..<count {
                let fine = UInt8(image * 37 % 100)
                bytes += [fine / 5, fine]
                bytes += (0..<3072).map { UInt8(truncatingIfNeeded: (image &* 131 &+ $0 &* 7 &+ Int(fine) &* ($0 % 3)) % 251) }
            }
            try Data(bytes).write(to: data.appendingPathComponent(name))
        }
        return data
    }

    private func json(_ url: URL) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any], url.path)
    }

    /// A JSON value as JSON text, to compare values read from JSON with literals.
    private func canonical(_ value: Any?) throws -> String {
        guard let value else { return "unset" }
        return String(decoding: try JSONSerialization.data(withJSONObject: [value], options: [.fragmentsAllowed]), as: UTF8.self)
    }

    /// The lines of the dry run's plan that start a run (`[i/n] … --policy P …`), as (policy, seed, line).
    private func plannedRuns(_ output: String) -> [(policy: String, seed: String, line: String)] {
        output.split(separator: "\n").map(String.init).filter { $0.hasPrefix("  [") && $0.contains(" --policy ") }.map { line in
            let words = line.split(separator: " ").map(String.init)
            func value(_ flag: String) -> String { words.firstIndex(of: flag).map { words[$0 + 1] } ?? "" }
            return (value("--policy"), value("--seed"), line)
        }
    }

    /// The paper's recipe, shrunk only by flags (1 epoch, 128 training images, width × 1/16):
    /// ce runs before pskd although listed after it, each config.json holds the paper's
    /// settings, each run has its ECE with 15 bins, and the report gives both bin counts. The
    /// same command again skips the complete runs.
    func testPaperRecipeRunsWithThePaperSettingsAndReportsECEWith15Bins() throws {
        try ClusterFixture.requireTools(["mpirun"])
        let scratch = try ClusterFixture.scratch(self, "recipe-paper")
        let data = try cifar100Files(in: scratch, train: 256, test: 64)
        let out = scratch.appendingPathComponent("experiment")
        let arguments = [
            script, "--recipe", "cifar100-paper", "--data-dir", data.path, "--policies", "pskd ce", "--seeds", "1",
            "--epochs", "1", "--train-samples", "128", "--ranks", "2", "--out", out.path,
            "--", "--width-multiplier", "0.0625", "--prefetch", "1",
        ]
        let first = try ClusterFixture.command(arguments, timeout: 600)
        XCTAssertEqual(first.status, 0, first.output)
        print("the tiny cifar100-paper experiment took \(String(format: "%.0f", first.seconds)) s")
        let ceStart = try XCTUnwrap(first.output.range(of: "[1/2] ce, seed 1"), first.output)
        let pskdStart = try XCTUnwrap(first.output.range(of: "[2/2] pskd, seed 1"), first.output)
        XCTAssertLessThan(ceStart.lowerBound, pskdStart.lowerBound)

        var ece15: [String: Double] = [:]
        for policy in ["ce", "pskd"] {
            let run = out.appendingPathComponent("\(policy)-seed1")
            let config = try json(run.appendingPathComponent("config.json"))
            let expected: [String: Any] = [
                "dataset": "cifar100", "model": "preact-resnet18", "lr-schedule": "step", "milestones": [150, 225],
                "lr": 0.1, "batch-size": 128, "optimizer": "sgd", "momentum": 0.9, "nesterov": true, "weight-decay": 0.0005,
                "crop-padding": 4, "flip": true, "ece-bins": 10, "alpha-t": 0.8, "label-smoothing": 0.1,
                "policy": policy, "seed": 1,
                // What the test overrode:
                "epochs": 1, "max-train-samples": 128, "width-multiplier": 0.0625,
            ]
            for (key, value) in expected {
                XCTAssertEqual(try canonical(config[key]), try canonical(value), "\(policy): \(key) in config.json")
            }
            XCTAssertNil(config["label-noise"], "\(policy): clean labels (no label-noise setting)")
            XCTAssertEqual(ClusterFixture.metricEpochs(run), [1])
            let evaluation = try json(run.appendingPathComponent("ece-15bins.json"))
            XCTAssertEqual(evaluation["ece_bins"] as? Int, 15, "\(evaluation)")
            XCTAssertEqual(evaluation["epoch"] as? Int, 1, "\(evaluation)")
            XCTAssertEqual(evaluation["count"] as? Int, 64, "\(evaluation)")
            ece15[policy] = try XCTUnwrap(evaluation["test_ece"] as? Double)
        }

        let markdown = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(markdown.contains("ECE (%) with 15 equal-width bins"), markdown)
        // The rows are the report's policy groups, named as its other tables name them.
        for (policy, label) in [("ce", "ce"), ("pskd", "pskd (α_T = 0.8)")] {
            let row = "| \(label) | \(String(format: "%.2f", ece15[policy]!)) ± 0.00 | 1 |"
            XCTAssertTrue(markdown.contains(row), "\(row) not in\n\(markdown)")
        }
        let html = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
        XCTAssertTrue(html.contains("<h2>ECE with 15 bins</h2>"), "the HTML report has no 15-bin table")
        XCTAssertTrue(html.hasSuffix("</html>\n") || html.hasSuffix("</html>"), "the HTML page still ends as it did")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("plan.txt").path))

        // Again: both runs are complete, nothing is trained or evaluated again.
        let second = try ClusterFixture.command(arguments, timeout: 300)
        XCTAssertEqual(second.status, 0, second.output)
        XCTAssertTrue(second.output.contains("[1/2] \(out.path)/ce-seed1 is complete: skipped"), second.output)
        XCTAssertTrue(second.output.contains("[2/2] \(out.path)/pskd-seed1 is complete: skipped"), second.output)
        XCTAssertFalse(second.output.contains("launch/local.sh:"), "something was launched:\n\(second.output)")
    }

    /// A run that fails does not stop the experiment: the next policy still trains, the report
    /// covers the finished runs only, the failed one is named, and the exit status is 1. (Here
    /// tf-kd-reg refuses --kd-weight 2, TF-KD's α must be in [0, 1]; cs-kd takes it as its λ. A policy
    /// that does not read --kd-weight would refuse it too.)
    func testAFailedRunDoesNotStopTheOthers() throws {
        try ClusterFixture.requireTools(["mpirun"])
        let scratch = try ClusterFixture.scratch(self, "recipe-failure")
        let out = scratch.appendingPathComponent("experiment")
        let outcome = try ClusterFixture.command(
            [
                script, "--recipe", "fashion-mnist-noisy", "--policies", "tf-kd-reg cs-kd", "--seeds", "1", "--epochs", "1",
                "--train-samples", "256", "--ranks", "2", "--out", out.path,
                "--", "--kd-weight", "2", "--max-test-samples", "100", "--prefetch", "1",
            ], timeout: 600)
        XCTAssertEqual(outcome.status, 1, outcome.output)
        XCTAssertTrue(outcome.output.contains("the run \(out.path)/tf-kd-reg-seed1 failed"), outcome.output)
        XCTAssertTrue(outcome.output.contains("TF-KD's α"), outcome.output)
        XCTAssertEqual(ClusterFixture.metricEpochs(out.appendingPathComponent("cs-kd-seed1")), [1], outcome.output)
        XCTAssertTrue(outcome.output.contains("1 of 2 runs failed and are not in the report: \(out.path)/tf-kd-reg-seed1"), outcome.output)
        let markdown = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(markdown.contains("| cs-kd (T = 4, λ = 2) | 1 |"), markdown)
        XCTAssertFalse(markdown.contains("tf-kd-reg"), markdown)
    }

    /// The dry run of the paper's recipe without its data: every run's command line in order
    /// (the paper's five columns, ce first, tf-kd-self reading the same seed's ce run), each
    /// followed by its 15-bin evaluation, and an estimate from a step measured with `pskd bench`
    /// (mlp here, to keep the debug build quick); nothing is written.
    func testDryRunPrintsEveryCommandInOrderAndAMeasuredEstimateWithoutData() throws {
        try ClusterFixture.requireTools(["mpirun"])
        let scratch = try ClusterFixture.scratch(self, "recipe-dry")
        let out = scratch.appendingPathComponent("experiment")
        let outcome = try ClusterFixture.command(
            [script, "--recipe", "cifar100-paper", "--dry-run", "--model", "mlp", "--seeds", "1 2", "--out", out.path],
            timeout: 180)
        XCTAssertEqual(outcome.status, 0, outcome.output)
        let runs = plannedRuns(outcome.output)
        let columns = ["ce", "ls", "cs-kd", "tf-kd-self", "pskd"]
        XCTAssertEqual(runs.map(\.policy), columns + columns, outcome.output)
        XCTAssertEqual(runs.map(\.seed), Array(repeating: "1", count: 5) + Array(repeating: "2", count: 5))
        for (index, run) in runs.enumerated() {
            XCTAssertTrue(run.line.hasPrefix("  [\(index + 1)/10] \(ClusterFixture.script("local.sh")) -n 2 "), run.line)
            XCTAssertTrue(
                run.line.contains(
                    "--dataset cifar100 --batch-size 128 --lr 0.1 --optimizer sgd --momentum 0.9 --nesterov true --weight-decay 5e-4 "
                        + "--flip true --ece-bins 10 --alpha-t 0.8 --label-smoothing 0.1 --keep-checkpoints 1 --lr-schedule step "
                        + "--milestones 150,225 --crop-padding 4 --model mlp --epochs 300 --policy \(run.policy)"), run.line)
            XCTAssertTrue(run.line.hasSuffix("--seed \(run.seed) --out \(out.path)/\(run.policy)-seed\(run.seed) --resume"), run.line)
            XCTAssertEqual(
                run.line.contains("--teacher-checkpoint \(out.path)/ce-seed\(run.seed) --seed"), run.policy == "tf-kd-self", run.line)
            let evaluation = "--command evaluate --checkpoint \(out.path)/\(run.policy)-seed\(run.seed) --ece-bins 15 --json"
            XCTAssertTrue(outcome.output.contains(evaluation), "no 15-bin evaluation of \(run.policy)-seed\(run.seed)")
        }
        let estimate = try XCTUnwrap(
            outcome.output.split(separator: "\n").first { $0.hasPrefix("estimate:") }.map(String.init), outcome.output)
        XCTAssertTrue(estimate.contains("for the 10 runs on THIS machine with 2 rank(s)"), estimate)
        XCTAssertNotNil(estimate.range(of: #"~[0-9.]+ (minutes|hours|days)"#, options: .regularExpression), estimate)
        XCTAssertTrue(
            outcome.output.contains("measured step (pskd bench, mlp on cifar100-shaped samples, batch 64 per rank)"), outcome.output)
        XCTAssertTrue(outcome.output.contains("391 steps per epoch × 300 epochs per run"), outcome.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "the dry run wrote \(out.path)")
    }

    /// tf-kd-self listed before ce still runs after it, with the same seed's ce run as teacher;
    /// without ce it is refused before anything starts. (Dry runs without the estimate.)
    func testTfKdSelfRunsAfterCeWithItsModelAndIsRefusedWithoutCe() throws {
        let scratch = try ClusterFixture.scratch(self, "recipe-order")
        let out = scratch.appendingPathComponent("experiment")
        let dry = try ClusterFixture.command(
            [
                script, "--recipe", "cifar100-paper", "--policies", "tf-kd-self pskd ce", "--seeds", "3 7", "--dry-run", "--no-estimate",
                "--out", out.path,
            ],
            timeout: 60)
        XCTAssertEqual(dry.status, 0, dry.output)
        let runs = plannedRuns(dry.output)
        XCTAssertEqual(runs.map(\.policy), ["ce", "tf-kd-self", "pskd", "ce", "tf-kd-self", "pskd"], dry.output)
        XCTAssertEqual(runs.map(\.seed), ["3", "3", "3", "7", "7", "7"])
        for run in runs where run.policy == "tf-kd-self" {
            XCTAssertTrue(
                run.line.contains("--policy tf-kd-self --teacher-checkpoint \(out.path)/ce-seed\(run.seed) --seed \(run.seed) "), run.line)
        }
        XCTAssertTrue(dry.output.contains("estimate:   not measured (--no-estimate)"), dry.output)
        XCTAssertFalse(dry.output.contains("measured step"), dry.output)

        let refused = try ClusterFixture.command(
            [script, "--recipe", "cifar100-paper", "--policies", "tf-kd-self pskd", "--out", out.path], timeout: 60)
        XCTAssertEqual(refused.status, 2, refused.output)
        XCTAssertTrue(refused.output.contains("do not include ce: add ce"), refused.output)
        XCTAssertFalse(refused.output.contains("--policy"), "it planned runs:\n\(refused.output)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
    }

    /// Without train.bin and test.bin in --data-dir (or without --data-dir) the paper's recipe
    /// names the files it needs and starts nothing.
    func testPaperRecipeRefusesMissingDataNamingTheFiles() throws {
        let scratch = try ClusterFixture.scratch(self, "recipe-nodata")
        let out = scratch.appendingPathComponent("experiment")
        let partial = try cifar100Files(in: scratch, train: 2, test: 2, only: ["train.bin"])
        for (data, says) in [
            (nil, "no --data-dir was given"), (scratch.appendingPathComponent("absent").path, "missing in "),
            (partial.path, "missing in \(partial.path): test.bin"),
        ] as [(String?, String)] {
            let outcome = try ClusterFixture.command(
                [script, "--recipe", "cifar100-paper", "--out", out.path] + (data.map { ["--data-dir", $0] } ?? []), timeout: 60)
            XCTAssertEqual(outcome.status, 2, outcome.output)
            XCTAssertTrue(outcome.output.contains("--data-dir DIR with train.bin and test.bin"), outcome.output)
            XCTAssertTrue(outcome.output.contains(says), outcome.output)
            XCTAssertFalse(outcome.output.contains("launch/local.sh:"), "a run started:\n\(outcome.output)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "\(out.path) was created")
        }
    }

    /// An unknown recipe name is refused listing the recipe files; a recipe file's path is a recipe.
    func testRecipesAreTheFilesOfLaunchRecipes() throws {
        let scratch = try ClusterFixture.scratch(self, "recipe-files")
        let unknown = try ClusterFixture.command([script, "--recipe", "cifar10-paper", "--dry-run", "--no-estimate"], timeout: 60)
        XCTAssertEqual(unknown.status, 2, unknown.output)
        XCTAssertTrue(
            unknown.output.contains(
                "unknown recipe 'cifar10-paper': choose one of cifar10-jpeg, cifar100-paper, fashion-mnist, fashion-mnist-clean, "
                    + "fashion-mnist-full, fashion-mnist-noisy, imagenet-paper"), unknown.output)
        let own = scratch.appendingPathComponent("mine.yaml")
        let text = try String(
            contentsOfFile: ClusterFixture.root.appendingPathComponent("launch/recipes/fashion-mnist.yaml").path, encoding: .utf8)
        try text.replacingOccurrences(of: "policies: [ce, ls, pskd]", with: "policies: [ls]").write(
            to: own, atomically: true, encoding: .utf8)
        let planned = try ClusterFixture.command(
            [script, "--recipe", own.path, "--dry-run", "--no-estimate", "--out", scratch.appendingPathComponent("x").path], timeout: 60)
        XCTAssertEqual(planned.status, 0, planned.output)
        XCTAssertTrue(planned.output.contains("experiment: recipe mine: ls × seeds 1 2 3 = 3 runs of cnn on fashion-mnist"), planned.output)
        XCTAssertEqual(plannedRuns(planned.output).map(\.policy), ["ls", "ls", "ls"])
    }

    /// The default recipe (no flags) and --full plan the runs they planned before recipes
    /// existed: the same `pskd train` settings, so their plan.txt (and so their experiment
    /// folders) stay valid.
    func testDefaultAndFullRecipesKeepTheirSettings() throws {
        let scratch = try ClusterFixture.scratch(self, "recipe-default")
        let shared =
            "--dataset fashion-mnist --batch-size 128 --lr 0.1 --optimizer sgd --momentum 0.9 --nesterov true --weight-decay 5e-4 "
            + "--flip true --ece-bins 15 --alpha-t 0.8 --label-smoothing 0.1 --keep-checkpoints 1 "
        for (flags, settings) in [
            ([], shared + "--lr-schedule cosine --crop-padding 2 --model cnn --epochs 30 --max-train-samples 4000"),
            (
                ["--recipe", "fashion-mnist"],
                shared + "--lr-schedule cosine --crop-padding 2 --model cnn --epochs 30 --max-train-samples 4000"
            ),
            (["--full"], shared + "--lr-schedule step --milestones 100,150 --crop-padding 4 --model preact-resnet18 --epochs 200"),
            (
                ["--recipe", "fashion-mnist-full", "--epochs", "40"],
                shared + "--lr-schedule step --milestones 20,30 --crop-padding 4 --model preact-resnet18 --epochs 40"
            ),
        ] {
            let outcome = try ClusterFixture.command(
                [script, "--dry-run", "--no-estimate", "--out", scratch.appendingPathComponent("x").path] + flags, timeout: 60)
            XCTAssertEqual(outcome.status, 0, outcome.output)
            XCTAssertTrue(outcome.output.contains("every run: pskd train \(settings) --policy P --seed S"), "\(flags):\n\(outcome.output)")
            XCTAssertEqual(plannedRuns(outcome.output).map(\.policy), ["ce", "ls", "pskd", "ce", "ls", "pskd", "ce", "ls", "pskd"])
        }
    }
}
