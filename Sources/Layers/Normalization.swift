import Tensors

/// Batch normalisation over the last dimension: `[N, C]` (BatchNorm1d) or channels-last images
/// `[N, H, W, C]` (BatchNorm2d). Training normalises with the batch statistics and updates the
/// running averages (PyTorch's momentum 0.1, unbiased running variance); evaluation uses the
/// running statistics. A ReLU can be fused into the output pass.
public final class BatchNorm: Layer {
    public let channels: Int
    public let epsilon: Float
    public let momentum: Float
    public let activation: Activation
    public let weight: Parameter         // γ [C]
    public let bias: Parameter           // β [C]
    public let runningMean: Parameter    // [C]
    public let runningVariance: Parameter  // [C]
    /// Training batches seen, as PyTorch's `num_batches_tracked`.
    public var batchesTracked = 0
    public var computesInputGradient = true

    private var input = Tensor(zeros: [0])
    private var normalized = Workspace()     // x̂ (rows, C)
    private var output = Workspace()         // (rows, C)
    private var inputGradient = Workspace()  // (rows, C)
    private var inverseStd = [Float]()       // (C) of the last training batch
    private var batchMean = [Float]()        // (C) of the last training batch
    private var lastMode = Mode.training

    /// A normalisation over `channels` features with γ = 1 and β = 0.
    public init(_ channels: Int, epsilon: Float = 1e-5, momentum: Float = 0.1, activation: Activation = .identity) {
        self.channels = channels
        self.epsilon = epsilon
        self.momentum = momentum
        self.activation = activation
        weight = Parameter(shape: [channels], initializer: .constant(1))
        bias = Parameter(shape: [channels], initializer: .constant(0))
        runningMean = Parameter(shape: [channels], initializer: .constant(0))
        runningVariance = Parameter(shape: [channels], initializer: .constant(1))
        inverseStd = Array(repeating: 0, count: channels)
        batchMean = Array(repeating: 0, count: channels)
    }

    public var ownParameters: [(name: String, parameter: Parameter)] { [("weight", weight), ("bias", bias)] }
    public var ownBuffers: [(name: String, parameter: Parameter)] {
        [("running_mean", runningMean), ("running_var", runningVariance)]
    }

    public func outputShape(for inputShape: [Int]) throws(ShapeError) -> [Int] {
        guard inputShape.count == 2 || inputShape.count == 4, inputShape.last == channels else {
            throw ShapeError("BatchNorm(\(channels)) expects input [N, \(channels)] or [N, H, W, \(channels)], got \(inputShape)")
        }
        return inputShape
    }

    public func forward(_ input: Tensor, mode: Mode) throws(ShapeError) -> Tensor {
        let y = output.tensor(try outputShape(for: input.shape))
        self.input = input
        lastMode = mode
        let rows = input.count / channels
        let (scale, shift): ([Float], [Float])
        if mode == .training {
            guard rows > 1 else {
                throw ShapeError("BatchNorm(\(channels)) in training needs more than one value per channel, got input \(input.shape)")
            }
            (scale, shift) = trainingAffine(rows: rows)
        } else {
            (scale, shift) = evaluationAffine()
        }
        let xhat = mode == .training ? normalized.tensor(input.shape).pointer : nil
        normalize(rows: rows, scale: scale, shift: shift, into: y.pointer, normalized: xhat)
        return y
    }

    /// Batch statistics → per-channel `y = x·scale + shift`; updates the running averages.
    private func trainingAffine(rows: Int) -> ([Float], [Float]) {
        var sum = [Double](repeating: 0, count: channels)
        var sumOfSquares = [Double](repeating: 0, count: channels)
        let x = input.pointer
        for r in 0..<rows {
            let row = x + r * channels
            for c in 0..<channels {
                let v = Double(row[c])
                sum[c] += v
                sumOfSquares[c] += v * v
            }
        }
        var scale = [Float](repeating: 0, count: channels), shift = scale
        let gamma = weight.value.pointer, beta = bias.value.pointer
        let runningMean = runningMean.value.pointer, runningVariance = runningVariance.value.pointer
        for c in 0..<channels {
            let mean = sum[c] / Double(rows)
            let variance = max(sumOfSquares[c] / Double(rows) - mean * mean, 0)
            let inverse = Float(1 / (variance + Double(epsilon)).squareRoot())
            inverseStd[c] = inverse
            batchMean[c] = Float(mean)
            scale[c] = gamma[c] * inverse
            shift[c] = beta[c] - Float(mean) * scale[c]
            runningMean[c] = (1 - momentum) * runningMean[c] + momentum * Float(mean)
            let unbiased = variance * Double(rows) / Double(rows - 1)
            runningVariance[c] = (1 - momentum) * runningVariance[c] + momentum * Float(unbiased)
        }
        batchesTracked += 1
        return (scale, shift)
    }

    /// Running statistics → per-channel `y = x·scale + shift`.
    private func evaluationAffine() -> ([Float], [Float]) {
        var scale = [Float](repeating: 0, count: channels), shift = scale
        let gamma = weight.value.pointer, beta = bias.value.pointer
        let mean = runningMean.value.pointer, variance = runningVariance.value.pointer
        for c in 0..<channels {
            scale[c] = gamma[c] / (variance[c] + epsilon).squareRoot()
            shift[c] = beta[c] - mean[c] * scale[c]
        }
        return (scale, shift)
    }

    /// One pass: `y = act(x·scale + shift)`, and x̂ = (x − μ)/σ when training.
    private func normalize(rows: Int, scale: [Float], shift: [Float],
                           into y: UnsafeMutablePointer<Float>, normalized xhat: UnsafeMutablePointer<Float>?) {
        let x = input.pointer
        let relu = activation == .relu
        let mean = batchMean, inverse = inverseStd
        for r in 0..<rows {
            let base = r * channels
            for c in 0..<channels {
                let v = x[base + c] * scale[c] + shift[c]
                y[base + c] = relu ? max(v, 0) : v
            }
            if let xhat {
                for c in 0..<channels { xhat[base + c] = (x[base + c] - mean[c]) * inverse[c] }
            }
        }
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        precondition(lastMode == .training, "BatchNorm.backward needs a forward pass in training mode")
        let rows = input.count / channels
        let dy = outputGradient.pointer, y = output.tensor(input.shape).pointer
        let xhat = normalized.tensor(input.shape).pointer
        if activation == .relu {
            for i in 0..<(rows * channels) where y[i] <= 0 { dy[i] = 0 }
        }
        let dgamma = weight.gradient.pointer, dbeta = bias.gradient.pointer
        dgamma.update(repeating: 0, count: channels)
        dbeta.update(repeating: 0, count: channels)
        for r in 0..<rows {
            let base = r * channels
            for c in 0..<channels {
                dbeta[c] += dy[base + c]
                dgamma[c] += dy[base + c] * xhat[base + c]
            }
        }
        guard computesInputGradient else { return input }
        let dx = inputGradient.tensor(input.shape).pointer
        let gamma = weight.value.pointer
        let n = Float(rows)
        for r in 0..<rows {
            let base = r * channels
            for c in 0..<channels {
                let k = gamma[c] * inverseStd[c] / n
                dx[base + c] = k * (n * dy[base + c] - dbeta[c] - xhat[base + c] * dgamma[c])
            }
        }
        return inputGradient.tensor(input.shape)
    }
}
