import Tensors

/// How a training target row is made from a sample's label (and, for PS-KD, its teacher row).
/// The policies the paper compares: plain cross-entropy, label smoothing and PS-KD.
///
/// The trainer asks the policy for α_t once per epoch and for a batch's targets once per step:
///
/// ```swift
/// let policy = TargetPolicy.progressiveSelfDistillation(finalAlpha: 0.8)
/// let alpha = policy.alpha(epoch: epoch, totalEpochs: epochs)     // 0.8 · epoch / epochs
/// let teacherRows = teacher.rows(step: batch.step, indices: batch.indices, isPadding: batch.isPadding)
/// policy.makeTargets(labels: batch.labels, alpha: alpha, teacherRows: teacherRows,
///                    into: targets)                               // targets: [b, C]
/// ```
///
/// A new policy is a new case here, with its command-line name in `name` and in
/// `TrainConfig.targetPolicy()`.
public enum TargetPolicy: Sendable, Equatable {
    /// The one-hot label.
    case crossEntropy
    /// `(1 − ε)·onehot + ε/K`.
    case labelSmoothing(epsilon: Float)
    /// `(1 − α_t)·onehot + α_t·P_{t−1}(x)` with α_t = α_T·t/T, t = 1…T.
    case progressiveSelfDistillation(finalAlpha: Float)

    /// The command-line name: `ce`, `ls` or `pskd`.
    public var name: String {
        switch self {
        case .crossEntropy: "ce"
        case .labelSmoothing: "ls"
        case .progressiveSelfDistillation: "pskd"
        }
    }

    /// Whether the policy needs a teacher table.
    public var usesTeacher: Bool {
        if case .progressiveSelfDistillation = self { return true }
        return false
    }

    /// α_t for epoch `epoch` (1-based) of `totalEpochs`: α_T·t/T for PS-KD, 0 otherwise.
    ///
    /// - Parameters:
    ///   - epoch: the epoch being trained, `1...totalEpochs`.
    ///   - totalEpochs: T, the run's number of epochs.
    /// - Returns: the weight of the teacher's row in this epoch's targets.
    public func alpha(epoch: Int, totalEpochs: Int) -> Float {
        guard case .progressiveSelfDistillation(let finalAlpha) = self else { return 0 }
        return finalAlpha * Float(epoch) / Float(max(totalEpochs, 1))
    }

    /// Writes one target row per sample into `targets` `[labels.count, C]`. PS-KD mixes in each
    /// sample's teacher row from `teacherRows`; other policies ignore it.
    ///
    /// - Parameters:
    ///   - labels: each sample's class, in `0..<C`.
    ///   - alpha: α_t from `alpha(epoch:totalEpochs:)`.
    ///   - teacherRows: each sample's teacher row P_{t−1}, `[labels.count, C]` (`Teacher.rows`);
    ///     required by PS-KD, ignored otherwise.
    ///   - targets: `[labels.count, C]`, overwritten.
    public func makeTargets(labels: [Int], alpha: Float, teacherRows: Tensor?, into targets: Tensor) {
        precondition(!usesTeacher || teacherRows != nil, "PS-KD targets need the teacher's rows")
        let c = targets.shape[1]
        let t = targets.pointer
        for (row, label) in labels.enumerated() {
            let out = t + row * c
            switch self {
            case .crossEntropy:
                out.update(repeating: 0, count: c)
                out[label] = 1
            case .labelSmoothing(let epsilon):
                out.update(repeating: epsilon / Float(c), count: c)
                out[label] += 1 - epsilon
            case .progressiveSelfDistillation:
                let previous = teacherRows!.pointer + row * c
                for k in 0..<c { out[k] = alpha * previous[k] }
                out[label] += 1 - alpha
            }
        }
    }
}
