import DataPipeline
import Tensors

/// Label smoothing (Szegedy et al.): the target `(1 − ε)·onehot(y) + ε/C`.
public final class LabelSmoothingPolicy: TrainingPolicy {
    public static let name = "ls"
    public static let summary = "label smoothing, (1 − ε)·onehot + ε/C (--label-smoothing ε, default 0.1)"
    public static let settingNames = ["label-smoothing"]
    public let epsilon: Float
    private let classCount: Int
    private let softTargets = SoftTargetLoss()

    public init(epsilon: Float, classCount: Int) { (self.epsilon, self.classCount) = (epsilon, classCount) }

    public static func make(_ context: PolicyContext) throws -> LabelSmoothingPolicy {
        LabelSmoothingPolicy(epsilon: Float(context.config.labelSmoothing), classCount: context.model.classCount)
    }

    public static func label(_ config: TrainConfig) -> String { "ls (ε = \(PolicyLabel.number(config.labelSmoothing)))" }

    public var stepTargets: Tensor? { softTargets.mixedTargets }

    public func beginStep(_ batch: Batch) throws {
        let targets = softTargets.prepare(rows: batch.count, classes: classCount).pointer
        targets.update(repeating: epsilon / Float(classCount), count: batch.count * classCount)
        for (row, label) in batch.labels.enumerated() { targets[row * classCount + Int(label)] += 1 - epsilon }
        softTargets.mix(for: batch)
    }

    public func loss(logits: Tensor, rows: Range<Int>, batchRows: Int) throws -> PolicyLoss {
        try softTargets.loss(logits: logits, rows: rows, batchRows: batchRows)
    }
}
