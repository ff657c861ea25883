import DataPipeline
import Layers
import Models
import Platform
import Tensors

/// Teacher-free knowledge distillation (Yuan et al., "Revisiting Knowledge Distillation via
/// Label Smoothing Regularization", CVPR 2020; code yuanli2333/Teacher-free-Knowledge-Distillation,
/// `my_loss_function.py`): `(1 − α)·cross-entropy + α·multiplier·KLDivLoss()(…)`, where PyTorch's
/// `KLDivLoss()` with its default reduction averages over all N·C elements, so each sample's
/// KL divergence weighs α·multiplier/C (times T² for the self-trained teacher). The authors
/// tuned the multipliers on CIFAR-100 (C = 100); the default multiplier here is theirs scaled
/// by C/100, which is exactly theirs on CIFAR-100 and keeps their per-sample weight on data
/// sets with other class counts (their 50 on Fashion-MNIST's 10 classes weighs each sample's
/// KL 10× as much as on CIFAR-100, and diverges at lr 0.1). Two teachers:
///
/// - `tf-kd-self` (`loss_kd_self`): a model trained before (the same network with cross-entropy,
///   `--teacher-checkpoint`), run in evaluation mode on the same augmented inputs;
///   KL(softmax(t/T) ‖ softmax(z/T))·T². Defaults of the authors' ResNet-18 CIFAR-100
///   self-training (`resnet18_self_teacher/params.json`): α = 0.95, T = 6, multiplier = 50·C/100.
/// - `tf-kd-reg` (`loss_kd_regularization`): a virtual teacher u with probability 0.99 on the
///   label and 0.01/(C − 1) elsewhere, softened as softmax(u/T) (of the probabilities, as the
///   code does), against the student's softmax at temperature 1, no T². Defaults of
///   `base_resnet18/params.json`: α = 0.1, T = 20, multiplier = 100·C/100.
final class TeacherFreeLoss {
    let alpha: Float, temperature: Float, multiplier: Float
    /// Whether the student's logits are divided by T in the KL term (self: yes; reg: no).
    let studentTemperature: Float
    private let hardTargets = SoftTargetLoss()
    private let divergence = DistillationDivergence()
    /// The teacher's distribution of each row of the step, `[b, C]`.
    private(set) var teacherDistributions = Tensor(zeros: [0, 0])
    private(set) var classCount: Int

    init(alpha: Float, temperature: Float, multiplier: Float, studentTemperature: Float, classCount: Int) {
        (self.alpha, self.temperature, self.multiplier) = (alpha, temperature, multiplier)
        (self.studentTemperature, self.classCount) = (studentTemperature, classCount)
    }

    var stepTargets: Tensor { hardTargets.mixedTargets }

    /// One-hot targets of `batch` (mixed as CutMix mixed it) and a `[b, C]` buffer for the teacher.
    func beginStep(_ batch: Batch) -> Tensor {
        let targets = hardTargets.prepare(rows: batch.count, classes: classCount).pointer
        targets.update(repeating: 0, count: batch.count * classCount)
        for (row, label) in batch.labels.enumerated() { targets[row * classCount + Int(label)] = 1 }
        hardTargets.mix(for: batch)
        if teacherDistributions.shape != [batch.count, classCount] { teacherDistributions = Tensor(zeros: [batch.count, classCount]) }
        return teacherDistributions
    }

    /// (1 − α)·cross-entropy + α·multiplier/C·(T² if the student is softened)·KL per row.
    func loss(logits: Tensor, rows: Range<Int>, batchRows: Int) throws -> PolicyLoss {
        let crossEntropy = try hardTargets.loss(logits: logits, rows: rows, batchRows: batchRows)
        let gradients = crossEntropy.logitGradients
        for i in 0..<gradients.count { gradients[i] *= 1 - alpha }
        let scale = studentTemperature * studentTemperature
        let distillation = divergence.accumulate(
            logits: logits, teacher: teacherDistributions.rows(rows), temperature: studentTemperature,
            weight: alpha * multiplier / Float(classCount) * scale, gradientRows: batchRows, into: gradients)
        return PolicyLoss(
            loss: Double(1 - alpha) * crossEntropy.loss + distillation, logitGradients: gradients,
            probabilities: crossEntropy.probabilities)
    }

    /// `--kd-multiplier`, or the authors' CIFAR-100 `multiplier` scaled by C/100.
    static func multiplier(_ config: TrainConfig, authors: Double, classCount: Int) -> Float {
        Float(config.kdMultiplier ?? authors * Double(classCount) / 100)
    }

    /// "×50" for a given multiplier, "×50·C/100" for the default.
    static func multiplierLabel(_ config: TrainConfig, authors: Double) -> String {
        config.kdMultiplier.map { "×" + PolicyLabel.number($0) } ?? "×\(PolicyLabel.number(authors))·C/100"
    }

