import Tensors

/// Symmetric label noise: each training label, with probability `rate`, is replaced by one of
/// the *other* classes, chosen uniformly.
///
/// Whether sample `i` flips, and to which class, is drawn from its own random stream, keyed by
/// (seed, i) alone: the noisy labels are the same on every rank, for any rank count, any order
/// in which samples are visited and any prefix of the set (`--max-train-samples`).
///
/// ```swift
/// let noise = LabelNoise(rate: 0.4, seed: 1)
/// let (noisy, flipped) = train.withLabelNoise(noise)   // about 40 % of the labels changed
/// ```
public struct LabelNoise: Sendable {
    /// The probability that a label is replaced, in [0, 1).
    public let rate: Double
    /// The root of every sample's stream (the run's seed).
    private let root: RandomGenerator

    /// Noise at `rate` (in [0, 1)) drawn from `seed`.
    public init(rate: Double, seed: UInt64) {
        precondition((0..<1).contains(rate), "label noise rate \(rate) outside [0, 1)")
        self.rate = rate
        root = RandomGenerator(seed: seed).split(RandomStream.labelNoise)
    }

    /// The label sample `index` trains with, given its true `label` among `classCount` classes:
    /// `label` itself, or with probability `rate` one of the other `classCount − 1` classes.
    public func label(_ label: Int, sample index: Int, classCount: Int) -> Int {
        guard rate > 0, classCount > 1 else { return label }
        var generator = root.split(UInt64(index))
        guard generator.nextUniformDouble() < rate else { return label }
        return (label + 1 + generator.nextIndex(below: classCount - 1)) % classCount
    }
}

extension Dataset {
    /// This data set with `noise` applied to every label (sample `i` keyed by its index `i`), and
    /// the number of labels that changed. Rate 0 returns the data set unchanged.
    public func withLabelNoise(_ noise: LabelNoise) -> (dataset: Dataset, flipped: Int) {
        guard noise.rate > 0 else { return (self, 0) }
        let noisy = labels.indices.map { Int32(noise.label(Int(labels[$0]), sample: $0, classCount: classCount)) }
        let flipped = zip(noisy, labels).filter { $0 != $1 }.count
        return (with(labels: noisy), flipped)
    }
}
