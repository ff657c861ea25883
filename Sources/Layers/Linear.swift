import Tensors

/// A fully connected layer `y = act(x · Wᵀ + b)`: input `[N, in]`, output `[N, out]`,
/// weight `[out, in]` as in PyTorch. A ReLU can be fused into the bias pass.
public final class Linear: Layer {
    public let inputFeatures: Int
    public let outputFeatures: Int
    public let activation: Activation
    public let weight: Parameter  // [out, in]
    public let bias: Parameter?  // [out]
    public var computesInputGradient = true

    private var input = Tensor(zeros: [0])  // (N, in), the caller's tensor
    private var output = Workspace()  // (N, out)
    private var preActivationGradient = Workspace()  // (N, out)
    private var inputGradient = Workspace()  // (N, in)

    /// A layer with PyTorch's default initialisation, U(±1/√in) for weight and bias.
    public init(_ inputFeatures: Int, _ outputFeatures: Int, bias: Bool = true, activation: Activation = .identity) {
        self.inputFeatures = inputFeatures
        self.outputFeatures = outputFeatures
        self.activation = activation
        let bound = 1 / Float(inputFeatures).squareRoot()
        weight = Parameter(shape: [outputFeatures, inputFeatures], initializer: .uniform(bound: bound))
        self.bias = bias ? Parameter(shape: [outputFeatures], initializer: .uniform(bound: bound)) : nil
    }

    public var ownParameters: [(name: String, parameter: Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public func outputShape(for inputShape: [Int]) throws(ShapeError) -> [Int] {
        guard inputShape.count == 2, inputShape[1] == inputFeatures else {
            throw ShapeError("Linear(\(inputFeatures)→\(outputFeatures)) expects input [N, \(inputFeatures)], got \(inputShape)")
        }
        return [inputShape[0], outputFeatures]
    }

    public func forward(_ input: Tensor, mode: Mode) throws(ShapeError) -> Tensor {
        let y = output.tensor(try outputShape(for: input.shape))
        self.input = input
        let n = input.shape[0]
        BLAS.gemm(
            .none, .transposed, m: n, n: outputFeatures, k: inputFeatures,
            a: input.pointer, lda: inputFeatures, b: weight.value.pointer, ldb: inputFeatures,
            c: y.pointer, ldc: outputFeatures)
        Elementwise.addBiasAndActivate(
            y.pointer, rows: n, columns: outputFeatures,
            bias: bias?.value.pointer, activation: activation)
        return y
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        let n = input.shape[0]
        let dz = activation == .identity ? outputGradient : preActivationGradient.tensor(outputGradient.shape)
        Elementwise.activationBackwardAndBiasGradient(
            outputGradient: outputGradient.pointer, output: output.tensor([n, outputFeatures]).pointer,
            preActivationGradient: dz.pointer, rows: n, columns: outputFeatures,
            activation: activation, biasGradient: bias?.gradient.pointer)
        // dW (out, in) += dzᵀ (out, N) · x (N, in)
        BLAS.gemm(
            .transposed, .none, m: outputFeatures, n: inputFeatures, k: n,
            a: dz.pointer, lda: outputFeatures, b: input.pointer, ldb: inputFeatures,
            beta: 1, c: weight.gradient.pointer, ldc: inputFeatures)
        guard computesInputGradient else { return .noInputGradient }
        // dx (N, in) = dz (N, out) · W (out, in)
        let dx = inputGradient.tensor(input.shape)
        BLAS.gemm(
            .none, .none, m: n, n: inputFeatures, k: outputFeatures,
            a: dz.pointer, lda: outputFeatures, b: weight.value.pointer, ldb: inputFeatures,
            c: dx.pointer, ldc: inputFeatures)
        return dx
    }
}
