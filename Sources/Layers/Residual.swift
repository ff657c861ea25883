import Tensors

/// The pre-activation residual block of PS-KD's PreAct ResNet (the official `PreActBlock` of
/// lgcnsai/PS-KD-Pytorch, models/preact_resnet.py), or, with `identity: .input`, the variant of
/// He et al. (2016):
///
///     a  = relu(bn1(x))
///     y  = conv2(relu(bn2(conv1(a)))) + shortcut
///     shortcut = conv1×1(a) when the stride or width changes, else `a` (PS-KD) or `x` (He et al.)
public final class PreActBlock: Layer {
    /// What the identity shortcut (same width, stride 1) adds to the residual branch.
    public enum IdentityShortcut: Sendable {
        /// The pre-activated input `relu(bn1(x))`, as the official PS-KD code does: its
        /// `nn.Sequential()` shortcut is applied to the pre-activation, like the projection.
        case preActivation
        /// The raw input `x`, as in He et al., "Identity Mappings in Deep Residual Networks".
        case input
    }

    public let bn1: BatchNorm
    public let conv1: Conv2d
    public let bn2: BatchNorm
    public let conv2: Conv2d
    /// The projection, named `shortcut.0` as in the reference implementation.
    public let shortcut: Sequential?
    /// What the shortcut adds when there is no projection.
    public let identity: IdentityShortcut
    public var computesInputGradient = true

    private var output = Workspace()

    /// A block from `inputChannels` to `outputChannels`, the first convolution with `stride`;
    /// `identity` chooses what a shape-keeping block's shortcut adds (PS-KD's by default).
    public init(_ inputChannels: Int, _ outputChannels: Int, stride: Int = 1, identity: IdentityShortcut = .preActivation) {
        self.identity = identity
        bn1 = BatchNorm(inputChannels, activation: .relu)
        conv1 = Conv2d(inputChannels, outputChannels, kernelSize: 3, stride: stride, padding: 1, bias: false)
        bn2 = BatchNorm(outputChannels, activation: .relu)
        conv2 = Conv2d(outputChannels, outputChannels, kernelSize: 3, stride: 1, padding: 1, bias: false)
        shortcut =
            stride != 1 || inputChannels != outputChannels
            ? Sequential([Conv2d(inputChannels, outputChannels, kernelSize: 1, stride: stride, bias: false)])
            : nil
    }

    public var children: [(name: String, layer: any Layer)] {
        [("bn1", bn1), ("conv1", conv1), ("bn2", bn2), ("conv2", conv2)] + (shortcut.map { [("shortcut", $0)] } ?? [])
    }

    public func outputShape(for inputShape: [Int]) throws(ShapeError) -> [Int] {
        let a = try bn1.outputShape(for: inputShape)
        let main = try conv2.outputShape(for: bn2.outputShape(for: conv1.outputShape(for: a)))
        let side = try shortcut?.outputShape(for: a) ?? a
        guard main == side else {
            throw ShapeError("PreActBlock: residual branch gives \(main) but shortcut gives \(side) for input \(inputShape)")
        }
        return main
    }

    public func forward(_ input: Tensor, mode: Mode) throws(ShapeError) -> Tensor {
        let shape = try outputShape(for: input.shape)
        let a = try bn1.timedForward(input, mode: mode)
        let side = try shortcut?.timedForward(a, mode: mode) ?? (identity == .input ? input : a)
        let main = try conv2.timedForward(bn2.timedForward(conv1.timedForward(a, mode: mode), mode: mode), mode: mode)
        let y = output.tensor(shape)
        let out = y.pointer, m = main.pointer, s = side.pointer
        for i in 0..<y.count { out[i] = m[i] + s[i] }
        return y
    }

    /// `outputGradient` flows into both branches (neither changes it, see `Layer`). A shortcut
    /// that starts from `a` (the projection, or PS-KD's identity) adds its gradient to the main
    /// branch's before `bn1`; He et al.'s identity adds `outputGradient` to `bn1`'s input gradient.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        let da = conv1.timedBackward(bn2.timedBackward(conv2.timedBackward(outputGradient)))
        if let shortcut {
            add(shortcut.timedBackward(outputGradient), into: da)
        } else if identity == .preActivation {
            add(outputGradient, into: da)
        }
        bn1.computesInputGradient = computesInputGradient
        let dx = bn1.timedBackward(da)
        guard computesInputGradient else { return .noInputGradient }
        if shortcut == nil && identity == .input { add(outputGradient, into: dx) }
        return dx
    }

    /// `into[i] += from[i]`.
    private func add(_ from: Tensor, into: Tensor) {
        let d = into.pointer, s = from.pointer
        for i in 0..<into.count { d[i] += s[i] }
    }
}
