import Tensors

/// How a convolution computes its products.
public enum ConvolutionAlgorithm: String, Sendable, CaseIterable {
    /// Winograd where it applies and pays (3×3, stride 1, padding ≤ 2, at least
    /// `Conv2d.winogradMinimumChannels` channels in and out), im2col elsewhere: F(4×4, 3×3) for
    /// outputs of at least `Conv2d.winograd4MinimumOutput` on each side, F(2×2, 3×3) below.
    case automatic
    /// im2col plus GEMM for every convolution.
    case im2col
    /// Winograd F(2×2, 3×3) wherever it applies (3×3, stride 1, padding ≤ 2), im2col elsewhere.
    case winograd
    /// Winograd F(4×4, 3×3) wherever it applies (3×3, stride 1, padding ≤ 2), im2col elsewhere.
    case winograd4
}

/// A 2-D convolution on channels-last images: input `[N, H, W, in]`, output `[N, Ho, Wo, out]`,
/// weight `[out, in, kh, kw]` as in PyTorch.
///
/// Two algorithms, both one GEMM (or α² = 16 or 36) per chunk of the batch, so that a chunk's intermediate
/// matrices stay within `columnBufferBytes` and are written and read while still in cache:
/// - im2col: the column matrix of a chunk (`[rows, kh·kw·in]`, each kernel tap's channels
///   contiguous) times the weights;
/// - Winograd F(2×2, 3×3) or F(4×4, 3×3) (see `Winograd`, `winogradVariant(height:width:)`) for
///   3×3 stride-1 convolutions: 2.25 or 4 times fewer multiplications; the input gradient is the same algorithm on the output gradient with the
///   filters turned by 180°, the weight gradient its adjoint.
/// The backward pass rebuilds the columns (or transformed inputs) instead of keeping them, so
/// memory does not grow with the batch.
public final class Conv2d: Layer {
    public let inputChannels: Int
    public let outputChannels: Int
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    public let weight: Parameter  // [out, in, kh, kw]
    public let bias: Parameter?  // [out]
    public var computesInputGradient = true
    /// Which algorithm computes this layer (see `usesWinograd`).
    public var algorithm = ConvolutionAlgorithm.automatic

    /// The largest column (or Winograd transform) buffer a chunk may use; chunks are whole samples.
    public nonisolated(unsafe) static var columnBufferBytes = 512 << 10
    /// The fewest tiles a Winograd chunk holds (see `winogradChunks`).
    public nonisolated(unsafe) static var winogradMinimumTiles = 256
    /// The fixed number of partial sums of a Winograd weight gradient, and so the most threads
    /// that phase can use (see `winogradFilterGradient`).
    public static let winogradGradientGroups = 4
    /// The fewest input and output channels for which `.automatic` picks Winograd: with fewer,
    /// its 16 products are too thin to pay for the transforms.
    public static let winogradMinimumChannels = 8
    /// The smallest output side for which `.automatic` picks F(4×4, 3×3) over F(2×2, 3×3)
    /// (measured on preact-resnet18, batch 64: faster at 32×32, 16×16 and 8×8, 1.6–2× slower at 4×4).
    public static let winograd4MinimumOutput = 8

    private var input = Tensor(zeros: [0])  // (N, H, W, in)
    private var output = Workspace()  // (N, Ho, Wo, out)
    private var inputGradient = Workspace()  // (N, H, W, in)
    private var columns = Workspace()  // (chunk·Ho·Wo, kh·kw·in)
    private var columnGradient = Workspace()  // (chunk·Ho·Wo, kh·kw·in)
    private var packedWeight = Workspace()  // (out, kh·kw·in)
    private var packedWeightGradient = Workspace()
    private var transformedFilters = Workspace()  // Winograd (α², in, out)
    private var rotatedFilters = Workspace()  // Winograd (α², out, in)
    private var transformedFilterGradient = Workspace()  // Winograd (α², in, out)
    private var transformedInputs = Workspace()  // Winograd (α², chunk tiles, channels)
    private var transformedProducts = Workspace()  // Winograd (α², chunk tiles, channels)

    /// How the weight is drawn; a bias always gets PyTorch's default, U(±1/√(in·k·k)).
    public enum WeightInitialization: Sendable {
        /// PyTorch's default for `nn.Conv2d`: U(±1/√(in·k·k)).
        case pyTorchDefault
        /// `kaiming_normal_(mode="fan_out", nonlinearity="relu")`, as torchvision's ResNets
        /// initialise every convolution: N(0, 2/(out·k·k)).
        case kaimingNormalFanOut
    }

