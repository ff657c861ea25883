import Tensors

/// `y = max(x, 0)`, elementwise, any shape.
public final class ReLU: Layer {
    public var computesInputGradient = true
    private var output = Workspace()
    private var inputGradient = Workspace()

    public init() {}

    public func outputShape(for inputShape: [Int]) throws(ShapeError) -> [Int] { inputShape }

    public func forward(_ input: Tensor, mode: Mode) throws(ShapeError) -> Tensor {
        let y = output.tensor(input.shape)
        let x = input.pointer, out = y.pointer
        for i in 0..<input.count { out[i] = max(x[i], 0) }
        return y
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        let dx = inputGradient.tensor(outputGradient.shape)
        let dy = outputGradient.pointer, y = output.tensor(outputGradient.shape).pointer, d = dx.pointer
        for i in 0..<dx.count { d[i] = y[i] > 0 ? dy[i] : 0 }
        return dx
    }
}

/// The samples of a training batch, by global index, so a layer that draws random numbers per
/// sample (`Dropout`) draws the same ones for a sample wherever it sits in the batch, on
/// whichever rank, like augmentation (keyed by seed, epoch and sample).
public struct BatchSamples: Sendable, Equatable {
    /// The run's seed.
    public var seed: UInt64
    /// The epoch, 1-based.
    public var epoch: Int
    /// The global sample index of each row of the batch.
    public var indices: [Int]

    public init(seed: UInt64, epoch: Int, indices: [Int]) {
        (self.seed, self.epoch, self.indices) = (seed, epoch, indices)
    }
}

/// Inverted dropout: in training each element is zeroed with probability `p` and the rest are
/// scaled by 1/(1 − p); evaluation passes the input through.
///
/// A row's mask is drawn from its own stream keyed by (seed, `streamKey`, epoch, the row's
/// global sample index) from `samples`, which the training step sets before every training
/// forward pass. So a sample's mask does not depend on its position in the batch, the number
/// of ranks or micro-batches, and resuming needs no saved random state. Give each Dropout of a
/// model its own `streamKey`.
public final class Dropout: Layer {
    public let probability: Float
    /// Separates this layer's masks from those of a model's other Dropout layers.
    public let streamKey: UInt64
    /// The samples of the next training batch, one index per input row.
    public var samples = BatchSamples(seed: 0, epoch: 0, indices: [])
    public var computesInputGradient = true
    private var output = Workspace()
    private var mask = Workspace()
    private var inputGradient = Workspace()
    private var lastMode = Mode.training

    public init(probability: Float, streamKey: UInt64 = 0) {
        precondition(probability >= 0 && probability < 1, "Dropout probability must be in [0, 1), got \(probability)")
        self.probability = probability
        self.streamKey = streamKey
    }

    public func outputShape(for inputShape: [Int]) throws(ShapeError) -> [Int] { inputShape }

    public func forward(_ input: Tensor, mode: Mode) throws(ShapeError) -> Tensor {
        lastMode = mode
        guard mode == .training, probability > 0 else { return input }
        let rows = input.shape[0], rowSize = input.count / max(rows, 1)
        precondition(
            samples.indices.count == rows,
            "Dropout needs the batch's sample indices (\(rows) rows, \(samples.indices.count) indices): set `samples` before a training forward pass"
        )
        let y = output.tensor(input.shape), m = mask.tensor(input.shape)
        let keep = 1 / (1 - probability)
        let x = input.pointer, out = y.pointer, scale = m.pointer
        let root = RandomGenerator(seed: samples.seed)
        for (row, index) in samples.indices.enumerated() {
            var generator = root.split(RandomStream.dropout, streamKey, UInt64(samples.epoch), UInt64(truncatingIfNeeded: index))
            for i in (row * rowSize)..<((row + 1) * rowSize) {
                scale[i] = generator.nextUniform() < probability ? 0 : keep
                out[i] = x[i] * scale[i]
            }
        }
        return y
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        guard lastMode == .training, probability > 0 else { return outputGradient }
        let dx = inputGradient.tensor(outputGradient.shape)
        let dy = outputGradient.pointer, scale = mask.tensor(outputGradient.shape).pointer, d = dx.pointer
        for i in 0..<dx.count { d[i] = dy[i] * scale[i] }
        return dx
    }
}
