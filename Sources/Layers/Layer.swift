import Tensors

/// Whether a forward pass trains (batch statistics, dropout on) or evaluates.
public enum Mode: Sendable {
    case training, evaluation
}

/// An elementwise function a layer can apply to its own output in the same memory pass.
public enum Activation: Sendable {
    case identity, relu
}

/// A differentiable building block with a forward pass and its backward pass side by side.
///
/// ## The contract
///
/// Every layer follows these rules; a parent (`Sequential`, `PreActBlock`, `Model`) relies on
/// them and nothing else.
///
/// - **Outputs belong to the layer.** `forward` returns a tensor the layer owns (a workspace
///   reused while the shape stays the same) or, for a layer that changes nothing (`Flatten` of
///   `[N, F]`, `Dropout` in evaluation), a view of its input. Either way it stays valid until the
///   layer's next `forward`, which overwrites it.
/// - **Forward keeps what backward needs.** `forward` may keep a reference to its `input` (not
///   a copy): the caller must leave the input unchanged until the matching `backward` has run.
/// - **Backward reads its argument and never writes it.** `backward(outputGradient)` only reads
///   `outputGradient`, so a parent may hand one gradient to several branches in any order
///   (a residual block's main branch and shortcut).
/// - **Backward returns the input gradient, owned by the layer** (or a view of `outputGradient`
///   for a layer that changes nothing). It stays valid until the layer's next call; the caller
///   may overwrite it in place (a parent adds a branch's gradient into it), since the layer does
///   not read it again. When `computesInputGradient` is false (a model's first layer), the
///   layer may skip that work and return `Tensor.noInputGradient`, an empty tensor; the caller
///   must not read what it gets.
/// - **Parameter gradients accumulate.** `backward` *adds* ∂loss/∂θ into each parameter's
///   `gradient` (a view of `ParameterStore.gradients`); it never clears them. Whoever starts an
///   optimiser step zeroes them once (`ParameterStore.zeroGradients()`), so K micro-batches'
///   backward passes sum their gradients (gradient accumulation). Adding to an exact zero is
///   exact, so a single backward after zeroing gives the same bits as writing would.
/// - **One backward per forward.** `backward` uses the state of the last `forward` (which must
///   have been in training mode for layers with batch statistics).
public protocol Layer: AnyObject {
    /// Sublayers in order, with their PyTorch-style attribute names.
    var children: [(name: String, layer: any Layer)] { get }
    /// Trainable tensors owned by this layer itself (not its children), with PyTorch names.
    var ownParameters: [(name: String, parameter: Parameter)] { get }
    /// Non-trainable state owned by this layer itself, such as BatchNorm's running statistics.
    var ownBuffers: [(name: String, parameter: Parameter)] { get }
    /// The output shape (batch first) for an input shape, or the reason the input does not fit.
    func outputShape(for inputShape: [Int]) throws(ShapeError) -> [Int]
    /// Computes the output for `input` and keeps what `backward` needs.
    func forward(_ input: Tensor, mode: Mode) throws(ShapeError) -> Tensor
    /// Adds this layer's parameter gradients into their `gradient` views and returns the input
    /// gradient for the last `forward`; reads `outputGradient` without changing it.
    func backward(_ outputGradient: Tensor) -> Tensor
    /// Whether `backward` must compute the input gradient (false for a model's first layer).
    var computesInputGradient: Bool { get set }
}

extension Layer {
    public var children: [(name: String, layer: any Layer)] { [] }
    public var ownParameters: [(name: String, parameter: Parameter)] { [] }
    public var ownBuffers: [(name: String, parameter: Parameter)] { [] }

    /// Every trainable tensor of this layer and its descendants, depth first, with dotted names
    /// such as `layer3.0.conv1.weight`.
    public func namedParameters(prefix: String = "") -> [(name: String, parameter: Parameter)] {
        collect(prefix: prefix) { $0.ownParameters }
    }

    /// Sets the gradient of every trainable tensor of this layer and its descendants to zero
    /// (for layers used on their own; a model zeroes its flat buffer at once with
    /// `ParameterStore.zeroGradients()`).
    public func zeroParameterGradients() {
        for (_, parameter) in namedParameters() { parameter.gradient.fill(0) }
    }

    /// Every non-trainable tensor of this layer and its descendants, with dotted names.
    public func namedBuffers(prefix: String = "") -> [(name: String, parameter: Parameter)] {
        collect(prefix: prefix) { $0.ownBuffers }
    }

    /// Every layer of the tree, depth first, including this one.
    public func descendants() -> [any Layer] {
        [self] + children.flatMap { $0.layer.descendants() }
    }

    private func collect(
        prefix: String, _ own: (any Layer) -> [(name: String, parameter: Parameter)]
    ) -> [(name: String, parameter: Parameter)] {
        let dot = prefix.isEmpty ? "" : prefix + "."
        var result = own(self).map { (name: dot + $0.name, parameter: $0.parameter) }
        for child in children {
            result += child.layer.collect(prefix: dot + child.name, own)
        }
        return result
    }
}

extension Tensor {
    /// What `backward` returns when `computesInputGradient` is false: an empty tensor, so a
    /// caller that reads it by mistake fails at once instead of reading stale numbers.
    public static let noInputGradient = Tensor(zeros: [0])
}

/// Throws unless `input` has `rank` dimensions; names the layer and both shapes.
@inlinable func requireRank(_ rank: Int, _ shape: [Int], layer: String, expected: String) throws(ShapeError) {
    guard shape.count == rank else {
        throw ShapeError("\(layer) expects input \(expected), got \(shape)")
    }
}