    /// A convolution initialised as `initialization` says (PyTorch's default unless told).
    public init(
        _ inputChannels: Int, _ outputChannels: Int, kernelSize: Int, stride: Int = 1,
        padding: Int = 0, bias: Bool = true, initialization: WeightInitialization = .pyTorchDefault
    ) {
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        let bound = 1 / Float(inputChannels * kernelSize * kernelSize).squareRoot()
        let weightInitializer: Initializer
        switch initialization {
        case .pyTorchDefault:
            weightInitializer = .uniform(bound: bound)
        case .kaimingNormalFanOut:
            weightInitializer = .normal(standardDeviation: (2 / Float(outputChannels * kernelSize * kernelSize)).squareRoot())
        }
        weight = Parameter(shape: [outputChannels, inputChannels, kernelSize, kernelSize], initializer: weightInitializer)
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

    /// Whether Winograd computes this layer: it applies to 3×3 stride-1 convolutions with
    /// padding ≤ 2 (so that the input gradient is again such a convolution).
    public var usesWinograd: Bool {
        guard kernelSize == 3, stride == 1, padding <= 2 else { return false }
        switch algorithm {
        case .im2col: return false
        case .winograd, .winograd4: return true
        case .automatic: return min(inputChannels, outputChannels) >= Conv2d.winogradMinimumChannels
        }
    }

    /// Which Winograd computes this layer on `height × width` inputs, nil for im2col. `.automatic`
    /// takes F(4×4, 3×3) when both output sides are at least `winograd4MinimumOutput`: on
    /// smaller images a batch has few tiles, and the 36 products (each streaming its own
    /// in × out filter matrix) cost more than F(2×2, 3×3)'s 16 taller ones.
    public func winogradVariant(height: Int, width: Int) -> WinogradVariant? {
        guard usesWinograd else { return nil }
        switch algorithm {
        case .winograd4: return .f4x4
        case .automatic where min(height, width) + 2 * padding - 2 >= Conv2d.winograd4MinimumOutput: return .f4x4
        default: return .f2x2
        }
    }

    public func forward(_ input: Tensor, mode: Mode) throws(ShapeError) -> Tensor {
        let y = output.tensor(try outputShape(for: input.shape))
        self.input = input
        if usesWinograd {
            winogradForward(into: y)
        } else {
            im2colForward(into: y)
        }
        return y
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        let dx = computesInputGradient ? inputGradient.tensor(input.shape) : .noInputGradient
        if usesWinograd {
            winogradBackward(outputGradient, inputGradient: dx)
        } else {
            im2colBackward(outputGradient, inputGradient: dx)
        }
        if let bias {
            let dy = outputGradient
            Elementwise.activationBackwardAndBiasGradient(
                outputGradient: dy.pointer, output: dy.pointer, preActivationGradient: dy.pointer,
                rows: dy.count / outputChannels, columns: outputChannels,
                activation: .identity, biasGradient: bias.gradient.pointer)
        }
        return dx
    }

    // MARK: - im2col

    private func im2colForward(into y: Tensor) {
        let packed = packedWeight.tensor([outputChannels, tapLength])
        packWeight(from: weight.value.pointer, into: packed.pointer)
        let geometry = self.geometry(output: y.shape)
        for chunk in geometry.chunks {
            let cols = columnsOf(chunk, geometry)
            // y (rows, out) = cols (rows, K) · packedᵀ (K, out)
            BLAS.gemm(
                .none, .transposed, m: chunk.rows, n: outputChannels, k: tapLength,
                a: cols, lda: tapLength, b: packed.pointer, ldb: tapLength,
                c: y.pointer + chunk.firstRow * outputChannels, ldc: outputChannels)
        }
        Elementwise.addBiasAndActivate(
            y.pointer, rows: y.count / outputChannels, columns: outputChannels,
            bias: bias?.value.pointer, activation: .identity)
    }

    private func im2colBackward(_ dy: Tensor, inputGradient dx: Tensor) {
        let geometry = self.geometry(output: dy.shape)
        let packed = packedWeight.tensor([outputChannels, tapLength])
        let packedGradient = packedWeightGradient.tensor([outputChannels, tapLength])
        if computesInputGradient { dx.fill(0) }
        for (index, chunk) in geometry.chunks.enumerated() {
            let cols = columnsOf(chunk, geometry)
            let dyChunk = dy.pointer + chunk.firstRow * outputChannels
            // dW (out, K) += dyᵀ (out, rows) · cols (rows, K)
            BLAS.gemm(
                .transposed, .none, m: outputChannels, n: tapLength, k: chunk.rows,
                a: dyChunk, lda: outputChannels, b: cols, ldb: tapLength,
                beta: index == 0 ? 0 : 1, c: packedGradient.pointer, ldc: tapLength)
            guard computesInputGradient else { continue }
            // dcols (rows, K) = dy (rows, out) · W (out, K)
            let dcols = columnGradient.tensor([geometry.chunkRows, tapLength]).pointer
            BLAS.gemm(
                .none, .none, m: chunk.rows, n: tapLength, k: outputChannels,
                a: dyChunk, lda: outputChannels, b: packed.pointer, ldb: tapLength,
                c: dcols, ldc: tapLength)
            accumulateColumns(dcols, into: dx.pointer, chunk, geometry)
        }
        addUnpackedWeight(from: packedGradient.pointer, into: weight.gradient.pointer)
    }

    // MARK: - Winograd F(2×2, 3×3) and F(4×4, 3×3)

    private func winogradForward(into y: Tensor) {
        let tiling = inputTiling
        let filters = transformedFilters.tensor([tiling.points, inputChannels, outputChannels]).pointer
        Winograd.transformFilters(
            weight.value.pointer, outputs: outputChannels, inputs: inputChannels,
            rotated: false, variant: tiling.variant, into: filters)
        winogradConvolve(
            input.pointer, channels: inputChannels, tiling: tiling, filters: filters,
            outputs: outputChannels, bias: bias?.value.pointer, into: y.pointer)
    }

    private func winogradBackward(_ dy: Tensor, inputGradient dx: Tensor) {
        if computesInputGradient {
            // dx is the "full" correlation of dy with the turned filters: padding 2 − p.
            let tiling = outputGradientTiling
            let filters = rotatedFilters.tensor([tiling.points, outputChannels, inputChannels]).pointer
            Winograd.transformFilters(
                weight.value.pointer, outputs: outputChannels, inputs: inputChannels,
                rotated: true, variant: tiling.variant, into: filters)
            winogradConvolve(
                dy.pointer, channels: outputChannels, tiling: tiling, filters: filters,
                outputs: inputChannels, bias: nil, into: dx.pointer)
        }
        winogradFilterGradient(dy)
    }

    /// The weight gradient: dU_ξ = Σ over tiles of V_ξᵀ · dM_ξ, then Gᵀ·dU·G. The chunks are
    /// summed in `winogradGradientGroups` fixed groups (one dU each, added up in order at the
    /// end), so the groups run on different threads and the result does not depend on how many.
    /// With fewer groups than twice the threads, the groups run one after another and each
    /// chunk's α² products run on the threads instead: the same calls in the same order.
    private func winogradFilterGradient(_ dy: Tensor) {
        let tiling = inputTiling
        let chunks = winogradChunks()
        let groups = min(Conv2d.winogradGradientGroups, chunks.count)
        let pointStride = inputChannels * outputChannels, groupStride = tiling.points * pointStride
        let du = transformedFilterGradient.scratch(groups * groupStride)
        let split = WinogradSplit(pieces: groups)
        let scratch = winogradScratch(slots: split.slots, chunks)
        split.forEachPiece { slot, group in
            let (v, dm) = scratch.slot(slot)
            let sums = du + group * groupStride
            let members = chunks[(chunks.count * group / groups)..<(chunks.count * (group + 1) / groups)]
            for (index, samples) in members.enumerated() {
                let tiles = samples.count * tiling.tilesPerSample
                Winograd.transformInputs(input.pointer, channels: inputChannels, tiling: tiling, samples: samples, into: v)
                Winograd.transformOutputGradients(
                    dy.pointer, channels: outputChannels, tiling: tiling,
                    samples: samples, into: dm)
                // dU_ξ (in, out) += V_ξᵀ (in, tiles) · dM_ξ (tiles, out)
                split.forEachPoint(tiling.points) { point in
                    BLAS.serialGemm(
                        .transposed, .none, m: inputChannels, n: outputChannels, k: tiles,
                        a: v + point * tiles * inputChannels, lda: inputChannels,
                        b: dm + point * tiles * outputChannels, ldb: outputChannels,
                        beta: index == 0 ? 0 : 1, c: sums + point * pointStride, ldc: outputChannels)
                }
            }
        }
        BLAS.countOperations(
            products: tiling.points, m: inputChannels, n: outputChannels,
            k: input.shape[0] * tiling.tilesPerSample)
        for group in 1..<max(groups, 1) {
            Lanes.add(du + group * groupStride, into: du, count: groupStride)
        }
        Winograd.filterGradients(
            du, outputs: outputChannels, inputs: inputChannels, variant: tiling.variant,
            into: weight.gradient.pointer)
    }

    /// `y = x ⋆ filters (+ bias)` for the whole batch, the chunks split over the rank's threads:
    /// each transforms its inputs, multiplies in the transform domain (α² GEMMs) and transforms
    /// back into its own images of `y`. A batch of few chunks (the small late layers) runs its
    /// chunks in turn and their α² GEMMs on the threads (see `WinogradSplit`).
    private func winogradConvolve(
        _ x: UnsafePointer<Float>, channels: Int, tiling: WinogradTiling,
        filters: UnsafePointer<Float>, outputs: Int, bias: UnsafePointer<Float>?,
        into y: UnsafeMutablePointer<Float>
    ) {
        let chunks = winogradChunks()
        let split = WinogradSplit(pieces: chunks.count)
        let scratch = winogradScratch(slots: split.slots, chunks)
        split.forEachPiece { slot, chunk in
            let (v, m) = scratch.slot(slot)
            let samples = chunks[chunk]
            let tiles = samples.count * tiling.tilesPerSample
            Winograd.transformInputs(x, channels: channels, tiling: tiling, samples: samples, into: v)
            // M_ξ (tiles, outputs) = V_ξ (tiles, channels) · U_ξ (channels, outputs)
            split.forEachPoint(tiling.points) { point in
                BLAS.serialGemm(
                    .none, .none, m: tiles, n: outputs, k: channels,
                    a: v + point * tiles * channels, lda: channels,
                    b: filters + point * channels * outputs, ldb: outputs,
                    c: m + point * tiles * outputs, ldc: outputs)
            }
            Winograd.transformOutputs(m, channels: outputs, tiling: tiling, samples: samples, bias: bias, into: y)
        }
        BLAS.countOperations(products: tiling.points, m: input.shape[0] * tiling.tilesPerSample, n: outputs, k: channels)
    }

    /// The tiling of the forward pass (over the input) and of the input gradient (over the
    /// output gradient, padded by 2 − p so that it comes back to the input's size).
    private var inputTiling: WinogradTiling {
        WinogradTiling(
            height: input.shape[1], width: input.shape[2], padding: padding,
            variant: winogradVariant(height: input.shape[1], width: input.shape[2]) ?? .f2x2)
    }

    private var outputGradientTiling: WinogradTiling {
        let forward = inputTiling
        return WinogradTiling(
            height: forward.outputHeight, width: forward.outputWidth, padding: 2 - padding, variant: forward.variant)
    }

    /// The most tiles one image has in either tiling, times the most channels on either side.
    private var winogradValuesPerSample: Int {
        max(inputTiling.tilesPerSample, outputGradientTiling.tilesPerSample)
            * inputTiling.points * max(inputChannels, outputChannels)
    }

    /// The batch in chunks of whole images whose transforms fit `columnBufferBytes`, but with
    /// at least `winogradMinimumTiles` tiles, so that each product is tall enough to pay for
    /// packing its filter matrix.
    private func winogradChunks() -> [Range<Int>] {
        let batch = input.shape[0]
        let bytesPerSample = winogradValuesPerSample * MemoryLayout<Float>.stride
        let tilesPerSample = max(inputTiling.tilesPerSample, 1)
        let fitting = Conv2d.columnBufferBytes / max(bytesPerSample, 1)
        let tallEnough = (Conv2d.winogradMinimumTiles + tilesPerSample - 1) / tilesPerSample
        let perChunk = max(1, min(batch, max(fitting, tallEnough)))
        return Swift.stride(from: 0, to: batch, by: perChunk).map { $0..<min($0 + perChunk, batch) }
    }

    /// Two transform buffers for each of `slots` chunks in flight at once.
    private func winogradScratch(slots: Int, _ chunks: [Range<Int>]) -> WinogradScratch {
        let count = (chunks.first?.count ?? 0) * winogradValuesPerSample
        return WinogradScratch(
            inputs: transformedInputs.scratch(slots * count),
            products: transformedProducts.scratch(slots * count), slotSize: count)
    }

    // MARK: - Geometry and chunking

    private struct Geometry {
        var batch, height, width, outHeight, outWidth, samplesPerChunk: Int
        var chunkRows: Int { samplesPerChunk * outHeight * outWidth }
        var chunks: [Chunk] {
            Swift.stride(from: 0, to: batch, by: samplesPerChunk).map { first in
                let samples = min(samplesPerChunk, batch - first)
                return Chunk(
                    firstSample: first, samples: samples, firstRow: first * outHeight * outWidth,
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
        return Geometry(
            batch: input.shape[0], height: input.shape[1], width: input.shape[2],
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

    private func im2col(
        _ x: UnsafeMutablePointer<Float>, samples: Int, _ g: Geometry,
        into cols: UnsafeMutablePointer<Float>
    ) {
        let c = inputChannels, k = tapLength, span = kernelSize * c
        Parallel.forEachBlock(of: samples, size: 1) { part in
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

    private func accumulateColumns(
        _ dcols: UnsafeMutablePointer<Float>, into dx: UnsafeMutablePointer<Float>,
        _ chunk: Chunk, _ g: Geometry
    ) {
        let c = inputChannels, k = tapLength, span = kernelSize * c
        let base = dx + chunk.firstSample * g.height * g.width * c
        Parallel.forEachBlock(of: chunk.samples, size: 1) { part in
            forEachKernelRow(samples: part, g) { row, i, first, last, source in
                guard let source else { return }
                Lanes.add(dcols + row * k + i * span + first * c, into: base + source, count: (last - first) * c)
            }
        }
    }

    // MARK: - Weight layout: PyTorch [out, in, kh, kw] ↔ packed [out, kh, kw, in]

    private func packWeight(from w: UnsafeMutablePointer<Float>, into packed: UnsafeMutablePointer<Float>) {
        forEachTap { p, q in packed[p] = w[q] }
    }

    /// Adds a packed weight gradient into the PyTorch-layout gradient `w` (gradients accumulate).
    private func addUnpackedWeight(from packed: UnsafeMutablePointer<Float>, into w: UnsafeMutablePointer<Float>) {
        forEachTap { p, q in w[q] += packed[p] }
    }

    /// Calls `body(packedOffset, pyTorchOffset)` for every weight element.
    @inline(__always)
    private func forEachTap(_ body: (_ packed: Int, _ pyTorch: Int) -> Void) {
        let taps = kernelSize * kernelSize
        for o in 0..<outputChannels {
            for c in 0..<inputChannels {
                for t in 0..<taps {
                    body((o * taps + t) * inputChannels + c, (o * inputChannels + c) * taps + t)
                }
            }
        }
    }
}

/// Where a Winograd pass's threads work: on whole pieces (chunks, or gradient groups), or, when
/// there are fewer than two pieces per thread, on the α² transform-point products of each piece
/// in turn, so that a batch of one chunk (preact-resnet18's 4 × 4 layers) uses every thread.
/// Both run the same OpenBLAS calls on the same operands, each piece's calls in the same order,
/// so the choice, which depends on the thread count, never changes a result (the decomposition
/// rule of `Parallel`: pieces fixed by shape, workers only choose who runs one).
private struct WinogradSplit {
    /// Whether the threads take transform points rather than pieces.
    let byPoint: Bool
    private let pieces, threads: Int

    init(pieces: Int) {
        (self.pieces, threads) = (pieces, BLAS.concurrentCalls)
        byPoint = threads > 1 && pieces < 2 * threads
    }

    /// Transform buffers in use at once: one per thread running pieces.
    var slots: Int { byPoint ? 1 : Parallel.scratchSlots(for: pieces, maximumWorkers: threads) }

    /// Runs `body(slot, piece)` for every piece: on the threads, or in turn on this one.
    func forEachPiece(_ body: (_ slot: Int, _ piece: Int) -> Void) {
        if byPoint {
            for piece in 0..<pieces { body(0, piece) }
        } else {
            Parallel.forEachPiece(pieces, maximumWorkers: threads, body)
        }
    }

    /// Runs `body(point)` for the transform points `0..<points`: on the threads when they take
    /// points.
    func forEachPoint(_ points: Int, _ body: (_ point: Int) -> Void) {
        if byPoint {
            Parallel.forEachPiece(points, maximumWorkers: threads, body)
        } else {
            for point in 0..<points { body(point) }
        }
    }
}

/// The transform buffers of the chunks in flight: one slot per running thread.
private struct WinogradScratch: @unchecked Sendable {
    let inputs, products: UnsafeMutablePointer<Float>
    let slotSize: Int

    func slot(_ index: Int) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
        (inputs + index * slotSize, products + index * slotSize)
    }
}
