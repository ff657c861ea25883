import Tensors

/// How a tensor is filled before training (PyTorch's default initialisers).
public enum Initializer: Sendable {
    /// Uniform in [-bound, bound]: PyTorch's default for Linear and Conv2d weights and biases
    /// with bound = 1/√fan_in.
    case uniform(bound: Float)
    /// Normal with mean 0.
    case normal(standardDeviation: Float)
    /// Every element equal.
    case constant(Float)

    /// Fills `tensor` drawing from `generator`.
    public func fill(_ tensor: Tensor, using generator: inout RandomGenerator) {
        let values = tensor.buffer
        switch self {
        case .uniform(let bound):
            for i in values.indices { values[i] = (generator.nextUniform() * 2 - 1) * bound }
        case .normal(let standardDeviation):
            for i in values.indices { values[i] = generator.nextNormal() * standardDeviation }
        case .constant(let value):
            tensor.fill(value)
        }
    }
}

/// A named tensor of a layer with its gradient. Until a `ParameterStore` binds it, it owns its
/// storage; afterwards `value` and `gradient` are views into the store's two flat buffers.
public final class Parameter {
    /// The tensor's shape, in PyTorch's layout (`[out, in, kh, kw]`, `[out, in]`).
    public let shape: [Int]
    /// How the store initialises it.
    public let initializer: Initializer
    /// The current value.
    public internal(set) var value: Tensor
    /// The gradient written by the last `backward` (unused for buffers).
    public internal(set) var gradient: Tensor

    /// A parameter of `shape`, initialised by `initializer` once bound.
    public init(shape: [Int], initializer: Initializer) {
        self.shape = shape
        self.initializer = initializer
        self.value = Tensor(zeros: shape)
        self.gradient = Tensor(zeros: shape)
    }

    /// Points `value` and `gradient` at views of the flat buffers.
    func bind(value: Tensor, gradient: Tensor) {
        precondition(value.shape == shape && gradient.shape == shape)
        self.value = value
        self.gradient = gradient
    }
}

/// A reusable output buffer: reallocated only when the requested shape changes, so steady-state
/// training allocates nothing.
struct Workspace {
    private var tensor: Tensor?

    /// A tensor of `shape`, the same storage as last time if the shape is unchanged.
    mutating func tensor(_ shape: [Int]) -> Tensor {
        if let existing = tensor, existing.shape == shape { return existing }
        let fresh = Tensor(zeros: shape)
        tensor = fresh
        return fresh
    }

    /// Scratch memory for at least `count` floats, the same storage as last time if it is large
    /// enough.
    mutating func scratch(_ count: Int) -> UnsafeMutablePointer<Float> {
        if let existing = tensor, existing.count >= count { return existing.pointer }
        return tensor([count]).pointer
    }
}
