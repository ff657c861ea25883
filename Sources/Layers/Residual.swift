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

    private var join = ResidualJoin(activation: .identity)

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
        return try ResidualJoin.outputShape(block: "PreActBlock", main: main, shortcut: side, input: inputShape)
    }

    public func forward(_ input: Tensor, mode: Mode) throws(ShapeError) -> Tensor {
        _ = try outputShape(for: input.shape)
        let a = try bn1.timedForward(input, mode: mode)
        let side = try shortcut?.timedForward(a, mode: mode) ?? (identity == .input ? input : a)
        let main = try conv2.timedForward(bn2.timedForward(conv1.timedForward(a, mode: mode), mode: mode), mode: mode)
        return join.forward(main: main, shortcut: side)
    }

    /// `outputGradient` flows into both branches (neither changes it, see `Layer`). A shortcut
    /// that starts from `a` (the projection, or PS-KD's identity) adds its gradient to the main
    /// branch's before `bn1`; He et al.'s identity adds `outputGradient` to `bn1`'s input gradient.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        let da = conv1.timedBackward(bn2.timedBackward(conv2.timedBackward(outputGradient)))
        if let shortcut {
            ResidualJoin.add(shortcut.timedBackward(outputGradient), into: da)
        } else if identity == .preActivation {
            ResidualJoin.add(outputGradient, into: da)
        }
        bn1.computesInputGradient = computesInputGradient
        let dx = bn1.timedBackward(da)
        guard computesInputGradient else { return .noInputGradient }
        if shortcut == nil && identity == .input { ResidualJoin.add(outputGradient, into: dx) }
        return dx
    }
}

/// torchvision's residual blocks (`torchvision.models.resnet`, ResNet v1.5), post-activation as
/// in He et al. (2015), "Deep Residual Learning for Image Recognition":
///
///     y = relu(branch(x) + shortcut),  shortcut = downsample(x) when the stride or width changes, else x
///     basic (BasicBlock, ResNet-18/34):        branch = bn2(conv2 3×3(relu(bn1(conv1 3×3 with the stride(x)))))
///     bottleneck (Bottleneck, ResNet-50/101/152): branch = bn3(conv3 1×1(relu(bn2(conv2 3×3 with the stride(
///                                                  relu(bn1(conv1 1×1(x))))))))
///     downsample = `downsample.0` (1×1 convolution with the stride, no bias) → `downsample.1` (BatchNorm)
///
/// The bottleneck's stride sits on its 3×3 convolution (v1.5; the original v1 had it on `conv1`)
/// and it widens to `4 × planes`. The children are torchvision's attributes in its order
/// (`conv1`, `bn1`, `conv2`, `bn2`[, `conv3`, `bn3`][, `downsample`]), so the state-dict names
/// match; the ReLUs are fused into the BatchNorms and the final sum. Every convolution is
/// initialised as torchvision's `ResNet` does, `kaiming_normal_(mode="fan_out", nonlinearity="relu")`;
/// BatchNorms start at γ = 1, β = 0 (`zero_init_residual=False`).
public final class ResidualBlock: Layer {
    /// Which of torchvision's two blocks.
    public enum Design: Sendable {
        /// `BasicBlock`: two 3×3 convolutions, `planes` channels out.
        case basic
        /// `Bottleneck`: 1×1 down to `planes`, 3×3, 1×1 up to `4 × planes`.
        case bottleneck

        /// The factor from `planes` to the block's output channels (torchvision's `expansion`).
        public var expansion: Int { self == .basic ? 1 : 4 }
    }

    public let design: Design
    public let inputChannels: Int
    public let outputChannels: Int
    public let stride: Int
    /// The residual branch; its layers are this block's children (`conv1`, `bn1`, …), not
    /// nested under a name of their own.
    public let branch: Sequential
    /// The projection shortcut (`downsample.0` convolution, `downsample.1` BatchNorm), or nil
    /// for the identity.
    public let downsample: Sequential?
    public var computesInputGradient = true

    private var join = ResidualJoin(activation: .relu)

