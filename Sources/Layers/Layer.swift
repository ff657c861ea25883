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
/// The contract (as in swift-apis): `forward` returns the output and keeps what `backward` needs;
/// `backward`, given the gradient of the loss with respect to that output, **writes** (does not
/// accumulate) this layer's parameter gradients and returns the gradient with respect to the
/// input. Returned tensors are owned by the layer and overwritten by its next call.
/// `backward` may overwrite its `outputGradient` argument.
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
    /// Writes parameter gradients and returns the input gradient for the last `forward`.
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

/// Throws unless `input` has `rank` dimensions; names the layer and both shapes.
@inlinable func requireRank(_ rank: Int, _ shape: [Int], layer: String, expected: String) throws(ShapeError) {
    guard shape.count == rank else {
        throw ShapeError("\(layer) expects input \(expected), got \(shape)")
    }
}
