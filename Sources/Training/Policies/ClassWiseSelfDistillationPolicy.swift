import DataPipeline
import Layers
import Models
import Tensors

/// CS-KD, class-wise self-knowledge distillation (Yun et al., CVPR 2020; official code
/// alinlab/cs-kd): every sample x gets a partner x′, a random training sample of the same
/// class (x itself among the candidates, as `random.choice(classwise_indices[y])` there); the
/// loss is cross-entropy with the label plus
/// `λ·T²·KL(softmax(z(x′)/T) ‖ softmax(z(x)/T))`, the partner's prediction detached (the
/// official `KDLoss`: KL summed over classes, times T², averaged over the batch; T = 4, λ = 1).
///
/// Across ranks: the rank that trains x forwards its partner too (partners live on the same
/// rank), and the partner is drawn from (seed, epoch, x's index) alone, its augmentation from
/// (seed, epoch, partner's index) on a stream of its own, so the pairs are the same for any
/// number of ranks. The partners' forward pass runs in training mode without a backward, as the
/// official `torch.no_grad()` forward of `net.train()`: BatchNorm normalises the partners by
/// their own batch statistics and updates its running statistics with them. It runs just
/// before the samples' own forward (our layers keep the state of their last forward for
/// backward), where the official code runs it after: the running statistics see the two
/// batches in the other order. Dropout draws the partners' masks from their own indices.
/// CutMix is refused: the official method has none, and a mixed image has no class to pair.
public final class ClassWiseSelfDistillationPolicy: TrainingPolicy {
    public static let name = "cs-kd"
    public static let summary =
        "CS-KD, cross-entropy + λ·T²·KL(partner's softmax at T ‖ softmax at T), the partner a random sample of "
        + "the same class (--kd-temperature T, default 4; --kd-weight λ, default 1)"
    public static let settingNames = ["kd-temperature", "kd-weight"]
    public static let defaultTemperature = 4.0, defaultWeight = 1.0

    public let temperature: Float
    public let weight: Float
    private let model: Model
    private let seed: UInt64
    private let labels: [Int32]
    /// The training samples of each class, by global index.
    private let classMembers: [[Int]]
    private let partnerAugmenter: Augmenter
    private let dropoutLayers: [Dropout]
    private let hardTargets = SoftTargetLoss()
    private let divergence = DistillationDivergence()
    private var partnerInputs = Tensor(zeros: [0])  // [b, sample shape…]
    private var partnerDistributions = Tensor(zeros: [0, 0])  // [b, C], softmax(z(x′)/T)
    private var batch: Batch?
    /// The partners of the current step's samples, by row.
    public private(set) var partners: [Int] = []

    /// CS-KD for `model` trained on `train` (its labels pick the partners; partners get
    /// `augmentation`, without CutMix), drawing partners from `seed`.
    public init(model: Model, train: Dataset, augmentation: AugmentationConfig, seed: UInt64, temperature: Float, weight: Float) {
        (self.model, self.seed, self.temperature, self.weight) = (model, seed, temperature, weight)
        labels = train.labels
        var members = [[Int]](repeating: [], count: train.classCount)
        for (index, label) in train.labels.enumerated() { members[Int(label)].append(index) }
        classMembers = members
        var partnerAugmentation = augmentation
        partnerAugmentation.cutMixProbability = 0
        var seeds = RandomGenerator(seed: seed).split(RandomStream.classWisePartners, 1)
        let partnerSeed = seeds.next()
        partnerAugmenter = Augmenter(dataset: train, config: partnerAugmentation, seed: partnerSeed)
        dropoutLayers = model.network.descendants().compactMap { $0 as? Dropout }
    }

    public static func make(_ context: PolicyContext) throws -> ClassWiseSelfDistillationPolicy {
        let config = context.config
        guard config.cutMixProbability == 0 else {
            throw ConfigurationError("policy cs-kd pairs samples of one class, which a CutMix image does not have: drop --cutmix")
        }
        return ClassWiseSelfDistillationPolicy(
            model: context.model, train: context.train, augmentation: context.augmentation, seed: config.seed,
            temperature: Float(config.kdTemperature ?? defaultTemperature), weight: Float(config.kdWeight ?? defaultWeight))
    }

    public static func label(_ config: TrainConfig) -> String {
        "cs-kd (T = \(PolicyLabel.number(config.kdTemperature ?? defaultTemperature)), "
            + "λ = \(PolicyLabel.number(config.kdWeight ?? defaultWeight)))"
    }

    /// The partner of sample `index` in `epoch`: a uniformly drawn training sample of its class.
    public func partner(of index: Int, epoch: Int) -> Int {
        let members = classMembers[Int(labels[index])]
        var random = RandomGenerator(seed: seed).split(RandomStream.classWisePartners, 2, UInt64(epoch), UInt64(index))
        return members[random.nextIndex(below: members.count)]
    }

    public var stepTargets: Tensor? { hardTargets.mixedTargets }

    public func beginStep(_ batch: Batch) throws {
        self.batch = batch
        let classes = model.classCount
        let targets = hardTargets.prepare(rows: batch.count, classes: classes).pointer
        targets.update(repeating: 0, count: batch.count * classes)
        for (row, label) in batch.labels.enumerated() { targets[row * classes + Int(label)] = 1 }
        hardTargets.mix(for: batch)
        partners = batch.indices.map { partner(of: $0, epoch: batch.epoch) }
        if partnerInputs.shape != batch.inputs.shape { partnerInputs = Tensor(zeros: batch.inputs.shape) }
        if partnerDistributions.shape != [batch.count, classes] { partnerDistributions = Tensor(zeros: [batch.count, classes]) }
        try partners.withUnsafeBufferPointer { (partners) throws(DataError) in
            try partnerAugmenter.augment(indices: partners, epoch: batch.epoch, into: partnerInputs.pointer)
        }
    }

    /// The partners' forward pass (training mode, no backward), their softened predictions kept.
    public func beforeForward(rows: Range<Int>) throws {
        if !dropoutLayers.isEmpty, let batch {
            let samples = BatchSamples(seed: seed, epoch: batch.epoch, indices: Array(partners[rows]))
            for layer in dropoutLayers { layer.samples = samples }
        }
        let logits = try model.forward(partnerInputs.rows(rows), mode: .training)
        DistillationDivergence.softenedDistribution(logits: logits, temperature: temperature, into: partnerDistributions.rows(rows))
    }

    public func loss(logits: Tensor, rows: Range<Int>, batchRows: Int) throws -> PolicyLoss {
        let crossEntropy = try hardTargets.loss(logits: logits, rows: rows, batchRows: batchRows)
        let distillation = divergence.accumulate(
            logits: logits, teacher: partnerDistributions.rows(rows), temperature: temperature,
            weight: weight * temperature * temperature, gradientRows: batchRows, into: crossEntropy.logitGradients)
        return PolicyLoss(
            loss: crossEntropy.loss + distillation, logitGradients: crossEntropy.logitGradients,
            probabilities: crossEntropy.probabilities)
    }
}
