import Tensors

/// A 2-D convolution on channels-last images: input `[N, H, W, in]`, output `[N, Ho, Wo, out]`,
/// weight `[out, in, kh, kw]` as in PyTorch.
///
/// Implemented as im2col plus one GEMM per chunk of the batch: the column matrix of a chunk
/// (`[rows, kh·kw·in]`, with each kernel tap's channels contiguous) stays within
/// `columnBufferBytes`, so it is written and read while still in cache. The backward pass
/// rebuilds the columns instead of keeping them, so memory does not grow with the batch.
public final class Conv2d: Layer {
    public let inputChannels: Int
    public let outputChannels: Int
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    public let weight: Parameter  // [out, in, kh, kw]
    public let bias: Parameter?   // [out]
    public var computesInputGradient = true

    /// The largest column buffer a chunk may use; chunks are whole samples.
    public nonisolated(unsafe) static var columnBufferBytes = 4 << 20

    private var input = Tensor(zeros: [0])    // (N, H, W, in)
    private var output = Workspace()          // (N, Ho, Wo, out)
    private var inputGradient = Workspace()   // (N, H, W, in)
    private var columns = Workspace()         // (chunk·Ho·Wo, kh·kw·in)
    private var columnGradient = Workspace()  // (chunk·Ho·Wo, kh·kw·in)
    private var packedWeight = Workspace()    // (out, kh·kw·in)
    private var packedWeightGradient = Workspace()

    /// A convolution with PyTorch's default initialisation, U(±1/√(in·k·k)).
    public init(_ inputChannels: Int, _ outputChannels: Int, kernelSize: Int, stride: Int = 1,
                padding: Int = 0, bias: Bool = true) {
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        let bound = 1 / Float(inputChannels * kernelSize * kernelSize).squareRoot()
        weight = Parameter(shape: [outputChannels, inputChannels, kernelSize, kernelSize],
                           initializer: .uniform(bound: bound))
        self.bias = bias ? Parameter(shape: [outputChannels], initializer: .uniform(bound: bound)) : nil
    }

