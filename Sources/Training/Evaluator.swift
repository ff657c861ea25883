import Collectives
import DataPipeline
import Foundation
import Layers
import Models
import Platform
import Tensors

/// Evaluates a model on the whole test set across ranks: each rank scores its blocks of the test
/// set (fixed by sample index, so every sample's probabilities are the same for any rank
/// count), the per-sample outcomes are gathered, and every rank computes the same metrics from
/// them in index order.
struct Evaluator {
    let model: Model
    let loader: BatchLoader
    let communicator: any Communicator

    /// The metrics, and (if asked) every test sample's probabilities in index order on every rank.
    func run(eceBins: Int, gatherPredictions: Bool = false) throws -> (ClassificationMetrics, [Prediction]) {
        let loss = SoftmaxCrossEntropy()
        var outcomes: [SampleOutcome] = []
        var rows: [Float] = []
        try loader.forEachBatch(epoch: 0) { batch in
            FaultInjection.current.beforeEvaluationBatch(rank: communicator.rank)
            let labels = batch.labels.map(Int.init)
            let logits = try model.forward(batch.inputs, mode: .evaluation)
            outcomes += SampleOutcome.outcomes(logits: logits, labels: labels, indices: batch.indices, isPadding: batch.isPadding)
            if gatherPredictions {
                let result = try loss(logits: logits, targets: SoftmaxCrossEntropy.oneHot(labels, classes: model.classCount))
                for row in 0..<batch.count where !batch.isPadding[row] {
                    rows += UnsafeBufferPointer(start: result.probabilities.pointer + row * model.classCount, count: model.classCount)
                }
            }
            ProgressBeacon.shared.advance()
        }
        let allOutcomes = try communicator.allGatherV(outcomes)
        let metrics = ClassificationMetrics(outcomes: allOutcomes, eceBins: eceBins)
        guard gatherPredictions else { return (metrics, []) }
        let allRows = try communicator.allGatherV(rows)
        let c = model.classCount
        let predictions = allOutcomes.enumerated().map { position, outcome in
            Prediction(index: outcome.index, label: outcome.label, probabilities: Array(allRows[(position * c)..<((position + 1) * c)]))
        }
        return (metrics, predictions.sorted { $0.index < $1.index })
    }
}

/// One test sample's predicted distribution.
public struct Prediction: Sendable {
    public var index: Int
    public var label: Int
    public var probabilities: [Float]
}

/// `pskd evaluate`: the test metrics of a checkpoint, across ranks.
public enum CheckpointEvaluation {
    /// What an evaluation measured.
    public struct Result: Sendable {
        /// The checkpoint folder evaluated.
        public var checkpoint: String
        public var epoch: Int
        public var metrics: ClassificationMetrics

        /// One JSON object with the keys of `metrics.jsonl` (`test_top1_error`, `test_nll`, …,
        /// `test_reliability`), plus `checkpoint`, `epoch`, `count` and `ranks`.
        public func jsonLine(ranks: Int) throws -> String {
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .custom { path in
                let name = path.last!.stringValue
                return RecordKey(ClassificationMetrics.recordKeys[name] ?? name)
            }
            var object = try JSONSerialization.jsonObject(with: encoder.encode(metrics)) as? [String: Any] ?? [:]
            object["checkpoint"] = checkpoint
            object["epoch"] = epoch
            object["ranks"] = ranks
            return String(
                decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self
            )
        }
    }

