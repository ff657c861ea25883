import Foundation
import RunFixtures
import Training
import XCTest

@testable import Reporting

/// Grouping runs by policy, statistics over seeds, pooled reliability bins, settings and warnings.
final class ReportModelTests: XCTestCase {
    func testSummaryIsTheMeanAndTheSampleStandardDeviation() {
        let summary = Summary([1, 2, 3, 4])
        XCTAssertEqual(summary.mean, 2.5)
        XCTAssertEqual(summary.standardDeviation, (5.0 / 3).squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(summary.count, 4)
        XCTAssertEqual(Summary([7]).standardDeviation, 0)
        XCTAssertTrue(Summary([]).mean.isNaN)
        XCTAssertEqual(ExperimentReport.format(Summary([1, 2, 3, 4]), digits: 2), "2.50 ± 1.29")
        XCTAssertEqual(ExperimentReport.format(Summary([0.12345]), digits: 4), "0.1235")
    }

    /// The width multiplier is shown beside the model's name for the models it scales.
    func testTheModelsTheWidthMultiplierScales() {
        for model in ["preact-resnet18", "preact-resnet18-he", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152"] {
            XCTAssertTrue(ExperimentReport.scalesWidth(model), model)
        }
        for model in ["mlp", "cnn"] { XCTAssertFalse(ExperimentReport.scalesWidth(model), model) }
    }

    func testRunsAreGroupedByPolicyInBaselineOrderAndSeedOrder() throws {
        let fixture = try FixtureRuns(self)
        let paths = try fixture.experiment(seeds: [3, 1, 2], epochs: 2)
        let report = try ExperimentReport(paths: paths.reversed())
        XCTAssertEqual(report.groups.map(\.label), ["ce", "ls (ε = 0.1)", "pskd (α_T = 0.8)"])
        XCTAssertEqual(report.groups.map(\.policy), ["ce", "ls", "pskd"])
        for group in report.groups { XCTAssertEqual(group.seeds, [1, 2, 3]) }
        XCTAssertEqual(report.runCount, 9)
        XCTAssertEqual(report.warnings, [])
    }

    func testFinalEpochStatisticsAndCurvesAreOverSeeds() throws {
        let fixture = try FixtureRuns(self)
        func epoch(_ top1: Double, ece: Double) -> FixtureRuns.Epoch {
            .init(top1: top1, top5: top1 / 10, nll: top1 / 100, ece: ece, aurc: 2 * top1, eaurc: top1 - 1)
        }
        let a = try fixture.run("a", policy: "ce", seed: 1, epochs: [epoch(50, ece: 9), epoch(20, ece: 4)])
        let b = try fixture.run("b", policy: "ce", seed: 2, epochs: [epoch(40, ece: 7), epoch(24, ece: 6)])
        let c = try fixture.run("c", policy: "pskd", seed: 1, epochs: [epoch(45, ece: 5), epoch(18, ece: 2)])
        let report = try ExperimentReport(paths: [a, b, c])
        let ce = report.groups[0], pskd = report.groups[1]
        XCTAssertEqual(ce.final(.top1Error).mean, 22)
        XCTAssertEqual(ce.final(.top1Error).standardDeviation, 8.0.squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(ce.final(.ece).mean, 5)
        XCTAssertEqual(ce.final(.aurc).mean, 44)
        XCTAssertEqual(ce.final(.eaurc).mean, 21)
        XCTAssertEqual(ce.final(.top5Error).mean, 2.2, accuracy: 1e-12)
        XCTAssertEqual(ce.final(.nll).mean, 0.22, accuracy: 1e-12)
        XCTAssertEqual(pskd.final(.top1Error), Summary([18]))
        let curve = ce.curve(.top1Error)
        XCTAssertEqual(curve.map(\.epoch), [1, 2])
        XCTAssertEqual(curve.map(\.summary.mean), [45, 22])
        XCTAssertTrue(report.warnings.contains { $0.contains("pskd (α_T = 0.8): one seed only") }, "\(report.warnings)")

        let table = report.markdownTable()
        XCTAssertTrue(table.contains("| ce | 2 | 22.00 ± 2.83 | 2.20 ± 0.28 | 0.2200 ± 0.0283 | 5.00 ± 1.41 |"), table)
        XCTAssertTrue(table.contains("| pskd (α_T = 0.8) | 1 | 18.00 | 1.80 |"), table)
    }

    /// Runs of different lengths: every epoch's curve point is over the runs that reached it;
    /// the seeds column counts distinct seeds; the training loss has a curve.
    func testCurvesCoverRunsOfDifferentLengthsAndSeedsAreCountedOnce() throws {
        let fixture = try FixtureRuns(self)
        func epoch(_ top1: Double) -> FixtureRuns.Epoch { .init(top1: top1, top5: 1, nll: 1, ece: 1, aurc: 1, eaurc: 1) }
        let short = try fixture.run("short", policy: "ce", seed: 1, epochs: [epoch(50), epoch(30)])
        let long = try fixture.run("long", policy: "ce", seed: 2, epochs: [epoch(40), epoch(20), epoch(10), epoch(8)])
        let again = try fixture.run("again", policy: "ce", seed: 2, epochs: [epoch(60), epoch(40)])
        let report = try ExperimentReport(paths: [short, long, again])
        let curve = report.groups[0].curve(.top1Error)
        XCTAssertEqual(curve.map(\.epoch), [1, 2, 3, 4])
        XCTAssertEqual(curve.map(\.summary.count), [3, 3, 1, 1])
        XCTAssertEqual(curve.map(\.summary.mean), [50, 30, 10, 8])
        XCTAssertEqual(report.groups[0].curve(\.trainLoss).map(\.summary.mean), [1, 1, 1, 1])
        XCTAssertEqual(report.groups[0].distinctSeeds, 2)
        XCTAssertTrue(report.markdownTable().contains("| ce | 2 | "), report.markdownTable())
        XCTAssertTrue(HTMLReport(report: report).render().contains("Training loss"))
    }

    /// The best-epoch table takes each run's epoch of lowest top-1 error (the earliest of equals),
    /// with all its metrics; the HTML report shows it beside the final epoch's.
    func testBestTop1EpochOfEachRun() throws {
        let fixture = try FixtureRuns(self)
        func epoch(_ top1: Double, nll: Double) -> FixtureRuns.Epoch { .init(top1: top1, top5: 1, nll: nll, ece: 1, aurc: 1, eaurc: 1) }
        let a = try fixture.run("a", policy: "ce", seed: 1, epochs: [epoch(50, nll: 5), epoch(20, nll: 2), epoch(30, nll: 3)])
        let b = try fixture.run("b", policy: "ce", seed: 2, epochs: [epoch(40, nll: 4), epoch(10, nll: 1), epoch(10, nll: 9)])
        let report = try ExperimentReport(paths: [a, b])
        let group = report.groups[0]
        XCTAssertEqual(group.bestRecords.map(\.epoch), [2, 2])
        XCTAssertEqual(group.summary(.top1Error, at: .bestTop1).mean, 15)
        XCTAssertEqual(group.summary(.nll, at: .bestTop1).mean, 1.5, accuracy: 1e-12)
        XCTAssertEqual(group.summary(.top1Error, at: .final).mean, 20)
        XCTAssertTrue(report.markdownTable(at: .bestTop1).contains("| ce | 2 | 15.00 ± 7.07 |"), report.markdownTable(at: .bestTop1))
        let html = HTMLReport(report: report).render()
        XCTAssertTrue(html.contains("best top-1 epoch"), "the HTML report has the best-epoch table")
    }

    /// A run resumed on fewer test samples (`test_samples` per row): its best epoch is chosen
    /// among the rows evaluated on the final row's count, and the report says which it left out.
    func testBestEpochComparesOnlyRowsOfTheFinalTestSampleCount() throws {
        let fixture = try FixtureRuns(self)
        func epoch(_ top1: Double, samples: Int?) -> FixtureRuns.Epoch {
            var epoch = FixtureRuns.Epoch(top1: top1, top5: 1, nll: 1, ece: 1, aurc: 1, eaurc: 1)
            epoch.testSamples = samples
            return epoch
        }
        let mixed = try fixture.run(
            "mixed", policy: "ce", seed: 1,
            epochs: [epoch(5, samples: 10000), epoch(30, samples: 500), epoch(20, samples: 500), epoch(25, samples: 500)])
        let same = try fixture.run("same", policy: "ce", seed: 2, epochs: [epoch(40, samples: 500), epoch(10, samples: 500)])
        let old = try fixture.run("old", policy: "ls", seed: 1, epochs: [epoch(40, samples: nil), epoch(35, samples: nil)])
        let report = try ExperimentReport(paths: [mixed, same, old])
        XCTAssertEqual(report.groups[0].bestRecords.map(\.epoch), [3, 2], "epoch 1 of 'mixed' (5 % on 10000 samples) does not compete")
        XCTAssertEqual(report.groups[1].bestRecords.map(\.epoch), [2], "rows without a count compare among themselves")
        XCTAssertTrue(
            report.warnings.contains {
                $0.hasPrefix("\(mixed): epoch(s) 1 were evaluated on 10000 test samples, the final epoch on 500")
            }, "\(report.warnings)")
        XCTAssertFalse(report.warnings.contains { $0.hasPrefix(same) || $0.hasPrefix(old) }, "\(report.warnings)")
    }

    /// One unreadable run (or one without an epoch) does not stop the report: the others are
    /// reported and it is named with the reason among the warnings (on the page as well); only
    /// when no run can be read is it an error, naming every one.
    func testUnreadableRunsAreListedAndTheOthersReported() throws {
        let fixture = try FixtureRuns(self)
        let paths = try fixture.experiment(seeds: [1, 2], epochs: 2)
        let broken = fixture.root.appendingPathComponent("broken")
        try FileManager.default.createDirectory(at: broken, withIntermediateDirectories: true)
        try Data("{\"epochs\": \"many\"}".utf8).write(to: broken.appendingPathComponent("config.json"))
        let empty = try fixture.run("empty", policy: "ce", seed: 3, epochs: [])
        let report = try ExperimentReport(paths: paths + [broken.path, empty])
        XCTAssertEqual(report.runCount, 6)
        XCTAssertEqual(report.unreadable.map(\.path), [broken.path, empty])
        XCTAssertTrue(
            report.warnings.contains {
                $0.hasPrefix("\(broken.path) is not in the report: ") && $0.contains("is not a pskd configuration")
            },
            "\(report.warnings)")
        XCTAssertTrue(report.warnings.contains { $0.hasPrefix("\(empty) is not in the report: ") && $0.contains("has no epoch yet") })
        XCTAssertTrue(HTMLReport(report: report).render().contains("is not in the report"))

        XCTAssertThrowsError(try ExperimentReport(paths: [broken.path, empty])) { error in
            XCTAssertTrue("\(error)".hasPrefix("none of the 2 runs can be reported: "), "\(error)")
            XCTAssertTrue("\(error)".contains("is not a pskd configuration") && "\(error)".contains("has no epoch yet"), "\(error)")
        }
    }

    func testDifferencesToCrossEntropyAreMarkedWhenWithinTheSeedSpread() throws {
        let fixture = try FixtureRuns(self)
        func epoch(_ top1: Double, ece: Double) -> FixtureRuns.Epoch {
            .init(top1: top1, top5: 1, nll: 0.5, ece: ece, aurc: 20, eaurc: 10)
        }
        let paths = [
            try fixture.run("ce1", policy: "ce", seed: 1, epochs: [epoch(10, ece: 5)]),
            try fixture.run("ce2", policy: "ce", seed: 2, epochs: [epoch(14, ece: 5.2)]),
            try fixture.run("ls1", policy: "ls", seed: 1, epochs: [epoch(11, ece: 8)]),
            try fixture.run("ls2", policy: "ls", seed: 2, epochs: [epoch(12, ece: 8.2)]),
            try fixture.run("pskd1", policy: "pskd", seed: 1, epochs: [epoch(6, ece: 2)]),
            try fixture.run("pskd2", policy: "pskd", seed: 2, epochs: [epoch(7, ece: 2.2)]),
        ]
        let report = try ExperimentReport(paths: paths)
        let baseline = try XCTUnwrap(report.baseline)
        XCTAssertEqual(baseline.policy, "ce")
        let ls = report.difference(report.groups[1], to: baseline)
        XCTAssertEqual(ls[0].metric, .top1Error)
        XCTAssertEqual(ls[0].delta, -0.5, accuracy: 1e-12)
        XCTAssertTrue(ls[0].withinSpread, "0.5 < the std of ce's 10 and 14")
        XCTAssertEqual(ls[3].delta, 3, accuracy: 1e-12)
        XCTAssertFalse(ls[3].withinSpread)
        XCTAssertTrue(ls[2].withinSpread, "equal NLL: a zero difference is within any spread")
        let pskd = report.difference(report.groups[2], to: baseline)
        XCTAssertEqual(pskd[0].delta, -5.5, accuracy: 1e-12)
        XCTAssertFalse(pskd[0].withinSpread)
        let table = try XCTUnwrap(report.markdownDifferences())
        XCTAssertTrue(table.contains("| ls (ε = 0.1) | −0.50 ≈ |"), table)
        XCTAssertTrue(table.contains("| pskd (α_T = 0.8) | −5.50 | +0.00 ≈ | +0.0000 ≈ | −3.00 |"), table)
        XCTAssertEqual(ExperimentReport.signed(-0.001, digits: 2), "+0.00")
        XCTAssertEqual(ExperimentReport.signed(2.5, digits: 1), "+2.5")
        let html = HTMLReport(report: report, generated: nil).render()
        XCTAssertTrue(html.contains("<td class=\"better\">−5.50</td>"))
        XCTAssertTrue(html.contains("<td class=\"worse\">+3.00</td>"))
        XCTAssertTrue(html.contains("<td class=\"same\">−0.50 ≈</td>"))
    }

    func testReliabilityBinsArePooledByCount() throws {
        let fixture = try FixtureRuns(self)
        let one = FixtureRuns.Epoch(
            top1: 10, top5: 1, nll: 0.3, ece: 1, aurc: 1, eaurc: 1,
            bins: [(0, 0, 0), (10, 0.5, 0.6), (30, 1.0, 0.9)])
        let two = FixtureRuns.Epoch(
            top1: 10, top5: 1, nll: 0.3, ece: 1, aurc: 1, eaurc: 1,
            bins: [(4, 0.25, 0.2), (30, 0.7, 0.6), (10, 0.8, 0.9)])
        let a = try fixture.run("a", policy: "ls", seed: 1, epochs: [one], configure: { $0.eceBins = 3 })
        let b = try fixture.run("b", policy: "ls", seed: 2, epochs: [two], configure: { $0.eceBins = 3 })
        let group = try ExperimentReport(paths: [a, b]).groups[0]
        let bins = group.pooledReliability
        XCTAssertEqual(bins.map(\.count), [4, 40, 40])
        XCTAssertEqual(bins[0].accuracy, 0.25, accuracy: 1e-12)
        XCTAssertEqual(bins[1].accuracy, (10 * 0.5 + 30 * 0.7) / 40, accuracy: 1e-12)
        XCTAssertEqual(bins[1].confidence, 0.6, accuracy: 1e-12)
        XCTAssertEqual(bins[2].accuracy, (30 * 1.0 + 10 * 0.8) / 40, accuracy: 1e-12)
        XCTAssertEqual(bins[2].confidence, 0.9, accuracy: 1e-12)
        XCTAssertEqual(bins.map(\.lower), [0, 1.0 / 3, 2.0 / 3])
        let expectedECE = 100 * (4 * 0.05 + 40 * abs(0.65 - 0.6) + 40 * abs(0.95 - 0.9)) / 84
        XCTAssertEqual(group.pooledECE, expectedECE, accuracy: 1e-9)
    }

    func testDifferentParametersAreDifferentGroupsAndDifferentBudgetsAreFlagged() throws {
        let fixture = try FixtureRuns(self)
        let epoch = FixtureRuns.Epoch(top1: 10, top5: 1, nll: 0.3, ece: 1, aurc: 1, eaurc: 1)
        let paths = [
            try fixture.run("a", policy: "ls", seed: 1, epochs: [epoch], configure: { $0.labelSmoothing = 0.1 }),
            try fixture.run("b", policy: "ls", seed: 1, epochs: [epoch], configure: { $0.labelSmoothing = 0.2 }),
            try fixture.run(
                "c", policy: "ls", seed: 1, epochs: [epoch],
                configure: {
                    $0.labelSmoothing = 0.2; $0.model = "mlp"
                }),
            try fixture.run("d", policy: "pskd", seed: 1, epochs: [epoch, epoch], configure: { $0.epochs = 5 }),
        ]
        let report = try ExperimentReport(paths: paths)
        XCTAssertEqual(report.groups.map(\.label), ["ls (ε = 0.1)", "ls (ε = 0.2)", "pskd (α_T = 0.8)"])
        XCTAssertEqual(report.groups.map(\.runs.count), [1, 2, 1])
        let model = try XCTUnwrap(report.settings.first { $0.name == "model" })
        XCTAssertEqual(model.values, ["cnn", "mlp"])
        XCTAssertTrue(report.warnings.contains { $0.hasPrefix("Runs differ in model (cnn, mlp)") }, "\(report.warnings)")
        XCTAssertTrue(report.warnings.contains { $0.hasPrefix("Runs differ in epochs") }, "\(report.warnings)")
        XCTAssertTrue(report.warnings.contains { $0.contains("ls (ε = 0.2): several runs share a seed") }, "\(report.warnings)")
        XCTAssertTrue(report.warnings.contains { $0.contains("has 2 of 5 epochs") }, "\(report.warnings)")
    }

    func testSettingsSpellOutDefaultsAndRanksFromTheLog() throws {
        let fixture = try FixtureRuns(self)
        let paths = try fixture.experiment(seeds: [1], epochs: 1)
        let report = try ExperimentReport(paths: paths)
        let settings = Dictionary(uniqueKeysWithValues: report.settings.map { ($0.name, $0.values.joined(separator: "|")) })
        XCTAssertEqual(settings["model"], "cnn")
        XCTAssertEqual(settings["training samples"], "first 2000")
        XCTAssertEqual(settings["test samples"], "all")
        XCTAssertEqual(settings["optimizer"], "SGD, momentum 0.9, Nesterov")
        XCTAssertEqual(settings["weight decay"], "0.0005 (l2)")
        XCTAssertEqual(settings["lr schedule"], "cosine")
        XCTAssertEqual(settings["random crop padding"], "0")
        XCTAssertEqual(settings["horizontal flip"], "on")
        XCTAssertEqual(settings["ECE bins"], "15")
        XCTAssertEqual(settings["ranks"], "2")
        XCTAssertNil(settings["seed"])
        XCTAssertNil(settings["policy"])

        let step = try fixture.run(
            "step", policy: "ce", seed: 9, epochs: [FixtureRuns.Epoch(top1: 1, top5: 1, nll: 1, ece: 1, aurc: 1, eaurc: 1)],
            configure: {
                $0.learningRateSchedule = .step; $0.milestones = [100, 150]; $0.warmupEpochs = 2
            })
        let stepSettings = ExperimentReport.displayValues(try RunDirectory(path: step))
        XCTAssertEqual(stepSettings.first { $0.0 == "lr schedule" }?.1, "step (×0.1 after epochs 100, 150), 2 warm-up epochs")
        XCTAssertNil(try RunDirectory(path: step).ranks, "rows without `ranks`: no rank count")
    }

    /// The rank count comes from `metrics.jsonl`'s rows, never from `train.log` text: a run resumed
    /// on another count shows both, in epoch order; rows from before pskd recorded it say so.
    func testRankCountIsReadFromTheMetricsRowsNotTheLog() throws {
        let fixture = try FixtureRuns(self)
        let epoch = FixtureRuns.Epoch(top1: 1, top5: 1, nll: 1, ece: 1, aurc: 1, eaurc: 1)
        let log = "pskd: training cnn (8 parameters) on fashion-mnist, global batch 128 over 12 rank(s) × 1 thread(s); run\n"
        let resumed = try fixture.run("resumed", policy: "ce", seed: 1, epochs: [epoch, epoch, epoch], ranks: [2, 2, 4], log: log)
        let run = try RunDirectory(path: resumed)
        XCTAssertEqual(run.rankCounts, [2, 4])
        XCTAssertNil(run.ranks, "two rank counts: no single one")
        XCTAssertEqual(run.epochs.last?.world, WorldLayout(ranks: 4, nodes: 1, ranksPerNode: 4, threadsPerRank: 1))

        let old = try fixture.run("old", policy: "ce", seed: 2, epochs: [epoch], log: log)
        XCTAssertEqual(try RunDirectory(path: old).rankCounts, [nil], "the log's 12 ranks are not read")
        XCTAssertNil(try RunDirectory(path: old).epochs[0].world)

        let settings = ExperimentReport.settings(of: [run, try RunDirectory(path: old)])
        XCTAssertEqual(settings.first { $0.name == "ranks" }?.values, ["2, then 4", "not recorded"])
    }

    func testMissingOrInvalidRunDirectoriesAreErrorsNamingTheFile() throws {
        let fixture = try FixtureRuns(self)
        let missing = fixture.root.appendingPathComponent("nowhere").path
        XCTAssertThrowsError(try ExperimentReport(paths: [missing])) { error in
            XCTAssertTrue("\(error)".contains("nowhere/config.json is missing"), "\(error)")
        }
        let broken = fixture.root.appendingPathComponent("broken")
        try FileManager.default.createDirectory(at: broken, withIntermediateDirectories: true)
        try Data("{\"epochs\": \"many\"}".utf8).write(to: broken.appendingPathComponent("config.json"))
        XCTAssertThrowsError(try ExperimentReport(paths: [broken.path])) { error in
            XCTAssertTrue("\(error)".contains("is not a pskd configuration"), "\(error)")
        }
        let empty = try fixture.run("empty", policy: "ce", seed: 1, epochs: [])
        XCTAssertThrowsError(try ExperimentReport(paths: [empty])) { error in
            XCTAssertTrue("\(error)".contains("has no epoch yet"), "\(error)")
        }
        XCTAssertThrowsError(try ExperimentReport(paths: []))
    }
}
