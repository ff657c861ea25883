import Tensors

/// Batch normalisation over the last dimension: `[N, C]` (BatchNorm1d) or channels-last images
/// `[N, H, W, C]` (BatchNorm2d). Training normalises with the batch statistics and updates the
/// running averages (PyTorch's momentum 0.1, unbiased running variance); evaluation uses the
/// running statistics. A ReLU can be fused into the output pass. Backward reads the input again
/// (to recompute x̂ and the ReLU's mask, which is cheaper than storing them), so the input must
/// be unchanged until then, as for Linear and Conv2d.
public final class BatchNorm: Layer {
    public let channels: Int
    public let epsilon: Float
    public let momentum: Float
    public let activation: Activation
    public let weight: Parameter  // γ [C]
    public let bias: Parameter  // β [C]
    public let runningMean: Parameter  // [C]
    public let runningVariance: Parameter  // [C]
    /// Training batches seen, as PyTorch's `num_batches_tracked`.
    public var batchesTracked = 0
    public var computesInputGradient = true

    private var input = Tensor(zeros: [0])  // the caller's tensor, read again by backward
    private var output = Workspace()  // (rows, C)
    private var inputGradient = Workspace()  // (rows, C)
    private let batch: ChannelAffine  // of the last training batch
    private let running: ChannelAffine  // for evaluation
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
        batch = ChannelAffine(channels: channels)
        running = ChannelAffine(channels: channels)
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
        let affine: ChannelAffine
        if mode == .training {
            guard rows > 1 else {
                throw ShapeError("BatchNorm(\(channels)) in training needs more than one value per channel, got input \(input.shape)")
            }
            setTrainingAffine(rows: rows)
            affine = batch
        } else {
            setEvaluationAffine()
            affine = running
        }
        normalize(rows: rows, affine: affine, into: y.pointer)
        return y
    }

    /// Batch statistics → `batch` (μ, 1/σ and `y = x·scale + shift`); updates the running averages.
    /// The sums are of deviations from the first row, which keeps E[d²] − E[d]² accurate when
    /// |μ| ≫ σ; they are blocked Float sums merged in Double (see `ChannelSums`).
    private func setTrainingAffine(rows: Int) {
        let x = input.pointer
        let (sum, sumOfSquares) = ChannelSums.sums(ShiftedMoments(x: x, shift: x), rows: rows, channels: channels)
        let gamma = weight.value.pointer, beta = bias.value.pointer
        let runningMean = runningMean.value.pointer, runningVariance = runningVariance.value.pointer
        for c in 0..<channels {
            let deviation = sum[c] / Double(rows)
            let mean = Double(x[c]) + deviation
            let variance = max(sumOfSquares[c] / Double(rows) - deviation * deviation, 0)
            let inverse = Float(1 / (variance + Double(epsilon)).squareRoot())
            batch.mean[c] = Float(mean)
            batch.inverseStd[c] = inverse
            batch.scale[c] = gamma[c] * inverse
            batch.shift[c] = beta[c] - Float(mean) * batch.scale[c]
            runningMean[c] = (1 - momentum) * runningMean[c] + momentum * Float(mean)
            let unbiased = variance * Double(rows) / Double(rows - 1)
            runningVariance[c] = (1 - momentum) * runningVariance[c] + momentum * Float(unbiased)
        }
        batchesTracked += 1
    }

    /// Running statistics → `running`'s `y = x·scale + shift`.
    private func setEvaluationAffine() {
        let gamma = weight.value.pointer, beta = bias.value.pointer
        let mean = runningMean.value.pointer, variance = runningVariance.value.pointer
        for c in 0..<channels {
            running.scale[c] = gamma[c] / (variance[c] + epsilon).squareRoot()
            running.shift[c] = beta[c] - mean[c] * running.scale[c]
        }
    }

    /// One pass: `y = act(x·scale + shift)`.
    private func normalize(rows: Int, affine: ChannelAffine, into y: UnsafeMutablePointer<Float>) {
        let x = input.pointer, c = channels, relu = activation == .relu
        let scale = affine.scale, shift = affine.shift
        Parallel.forEachBlock(of: rows, size: 64) { part in
            for r in part {
                Lanes.forEachGroup(channels: c) { k, lanes in
                    let at = r * c + k
                    var v =
                        Lanes.load(x + at, lanes: lanes) * Lanes.load(scale + k, lanes: lanes)
                        + Lanes.load(shift + k, lanes: lanes)
                    if relu { v.replace(with: 0, where: v .<= 0) }  // max(v, 0), NaN kept
                    Lanes.store(v, y + at, lanes: lanes)
                }
            }
        }
    }

    /// Two passes over `dy` and the input (x̂ and the ReLU's mask are recomputed from x):
    /// `dβ = Σ g`, `dγ = Σ g·x̂` with `g = dy·relu'(y)`, then `dx = γ/(σ·n) · (n·g − dβ − x̂·dγ)`.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        precondition(lastMode == .training, "BatchNorm.backward needs a forward pass in training mode")
        let rows = input.count / channels, c = channels
        let terms = BackwardTerms(
            dy: outputGradient.pointer, x: input.pointer, batch: batch,
            relu: activation == .relu)
        let (sumG, sumGX) = ChannelSums.sums(terms, rows: rows, channels: c)
        // This batch's dβ and dγ (the input gradient needs them, not the accumulated gradients),
        // then the input gradient's per-channel scale: [dβ | dγ | scale].
        var channelTerms = [Float](repeating: 0, count: 3 * c)
        let accumulatedBeta = bias.gradient.pointer, accumulatedGamma = weight.gradient.pointer
        for k in 0..<c {
            channelTerms[k] = Float(sumG[k])
            channelTerms[c + k] = Float(sumGX[k])
            accumulatedBeta[k] += channelTerms[k]
            accumulatedGamma[k] += channelTerms[c + k]
        }
        guard computesInputGradient else { return .noInputGradient }
        let dxTensor = inputGradient.tensor(input.shape)
        let dx = dxTensor.pointer, gamma = weight.value.pointer
        let n = Float(rows)
        for k in 0..<c { channelTerms[2 * c + k] = gamma[k] * batch.inverseStd[k] / n }
        channelTerms.withUnsafeBufferPointer { channelTerms in
            let dbeta = channelTerms.baseAddress!, dgamma = dbeta + c, scale = dbeta + 2 * c
            Parallel.forEachBlock(of: rows, size: 64) { part in
                for r in part {
                    Lanes.forEachGroup(channels: c) { k, lanes in
                        let at = r * c + k
                        let (g, xhat) = terms.gradientAndNormalized(at: at, channel: k, lanes: lanes)
                        let value =
                            Lanes.load(scale + k, lanes: lanes)
                            * (n * g - Lanes.load(dbeta + k, lanes: lanes)
                                - xhat * Lanes.load(dgamma + k, lanes: lanes))
                        Lanes.store(value, dx + at, lanes: lanes)
                    }
                }
            }
        }
        return dxTensor
    }
}

