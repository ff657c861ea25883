import Collectives
import DataPipeline
import Foundation
import Layers
import Models
import SelfDistillation
import Tensors

/// A training policy: what the model is trained against, and everything the policy needs to
/// know it. It owns its command-line name, the settings it reads, its per-sample state (PS-KD's
/// teacher table), the loss and logit gradient of each micro-batch, and what it writes back
/// after a step. `TrainingStep` drives it the same way in `Trainer` and in `pskd bench`:
///
/// ```swift
/// try policy.beginEpoch(epoch)
/// try loader.forEachBatch(epoch: epoch) { batch in
///     try policy.beginStep(batch)                         // targets, partners, teacher outputs
///     for rows in microBatches {
///         try policy.beforeForward(rows: rows)            // CS-KD: the partners' forward
///         let logits = try model.forward(inputs.rows(rows), mode: .training)
///         let loss = try policy.loss(logits: logits, rows: rows, batchRows: b)
///         model.backward(loss.logitGradients)
///     }
///     // all-reduce, update
///     try policy.endStep(batch, probabilities: softmaxRows)   // PS-KD: the teacher exchange
/// }
/// try policy.endEpoch(epoch)
/// ```
///
/// A new policy is one file: a class conforming to this protocol, listed in
/// `TrainingPolicies.all`, with its tests. Settings a policy reads are declared in
/// `TrainSetting.all` and named in its `settingNames`.
public protocol TrainingPolicy: AnyObject {
    /// The command-line name (`--policy`).
    static var name: String { get }
    /// What the policy trains against, in one line, for `--help` and reports.
    static var summary: String { get }
    /// The settings it reads (names in `TrainSetting.all`).
    static var settingNames: [String] { get }
    /// The policy a configuration asks for, built for the run described by `context`; throws a
    /// `ConfigurationError` for settings it cannot train with.
    static func make(_ context: PolicyContext) throws -> Self
    /// The name with the settings that tell runs of the policy apart: `pskd (α_T = 0.8)`.
    static func label(_ config: TrainConfig) -> String

    /// Per-sample state kept in checkpoints (PS-KD's teacher table), or nil.
    var teacher: (any Teacher)? { get }
    /// The weight of the policy's own signal in epoch `epoch` for the metrics log (PS-KD's α_t;
    /// 0 for policies with a fixed mix). Valid after `beginEpoch`.
    var epochWeight: Float { get }
    /// The target rows of the current step when the policy trains against targets, `[b, C]`
    /// (after CutMix's mixing); nil for policies whose loss is not one set of targets.
    var stepTargets: Tensor? { get }

    /// Prepares epoch `epoch` (1-based); called before its first step.
    func beginEpoch(_ epoch: Int) throws
    /// Prepares what the step's loss needs for `batch` (targets, partner images, teacher outputs).
    func beginStep(_ batch: Batch) throws
    /// Called before the forward pass of the micro-batch `rows` of the step's batch (layers keep
    /// the state of their last forward for backward, so any other forward goes here).
    func beforeForward(rows: Range<Int>) throws
    /// The loss of the micro-batch `rows` given the model's `logits` for them, its gradient
    /// averaged over `batchRows` (the rank's whole batch), and softmax(logits).
    func loss(logits: Tensor, rows: Range<Int>, batchRows: Int) throws -> PolicyLoss
    /// After the step's update: writes back what the step taught (collective when the policy
    /// exchanges state). `probabilities` are the batch's softmax rows, `[b, C]`.
    func endStep(_ batch: Batch, probabilities: Tensor) throws
    /// Completes epoch `epoch` (collective when the policy exchanges state).
    func endEpoch(_ epoch: Int) throws
}

extension TrainingPolicy {
    public var teacher: (any Teacher)? { nil }
    public var epochWeight: Float { 0 }
    public var stepTargets: Tensor? { nil }
    public func beginEpoch(_ epoch: Int) throws {}
    public func beforeForward(rows: Range<Int>) throws {}
    public func endStep(_ batch: Batch, probabilities: Tensor) throws {}
    public func endEpoch(_ epoch: Int) throws {}
    public static func label(_ config: TrainConfig) -> String { name }
}

/// One micro-batch's loss: its mean over the rows, ∂loss/∂logits (already divided by the rank's
/// batch rows), and softmax(logits). The tensors belong to the policy until its next call.
public struct PolicyLoss {
    public let loss: Double
    public let logitGradients: Tensor
    public let probabilities: Tensor