    private struct RecordKey: CodingKey {
        let stringValue: String
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    /// Loads the checkpoint at `path` (a checkpoint folder, or a run directory meaning its newest
    /// complete checkpoint), evaluates it on its data set's test split, and, if `predictionsPath`
    /// is given, rank 0 writes one CSV row per test sample (index, label, then the probabilities).
    public static func run(
        path: String, dataDirectory: String?, maxTestSamples: Int?, eceBins: Int,
        predictionsPath: String?, threads: Int?, communicator: any Communicator
    ) throws -> Result {
        BLAS.threads = ProcessPlacement.blasThreads(requested: threads)
        var (folder, snapshot) = try locate(path)
        // Every rank locates the newest checkpoint itself; a training job rotating them can make
        // the ranks find different ones: then all look again.
        for attempt in 1...5 {
            let epochs = try communicator.allGatherV([Int64(snapshot.epoch)])
            if Set(epochs).count == 1 { break }
            guard attempt < 5 else {
                throw CheckpointError(
                    "the ranks found different newest checkpoints in \(path) (epochs \(epochs.map(String.init).joined(separator: ", "))) "
                        + "five times: a training job is writing checkpoints there; evaluate one checkpoint folder, or wait for the job to end"
                )
            }
            (folder, snapshot) = try locate(path)
        }
        var config = try snapshot.configuration(source: folder)
        if let dataDirectory { config.dataDirectory = dataDirectory }
        if let maxTestSamples { config.maxTestSamples = maxTestSamples }
        let test = try config.load(.test)
        let input = ModelZoo.Input(height: test.height, width: test.width, channels: test.channels, classes: test.classCount)
        let model = try ModelZoo.make(
            config.model, input: input, widthMultiplier: config.widthMultiplier,
            generator: RandomGenerator(seed: config.seed))
        try snapshot.restoreModel(into: model, source: folder)
        let sharder = try EvaluationSharder(sampleCount: test.count, rank: communicator.rank, worldSize: communicator.size)
        let loader = BatchLoader(
            dataset: test, schedule: sharder, augmentation: .none, seed: config.seed, prefetch: 1,
            loaderThreads: config.loaderThreads ?? 1)
        let (metrics, predictions) = try Evaluator(model: model, loader: loader, communicator: communicator)
            .run(eceBins: eceBins, gatherPredictions: predictionsPath != nil)
        if let predictionsPath, communicator.isRoot { try writeCSV(predictions, classes: model.classCount, to: predictionsPath) }
        return Result(checkpoint: folder, epoch: snapshot.epoch, metrics: metrics)
    }

    /// The checkpoint `path` names (a checkpoint folder, or a run directory's newest complete
    /// one) and its folder.
    /// A run directory being trained may rotate its checkpoints while they are read: a
    /// checkpoint removed while it was read is looked for again (`newestValidWhileRotating`); a
    /// checkpoint folder given by name that is removed while it is read is an error saying so.
    static func locate(_ path: String) throws -> (String, TrainingSnapshot) {
        let url = URL(fileURLWithPath: path)
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("COMPLETE").path) {
            let runDirectory = url.deletingLastPathComponent().deletingLastPathComponent().path
            let store = CheckpointStore(runDirectory: runDirectory, keep: 1)
            do {
                return (path, try store.load(url))
            } catch {
                guard FileManager.default.fileExists(atPath: url.path) else {
                    throw CheckpointError(
                        "the checkpoint \(path) was removed while it was read (a training job keeping only its newest "
                            + "--keep-checkpoints rotated it away?): give the run directory, --checkpoint \(runDirectory), "
                            + "to evaluate its newest complete checkpoint")
                }
                throw error
            }
        }
        let store = CheckpointStore(runDirectory: path, keep: 1)
        let (found, warnings, notes) = store.newestValidWhileRotating()
        notes.forEach { printError("pskd: note: \($0)") }
        warnings.forEach { printError("pskd: warning: \($0)") }
        guard let found else {
            throw CheckpointError(
                notes.count >= 5
                    ? "every checkpoint of \(path) found was removed while it was read, five times: a training job is rotating "
                        + "them faster than they can be read; evaluate after the job, or run it with a larger --keep-checkpoints"
                    : "\(path) is neither a checkpoint folder (with a COMPLETE marker) nor a run directory with a usable checkpoint under checkpoints/"
                        + (warnings.isEmpty ? "" : " (\(warnings.count) skipped, see the warnings above)"))
        }
        return (found.source, found.snapshot)
    }

    private static func writeCSV(_ predictions: [Prediction], classes: Int, to path: String) throws {
        var text = "index,label," + (0..<classes).map { "p\($0)" }.joined(separator: ",") + "\n"
        for prediction in predictions {
            text += "\(prediction.index),\(prediction.label)," + prediction.probabilities.map { "\($0)" }.joined(separator: ",") + "\n"
        }
        do {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw CheckpointError("cannot write predictions to \(path): \(error.localizedDescription)")
        }
    }
}
