import Foundation
import RunFixtures
import TestSupport
import XCTest

@testable import Reporting

/// What launch/experiment.sh gets from Swift: a recipe read and checked, its runs planned in
/// order with the script's flags applied, plan.txt spelt as before, the time estimate's model,
/// and, from the report, the table of ECE with another bin count and the failed runs.
final class ExperimentRecipeModelTests: XCTestCase {
    /// A recipe document as `pskd recipe` hands it over (YAML read into entries).
    private func document(
        policies: [String] = ["ce", "ls", "tf-kd-self", "pskd"], extra: [RecipeEntry] = [], train: [RecipeEntry]? = nil
    ) -> [RecipeEntry] {
        let experiment: [RecipeEntry] =
            [
                RecipeEntry("policies", .list(policies.map(RecipeValue.text))),
                RecipeEntry("seeds", .list([.text("1"), .text("2")])),
                RecipeEntry(
                    "policy-settings",
                    .mapping([RecipeEntry("tf-kd-self", .mapping([RecipeEntry("teacher-checkpoint", .text("{run:ce}"))]))])),
                RecipeEntry("training-images", .text("60000")), RecipeEntry("test-images", .text("10000")),
            ] + extra
        let settings =
            train ?? [
                RecipeEntry("dataset", .text("fashion-mnist")), RecipeEntry("batch-size", .text("128")),
                RecipeEntry("weight-decay", .text("5e-4")), RecipeEntry("lr-schedule", .text("step")),
                RecipeEntry("milestones", .list([.text("100"), .text("150")])), RecipeEntry("model", .text("cnn")),
                RecipeEntry("epochs", .text("200")),
            ]
        return [RecipeEntry("experiment", .mapping(experiment)), RecipeEntry("train", .mapping(settings))]
    }

    private func recipe(_ document: [RecipeEntry]) throws -> ExperimentRecipe {
        try ExperimentRecipe(name: "test", document: document, source: "test.yaml")
    }

    private func refusal(_ body: () throws -> Any) -> String {
        do {
            _ = try body()
            XCTFail("not refused")
            return ""
        } catch {
            return "\(error)"
        }
    }

    func testTheTrainSectionBecomesFlagsInFileOrderAndListsJoinWithCommas() throws {
        let plan = try ExperimentPlan(
            recipe: try recipe(document()), overrides: RecipeOverrides(), out: "/x", dataDirectory: nil, extra: [], ranks: 2)
        XCTAssertEqual(
            plan.commonArguments,
            [
                "--dataset", "fashion-mnist", "--batch-size", "128", "--weight-decay", "5e-4", "--lr-schedule", "step", "--milestones",
                "100,150", "--model", "cnn", "--epochs", "200",
            ])
    }

    func testUnknownKeysAndPerRunSettingsAreRefusedNamingTheNearestKey() throws {
        let misspelt = refusal { try self.recipe(self.document(extra: [RecipeEntry("seedz", .text("1"))])) }
        XCTAssertTrue(misspelt.contains("unknown key 'seedz' (did you mean 'seeds'?"), misspelt)
        let top = refusal { try self.recipe(self.document() + [RecipeEntry("trian", .mapping([]))]) }
        XCTAssertTrue(top.contains("did you mean 'train'?"), top)
        let perRun = refusal {
            try self.recipe(
                self.document(train: [
                    RecipeEntry("dataset", .text("mnist")), RecipeEntry("seed", .text("4")), RecipeEntry("model", .text("mlp")),
                    RecipeEntry("epochs", .text("1")), RecipeEntry("batch-size", .text("8")),
                ]))
        }
        XCTAssertTrue(perRun.contains("train: 'seed' is set by the experiment for each run"), perRun)
        let missing = refusal { try self.recipe(self.document(train: [RecipeEntry("dataset", .text("mnist"))])) }
        XCTAssertTrue(missing.contains("train: 'model' is missing"), missing)
    }

