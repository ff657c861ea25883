import Tensors

/// Max pooling over `kernel × kernel` windows of channels-last images `[N, H, W, C]`.
/// Padding positions never win (as PyTorch pads with −∞).
public final class MaxPool2d: Layer {
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    public var computesInputGradient = true
    private var inputShape: [Int] = []
    private var output = Workspace()
    private var inputGradient = Workspace()
    private var winners: [Int32] = []  // (N·Ho·Wo·C): flat input position of each maximum

    /// Padding may be at most half the kernel (as in PyTorch), so every window sees the input.
    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
        precondition(
            padding >= 0 && padding <= kernelSize / 2,
            "MaxPool2d padding must be in 0...\(kernelSize / 2) for kernel \(kernelSize), got \(padding)")
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
    }

    public func outputShape(for inputShape: [Int]) throws(ShapeError) -> [Int] {
        try poolingOutputShape(
            inputShape, kernelSize: kernelSize, stride: stride, padding: padding,
            name: "MaxPool2d(k\(kernelSize), s\(stride))")
    }

    /// Whether the windows are 2×2 at stride 2 without padding over whole eight-channel groups,
    /// which take the vector path `forwardTwoByTwo`.
    private func usesTwoByTwoPath(channels: Int) -> Bool {
        kernelSize == 2 && stride == 2 && padding == 0 && channels % Lanes.width == 0
    }

    public func forward(_ input: Tensor, mode: Mode) throws(ShapeError) -> Tensor {
        let y = output.tensor(try outputShape(for: input.shape))
        inputShape = input.shape
        if winners.count != y.count { winners = Array(repeating: 0, count: y.count) }
        winners.withUnsafeMutableBufferPointer { winner in
            if usesTwoByTwoPath(channels: input.shape[3]) {
                forwardTwoByTwo(input, into: y, winners: winner.baseAddress!)
            } else {
                forwardAnyWindow(input, into: y, winners: winner.baseAddress!)
            }
        }
        return y
    }

    /// The maximum of each window and its flat input position, the first one among equals
    /// (window pixels in row-major order; a NaN stays once taken, as `>` fails).
    private func forwardAnyWindow(_ input: Tensor, into y: Tensor, winners winner: UnsafeMutablePointer<Int32>) {
        let (h, w, c) = (input.shape[1], input.shape[2], input.shape[3])
        let (oh, ow) = (y.shape[1], y.shape[2])
        let x = input.pointer, out = y.pointer
        Self.forEachOutputPixel(of: y.shape) { n, i, j in
            let o = ((n * oh + i) * ow + j) * c
            for ch in 0..<c { out[o + ch] = -.infinity; winner[o + ch] = -1 }
            for di in 0..<kernelSize {
                let ih = i * stride - padding + di
                guard ih >= 0 && ih < h else { continue }
                for dj in 0..<kernelSize {
                    let iw = j * stride - padding + dj
                    guard iw >= 0 && iw < w else { continue }
                    let s = ((n * h + ih) * w + iw) * c
                    for ch in 0..<c where x[s + ch] > out[o + ch] || winner[o + ch] < 0 {
                        out[o + ch] = x[s + ch]
                        winner[o + ch] = Int32(s + ch)
                    }
                }
            }
        }
    }

    /// `forwardAnyWindow` for 2×2 windows at stride 2, eight channels at a time: the four pixels
    /// are taken in the same order with the same strict `>`, so ties and NaNs resolve alike.
    private func forwardTwoByTwo(_ input: Tensor, into y: Tensor, winners winner: UnsafeMutablePointer<Int32>) {
        let (h, w, c) = (input.shape[1], input.shape[2], input.shape[3])
        let (oh, ow) = (y.shape[1], y.shape[2])
        let x = input.pointer, out = y.pointer
        Self.forEachOutputPixel(of: y.shape) { n, i, j in
            let o = ((n * oh + i) * ow + j) * c, s = ((n * h + 2 * i) * w + 2 * j) * c
            for k in Swift.stride(from: 0, to: c, by: Lanes.width) {
                var best = Lanes.load(x + s + k), at = Lanes.lane &+ Int32(s + k)
                for pixel in [s + c, s + w * c, s + w * c + c] {
                    Self.keepGreater(x, at: pixel + k, best: &best, winners: &at)
                }
                Lanes.store(best, out + o + k)
                Lanes.store(at, winner + o + k)
            }
        }
    }

    /// Calls `body(n, i, j)` for every pixel of an output `[N, Ho, Wo, C]`, images split over the
    /// rank's threads (each image's outputs and winners are its own).
    @inline(__always)
    private static func forEachOutputPixel(of shape: [Int], _ body: (Int, Int, Int) -> Void) {
        Parallel.forEachBlock(of: shape[0], size: 1) { samples in
            for n in samples {
                for i in 0..<shape[1] {
                    for j in 0..<shape[2] { body(n, i, j) }
                }
            }
        }
    }

    /// Takes the eight values at `x + offset` into `best` where strictly greater, with their
    /// flat positions into `winners`.
    @inline(__always)
    private static func keepGreater(
        _ x: UnsafePointer<Float>, at offset: Int,
        best: inout Lanes.Vector, winners: inout Lanes.Indices
    ) {
        let v = Lanes.load(x + offset)
        let greater = v .> best
        best.replace(with: v, where: greater)
        winners.replace(with: Lanes.lane &+ Int32(offset), where: greater)
    }

    /// Adds each output gradient to its window's winner, sample by sample: zeroing a sample's
    /// input gradient just before its additions keeps it in cache for them.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        let dx = inputGradient.tensor(inputShape)
        let d = dx.pointer, dy = outputGradient.pointer
        let samples = max(outputGradient.shape[0], 1)
        let outputsPerSample = outputGradient.count / samples, inputsPerSample = dx.count / samples
        winners.withUnsafeBufferPointer { winner in
            // A sample's maxima lie in its own input, so parts of whole samples write apart.
            Parallel.forEachBlock(of: outputGradient.shape[0], size: 1) { part in
                for n in part {
                    (d + n * inputsPerSample).update(repeating: 0, count: inputsPerSample)
                    for o in (n * outputsPerSample)..<((n + 1) * outputsPerSample) {
                        d[Int(winner[o])] += dy[o]
                    }
                }
            }
        }
        return dx
    }
}

