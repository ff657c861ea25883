import Foundation
import TestSupport
import XCTest

/// `pskd evaluate` under 1, 2 and 3 ranks: the same predictions byte for byte (evaluation
/// blocks are fixed by sample index), the same metrics as the training logged for that epoch,
/// and the metrics of an independent single-process computation from the predictions.
final class EvaluateCommandTests: XCTestCase {
    /// A checkpoint removed while `pskd evaluate` reads it (a training job rotating its
    /// checkpoints; test-only fault injection removes it right after its COMPLETE marker is read):
    /// given the run directory, evaluate looks again and takes the newest complete checkpoint left,
    /// saying so; given the checkpoint folder, the error says what happened and what to give
    /// instead. No raw Foundation error either way.
    func testACheckpointRemovedWhileReadIsLookedForAgainOrNamed() throws {
        let run = temporaryPath("evaluate-rotated")
        let trained = try ExecutableRunner.mpirun(
            ranks: 1,
            [
                "train", "--model", "mlp", "--epochs", "2", "--batch-size", "48", "--max-train-samples", "96",
                "--max-test-samples", "50", "--keep-checkpoints", "2", "--out", run,
            ])
        XCTAssertEqual(trained.status, 0, trained.output)
        func evaluate(_ path: String, vanishing epoch: Int) throws -> ExecutableRunner.Outcome {
            try ExecutableRunner.run(
                "/usr/bin/env",
                ["PSKD_TEST_FAULT=vanish-checkpoint epoch=\(epoch)", ExecutableRunner.executable.path, "evaluate", "--checkpoint", path],
                timeout: 120)
        }
        let retried = try evaluate(run, vanishing: 2)
        XCTAssertEqual(retried.status, 0, retried.output)
        XCTAssertTrue(
            retried.output.contains("pskd: note: checkpoint \(run)/checkpoints/epoch-0002 was removed while it was read"), retried.output)
        XCTAssertTrue(retried.output.contains("checkpoint \(run)/checkpoints/epoch-0001 (epoch 1)"), retried.output)
        XCTAssertFalse(retried.output.contains("NSCocoaErrorDomain"), retried.output)

        let folder = run + "/checkpoints/epoch-0001"
        let named = try evaluate(folder, vanishing: 1)
        XCTAssertNotEqual(named.status, 0, named.output)
        XCTAssertTrue(
            named.output.contains(
                "the checkpoint \(folder) was removed while it was read (a training job keeping only its newest "
                    + "--keep-checkpoints rotated it away?): give the run directory, --checkpoint \(run), "),
            named.output)
        XCTAssertFalse(named.output.contains("NSCocoaErrorDomain"), named.output)
    }