    /// ce first, a run reading another (tf-kd-self reads ce) after it, each seed in turn; without
    /// the run it reads the list is refused, naming the setting.
    func testRunsAreOrderedCeFirstAndAfterTheRunsTheyRead() throws {
        let recipe = try recipe(document())
        let plan = try ExperimentPlan(
            recipe: recipe, overrides: RecipeOverrides(policies: ["tf-kd-self", "pskd", "ce"]), out: "/e", dataDirectory: nil,
            extra: ["--prefetch", "1"], ranks: 2)
        XCTAssertEqual(plan.runs.map(\.policy), ["ce", "tf-kd-self", "pskd", "ce", "tf-kd-self", "pskd"])
        XCTAssertEqual(plan.runs.map(\.seed), [1, 1, 1, 2, 2, 2])
        let teacher = try XCTUnwrap(plan.runs.first { $0.policy == "tf-kd-self" && $0.seed == 2 })
        XCTAssertEqual(
            Array(teacher.trainArguments.suffix(11)),
            [
                "--prefetch", "1", "--policy", "tf-kd-self", "--teacher-checkpoint", "/e/ce-seed2", "--seed", "2", "--out",
                "/e/tf-kd-self-seed2", "--resume",
            ])
        let refused = refusal {
            try ExperimentPlan(
                recipe: recipe, overrides: RecipeOverrides(policies: ["tf-kd-self", "pskd"]), out: "/e", dataDirectory: nil, extra: [],
                ranks: 2)
        }
        XCTAssertTrue(refused.contains("--teacher-checkpoint OUT/ce-seedS"), refused)
        XCTAssertTrue(refused.contains("do not include ce: add ce"), refused)
        let badName = refusal {
            try ExperimentPlan(
                recipe: recipe, overrides: RecipeOverrides(policies: ["CE"]), out: "/e", dataDirectory: nil, extra: [], ranks: 2)
        }
        XCTAssertTrue(badName.contains("'CE' is not a policy name"), badName)
        let none = refusal {
            try ExperimentPlan(recipe: recipe, overrides: RecipeOverrides(policies: []), out: "/e", dataDirectory: nil, extra: [], ranks: 2)
        }
        XCTAssertTrue(none.contains("no policies to run"), none)
    }

    /// --epochs scales the milestones only when the recipe says they follow the epochs;
    /// --train-samples sets or removes max-train-samples; plan.txt is spelt as the bash script spelt it.
    func testOverridesAndThePlanText() throws {
        var entries = document()
        let follows = try recipe(document(extra: [RecipeEntry("milestones-follow-epochs", .text("true"))]))
        let scaled = try ExperimentPlan(
            recipe: follows, overrides: RecipeOverrides(epochs: 40, trainSamples: .some(4000), model: "mlp"), out: "/e",
            dataDirectory: nil, extra: [], ranks: 2)
        XCTAssertEqual(scaled.value("milestones"), "20,30")
        XCTAssertEqual(scaled.value("epochs"), "40")
        XCTAssertEqual(scaled.value("model"), "mlp")
        XCTAssertEqual(scaled.commonArguments.suffix(2), ["--max-train-samples", "4000"])
        XCTAssertEqual(scaled.trainingImages, 4000)
        let fixed = try ExperimentPlan(
            recipe: try recipe(entries), overrides: RecipeOverrides(epochs: 1), out: "/e", dataDirectory: nil, extra: [], ranks: 2)
        XCTAssertEqual(fixed.value("milestones"), "100,150")
        entries = document(train: [
            RecipeEntry("dataset", .text("mnist")), RecipeEntry("batch-size", .text("8")), RecipeEntry("model", .text("mlp")),
            RecipeEntry("epochs", .text("2")), RecipeEntry("max-train-samples", .text("64")),
        ])
        let all = try ExperimentPlan(
            recipe: try recipe(entries), overrides: RecipeOverrides(trainSamples: .some(nil)), out: "/e", dataDirectory: nil, extra: [],
            ranks: 3)
        XCTAssertNil(all.value("max-train-samples"))
        XCTAssertEqual(all.planText, "pskd train --dataset mnist --batch-size 8 --model mlp --epochs 2  --policy P --seed S; ranks 3")
        let withExtra = try ExperimentPlan(
            recipe: try recipe(entries), overrides: RecipeOverrides(), out: "/e", dataDirectory: "/data", extra: ["--lr", "0.2"], ranks: 2)
        XCTAssertEqual(
            withExtra.planText,
            "pskd train --dataset mnist --batch-size 8 --model mlp --epochs 2 --max-train-samples 64 --lr 0.2 --policy P --seed S; ranks 2")
        XCTAssertTrue(withExtra.summary.contains("every run: pskd train --dataset mnist"), withExtra.summary)
        XCTAssertTrue(withExtra.summary.contains("--max-train-samples 64 --data-dir /data --lr 0.2 --policy P --seed S"), withExtra.summary)
    }