    /// Refuses an α outside [0, 1] (the weights of a mix).
    static func checkAlpha(_ alpha: Double, policy: String) throws {
        guard (0...1).contains(alpha) else {
            throw ConfigurationError(
                "--kd-weight \(alpha) is TF-KD's α, which mixes (1 − α)·cross-entropy with α·KL: give a value in [0, 1] for policy \(policy)"
            )
        }
    }
}

/// TF-KD's self-training: distils a model trained before (`--teacher-checkpoint`) into the
/// student; see `TeacherFreeLoss`.
public final class TeacherFreeSelfTrainingPolicy: TrainingPolicy {
    public static let name = "tf-kd-self"
    public static let summary =
        "TF-KD self-training, (1 − α)·cross-entropy + α·T²·KL(trained teacher's softmax at T ‖ softmax at T)·multiplier/C "
        + "(--teacher-checkpoint RUN; --kd-weight α, default 0.95; --kd-temperature T, default 6; --kd-multiplier, default 50·C/100)"
    public static let settingNames = ["teacher-checkpoint", "kd-weight", "kd-temperature", "kd-multiplier"]
    /// The authors' defaults; their multiplier is for C = 100 (see `TeacherFreeLoss`).
    public static let defaultAlpha = 0.95, defaultTemperature = 6.0, authorsMultiplier = 50.0

    /// The trained teacher, evaluated in evaluation mode.
    public let teacherModel: Model
    private let loss: TeacherFreeLoss
    private var batch: Batch?

    public init(teacherModel: Model, alpha: Float, temperature: Float, multiplier: Float) {
        self.teacherModel = teacherModel
        loss = TeacherFreeLoss(
            alpha: alpha, temperature: temperature, multiplier: multiplier, studentTemperature: temperature,
            classCount: teacherModel.classCount)
    }

    public static func make(_ context: PolicyContext) throws -> TeacherFreeSelfTrainingPolicy {
        let config = context.config
        guard let path = config.teacherCheckpoint else {
            throw ConfigurationError(
                "policy tf-kd-self distils a trained teacher: give --teacher-checkpoint RUN (a run directory of the same "
                    + "network trained with --policy ce, or one of its checkpoint folders)")
        }
        let alpha = config.kdWeight ?? defaultAlpha
        try TeacherFreeLoss.checkAlpha(alpha, policy: name)
        let teacher = try loadTeacher(path, input: context.modelInput, dataset: config.dataset, model: config.model)
        return TeacherFreeSelfTrainingPolicy(
            teacherModel: teacher, alpha: Float(alpha), temperature: Float(config.kdTemperature ?? defaultTemperature),
            multiplier: TeacherFreeLoss.multiplier(config, authors: authorsMultiplier, classCount: teacher.classCount))
    }

    public static func label(_ config: TrainConfig) -> String {
        "tf-kd-self (α = \(PolicyLabel.number(config.kdWeight ?? defaultAlpha)), "
            + "T = \(PolicyLabel.number(config.kdTemperature ?? defaultTemperature)), "
            + TeacherFreeLoss.multiplierLabel(config, authors: authorsMultiplier) + ")"
    }

    /// The model of the checkpoint at `path`, built as its run built it for `input`; refused,
    /// naming both, when it was trained on another data set, samples of another shape or class
    /// count (`--dataset synthetic`'s settings), or is another network than `model` (TF-KD's
    /// self-training distils the student's own network).
    static func loadTeacher(_ path: String, input: ModelZoo.Input, dataset: String, model: String) throws -> Model {
        let folder: String, snapshot: TrainingSnapshot
        do {
            (folder, snapshot) = try CheckpointEvaluation.locate(path)
        } catch {
            throw ConfigurationError("--teacher-checkpoint: \(error)")
        }
        let saved = try snapshot.configuration(source: folder)
        guard saved.dataset == dataset else {
            throw ConfigurationError(
                "--teacher-checkpoint \(path) was trained on \(saved.dataset), this run trains on \(dataset): give a teacher of the same data set"
            )
        }
        guard saved.model == model else {
            throw ConfigurationError(
                "--teacher-checkpoint \(path) holds a \(saved.model) model, this run trains a \(model) one: tf-kd-self distils "
                    + "the student's own network; give a run trained with --model \(model) --policy ce")
        }
        let spec = try saved.datasetSpec()
        let trained = ModelZoo.Input(height: spec.height, width: spec.width, channels: spec.channels, classes: spec.classCount)
        guard trained == input else {
            throw ConfigurationError(
                "--teacher-checkpoint \(path) was trained on \(describe(trained)), this run trains on \(describe(input)): "
                    + "give a teacher trained on the same data (the same --synthetic-* settings)")
        }
        let teacher = try ModelZoo.make(
            saved.model, input: input, widthMultiplier: saved.widthMultiplier, generator: RandomGenerator(seed: saved.seed))
        try snapshot.restoreModel(into: teacher, source: folder)
        return teacher
    }

