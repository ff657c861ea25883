import DataPipeline
import Tensors

/// Plain cross-entropy: the target is the one-hot label.
public final class CrossEntropyPolicy: TrainingPolicy {
    public static let name = "ce"
    public static let summary = "cross-entropy with the one-hot label"
    public static let settingNames: [String] = []
    private let classCount: Int
    private let softTargets = SoftTargetLoss()

    public init(classCount: Int) { self.classCount = classCount }

    public static func make(_ context: PolicyContext) throws -> CrossEntropyPolicy {
        CrossEntropyPolicy(classCount: context.model.classCount)
    }

    public var stepTargets: Tensor? { softTargets.mixedTargets }

    public func beginStep(_ batch: Batch) throws {
        let targets = softTargets.prepare(rows: batch.count, classes: classCount).pointer
        targets.update(repeating: 0, count: batch.count * classCount)
        for (row, label) in batch.labels.enumerated() { targets[row * classCount + Int(label)] = 1 }
        softTargets.mix(for: batch)
    }

    public func loss(logits: Tensor, rows: Range<Int>, batchRows: Int) throws -> PolicyLoss {
        try softTargets.loss(logits: logits, rows: rows, batchRows: batchRows)
    }
}
