import Tensors

/// One rank's batch at one step: augmented inputs and, per row, the label, the global sample
/// index and whether the row is padding.
///
/// `inputs` is a view into a buffer the loader reuses: it stays valid until the next call to
/// `BatchLoader.next()`; copy it to keep it longer. The arrays are ordinary values.
public struct Batch: Sendable {
    /// The epoch and step this batch belongs to.
    public let epoch: Int
    public let step: Int
    /// Normalised, augmented images, `[b, H, W, C]`.
    public let inputs: Tensor
    /// The class of each row (for a CutMix batch, of the row's own sample, not its partner's).
    public let labels: [Int32]
    /// The global sample index of each row: the key of the PS-KD teacher table.
    public let indices: [Int]
    /// Whether each row repeats a sample only to keep ranks in step: train on it, but never
    /// count it in metrics nor write it into the teacher table.
    public let isPadding: [Bool]
    /// How CutMix mixed this batch, or `nil` if it did not.
    public let cutMix: CutMixInfo?

    /// A batch of `inputs` (`[b, …]`) with one label, global sample index and padding flag per row.
    public init(
        epoch: Int, step: Int, inputs: Tensor, labels: [Int32], indices: [Int], isPadding: [Bool],
        cutMix: CutMixInfo? = nil
    ) {
        precondition(
            labels.count == inputs.shape[0] && indices.count == inputs.shape[0] && isPadding.count == inputs.shape[0],
            "a batch needs one label, index and padding flag per row")
        (self.epoch, self.step, self.inputs, self.labels) = (epoch, step, inputs, labels)
        (self.indices, self.isPadding, self.cutMix) = (indices, isPadding, cutMix)
    }

    /// Rows in the batch, `b`.
    public var count: Int { indices.count }
    /// Rows that are not padding.
    public var realCount: Int { isPadding.lazy.filter { !$0 }.count }

    /// Writes into `output` the per-row targets matching the mixed inputs: CutMix's area-weighted
    /// mix of `targets` (`[b, classes]`) when the batch was mixed, else a copy of `targets`.
    public func mixTargets(_ targets: Tensor, into output: Tensor) {
        if let cutMix {
            cutMix.mixTargets(targets, into: output)
        } else {
            output.assign(targets)
        }
    }
}

/// The preallocated storage of one batch, filled by `BatchAssembler` and handed out as `Batch`.
final class BatchBuffers: @unchecked Sendable {
    let inputs: Tensor  // [b, H, W, C]
    let cutMixScratch: Tensor  // [b, H, W, C]
    var labels: [Int32]
    var indices: [Int]
    var isPadding: [Bool]
    var cutMix: CutMixInfo?
    var epoch = 0
    var step = 0

    init(batchSize: Int, height: Int, width: Int, channels: Int) {
        inputs = Tensor(zeros: [batchSize, height, width, channels])
        cutMixScratch = Tensor(zeros: [batchSize, height, width, channels])
        labels = [Int32](repeating: 0, count: batchSize)
        indices = [Int](repeating: 0, count: batchSize)
        isPadding = [Bool](repeating: false, count: batchSize)
    }

    /// The batch these buffers hold now.
    var batch: Batch {
        Batch(
            epoch: epoch, step: step, inputs: inputs, labels: labels, indices: indices,
            isPadding: isPadding, cutMix: cutMix)
    }
}
