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
        Parallel.forEachPart(of: rows, minimumPart: 64) { part in
            for r in part {
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
    }

    /// `dy ← dy · relu'(y)` in place (when the ReLU is fused), `dβ = Σ dy`, `dγ = Σ dy·x̂`,
    /// eight channels at a time with the sums in registers.
    private func maskAndSumGradients(dy: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>,
                                     xhat: UnsafeMutablePointer<Float>, rows: Int,
                                     dbeta: UnsafeMutablePointer<Float>, dgamma: UnsafeMutablePointer<Float>) {
        let c = channels, relu = activation == .relu
        let groups = (c + Lanes.width - 1) / Lanes.width
        Parallel.forEachPart(of: groups) { part in
            for group in part {
                let k = group * Lanes.width
                guard k + Lanes.width <= c else {
                    for channel in k..<c {
                        var sumDy: Float = 0, sumDyX: Float = 0
                        for r in 0..<rows {
                            let at = r * c + channel
                            let g = relu && y[at] <= 0 ? 0 : dy[at]
                            dy[at] = g
                            sumDy += g
                            sumDyX += g * xhat[at]
                        }
                        dbeta[channel] = sumDy
                        dgamma[channel] = sumDyX
                    }
                    continue
                }
                var sumDy = Lanes.Vector(), sumDyX = Lanes.Vector()
                for r in 0..<rows {
                    let at = r * c + k
                    var g = Lanes.load(dy + at)
                    if relu { g.replace(with: 0, where: Lanes.load(y + at) .<= 0) }
                    Lanes.store(g, dy + at)
                    sumDy += g
                    sumDyX += g * Lanes.load(xhat + at)
                }
                Lanes.store(sumDy, dbeta + k)
                Lanes.store(sumDyX, dgamma + k)
            }
        }
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        precondition(lastMode == .training, "BatchNorm.backward needs a forward pass in training mode")
        let rows = input.count / channels, c = channels
        let dy = outputGradient.pointer, y = output.tensor(input.shape).pointer
        let xhat = normalized.tensor(input.shape).pointer
        let dgamma = weight.gradient.pointer, dbeta = bias.gradient.pointer
        // Pass 1: mask by the fused ReLU (in place) and sum the parameter gradients.
        maskAndSumGradients(dy: dy, y: y, xhat: xhat, rows: rows, dbeta: dbeta, dgamma: dgamma)
        guard computesInputGradient else { return input }
        // Pass 2: dx = γ/(σ·n) · (n·dy − Σdy − x̂·Σ(dy·x̂)).
        let dxTensor = inputGradient.tensor(input.shape)
        let dx = dxTensor.pointer, gamma = weight.value.pointer
        let n = Float(rows)
        var scale = [Float](repeating: 0, count: c)
        for k in 0..<c { scale[k] = gamma[k] * inverseStd[k] / n }
        scale.withUnsafeBufferPointer { scale in
            let scale = scale.baseAddress!
            Parallel.forEachPart(of: rows, minimumPart: 64) { part in
                for r in part {
                    let base = r * c
                    var k = 0
                    while k + Lanes.width <= c {
                        let value = Lanes.load(scale + k) * (n * Lanes.load(dy + base + k) - Lanes.load(dbeta + k)
                            - Lanes.load(xhat + base + k) * Lanes.load(dgamma + k))
                        Lanes.store(value, dx + base + k)
                        k += Lanes.width
                    }
                    while k < c {
                        dx[base + k] = scale[k] * (n * dy[base + k] - dbeta[k] - xhat[base + k] * dgamma[k])
                        k += 1
                    }
                }
            }
        }
        return dxTensor
    }
}
