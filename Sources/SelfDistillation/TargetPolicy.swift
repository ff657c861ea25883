import Tensors

/// How a training target row is made from a sample's label (and, for PS-KD, its teacher row).
/// The policies the paper compares: plain cross-entropy, label smoothing and PS-KD.
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
    public func alpha(epoch: Int, totalEpochs: Int) -> Float {
        guard case .progressiveSelfDistillation(let finalAlpha) = self else { return 0 }
        return finalAlpha * Float(epoch) / Float(max(totalEpochs, 1))
    }

    /// Writes one target row per sample into `targets` `[labels.count, C]`. PS-KD reads each
    /// sample's row of `teacher` by its global index in `indices`; other policies ignore both.
    public func makeTargets(labels: [Int], indices: [Int], alpha: Float, teacher: TeacherTable?, into targets: Tensor) {
        precondition(!usesTeacher || teacher != nil, "PS-KD targets need the teacher table")
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
                let previous = teacher!.row(indices[row])
                for k in 0..<c { out[k] = alpha * previous[k] }
                out[label] += 1 - alpha
            }
        }
    }
}