/// Average pooling over `kernel × kernel` windows of channels-last images (no padding).
public final class AvgPool2d: Layer {
    public let kernelSize: Int
    public let stride: Int
    public var computesInputGradient = true
    private var inputShape: [Int] = []
    private var output = Workspace()
    private var inputGradient = Workspace()

    public init(kernelSize: Int, stride: Int? = nil) {
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
    }

    public func outputShape(for inputShape: [Int]) throws(ShapeError) -> [Int] {
        try poolingOutputShape(
            inputShape, kernelSize: kernelSize, stride: stride, padding: 0,
            name: "AvgPool2d(k\(kernelSize), s\(stride))")
    }

    public func forward(_ input: Tensor, mode: Mode) throws(ShapeError) -> Tensor {
        let y = output.tensor(try outputShape(for: input.shape))
        inputShape = input.shape
        y.fill(0)
        let x = input.pointer, out = y.pointer
        forEachWindowPair(outputShape: y.shape) { o, s, c in
            for ch in 0..<c { out[o + ch] += x[s + ch] }
        }
        let scale = 1 / Float(kernelSize * kernelSize)
        for i in 0..<y.count { out[i] *= scale }
        return y
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        let dx = inputGradient.tensor(inputShape)
        dx.fill(0)
        let d = dx.pointer, dy = outputGradient.pointer
        let scale = 1 / Float(kernelSize * kernelSize)
        forEachWindowPair(outputShape: outputGradient.shape) { o, s, c in
            for ch in 0..<c { d[s + ch] += dy[o + ch] * scale }
        }
        return dx
    }

