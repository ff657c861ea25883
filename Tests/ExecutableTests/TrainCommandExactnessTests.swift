import Foundation
import TestSupport
import Training
import XCTest

/// The decomposition rule end to end: `pskd train` with 1, 2 or 3 threads per rank writes the
/// same model and optimiser state byte for byte, and logs the same test metrics
/// (`launch/check-kernels.sh` runs this under several OpenBLAS kernels).
final class TrainCommandExactnessTests: XCTestCase {
    /// The cnn (im2col and Winograd convolutions, BatchNorm, max-pool, linear layers) and PS-KD:
    /// 3 steps, a padded evaluation block.
    private let recipe = [
        "train", "--model", "cnn", "--epochs", "1", "--batch-size", "64", "--max-train-samples", "192",
        "--max-test-samples", "130", "--prefetch", "1",
    ]

    func testTrainingWritesTheSameBytesForAnyThreadCount() throws {
        var runs: [(model: Data, state: [SafeTensors.Entry], metrics: [String: Any])] = []
        for threads in [1, 2, 3] {
            let out = temporaryPath("threads-\(threads)")
            let outcome = try ExecutableRunner.mpirun(ranks: 1, recipe + ["--threads", String(threads), "--out", out])
            XCTAssertEqual(outcome.status, 0, outcome.output)
            let checkpoint = out + "/checkpoints/epoch-0001/"
            let model = try Data(contentsOf: URL(fileURLWithPath: checkpoint + "model.safetensors"))
            // The state's metadata holds the configuration (threads, out); its tensors must agree.
            let stateFile = checkpoint + "training-state.safetensors"
            let state = try SafeTensors.decode(Data(contentsOf: URL(fileURLWithPath: stateFile)), file: stateFile).entries
            let metrics = try XCTUnwrap(
                String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8)
                    .split(separator: "\n").last.flatMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
            runs.append((model, state, metrics))
        }
        for (threads, run) in zip([2, 3], runs.dropFirst()) {
            XCTAssertEqual(run.model, runs[0].model, "model.safetensors, \(threads) threads vs 1")
            XCTAssertEqual(run.state.map(\.name), runs[0].state.map(\.name))
            for (got, expected) in zip(run.state, runs[0].state) {
                XCTAssertEqual(got.bytes, expected.bytes, "\(got.name), \(threads) threads vs 1")
            }
            for key in ["train_loss", "test_nll", "test_top1_error", "test_ece", "test_aurc"] {
                XCTAssertEqual(run.metrics[key] as? Double, runs[0].metrics[key] as? Double, "\(key), \(threads) threads vs 1")
            }
        }
    }
}
