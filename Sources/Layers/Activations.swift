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

/// Inverted dropout: in training each element is zeroed with probability `p` and the rest are
/// scaled by 1/(1 − p); evaluation passes the input through.
public final class Dropout: Layer {
    public let probability: Float
    public var computesInputGradient = true
    /// The stream the masks are drawn from; reseed it per rank for independent masks.
    public var generator: RandomGenerator
    private var output = Workspace()
    private var mask = Workspace()
    private var inputGradient = Workspace()
    private var lastMode = Mode.training

    public init(probability: Float, generator: RandomGenerator = RandomGenerator(seed: RandomStream.dropout)) {
        precondition(probability >= 0 && probability < 1, "Dropout probability must be in [0, 1), got \(probability)")
        self.probability = probability
        self.generator = generator
    }

    public func outputShape(for inputShape: [Int]) throws(ShapeError) -> [Int] { inputShape }

    public func forward(_ input: Tensor, mode: Mode) throws(ShapeError) -> Tensor {
        lastMode = mode
        guard mode == .training, probability > 0 else { return input }
        let y = output.tensor(input.shape), m = mask.tensor(input.shape)
        let keep = 1 / (1 - probability)
        let x = input.pointer, out = y.pointer, scale = m.pointer
        for i in 0..<input.count {
            scale[i] = generator.nextUniform() < probability ? 0 : keep
            out[i] = x[i] * scale[i]
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