    /// Calls `body(outputOffset, inputOffset, channels)` for every (output pixel, window pixel).
    @inline(__always)
    private func forEachWindowPair(outputShape: [Int], _ body: (Int, Int, Int) -> Void) {
        let (h, w, c) = (inputShape[1], inputShape[2], inputShape[3])
        for n in 0..<inputShape[0] {
            for i in 0..<outputShape[1] {
                for j in 0..<outputShape[2] {
                    let o = ((n * outputShape[1] + i) * outputShape[2] + j) * c
                    for di in 0..<kernelSize {
                        for dj in 0..<kernelSize {
                            body(o, ((n * h + i * stride + di) * w + j * stride + dj) * c, c)
                        }
                    }
                }
            }
        }
    }
}

/// The mean over all pixels of each channel: `[N, H, W, C]` → `[N, C]`.
public final class GlobalAvgPool2d: Layer {
    public var computesInputGradient = true
    private var inputShape: [Int] = []
    private var output = Workspace()
    private var inputGradient = Workspace()

    public init() {}

    public func outputShape(for inputShape: [Int]) throws(ShapeError) -> [Int] {
        try requireRank(4, inputShape, layer: "GlobalAvgPool2d", expected: "[N, H, W, C]")
        return [inputShape[0], inputShape[3]]
    }

    public func forward(_ input: Tensor, mode: Mode) throws(ShapeError) -> Tensor {
        let y = output.tensor(try outputShape(for: input.shape))
        inputShape = input.shape
        let pixels = input.shape[1] * input.shape[2], c = input.shape[3]
        let x = input.pointer, out = y.pointer
        y.fill(0)
        for n in 0..<input.shape[0] {
            for p in 0..<pixels {
                let s = (n * pixels + p) * c
                for ch in 0..<c { out[n * c + ch] += x[s + ch] }
            }
        }
        let scale = 1 / Float(pixels)
        for i in 0..<y.count { out[i] *= scale }
        return y
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        let dx = inputGradient.tensor(inputShape)
        let pixels = inputShape[1] * inputShape[2], c = inputShape[3]
        let d = dx.pointer, dy = outputGradient.pointer
        let scale = 1 / Float(pixels)
        for n in 0..<inputShape[0] {
            for p in 0..<pixels {
                let s = (n * pixels + p) * c
                for ch in 0..<c { d[s + ch] = dy[n * c + ch] * scale }
            }
        }
        return dx
    }
}

/// The output shape of a pooling window over `[N, H, W, C]`, or a ShapeError naming `name`.
func poolingOutputShape(
    _ shape: [Int], kernelSize: Int, stride: Int, padding: Int,
    name: String
) throws(ShapeError) -> [Int] {
    try requireRank(4, shape, layer: name, expected: "[N, H, W, C]")
    let spatial = try windowOutputSize(shape, kernelSize: kernelSize, stride: stride, padding: padding, name: name)
    return [shape[0], spatial.height, spatial.width, shape[3]]
}

/// The output height and width of a `kernelSize` window sliding with `stride` over `[N, H, W, C]`
/// padded by `padding`; the window must fit in the padded input.
func windowOutputSize(
    _ shape: [Int], kernelSize: Int, stride: Int, padding: Int,
    name: String
) throws(ShapeError) -> (height: Int, width: Int) {
    guard shape[1] + 2 * padding >= kernelSize, shape[2] + 2 * padding >= kernelSize else {
        throw ShapeError("\(name): a \(kernelSize)×\(kernelSize) window does not fit input \(shape) padded by \(padding)")
    }
    return ((shape[1] + 2 * padding - kernelSize) / stride + 1, (shape[2] + 2 * padding - kernelSize) / stride + 1)
}