    /// A block from `inputChannels` to `planes × design.expansion` channels whose first spatial
    /// convolution has `stride`.
    public init(_ design: Design, _ inputChannels: Int, planes: Int, stride: Int = 1) {
        self.design = design
        self.inputChannels = inputChannels
        self.outputChannels = planes * design.expansion
        self.stride = stride
        func conv(_ from: Int, _ to: Int, _ kernel: Int, stride: Int = 1) -> Conv2d {
            Conv2d(from, to, kernelSize: kernel, stride: stride, padding: kernel / 2, bias: false, initialization: .kaimingNormalFanOut)
        }
        switch design {
        case .basic:
            branch = Sequential(named: [
                ("conv1", conv(inputChannels, planes, 3, stride: stride)), ("bn1", BatchNorm(planes, activation: .relu)),
                ("conv2", conv(planes, planes, 3)), ("bn2", BatchNorm(planes)),
            ])
        case .bottleneck:
            branch = Sequential(named: [
                ("conv1", conv(inputChannels, planes, 1)), ("bn1", BatchNorm(planes, activation: .relu)),
                ("conv2", conv(planes, planes, 3, stride: stride)), ("bn2", BatchNorm(planes, activation: .relu)),
                ("conv3", conv(planes, outputChannels, 1)), ("bn3", BatchNorm(outputChannels)),
            ])
        }
        downsample =
            stride != 1 || inputChannels != outputChannels
            ? Sequential([conv(inputChannels, outputChannels, 1, stride: stride), BatchNorm(outputChannels)])
            : nil
    }

    public var children: [(name: String, layer: any Layer)] {
        branch.children + (downsample.map { [("downsample", $0)] } ?? [])
    }

    public func outputShape(for inputShape: [Int]) throws(ShapeError) -> [Int] {
        let main = try branch.outputShape(for: inputShape)
        let side = try downsample?.outputShape(for: inputShape) ?? inputShape
        return try ResidualJoin.outputShape(block: "ResidualBlock(\(design))", main: main, shortcut: side, input: inputShape)
    }

    public func forward(_ input: Tensor, mode: Mode) throws(ShapeError) -> Tensor {
        _ = try outputShape(for: input.shape)
        let main = try branch.forward(input, mode: mode)
        let side = try downsample?.timedForward(input, mode: mode) ?? input
        return join.forward(main: main, shortcut: side)
    }

    /// The gradient at the sum, `g = outputGradient · relu'(y)`, flows into both branches;
    /// the shortcut's input gradient (g itself for the identity) is added to the branch's.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        let g = join.backward(outputGradient)
        branch.computesInputGradient = computesInputGradient
        downsample?.computesInputGradient = computesInputGradient
        let dx = branch.backward(g)
        let side = downsample?.timedBackward(g)
        guard computesInputGradient else { return .noInputGradient }
        ResidualJoin.add(side ?? g, into: dx)
        return dx
    }
}

/// The end of a residual block, shared by `PreActBlock` and `ResidualBlock`: the two branches'
/// shapes must agree, the output is `act(main + shortcut)` in one pass, and the gradient at the
/// sum is the output gradient (identity) or the output gradient where `y > 0` (ReLU).
struct ResidualJoin {
    let activation: Activation
    private var output = Workspace()
    private var sumGradient = Workspace()

    init(activation: Activation) {
        self.activation = activation
    }

    /// `main`, or a ShapeError naming `block` when the shortcut's shape differs.
    static func outputShape(block: String, main: [Int], shortcut: [Int], input: [Int]) throws(ShapeError) -> [Int] {
        guard main == shortcut else {
            throw ShapeError("\(block): residual branch gives \(main) but shortcut gives \(shortcut) for input \(input)")
        }
        return main
    }

    /// `y = act(main + shortcut)`, in a workspace reused while the shape stays the same.
    mutating func forward(main: Tensor, shortcut: Tensor) -> Tensor {
        let y = output.tensor(main.shape)
        let out = y.pointer, m = main.pointer, s = shortcut.pointer
        switch activation {
        case .identity:
            for i in 0..<y.count { out[i] = m[i] + s[i] }
        case .relu:
            for i in 0..<y.count { out[i] = max(m[i] + s[i], 0) }
        }
        return y
    }

    /// ∂loss/∂(main + shortcut) for the last `forward`: `outputGradient` itself for the identity,
    /// else a workspace holding it where `y > 0` and 0 elsewhere (`outputGradient` is only read).
    mutating func backward(_ outputGradient: Tensor) -> Tensor {
        guard activation == .relu else { return outputGradient }
        let y = output.tensor(outputGradient.shape).pointer
        let g = sumGradient.tensor(outputGradient.shape)
        let d = g.pointer, dy = outputGradient.pointer
        for i in 0..<g.count { d[i] = y[i] > 0 ? dy[i] : 0 }
        return g
    }

    /// `into[i] += from[i]`.
    static func add(_ from: Tensor, into: Tensor) {
        Lanes.add(from.pointer, into: into.pointer, count: into.count)
    }
}