    public var ownParameters: [(name: String, parameter: Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    private var tapLength: Int { kernelSize * kernelSize * inputChannels }

    public func outputShape(for inputShape: [Int]) throws(ShapeError) -> [Int] {
        let name = "Conv2d(\(inputChannels)→\(outputChannels), k\(kernelSize), s\(stride), p\(padding))"
        guard inputShape.count == 4, inputShape[3] == inputChannels else {
            throw ShapeError("\(name) expects input [N, H, W, \(inputChannels)], got \(inputShape)")
        }
        let spatial = try windowOutputSize(inputShape, kernelSize: kernelSize, stride: stride, padding: padding, name: name)
        return [inputShape[0], spatial.height, spatial.width, outputChannels]
    }

    public func forward(_ input: Tensor, mode: Mode) throws(ShapeError) -> Tensor {
        let y = output.tensor(try outputShape(for: input.shape))
        self.input = input
        let packed = packedWeight.tensor([outputChannels, tapLength])
        packWeight(from: weight.value.pointer, into: packed.pointer)
        let geometry = self.geometry(output: y.shape)
        for chunk in geometry.chunks {
            let cols = columnsOf(chunk, geometry)
            // y (rows, out) = cols (rows, K) · packedᵀ (K, out)
            BLAS.gemm(.none, .transposed, m: chunk.rows, n: outputChannels, k: tapLength,
                      a: cols, lda: tapLength, b: packed.pointer, ldb: tapLength,
                      c: y.pointer + chunk.firstRow * outputChannels, ldc: outputChannels)
        }
        Elementwise.addBiasAndActivate(y.pointer, rows: y.count / outputChannels, columns: outputChannels,
                                       bias: bias?.value.pointer, activation: .identity)
        return y
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        let dy = outputGradient
        let geometry = self.geometry(output: dy.shape)
        let packed = packedWeight.tensor([outputChannels, tapLength])
        let packedGradient = packedWeightGradient.tensor([outputChannels, tapLength])
        let dx = computesInputGradient ? inputGradient.tensor(input.shape) : input
        if computesInputGradient { dx.fill(0) }
        for (index, chunk) in geometry.chunks.enumerated() {
            let cols = columnsOf(chunk, geometry)
            let dyChunk = dy.pointer + chunk.firstRow * outputChannels
            // dW (out, K) += dyᵀ (out, rows) · cols (rows, K)
            BLAS.gemm(.transposed, .none, m: outputChannels, n: tapLength, k: chunk.rows,
                      a: dyChunk, lda: outputChannels, b: cols, ldb: tapLength,
                      beta: index == 0 ? 0 : 1, c: packedGradient.pointer, ldc: tapLength)
            guard computesInputGradient else { continue }
            // dcols (rows, K) = dy (rows, out) · W (out, K)
            let dcols = columnGradient.tensor([geometry.chunkRows, tapLength]).pointer
            BLAS.gemm(.none, .none, m: chunk.rows, n: tapLength, k: outputChannels,
                      a: dyChunk, lda: outputChannels, b: packed.pointer, ldb: tapLength,
                      c: dcols, ldc: tapLength)
            accumulateColumns(dcols, into: dx.pointer, chunk, geometry)
        }
        unpackWeight(from: packedGradient.pointer, into: weight.gradient.pointer)
        if let bias {
            Elementwise.activationBackwardAndBiasGradient(
                outputGradient: dy.pointer, output: dy.pointer, preActivationGradient: dy.pointer,
                rows: dy.count / outputChannels, columns: outputChannels,
                activation: .identity, biasGradient: bias.gradient.pointer)
        }
        return dx
    }

    // MARK: - Geometry and chunking

    private struct Geometry {
        var batch, height, width, outHeight, outWidth, samplesPerChunk: Int
        var chunkRows: Int { samplesPerChunk * outHeight * outWidth }
        var chunks: [Chunk] {
            Swift.stride(from: 0, to: batch, by: samplesPerChunk).map { first in
                let samples = min(samplesPerChunk, batch - first)
                return Chunk(firstSample: first, samples: samples, firstRow: first * outHeight * outWidth,
                             rows: samples * outHeight * outWidth)
            }
        }
    }

    private struct Chunk {
        var firstSample, samples, firstRow, rows: Int
    }

    private func geometry(output shape: [Int]) -> Geometry {
        let bytesPerSample = shape[1] * shape[2] * tapLength * MemoryLayout<Float>.stride
        let perChunk = max(1, min(input.shape[0], Conv2d.columnBufferBytes / max(bytesPerSample, 1)))
        return Geometry(batch: input.shape[0], height: input.shape[1], width: input.shape[2],
                        outHeight: shape[1], outWidth: shape[2], samplesPerChunk: perChunk)
    }

    private var isPointwise: Bool { kernelSize == 1 && stride == 1 && padding == 0 }

    /// The column matrix of `chunk`: for a pointwise convolution, the input itself.
    private func columnsOf(_ chunk: Chunk, _ g: Geometry) -> UnsafeMutablePointer<Float> {
        let source = input.pointer + chunk.firstSample * g.height * g.width * inputChannels
        if isPointwise { return source }
        let cols = columns.tensor([g.chunkRows, tapLength]).pointer
        im2col(source, samples: chunk.samples, g, into: cols)
        return cols
    }

    /// Calls `body(row, kernelRow, firstColumn, lastColumn, sourceOffset?)` for every output pixel
    /// row and kernel row of `samples` images: the kernel columns `firstColumn..<lastColumn` fall
    /// inside the image and start at `sourceOffset` in the input, their channels contiguous
    /// (channels-last), so one call covers up to `kernelSize × channels` consecutive values.
    /// `sourceOffset` is nil when the whole kernel row falls in the zero padding.
    @inline(__always)
    private func forEachKernelRow(samples: Range<Int>, _ g: Geometry, _ body: (Int, Int, Int, Int, Int?) -> Void) {
        var row = samples.lowerBound * g.outHeight * g.outWidth
        for n in samples {
            for oh in 0..<g.outHeight {
                for ow in 0..<g.outWidth {
                    let left = ow * stride - padding
                    let first = max(0, -left), last = min(kernelSize, g.width - left)
                    for i in 0..<kernelSize {
                        let ih = oh * stride - padding + i
                        let inside = ih >= 0 && ih < g.height && first < last
                        body(row, i, first, last, inside ? ((n * g.height + ih) * g.width + left + first) * inputChannels : nil)
                    }
                    row += 1
                }
            }
        }
    }

    private func im2col(_ x: UnsafeMutablePointer<Float>, samples: Int, _ g: Geometry,
                        into cols: UnsafeMutablePointer<Float>) {
        let c = inputChannels, k = tapLength, span = kernelSize * c
        Parallel.forEachPart(of: samples) { part in
            forEachKernelRow(samples: part, g) { row, i, first, last, source in
                let destination = cols + row * k + i * span
                guard let source else {
                    destination.update(repeating: 0, count: span)
                    return
                }
                for j in 0..<first * c { destination[j] = 0 }
                Lanes.copy(x + source, to: destination + first * c, count: (last - first) * c)
                for j in (last * c)..<span { destination[j] = 0 }
            }
        }
    }

    private func accumulateColumns(_ dcols: UnsafeMutablePointer<Float>, into dx: UnsafeMutablePointer<Float>,
                                   _ chunk: Chunk, _ g: Geometry) {
        let c = inputChannels, k = tapLength, span = kernelSize * c
        let base = dx + chunk.firstSample * g.height * g.width * c
        Parallel.forEachPart(of: chunk.samples) { part in
            forEachKernelRow(samples: part, g) { row, i, first, last, source in
                guard let source else { return }
                Lanes.add(dcols + row * k + i * span + first * c, into: base + source, count: (last - first) * c)
            }
        }
    }

    // MARK: - Weight layout: PyTorch [out, in, kh, kw] ↔ packed [out, kh, kw, in]

    private func packWeight(from w: UnsafeMutablePointer<Float>, into packed: UnsafeMutablePointer<Float>) {
        repack(pyTorch: w, packed: packed, toPacked: true)
    }

    private func unpackWeight(from packed: UnsafeMutablePointer<Float>, into w: UnsafeMutablePointer<Float>) {
        repack(pyTorch: w, packed: packed, toPacked: false)
    }

    /// Copies between the two layouts, in the direction `toPacked` says.
    private func repack(pyTorch w: UnsafeMutablePointer<Float>, packed: UnsafeMutablePointer<Float>, toPacked: Bool) {
        let taps = kernelSize * kernelSize
        for o in 0..<outputChannels {
            for c in 0..<inputChannels {
                for t in 0..<taps {
                    let p = (o * taps + t) * inputChannels + c, q = (o * inputChannels + c) * taps + t
                    if toPacked { packed[p] = w[q] } else { w[q] = packed[p] }
                }
            }
        }
    }
}
