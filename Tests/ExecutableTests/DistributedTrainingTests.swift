import Foundation
import TestSupport
import XCTest

/// Real multi-process runs of `pskd train` under mpirun.
final class DistributedTrainingTests: XCTestCase {
    /// A quick MLP run: 250 samples (not divisible by 2 or 3 ranks × batch), 2 epochs.
    private func train(
        ranks: Int, batchSize: Int = 48, extra: [String] = [], name: String, out given: String? = nil
    ) throws -> (String, [[String: Any]]) {
        let out = given ?? temporaryPath(name)
        let outcome = try ExecutableRunner.mpirun(
            ranks: ranks,
            [
                "train", "--model", "mlp", "--epochs", "2", "--batch-size", String(batchSize), "--lr", "0.05",
                "--max-train-samples", "250", "--max-test-samples", "101", "--prefetch", "1", "--out", out,
            ] + extra, timeout: 300)
        XCTAssertEqual(outcome.status, 0, outcome.output)
        let lines = (try? String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8))?.split(separator: "\n") ?? []
        let records = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        return (outcome.output, records)
    }

    func testTeacherTablesAgreeOnEveryRankWithPadding() throws {
        for ranks in [2, 3] {
            let (output, records) = try train(ranks: ranks, name: "teacher\(ranks)")
            XCTAssertTrue(output.contains("identical on all \(ranks) rank(s)"), output)
            XCTAssertEqual(records.count, 2, output)
        }
    }

    /// The same global batch over 1, 2 and 4 ranks, and over 2 ranks in 2 micro-batches each
    /// (`--accumulate-steps 2`), gives the same training (within float tolerance): the MLP has
    /// no BatchNorm, and augmentation is keyed by sample, not rank.
    func testResultsDoNotDependOnRankCountOrMicroBatches() throws {
        let (_, one) = try train(ranks: 1, name: "ranks1")
        for (ranks, extra) in [(2, []), (4, []), (2, ["--accumulate-steps", "2"])] {
            let (output, many) = try train(ranks: ranks, extra: extra, name: "ranks\(ranks)\(extra.joined())")
            XCTAssertEqual(many.count, one.count, output)
            for (a, b) in zip(one, many) {
                for key in ["train_loss", "test_nll", "test_top1_error", "test_ece", "test_aurc", "alpha", "lr"] {
                    let x = a[key] as? Double ?? .nan, y = b[key] as? Double ?? .nan
                    XCTAssertEqual(x, y, accuracy: 1e-3 * max(1, abs(x)), "\(key) with \(ranks) ranks \(extra)")
                }
            }
        }
    }

    /// CS-KD's partners (drawn from seed, epoch and index, forwarded by the rank that trains the
    /// sample) and TF-KD's teachers make every policy train alike on 1 and 2 ranks; tf-kd-self
    /// distils the 1-rank cross-entropy run.
    func testEveryPolicyTrainsAlikeOnOneAndTwoRanks() throws {
        let teacherRun = temporaryPath("policy-ce")
        let (_, ce) = try train(ranks: 1, extra: ["--policy", "ce"], name: "policy-ce", out: teacherRun)
        XCTAssertEqual(ce.count, 2)
        let teacher = ["--teacher-checkpoint", teacherRun]
        for policy in ["cs-kd", "tf-kd-reg", "tf-kd-self"] {
            let extra = ["--policy", policy] + (policy == "tf-kd-self" ? teacher : [])
            let (oneOutput, one) = try train(ranks: 1, extra: extra, name: "policy-\(policy)-1")
            let (output, two) = try train(ranks: 2, extra: extra, name: "policy-\(policy)-2")
            XCTAssertTrue(output.contains("policy \(policy) ("), output)
            XCTAssertEqual(one.count, 2, oneOutput)
            XCTAssertEqual(two.count, 2, output)
            for (a, b) in zip(one, two) {
                for key in ["train_loss", "test_nll", "test_top1_error", "test_ece"] {
                    let x = a[key] as? Double ?? .nan, y = b[key] as? Double ?? .nan
                    XCTAssertEqual(x, y, accuracy: 1e-3 * max(1, abs(x)), "\(policy): \(key) on 1 and 2 ranks")
                }
            }
            XCTAssertNotEqual(one.last?["train_loss"] as? Double, ce.last?["train_loss"] as? Double, "\(policy) is not cross-entropy")
        }
    }

    /// The flipped labels are decided by (seed, sample index): 1 and 2 ranks log the same count,
    /// and metrics.jsonl records it.
    func testLabelNoiseIsTheSameForAnyRankCount() throws {
        var counts: [Int] = []
        for ranks in [1, 2] {
            let (output, records) = try train(ranks: ranks, extra: ["--label-noise", "0.4", "--epochs", "1"], name: "noise\(ranks)")
            let line = try XCTUnwrap(output.split(separator: "\n").first { $0.contains("label noise 0.40: ") }, output)
            XCTAssertTrue(line.hasSuffix("of 250 training labels flipped (the test set stays clean)"), String(line))
            let logged = try XCTUnwrap(Int(line.components(separatedBy: "label noise 0.40: ")[1].split(separator: " ")[0]), String(line))
            XCTAssertEqual(records.first?["flipped_labels"] as? Int, logged, output)
            XCTAssertEqual(output.components(separatedBy: "label noise 0.40").count - 1, 1, "rank 0 logs it once")
            counts.append(logged)
        }
        XCTAssertEqual(counts[0], counts[1])
        XCTAssertEqual(Double(counts[0]), 100, accuracy: 5 * (250 * 0.4 * 0.6).squareRoot())
    }

    /// An mlp learns the synthetic set far above chance (10 classes: 90 % error) in 3 epochs,
    /// and 1 and 3 ranks train alike: every rank generates the same samples from the seed.
    func testAnMLPLearnsTheSyntheticSetOnAnyRankCount() throws {
        let synthetic = [
            "--dataset", "synthetic", "--synthetic-samples", "3000", "--synthetic-test-samples", "500",
            "--synthetic-classes", "10", "--synthetic-features", "32", "--epochs", "3", "--max-train-samples", "3000",
            "--max-test-samples", "500",
        ]
        let (output, one) = try train(ranks: 1, extra: synthetic, name: "synthetic1")
        let error = try XCTUnwrap(one.last?["test_top1_error"] as? Double, output)
        XCTAssertLessThan(error, 30, "test top-1 error (%) on 10 classes: \(output)")
        let (threeOutput, three) = try train(ranks: 3, extra: synthetic, name: "synthetic3")
        let other = try XCTUnwrap(three.last?["test_top1_error"] as? Double, threeOutput)
        XCTAssertEqual(error, other, accuracy: 1, "1 and 3 ranks train on the same samples")
    }

    func testMetricsFileHasEveryField() throws {
        let (output, records) = try train(ranks: 2, extra: ["--policy", "ls"], name: "fields")
        let fields = [
            "epoch", "alpha", "lr", "train_loss", "test_top1_error", "test_top5_error", "test_nll",
            "test_ece", "test_aurc", "test_eaurc", "seconds", "samples_per_second", "peak_memory_bytes",
            "ranks", "nodes", "ranks_per_node", "threads_per_rank",
        ]
        for field in fields { XCTAssertNotNil(records.first?[field], "\(field) missing: \(output)") }
        // The job's layout: 2 ranks on this one host, one BLAS thread each (mpirun -x OPENBLAS_NUM_THREADS=1).
        for record in records {
            XCTAssertEqual(record["ranks"] as? Int, 2)
            XCTAssertEqual(record["nodes"] as? Int, 1)
            XCTAssertEqual(record["ranks_per_node"] as? Int, 2)
            XCTAssertGreaterThanOrEqual(record["threads_per_rank"] as? Int ?? 0, 1)
        }
        XCTAssertGreaterThan(records.last?["peak_memory_bytes"] as? Int ?? 0, 10_000_000, "a rank takes more than 10 MB")
        XCTAssertTrue(output.contains("peak resident memory per rank: 0: "), output)
        XCTAssertTrue(output.contains(" MB, 1: "), "rank 0 prints every rank's: \(output)")
        XCTAssertEqual(records.last?["alpha"] as? Double, 0)
    }

    func testBadArgumentsGiveAClearError() throws {
        let outcome = try ExecutableRunner.run(
            ExecutableRunner.executable.path,
            ["train", "--batch-size", "7", "--max-train-samples", "3"], timeout: 60)
        XCTAssertNotEqual(outcome.status, 0)
        XCTAssertTrue(outcome.output.contains("max-train-samples 3 is smaller than one global batch"), outcome.output)
    }
}
