import Tensors

/// The pre-activation residual block of He et al. (2016), as in PS-KD's PreAct ResNet:
///
///     a  = relu(bn1(x))
///     y  = conv2(relu(bn2(conv1(a)))) + shortcut
///     shortcut = conv1×1(a) when the stride or width changes, else x
public final class PreActBlock: Layer {
    public let bn1: BatchNorm
    public let conv1: Conv2d
    public let bn2: BatchNorm
    public let conv2: Conv2d
    /// The projection, named `shortcut.0` as in the reference implementation.
    public let shortcut: Sequential?
    public var computesInputGradient = true

    private var input = Tensor(zeros: [0])
    private var output = Workspace()
    private var inputGradient = Workspace()

    /// A block from `inputChannels` to `outputChannels`, the first convolution with `stride`.
    public init(_ inputChannels: Int, _ outputChannels: Int, stride: Int = 1) {
        bn1 = BatchNorm(inputChannels, activation: .relu)
        conv1 = Conv2d(inputChannels, outputChannels, kernelSize: 3, stride: stride, padding: 1, bias: false)
        bn2 = BatchNorm(outputChannels, activation: .relu)
        conv2 = Conv2d(outputChannels, outputChannels, kernelSize: 3, stride: 1, padding: 1, bias: false)
        shortcut = stride != 1 || inputChannels != outputChannels
            ? Sequential([Conv2d(inputChannels, outputChannels, kernelSize: 1, stride: stride, bias: false)])
            : nil
    }

    public var children: [(name: String, layer: any Layer)] {
        [("bn1", bn1), ("conv1", conv1), ("bn2", bn2), ("conv2", conv2)] + (shortcut.map { [("shortcut", $0)] } ?? [])
    }

    public func outputShape(for inputShape: [Int]) throws(ShapeError) -> [Int] {
        let a = try bn1.outputShape(for: inputShape)
        let main = try conv2.outputShape(for: bn2.outputShape(for: conv1.outputShape(for: a)))
        let side = try shortcut?.outputShape(for: a) ?? inputShape
        guard main == side else {
            throw ShapeError("PreActBlock: residual branch gives \(main) but shortcut gives \(side) for input \(inputShape)")
        }
        return main
    }

    public func forward(_ input: Tensor, mode: Mode) throws(ShapeError) -> Tensor {
        let shape = try outputShape(for: input.shape)
        self.input = input
        let a = try bn1.forward(input, mode: mode)
        let side = try shortcut?.forward(a, mode: mode) ?? input
        let main = try conv2.forward(bn2.forward(conv1.forward(a, mode: mode), mode: mode), mode: mode)
        let y = output.tensor(shape)
        let out = y.pointer, m = main.pointer, s = side.pointer
        for i in 0..<y.count { out[i] = m[i] + s[i] }
        return y
    }

    /// `outputGradient` flows into both branches (neither changes it, see `Layer`): the main
    /// branch's and the projection's gradients with respect to `a` are added before `bn1`; the
    /// identity shortcut's gradient is added to `bn1`'s input gradient.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        let da = conv1.backward(bn2.backward(conv2.backward(outputGradient)))
        if let shortcut {
            add(shortcut.backward(outputGradient), into: da)
        }
        bn1.computesInputGradient = computesInputGradient
        let dInput = bn1.backward(da)
        guard computesInputGradient else { return .noInputGradient }
        let dx = inputGradient.tensor(input.shape)
        dx.assign(dInput)
        if shortcut == nil { add(outputGradient, into: dx) }
        return dx
    }

    /// `into[i] += from[i]`.
    private func add(_ from: Tensor, into: Tensor) {
        let d = into.pointer, s = from.pointer
        for i in 0..<into.count { d[i] += s[i] }
    }
}
