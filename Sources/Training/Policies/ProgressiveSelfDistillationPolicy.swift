import Collectives
import DataPipeline
import SelfDistillation
import Tensors

/// PS-KD (Kim et al., ICCV 2021): at epoch t of T the target is
/// `(1 − α_t)·onehot(y) + α_t·P_{t−1}(x)` with α_t = α_T·t/T, where P_{t−1}(x) is the softmax
/// the model gave x when it last trained on it; the teacher table keeps those rows, identical
/// on every rank (replicated) or split by who reads them next (sharded), and is checkpointed.
public final class ProgressiveSelfDistillationPolicy: TrainingPolicy {
    public static let name = "pskd"
    public static let summary =
        "PS-KD, (1 − α_t)·onehot + α_t·(the sample's softmax of the previous epoch), α_t = α_T·t/T (--alpha-t α_T, default 0.8)"
    public static let settingNames = ["alpha-t", "teacher"]
    public let finalAlpha: Float
    public let totalEpochs: Int
    public let table: any Teacher
    private let softTargets = SoftTargetLoss()
    private var alpha: Float = 0

    /// PS-KD with final weight `finalAlpha` over `totalEpochs` epochs, reading and writing `teacher`.
    public init(finalAlpha: Float, totalEpochs: Int, teacher: any Teacher) {
        (self.finalAlpha, self.totalEpochs, self.table) = (finalAlpha, totalEpochs, teacher)
    }

    public static func make(_ context: PolicyContext) throws -> ProgressiveSelfDistillationPolicy {
        let (labels, classCount) = (context.labels, context.model.classCount)
        if context.config.shardsTeacher { try checkShardedTeacherFits(sampleCount: labels.count) }
        let teacher: any Teacher =
            context.config.shardsTeacher
            ? ShardedTeacher(labels: labels, classCount: classCount, sampler: context.sampler, communicator: context.communicator)
            : TeacherTable(labels: labels, classCount: classCount, sampler: context.sampler, communicator: context.communicator)
        return ProgressiveSelfDistillationPolicy(
            finalAlpha: Float(context.config.alphaT), totalEpochs: context.config.epochs, teacher: teacher)
    }

    /// Refuses `--teacher sharded` for more training samples than its 32-bit orders index
    /// (`ShardedTeacher.maximumSampleCount`, 2^32), naming the setting and the limit.
    public static func checkShardedTeacherFits(sampleCount: Int) throws {
        guard sampleCount > ShardedTeacher.maximumSampleCount else { return }
        throw ConfigurationError(
            "--teacher sharded keeps sample indices in 32 bits: at most \(ShardedTeacher.maximumSampleCount) training samples, "
                + "this run has \(sampleCount); use --teacher replicated")
    }

    public static func label(_ config: TrainConfig) -> String { "pskd (α_T = \(PolicyLabel.number(config.alphaT)))" }

    /// α_t for epoch `epoch` (1-based) of `totalEpochs`: α_T·t/T.
    public func alpha(epoch: Int) -> Float { finalAlpha * Float(epoch) / Float(max(totalEpochs, 1)) }

    public var teacher: (any Teacher)? { table }
    public var epochWeight: Float { alpha }
    public var stepTargets: Tensor? { softTargets.mixedTargets }

    public func beginEpoch(_ epoch: Int) throws {
        alpha = alpha(epoch: epoch)
        try table.beginEpoch(epoch)
    }

    public func beginStep(_ batch: Batch) throws {
        let classes = table.classCount
        let targets = softTargets.prepare(rows: batch.count, classes: classes).pointer
        let previous = table.rows(step: batch.step, indices: batch.indices, isPadding: batch.isPadding).pointer
        for (row, label) in batch.labels.enumerated() {
            let base = row * classes
            for k in 0..<classes { targets[base + k] = alpha * previous[base + k] }
            targets[base + Int(label)] += 1 - alpha
        }
        softTargets.mix(for: batch)
    }

    public func loss(logits: Tensor, rows: Range<Int>, batchRows: Int) throws -> PolicyLoss {
        try softTargets.loss(logits: logits, rows: rows, batchRows: batchRows)
    }

    /// The step's softmax rows become the next epoch's teacher, except padding rows and rows of
    /// a CutMix-mixed batch (their prediction is of a mixed image).
    public func endStep(_ batch: Batch, probabilities: Tensor) throws {
        try table.record(
            step: batch.step, indices: batch.indices, probabilities: probabilities,
            isWritten: batch.isPadding.map { !$0 && batch.cutMix == nil })
    }

    public func endEpoch(_ epoch: Int) throws { try table.endEpoch(epoch) }
}