/// Per-channel vectors, rows of one `[4, C]` tensor: the batch mean and 1/σ (in training) and
/// the map `y = x·scale + shift` normalisation applies.
private struct ChannelAffine {
    let storage: Tensor
    let channels: Int

    init(channels: Int) {
        storage = Tensor(zeros: [4, channels])
        self.channels = channels
    }

    var mean: UnsafeMutablePointer<Float> { storage.pointer }
    var inverseStd: UnsafeMutablePointer<Float> { storage.pointer + channels }
    var scale: UnsafeMutablePointer<Float> { storage.pointer + 2 * channels }
    var shift: UnsafeMutablePointer<Float> { storage.pointer + 3 * channels }
}

/// `(d, d²)` with `d = x − shift` per channel: the moments of the batch statistics.
private struct ShiftedMoments: ChannelTerms {
    let x: UnsafePointer<Float>
    let shift: UnsafePointer<Float>

    @inline(__always)
    func callAsFunction(at offset: Int, channel: Int, lanes: Int) -> (Lanes.Vector, Lanes.Vector) {
        let d = Lanes.load(x + offset, lanes: lanes) - Lanes.load(shift + channel, lanes: lanes)
        return (d, d * d)
    }
}

/// The terms of BatchNorm's backward pass, from the output gradient and the layer's input.
private struct BackwardTerms: ChannelTerms {
    let dy: UnsafePointer<Float>
    let x: UnsafePointer<Float>
    let mean: UnsafePointer<Float>, inverseStd: UnsafePointer<Float>
    let scale: UnsafePointer<Float>, shift: UnsafePointer<Float>
    let relu: Bool

    init(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, batch: ChannelAffine, relu: Bool) {
        (self.dy, self.x, self.relu) = (dy, x, relu)
        (mean, inverseStd) = (UnsafePointer(batch.mean), UnsafePointer(batch.inverseStd))
        (scale, shift) = (UnsafePointer(batch.scale), UnsafePointer(batch.shift))
    }

    /// `g = dy·relu'(y)` (dy without the ReLU) and `x̂ = (x − μ)/σ`, recomputed as forward did.
    @inline(__always)
    func gradientAndNormalized(at offset: Int, channel: Int, lanes: Int) -> (Lanes.Vector, Lanes.Vector) {
        let x = Lanes.load(self.x + offset, lanes: lanes)
        var g = Lanes.load(dy + offset, lanes: lanes)
        if relu {
            let y = x * Lanes.load(scale + channel, lanes: lanes) + Lanes.load(shift + channel, lanes: lanes)
            g.replace(with: 0, where: y .<= 0)
        }
        return (g, (x - Lanes.load(mean + channel, lanes: lanes)) * Lanes.load(inverseStd + channel, lanes: lanes))
    }

    /// `(g, g·x̂)`: the sums are dβ and dγ.
    @inline(__always)
    func callAsFunction(at offset: Int, channel: Int, lanes: Int) -> (Lanes.Vector, Lanes.Vector) {
        let (g, xhat) = gradientAndNormalized(at: offset, channel: channel, lanes: lanes)
        return (g, g * xhat)
    }
}