    /// The data files are looked for in --data-dir, or in the last --data-dir after --.
    func testMissingDataFilesAreNamed() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("recipe-data-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data([1]).write(to: folder.appendingPathComponent("train.bin"))
        let recipe = try recipe(document(extra: [RecipeEntry("data-files", .list([.text("train.bin"), .text("test.bin")]))]))
        func message(_ dataDirectory: String?, _ extra: [String] = []) throws -> String? {
            try ExperimentPlan(
                recipe: recipe, overrides: RecipeOverrides(), out: "/e", dataDirectory: dataDirectory, extra: extra, ranks: 2
            )
            .missingDataMessage()
        }
        XCTAssertTrue(try message(nil)?.contains("no --data-dir was given") ?? false)
        XCTAssertTrue(try message(folder.path)?.contains("missing in \(folder.path): test.bin") ?? false)
        try Data([1]).write(to: folder.appendingPathComponent("test.bin"))
        XCTAssertNil(try message(folder.path))
        XCTAssertNil(try message(nil, ["--data-dir", folder.path]))
        XCTAssertTrue(try message(folder.path, ["--data-dir=/absent"])?.contains("missing in /absent: train.bin test.bin") ?? false)
    }

    /// The estimate's model, as the bash script computed it: per run, epochs × (steps × step +
    /// test batches × step/3) + one test pass per extra-bin evaluation + 3 s; pskd steps at bench's
    /// PS-KD time, a run that reads another's model at 4/3 of a step.
    func testTheEstimateFollowsItsModel() throws {
        let recipe = try recipe(document(extra: [RecipeEntry("also-ece-bins", .text("15"))]))
        let plan = try ExperimentPlan(
            recipe: recipe, overrides: RecipeOverrides(epochs: 10, trainSamples: .some(1280)), out: "/e", dataDirectory: nil, extra: [],
            ranks: 2)
        let bench = try ExperimentEstimate.Bench.parse(
            "launch/local.sh: 2 ranks\n{\"milliseconds_per_step\":30,\"pskd_milliseconds_per_step\":36,\"threads\":1,\"model\":\"cnn\"}\n")
        let estimate = ExperimentEstimate(plan: plan, bench: bench)
        XCTAssertEqual(estimate.stepsPerEpoch, 10)
        XCTAssertEqual(estimate.perRankBatch, 64)
        let testBatches = 79.0, evaluation = 10.0
        func run(_ step: Double) -> Double { 10 * (10 * step + testBatches * evaluation) + testBatches * evaluation + 3000 }
        let expected = 2 * (run(30) + run(30) + run(40) + run(36)) / 1000
        XCTAssertEqual(estimate.seconds, expected, accuracy: 1e-9)
        let text = estimate.text(load: "0.5 on 2 cores")
        XCTAssertTrue(
            text.hasPrefix(
                "estimate:   ~\(String(format: "%.0f", expected / 60)) minutes for the 8 runs on THIS machine with 2 rank(s) × 1 thread(s)"),
            text)
        XCTAssertTrue(text.contains("measured step (pskd bench, cnn on fashion-mnist-shaped samples, batch 64 per rank)"), text)
        XCTAssertTrue(text.contains("10 steps per epoch × 10 epochs per run"), text)
        XCTAssertEqual(ExperimentEstimate.span(7300), "2.0 hours")
        XCTAssertEqual(ExperimentEstimate.span(200_000), "2.3 days (56 hours)")
        XCTAssertEqual(
            ExperimentEstimate.benchArguments(plan),
            [
                "--command", "bench", "--model", "cnn", "--dataset", "fashion-mnist", "--batch-size", "64", "--steps", "3", "--warmup", "1",
                "--json",
            ])
        XCTAssertThrowsError(try ExperimentEstimate.Bench.parse("mpirun: not found\n"))
    }

