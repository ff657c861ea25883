import Tensors

/// Layers applied one after another; backward runs them in reverse.
public final class Sequential: Layer {
    public let children: [(name: String, layer: any Layer)]
    public var computesInputGradient = true {
        didSet { children.first?.layer.computesInputGradient = computesInputGradient }
    }

    /// Layers named `0`, `1`, … as in PyTorch's `nn.Sequential`.
    public convenience init(_ layers: [any Layer]) {
        self.init(named: layers.enumerated().map { (name: String($0.offset), layer: $0.element) })
    }

    /// Layers with explicit attribute names.
    public init(named layers: [(name: String, layer: any Layer)]) {
        self.children = layers
    }

    public func outputShape(for inputShape: [Int]) throws(ShapeError) -> [Int] {
        var shape = inputShape
        for child in children { shape = try child.layer.outputShape(for: shape) }
        return shape
    }

    public func forward(_ input: Tensor, mode: Mode) throws(ShapeError) -> Tensor {
        var x = input
        for child in children { x = try child.layer.timedForward(x, mode: mode) }
        return x
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        var gradient = outputGradient
        for child in children.reversed() { gradient = child.layer.timedBackward(gradient) }
        return gradient
    }
}
