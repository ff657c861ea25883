import Layers
import Tensors

/// A network with its parameters in one `ParameterStore`: the unit that is trained,
/// all-reduced, checkpointed and evaluated.
///
/// Models are usually built by name with `ModelZoo.make`; any `Layer` mapping
/// `[N] + sampleShape` to `[N, classCount]` makes one:
///
/// ```swift
/// let model = try ModelZoo.make("cnn", input: .fashionMNIST, generator: RandomGenerator(seed: 1))
/// let logits = try model.forward(images, mode: .training)      // images [N, 28, 28, 1] → [N, 10]
/// // … loss gradient ∂loss/∂logits into `logitGradients` …
/// model.backward(logitGradients)                               // fills model.parameters' flat gradients
/// ```
public final class Model {
    /// The model's registry name (`mlp`, `cnn`, `preact-resnet18`, …).
    public let name: String
    /// The layers.
    public let network: any Layer
    /// One sample's shape, batch excluded (`[784]`, `[28, 28, 1]`).
    public let sampleShape: [Int]
    /// The number of classes, the width of the logits.
    public let classCount: Int
    /// All parameters, gradients and buffers, flat.
    public let parameters: ParameterStore

    /// Binds `network` to a fresh `ParameterStore` initialised from `generator`, after checking
    /// that it maps `[N] + sampleShape` to `[N, classCount]`.
    ///
    /// - Parameters:
    ///   - name: the registry name, recorded in checkpoints.
    ///   - network: the layers; the model turns off its first layer's input gradient.
    ///   - sampleShape: one sample's shape, batch excluded.
    ///   - classCount: the width of the logits.
    ///   - generator: the source of the initial parameters (the same seed gives the same model).
    /// - Throws: `ShapeError` when `network` does not map `[2] + sampleShape` to `[2, classCount]`.
    public init(
        name: String, network: any Layer, sampleShape: [Int], classCount: Int,
        generator: RandomGenerator
    ) throws(ShapeError) {
        let output = try network.outputShape(for: [2] + sampleShape)
        guard output == [2, classCount] else {
            throw ShapeError("model \(name) maps \([2] + sampleShape) to \(output), expected [2, \(classCount)]")
        }
        self.name = name
        self.network = network
        self.sampleShape = sampleShape
        self.classCount = classCount
        self.parameters = ParameterStore(root: network, generator: generator)
        network.computesInputGradient = false
    }

    /// The logits `[N, classCount]` for a batch `[N] + sampleShape` (any reshaping of the same
    /// element count, such as `[N, 28, 28, 1]` for an MLP, is accepted).
    ///
    /// - Parameters:
    ///   - input: the batch; its first dimension is N.
    ///   - mode: `.training` (batch statistics, dropout, and what `backward` needs is kept) or
    ///     `.evaluation`.
    /// - Returns: the logits.
    /// - Throws: `ShapeError` naming the model and both shapes when the element count is wrong.
    public func forward(_ input: Tensor, mode: Mode) throws(ShapeError) -> Tensor {
        guard let batch = input.shape.first, input.count == batch * Tensor.elementCount(sampleShape) else {
            throw ShapeError("model \(name) expects a batch of \(sampleShape), got \(input.shape)")
        }
        return try network.timedForward(input.reshaped([batch] + sampleShape), mode: mode)
    }

    /// Adds every parameter gradient for the last training `forward` into
    /// `parameters.gradients` (zero it first, once per optimiser step), given ∂loss/∂logits.
    ///
    /// - Parameter logitGradients: ∂loss/∂logits, `[N, classCount]`.
    public func backward(_ logitGradients: Tensor) {
        _ = network.timedBackward(logitGradients)
    }

    /// Every BatchNorm layer, whose running statistics ranks must agree on.
    public var batchNormLayers: [BatchNorm] {
        network.descendants().compactMap { $0 as? BatchNorm }
    }
}