    public init(loss: Double, logitGradients: Tensor, probabilities: Tensor) {
        (self.loss, self.logitGradients, self.probabilities) = (loss, logitGradients, probabilities)
    }

    /// The soft-target cross-entropy `result`, as a policy's loss.
    public init(_ result: SoftmaxCrossEntropy.Result) {
        self.init(loss: result.loss, logitGradients: result.logitGradients, probabilities: result.probabilities)
    }
}

/// What a policy is built from: the run's settings, the model it trains, the training set as
/// this rank sees it (labels after label noise), the data order, and the ranks.
public struct PolicyContext {
    public let config: TrainConfig
    public let model: Model
    public let train: Dataset
    public let sampler: ShardedSampler
    /// The augmentation the training batches get (CS-KD's partners get the same).
    public let augmentation: AugmentationConfig
    public let communicator: any Communicator

    public init(
        config: TrainConfig, model: Model, train: Dataset, sampler: ShardedSampler,
        augmentation: AugmentationConfig, communicator: any Communicator
    ) {
        (self.config, self.model, self.train, self.sampler) = (config, model, train, sampler)
        (self.augmentation, self.communicator) = (augmentation, communicator)
    }

    /// Every training sample's label, by global index.
    public var labels: [Int] { train.labels.map(Int.init) }

    /// What the run's models are built for.
    public var modelInput: ModelZoo.Input { train.modelInput }
}

/// The policies `--policy` offers, in the order reports list them.
public enum TrainingPolicies {
    public static let all: [any TrainingPolicy.Type] = [
        CrossEntropyPolicy.self, LabelSmoothingPolicy.self, ClassWiseSelfDistillationPolicy.self,
        TeacherFreeSelfTrainingPolicy.self, TeacherFreeRegularizationPolicy.self, ProgressiveSelfDistillationPolicy.self,
    ]

    /// The command-line names, in order.
    public static var names: [String] { all.map { $0.name } }

    /// The policy named `name`, or nil.
    public static func named(_ name: String) -> (any TrainingPolicy.Type)? {
        all.first { $0.name == name }
    }

    /// The policy `config.policy` names, built for the run.
    public static func make(_ context: PolicyContext) throws -> any TrainingPolicy {
        guard let type = named(context.config.policy) else {
            throw ConfigurationError("policy '\(context.config.policy)' is unknown: use one of \(names.joined(separator: ", "))")
        }
        return try type.make(context)
    }

    /// `--help`'s description of the choices: each name with its summary.
    public static var helpText: String {
        all.map { "\($0.name): \($0.summary)" }.joined(separator: "; ")
    }
}

/// Soft-target cross-entropy against one target row per sample, mixed by CutMix like the
/// inputs: the loss of the policies that only make targets (ce, ls, pskd).
public final class SoftTargetLoss {
    private let crossEntropy = SoftmaxCrossEntropy()
    /// The rows the policy made, and the rows trained against (after CutMix), `[b, C]`.
    public private(set) var targets = Tensor(zeros: [0, 0])
    public private(set) var mixedTargets = Tensor(zeros: [0, 0])

    public init() {}

    /// Buffers for a batch of `rows` rows and `classes` classes (reallocated only when the shape changes).
    public func prepare(rows: Int, classes: Int) -> Tensor {
        if targets.shape != [rows, classes] {
            targets = Tensor(zeros: [rows, classes])
            mixedTargets = Tensor(zeros: [rows, classes])
        }
        return targets
    }

    /// Mixes the targets as CutMix mixed `batch`'s inputs.
    public func mix(for batch: Batch) { batch.mixTargets(targets, into: mixedTargets) }

    /// The loss of the micro-batch `rows`.
    public func loss(logits: Tensor, rows: Range<Int>, batchRows: Int) throws -> PolicyLoss {
        PolicyLoss(try crossEntropy(logits: logits, targets: mixedTargets.rows(rows), gradientRows: batchRows))
    }
}

/// Numbers as policy labels and reports show them: 0.1, 5e-04 → 0.0005, 200.
public enum PolicyLabel {
    public static func number(_ value: Double) -> String {
        if value == value.rounded() && abs(value) < 1e9 { return String(Int(value)) }
        var text = String(format: "%.6f", value)
        while text.hasSuffix("0") { text.removeLast() }
        return text
    }
}