    func testPredictionsAndMetricsAreExactForAnyRankCountAndMatchAReference() throws {
        let run = temporaryPath("evaluate-run")
        // 211 test samples: one whole block of 128 and one padded block.
        let trained = try ExecutableRunner.mpirun(
            ranks: 2,
            [
                "train", "--model", "cnn", "--epochs", "1", "--batch-size", "32", "--max-train-samples", "96",
                "--max-test-samples", "211", "--ece-bins", "10", "--out", run,
            ])
        XCTAssertEqual(trained.status, 0, trained.output)
        let logged = try XCTUnwrap(
            String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8)
                .split(separator: "\n").last.flatMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })

        var reports: [[String: Any]] = []
        var predictions: [Data] = []
        for ranks in [1, 2, 3] {
            let csv = temporaryPath("predictions-\(ranks).csv")
            let outcome = try ExecutableRunner.mpirun(
                ranks: ranks,
                [
                    "evaluate", "--checkpoint", run, "--json", "--ece-bins", "10", "--predictions", csv,
                ])
            XCTAssertEqual(outcome.status, 0, outcome.output)
            let line = try XCTUnwrap(outcome.output.split(separator: "\n").first { $0.hasPrefix("{") }, outcome.output)
            reports.append(try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]))
            predictions.append(try Data(contentsOf: URL(fileURLWithPath: csv)))
        }
        XCTAssertEqual(predictions[1], predictions[0], "predictions CSV: 2 ranks vs 1")
        XCTAssertEqual(predictions[2], predictions[0], "predictions CSV: 3 ranks vs 1")
        let keys = ["test_top1_error", "test_top5_error", "test_nll", "test_ece", "test_aurc", "test_eaurc"]
        for key in keys {
            XCTAssertEqual(reports[1][key] as? Double, reports[0][key] as? Double, "\(key): 2 ranks vs 1")
            XCTAssertEqual(reports[2][key] as? Double, reports[0][key] as? Double, "\(key): 3 ranks vs 1")
            XCTAssertEqual(reports[0][key] as? Double, logged[key] as? Double, "\(key): evaluate vs the training's log (same key)")
        }
        XCTAssertEqual(reports[0]["ece_bins"] as? Int, 10)
        XCTAssertEqual((reports[0]["test_reliability"] as? [Any])?.count, 10)
        XCTAssertEqual(reports[0]["epoch"] as? Int, 1)
        XCTAssertEqual(reports[0]["checkpoint"] as? String, run + "/checkpoints/epoch-0001")
        XCTAssertEqual(reports[2]["ranks"] as? Int, 3)
        XCTAssertEqual(reports[0]["count"] as? Int, 211, "no test sample counted twice or missed")

        let csv = temporaryPath("predictions-reference.csv")
        try predictions[0].write(to: URL(fileURLWithPath: csv))
        let reference = try Reference(csv: csv, bins: 10)
        XCTAssertEqual(reference.count, 211)
        XCTAssertEqual(reports[0]["test_top1_error"] as? Double ?? .nan, reference.top1Error, accuracy: 1e-9)
        XCTAssertEqual(reports[0]["test_nll"] as? Double ?? .nan, reference.nll, accuracy: 1e-5)
        XCTAssertEqual(reports[0]["test_ece"] as? Double ?? .nan, reference.ece, accuracy: 1e-4)
        XCTAssertEqual(reports[0]["test_aurc"] as? Double ?? .nan, reference.aurc, accuracy: 1e-6)
    }

    /// A straightforward re-implementation of the paper's metrics from the CSV.
    private struct Reference {
        var count = 0, top1Error = 0.0, nll = 0.0, ece = 0.0, aurc = 0.0

        init(csv path: String, bins: Int) throws {
            let rows = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").dropFirst()
            var samples: [(index: Int, confidence: Double, correct: Bool)] = []
            for row in rows {
                let fields = row.split(separator: ",").map(String.init)
                let index = Int(fields[0])!, label = Int(fields[1])!
                let p = fields.dropFirst(2).map { Double($0)! }
                let best = p.indices.max { p[$0] < p[$1] || (p[$0] == p[$1] && $0 > $1) }!
                samples.append((index, p[best], best == label))
                nll -= log(max(p[label], 1e-30))
            }
            count = samples.count
            let n = Double(count)
            top1Error = 100 * Double(samples.filter { !$0.correct }.count) / n
            nll /= n
            for b in 0..<bins {
                let lower = Double(b) / Double(bins), upper = Double(b + 1) / Double(bins)
                let members = samples.filter { ($0.confidence > lower || (b == 0 && $0.confidence == 0)) && $0.confidence <= upper }
                guard !members.isEmpty else { continue }
                let accuracy = Double(members.filter(\.correct).count) / Double(members.count)
                let confidence = members.map(\.confidence).reduce(0, +) / Double(members.count)
                ece += Double(members.count) / n * abs(accuracy - confidence)
            }
            ece *= 100
            let ranked = samples.sorted { $0.confidence != $1.confidence ? $0.confidence > $1.confidence : $0.index < $1.index }
            var errors = 0.0
            for (k, sample) in ranked.enumerated() {
                errors += sample.correct ? 0 : 1
                aurc += errors / Double(k + 1)
            }
            aurc = 1000 * aurc / n
        }
    }
}