    /// "28 × 28 × 1 samples of 10 classes".
    private static func describe(_ input: ModelZoo.Input) -> String {
        "\(input.height) × \(input.width) × \(input.channels) samples of \(input.classes) classes"
    }

    public var stepTargets: Tensor? { loss.stepTargets }

    public func beginStep(_ batch: Batch) throws {
        self.batch = batch
        _ = loss.beginStep(batch)
    }

    /// The teacher's softened prediction of the micro-batch's (augmented) inputs.
    public func beforeForward(rows: Range<Int>) throws {
        guard let batch else { return }
        let logits = try teacherModel.forward(batch.inputs.rows(rows), mode: .evaluation)
        DistillationDivergence.softenedDistribution(
            logits: logits, temperature: loss.temperature, into: loss.teacherDistributions.rows(rows))
    }

    public func loss(logits: Tensor, rows: Range<Int>, batchRows: Int) throws -> PolicyLoss {
        try loss.loss(logits: logits, rows: rows, batchRows: batchRows)
    }
}

/// TF-KD's manually designed teacher; see `TeacherFreeLoss`.
public final class TeacherFreeRegularizationPolicy: TrainingPolicy {
    public static let name = "tf-kd-reg"
    public static let summary =
        "TF-KD's virtual teacher, (1 − α)·cross-entropy + α·KL(softmax(u/T) ‖ softmax)·multiplier/C with u = 0.99 on the "
        + "label, 0.01/(C − 1) elsewhere (--kd-weight α, default 0.1; --kd-temperature T, default 20; --kd-multiplier, default 100·C/100)"
    public static let settingNames = ["kd-weight", "kd-temperature", "kd-multiplier"]
    /// The authors' defaults; their multiplier is for C = 100 (see `TeacherFreeLoss`).
    public static let defaultAlpha = 0.1, defaultTemperature = 20.0, authorsMultiplier = 100.0
    /// The virtual teacher's probability of the label.
    public static let correctProbability: Float = 0.99

    private let loss: TeacherFreeLoss
    /// softmax(u/T) for the label and for any other class (the same for every sample).
    private let labelProbability: Float, otherProbability: Float

    public init(classCount: Int, alpha: Float, temperature: Float, multiplier: Float) {
        loss = TeacherFreeLoss(
            alpha: alpha, temperature: temperature, multiplier: multiplier, studentTemperature: 1, classCount: classCount)
        let other = (1 - Self.correctProbability) / Float(classCount - 1)
        let u = Tensor(shape: [1, classCount], values: [Self.correctProbability] + Array(repeating: other, count: classCount - 1))
        let softened = Tensor(zeros: [1, classCount])
        DistillationDivergence.softenedDistribution(logits: u, temperature: temperature, into: softened)
        (labelProbability, otherProbability) = (softened[0], classCount > 1 ? softened[1] : 0)
    }

    public static func make(_ context: PolicyContext) throws -> TeacherFreeRegularizationPolicy {
        let config = context.config
        let alpha = config.kdWeight ?? defaultAlpha
        try TeacherFreeLoss.checkAlpha(alpha, policy: name)
        return TeacherFreeRegularizationPolicy(
            classCount: context.model.classCount, alpha: Float(alpha),
            temperature: Float(config.kdTemperature ?? defaultTemperature),
            multiplier: TeacherFreeLoss.multiplier(config, authors: authorsMultiplier, classCount: context.model.classCount))
    }

    public static func label(_ config: TrainConfig) -> String {
        "tf-kd-reg (α = \(PolicyLabel.number(config.kdWeight ?? defaultAlpha)), "
            + "T = \(PolicyLabel.number(config.kdTemperature ?? defaultTemperature)), "
            + TeacherFreeLoss.multiplierLabel(config, authors: authorsMultiplier) + ")"
    }

    public var stepTargets: Tensor? { loss.stepTargets }

    public func beginStep(_ batch: Batch) throws {
        let teacher = loss.beginStep(batch)
        let classes = loss.classCount
        let t = teacher.pointer
        t.update(repeating: otherProbability, count: batch.count * classes)
        for (row, label) in batch.labels.enumerated() { t[row * classes + Int(label)] = labelProbability }
    }

    public func loss(logits: Tensor, rows: Range<Int>, batchRows: Int) throws -> PolicyLoss {
        try loss.loss(logits: logits, rows: rows, batchRows: batchRows)
    }
}