    /// `RUN/ece-15bins.json` (evaluate's output, a launcher's line before it) gives a table per
    /// policy, mean ± sample std over the runs, in Markdown and HTML; an evaluation of another
    /// epoch is left out with a warning; failed runs are named.
    func testTheExtraECETableAndTheFailedRuns() throws {
        let fixture = try FixtureRuns(self)
        let paths = try fixture.experiment(seeds: [1, 2], epochs: 3)
        func save(_ run: String, ece: Double, epoch: Int) throws {
            let line = "{\"count\":100,\"ece_bins\":15,\"epoch\":\(epoch),\"test_ece\":\(ece),\"test_top1_error\":10}"
            try Data("launch/local.sh: starting\n\(line)\n".utf8).write(
                to: URL(fileURLWithPath: run).appendingPathComponent("ece-15bins.json"))
        }
        let ce = paths.filter { $0.hasSuffix("/ce-seed1") || $0.hasSuffix("/ce-seed2") }
        try save(ce[0], ece: 4, epoch: 3)
        try save(ce[1], ece: 6, epoch: 3)
        let pskd = try XCTUnwrap(paths.first { $0.hasSuffix("/pskd-seed1") })
        try save(pskd, ece: 1, epoch: 2)
        let report = try ExperimentReport(paths: paths, failed: ["/e/ls-seed3"])
        let table = try XCTUnwrap(report.extraECE.first)
        XCTAssertEqual(report.extraECE.count, 1)
        XCTAssertEqual(table.rows.map(\.label), ["ce"])
        XCTAssertEqual(table.markdown.split(separator: "\n").last, "| ce | 5.00 ± 1.41 | 2 |")
        XCTAssertTrue(
            table.markdown.hasPrefix(
                "ECE (%) with 15 equal-width bins (pskd evaluate --ece-bins 15 on each run's final checkpoint; the tables above use 15)"))
        XCTAssertTrue(report.warnings.contains { $0.contains("evaluates epoch 2, not the run's final epoch 3") }, "\(report.warnings)")
        XCTAssertEqual(report.failureNotes, ["/e/ls-seed3 failed and is not in the report (its log: /e/ls-seed3/train.log)."])
        XCTAssertFalse(report.warnings.contains { $0.contains("ls-seed3") }, "the failed run is named once, not among the warnings")
        let html = HTMLReport(report: report, generated: nil).render()
        XCTAssertTrue(html.contains("<section id=\"ece-15-bins\"><h2>ECE with 15 bins</h2>"), html)
        XCTAssertTrue(html.contains("<tr><th scope=\"row\">ce</th><td>5.00 ± 1.41</td><td>2</td></tr>"))
        XCTAssertTrue(html.hasSuffix("</html>\n"))
        XCTAssertTrue(html.contains("<li>/e/ls-seed3 failed and is not in the report"), "the page names the failed run")
        XCTAssertThrowsError(try ExperimentReport(paths: [], failed: ["/e/a"])) { error in
            XCTAssertEqual("\(error)", "every run failed (/e/a): no report")
        }
    }
}
