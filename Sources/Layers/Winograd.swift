import Tensors

/// Which of Winograd's minimal filterings F(m×m, 3×3) computes a convolution.
public enum WinogradVariant: Equatable, Sendable {
    /// F(2×2, 3×3): 4×4 input tiles, 16 transform points, 2.25 times fewer multiplications
    /// than im2col.
    case f2x2
    /// F(4×4, 3×3): 6×6 input tiles, 36 transform points, 4 times fewer multiplications, but
    /// larger transform coefficients and so a larger rounding error (see `WinogradF4`).
    case f4x4

    /// The side of an output tile (m).
    public var outputTile: Int { self == .f2x2 ? 2 : 4 }
    /// The side of an input tile (α = m + 2).
    public var inputTile: Int { outputTile + 2 }
    /// Transform points per tile (α²), and so the number of products in the transform domain.
    public var points: Int { inputTile * inputTile }
}

/// The tiles of a Winograd F(m×m, 3×3) over one channels-last image: m×m output tiles, each
/// computed from the (m + 2)×(m + 2) input tile around it; the last row and column of tiles may
/// reach past the output (their extra outputs are dropped, their extra inputs are zero).
struct WinogradTiling: Equatable {
    /// The input image's height and width, and the zero padding on each side.
    let height, width, padding: Int
    let variant: WinogradVariant

    var outputHeight: Int { height + 2 * padding - 2 }
    var outputWidth: Int { width + 2 * padding - 2 }
    var tileRows: Int { (outputHeight + variant.outputTile - 1) / variant.outputTile }
    var tileColumns: Int { (outputWidth + variant.outputTile - 1) / variant.outputTile }
    var tilesPerSample: Int { tileRows * tileColumns }
    var points: Int { variant.points }
}

/// The one-axis transforms of one F(m×m, 3×3), each in place on values `p[0], p[s], p[2s], …`
/// of an α×α tile buffer (α = m + 2): `Winograd` applies them along rows, then along columns.
protocol WinogradMatrices {
    /// m, the side of an output tile.
    static var outputTile: Int { get }
    /// Bᵀ: α input values to α transform points.
    static func inputPoints(_ p: UnsafeMutablePointer<Lanes.Vector>, _ s: Int)
    /// Aᵀ: α transform points to the first m values (the outputs).
    static func outputPoints(_ p: UnsafeMutablePointer<Lanes.Vector>, _ s: Int)
    /// A, the adjoint of Aᵀ: the first m values (output gradients) to α transform points.
    static func gradientPoints(_ p: UnsafeMutablePointer<Lanes.Vector>, _ s: Int)
    /// G: the first 3 values (filter taps) to α transform points.
    static func filterPoints(_ p: UnsafeMutablePointer<Lanes.Vector>, _ s: Int)
    /// Gᵀ, the adjoint of G: α transform points to the first 3 values (tap gradients).
    static func filterGradientPoints(_ p: UnsafeMutablePointer<Lanes.Vector>, _ s: Int)
}

extension WinogradMatrices {
    /// α, the side of an input tile.
    @inline(__always) static var inputTile: Int { outputTile + 2 }
}

/// F(2×2, 3×3):
///
///     Bᵀ = [1  0 −1  0]    G = [1    0    0  ]    Aᵀ = [1  1  1  0]
///          [0  1  1  0]        [1/2  1/2  1/2]         [0  1 −1 −1]
///          [0 −1  1  0]        [1/2 −1/2  1/2]
///          [0  1  0 −1]        [0    0    1  ]
enum WinogradF2: WinogradMatrices {
    typealias Vector = Lanes.Vector

    @inline(__always) static var outputTile: Int { 2 }

    @inline(__always)
    static func inputPoints(_ p: UnsafeMutablePointer<Vector>, _ s: Int) {
        let (d0, d1, d2, d3) = (p[0], p[s], p[2 * s], p[3 * s])
        (p[0], p[s], p[2 * s], p[3 * s]) = (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
    }

    @inline(__always)
    static func outputPoints(_ p: UnsafeMutablePointer<Vector>, _ s: Int) {
        let (m0, m1, m2, m3) = (p[0], p[s], p[2 * s], p[3 * s])
        (p[0], p[s]) = (m0 + m1 + m2, m1 - m2 - m3)
    }

    @inline(__always)
    static func gradientPoints(_ p: UnsafeMutablePointer<Vector>, _ s: Int) {
        let (g0, g1) = (p[0], p[s])
        (p[0], p[s], p[2 * s], p[3 * s]) = (g0, g0 + g1, g0 - g1, -g1)
    }

    @inline(__always)
    static func filterPoints(_ p: UnsafeMutablePointer<Lanes.Vector>, _ s: Int) {
        let (g0, g1, g2) = (p[0], p[s], p[2 * s])
        (p[0], p[s], p[2 * s], p[3 * s]) = (g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2)
    }

    @inline(__always)
    static func filterGradientPoints(_ p: UnsafeMutablePointer<Lanes.Vector>, _ s: Int) {
        let (u0, u1, u2, u3) = (p[0], p[s], p[2 * s], p[3 * s])
        (p[0], p[s], p[2 * s]) = (u0 + (u1 + u2) / 2, (u1 - u2) / 2, (u1 + u2) / 2 + u3)
    }
}

/// Winograd's minimal filtering F(m×m, 3×3) (Lavin and Gray, 2016) for 3×3 stride-1
/// convolutions on channels-last images, for the matrices of `WinogradF2` or `WinogradF4`
/// (chosen by a tiling's `variant`).
///
/// A tile's α×α transform-domain values are spread over α² matrices, one per transform point
/// ξ = α·i + j: inputs as `[α², tiles, channels]`, filters as `[α², in, out]`. The product in
/// the transform domain is then α² ordinary GEMMs `[tiles, in] · [in, out]` through OpenBLAS,
/// and the transforms themselves are cheap additions over contiguous channels: each loads a
/// tile into an α×α buffer, applies its one-axis transform along the rows, then along the
/// columns, and stores the result.
///
/// The backward pass uses the adjoints: `A·dY·Aᵀ` for output gradients and `Gᵀ·dU·G` for the
/// filter gradient.
enum Winograd {
    typealias Vector = Lanes.Vector

    /// The most transform points of any variant (F(4×4, 3×3)'s 6×6).
    private static let largestTile = 36

    // MARK: - Filters

    /// Writes `U = G·g·Gᵀ` of every 3×3 filter `g` of `weight` (PyTorch layout `[out, in, 3, 3]`)
    /// into `u` as `[α², in, out]`; when `rotated`, the filters of the transposed convolution
    /// (each `g` turned by 180°, in and out swapped) as `[α², out, in]`, which maps output
    /// gradients to input gradients.
    static func transformFilters(
        _ weight: UnsafePointer<Float>, outputs: Int, inputs: Int, rotated: Bool,
        variant: WinogradVariant, into u: UnsafeMutablePointer<Float>
    ) {
        switch variant {
        case .f2x2: transformFilters(WinogradF2.self, weight, outputs: outputs, inputs: inputs, rotated: rotated, into: u)
        case .f4x4: transformFilters(WinogradF4.self, weight, outputs: outputs, inputs: inputs, rotated: rotated, into: u)
        }
    }

    /// Adds the filter gradient `Gᵀ·dU·G` of every channel pair to `gradient`
    /// (`[out, in, 3, 3]`), from `du` (`[α², in, out]`).
    static func filterGradients(
        _ du: UnsafePointer<Float>, outputs: Int, inputs: Int, variant: WinogradVariant,
        into gradient: UnsafeMutablePointer<Float>
    ) {
        switch variant {
        case .f2x2: filterGradients(WinogradF2.self, du, outputs: outputs, inputs: inputs, into: gradient)
        case .f4x4: filterGradients(WinogradF4.self, du, outputs: outputs, inputs: inputs, into: gradient)
        }
    }

    /// Eight filters at a time, those adjacent in `u` (one a lane): their taps gathered, then
    /// transformed as vectors and stored whole, rather than one filter's α² values scattered.
    private static func transformFilters<F: WinogradMatrices>(
        _: F.Type, _ weight: UnsafePointer<Float>, outputs: Int, inputs: Int, rotated: Bool,
        into u: UnsafeMutablePointer<Float>
    ) {
        let alpha = F.inputTile, pointStride = outputs * inputs
        let (rows, columns) = rotated ? (outputs, inputs) : (inputs, outputs)  // u is [α², rows, columns]
        withTileBuffer { tile in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 9 * Lanes.width) { buffer in
                let taps = buffer.baseAddress!  // taps[8·(3·i + j) + lane]: tap (i, j) of a lane's filter
                taps.initialize(repeating: 0, count: 9 * Lanes.width)
                for row in 0..<rows {
                    for column in Swift.stride(from: 0, to: columns, by: Lanes.width) {
                        let lanes = min(Lanes.width, columns - column)
                        for lane in 0..<lanes {
                            let (o, c) = rotated ? (row, column + lane) : (column + lane, row)
                            let g = weight + (o * inputs + c) * 9
                            if rotated {
                                for k in 0..<9 { taps[k * Lanes.width + lane] = g[8 - k] }
                            } else {
                                for k in 0..<9 { taps[k * Lanes.width + lane] = g[k] }
                            }
                        }
                        for i in 0..<3 {
                            for j in 0..<3 { tile[i * alpha + j] = Lanes.load(taps + (i * 3 + j) * Lanes.width) }
                        }
                        separable(tile, alpha: alpha, rows: 3, columns: alpha, F.filterPoints)
                        storePoints(tile, count: alpha * alpha, u + row * columns + column, pointStride, lanes)
                    }
                }
            }
        }
    }

    /// Eight output channels at a time, whose transform points are adjacent in `du`.
    private static func filterGradients<F: WinogradMatrices>(
        _: F.Type, _ du: UnsafePointer<Float>, outputs: Int, inputs: Int,
        into gradient: UnsafeMutablePointer<Float>
    ) {
        let alpha = F.inputTile, pointStride = outputs * inputs
        withTileBuffer { tile in
            for c in 0..<inputs {
                for o in Swift.stride(from: 0, to: outputs, by: Lanes.width) {
                    let lanes = min(Lanes.width, outputs - o)
                    let block = du + c * outputs + o
                    for point in 0..<alpha * alpha { tile[point] = Lanes.load(block + point * pointStride, lanes: lanes) }
                    separable(tile, alpha: alpha, rows: alpha, columns: 3, F.filterGradientPoints)
                    for lane in 0..<lanes {
                        let g = gradient + ((o + lane) * inputs + c) * 9
                        for i in 0..<3 {
                            for j in 0..<3 { g[i * 3 + j] += tile[i * alpha + j][lane] }
                        }
                    }
                }
            }
        }
    }

    // MARK: - Inputs, outputs and output gradients (per tile, over channel blocks)

    /// Writes `V = Bᵀ·d·B` of every α×α input tile `d` of images `samples` of `x`
    /// (`[N, H, W, channels]`, zero outside the image) into `v` as `[α², tiles, channels]`,
    /// tiles numbered from `samples.lowerBound`.
    static func transformInputs(
        _ x: UnsafePointer<Float>, channels: Int, tiling t: WinogradTiling,
        samples: Range<Int>, into v: UnsafeMutablePointer<Float>
    ) {
        switch t.variant {
        case .f2x2: transformInputs(WinogradF2.self, x, channels: channels, tiling: t, samples: samples, into: v)
        case .f4x4: transformInputs(WinogradF4.self, x, channels: channels, tiling: t, samples: samples, into: v)
        }
    }

    /// Writes `Y = Aᵀ·m·A` (+ bias) of every tile of `m` (`[α², tiles, channels]`) into the m×m
    /// output tiles of images `samples` of `y` (`[N, Ho, Wo, channels]`), skipping the rows and
    /// columns of a tile that fall outside the output.
    static func transformOutputs(
        _ m: UnsafePointer<Float>, channels: Int, tiling t: WinogradTiling,
        samples: Range<Int>, bias: UnsafePointer<Float>?,
        into y: UnsafeMutablePointer<Float>
    ) {
        switch t.variant {
        case .f2x2: transformOutputs(WinogradF2.self, m, channels: channels, tiling: t, samples: samples, bias: bias, into: y)
        case .f4x4: transformOutputs(WinogradF4.self, m, channels: channels, tiling: t, samples: samples, bias: bias, into: y)
        }
    }

    /// Writes `A·dY·Aᵀ` of every m×m tile of output gradients `dy` (`[N, Ho, Wo, channels]`,
    /// zero outside the output) of images `samples` into `dm` as `[α², tiles, channels]`: the
    /// adjoint of `transformOutputs`.
    static func transformOutputGradients(
        _ dy: UnsafePointer<Float>, channels: Int, tiling t: WinogradTiling,
        samples: Range<Int>, into dm: UnsafeMutablePointer<Float>
    ) {
        switch t.variant {
        case .f2x2: transformOutputGradients(WinogradF2.self, dy, channels: channels, tiling: t, samples: samples, into: dm)
        case .f4x4: transformOutputGradients(WinogradF4.self, dy, channels: channels, tiling: t, samples: samples, into: dm)
        }
    }

    private static func transformInputs<F: WinogradMatrices>(
        _: F.Type, _ x: UnsafePointer<Float>, channels: Int, tiling t: WinogradTiling,
        samples: Range<Int>, into v: UnsafeMutablePointer<Float>
    ) {
        let alpha = F.inputTile, pointStride = samples.count * t.tilesPerSample * channels
        withTileBuffer { tile in
            forEachTile(t, samples: samples) { sample, index, top, left in
                let image = x + sample * t.height * t.width * channels
                let rows = validMask(first: top, limit: t.height), columns = validMask(first: left, limit: t.width)
                let out = v + index * channels
                Lanes.forEachGroup(channels: channels) { c, lanes in
                    for i in 0..<alpha {
                        for j in 0..<alpha {
                            tile[i * alpha + j] =
                                rows & (1 << i) != 0 && columns & (1 << j) != 0
                                ? Lanes.load(image + ((top + i) * t.width + left + j) * channels + c, lanes: lanes) : .zero
                        }
                    }
                    separable(tile, alpha: alpha, rows: alpha, columns: alpha, F.inputPoints)
                    storePoints(tile, count: alpha * alpha, out + c, pointStride, lanes)
                }
            }
        }
    }

    private static func transformOutputs<F: WinogradMatrices>(
        _: F.Type, _ m: UnsafePointer<Float>, channels: Int, tiling t: WinogradTiling,
        samples: Range<Int>, bias: UnsafePointer<Float>?,
        into y: UnsafeMutablePointer<Float>
    ) {
        let (alpha, size) = (F.inputTile, F.outputTile)
        let pointStride = samples.count * t.tilesPerSample * channels
        let (height, width) = (t.outputHeight, t.outputWidth)
        withTileBuffer { tile in
            forEachTile(t, samples: samples) { sample, index, top, left in
                let image = y + sample * height * width * channels
                let (row, column) = (top + t.padding, left + t.padding)  // the output tile's corner
                let (rows, columns) = (min(size, height - row), min(size, width - column))
                let source = m + index * channels
                Lanes.forEachGroup(channels: channels) { c, lanes in
                    for point in 0..<alpha * alpha { tile[point] = Lanes.load(source + point * pointStride + c, lanes: lanes) }
                    separable(tile, alpha: alpha, rows: alpha, columns: size, F.outputPoints)
                    let b = bias.map { Lanes.load($0 + c, lanes: lanes) } ?? .zero
                    let corner = image + (row * width + column) * channels + c
                    for i in 0..<rows {
                        for j in 0..<columns {
                            Lanes.store(tile[i * alpha + j] + b, corner + (i * width + j) * channels, lanes: lanes)
                        }
                    }
                }
            }
        }
    }

    private static func transformOutputGradients<F: WinogradMatrices>(
        _: F.Type, _ dy: UnsafePointer<Float>, channels: Int, tiling t: WinogradTiling,
        samples: Range<Int>, into dm: UnsafeMutablePointer<Float>
    ) {
        let (alpha, size) = (F.inputTile, F.outputTile)
        let pointStride = samples.count * t.tilesPerSample * channels
        let (height, width) = (t.outputHeight, t.outputWidth)
        withTileBuffer { tile in
            forEachTile(t, samples: samples) { sample, index, top, left in
                let image = dy + sample * height * width * channels
                let (row, column) = (top + t.padding, left + t.padding)
                let (rows, columns) = (min(size, height - row), min(size, width - column))
                let corner = image + (row * width + column) * channels
                let out = dm + index * channels
                Lanes.forEachGroup(channels: channels) { c, lanes in
                    for i in 0..<size {
                        for j in 0..<size {
                            tile[i * alpha + j] =
                                i < rows && j < columns
                                ? Lanes.load(corner + (i * width + j) * channels + c, lanes: lanes) : .zero
                        }
                    }
                    separable(tile, alpha: alpha, rows: size, columns: alpha, F.gradientPoints)
                    storePoints(tile, count: alpha * alpha, out + c, pointStride, lanes)
                }
            }
        }
    }

    // MARK: - Tiles

    /// Applies a one-axis transform along rows `0..<rows` of an α×α `tile` (values one apart),
    /// then along columns `0..<columns` (values α apart): `rows` are the rows the input fills,
    /// `columns` those the first pass leaves meaningful.
    @inline(__always)
    private static func separable<T>(
        _ tile: UnsafeMutablePointer<T>, alpha: Int, rows: Int, columns: Int,
        _ transform: (UnsafeMutablePointer<T>, Int) -> Void
    ) {
        for i in 0..<rows { transform(tile + i * alpha, 1) }
        for j in 0..<columns { transform(tile + j, alpha) }
    }

    /// Stores a tile's transform points 0..<count of one channel block, `block` pointing at the
    /// block in point 0's matrix.
    @inline(__always)
    private static func storePoints(
        _ tile: UnsafeMutablePointer<Vector>, count: Int,
        _ block: UnsafeMutablePointer<Float>, _ pointStride: Int, _ lanes: Int
    ) {
        for point in 0..<count { Lanes.store(tile[point], block + point * pointStride, lanes: lanes) }
    }

    /// Calls `body` with a buffer of one tile's α×α vectors (the largest variant's), on the stack.
    @inline(__always)
    private static func withTileBuffer(_ body: (UnsafeMutablePointer<Vector>) -> Void) {
        withUnsafeTemporaryAllocation(of: Vector.self, capacity: largestTile) { body($0.baseAddress!) }
    }

    /// Calls `body(sample, tile, top, left)` for every tile of images `samples`, on the caller's
    /// thread (the convolution splits its chunks over threads): `tile` counts from the first
    /// image of `samples`, and `top`, `left` are the input tile's corner (negative inside the
    /// padding).
    @inline(__always)
    private static func forEachTile(_ t: WinogradTiling, samples: Range<Int>, _ body: (Int, Int, Int, Int) -> Void) {
        let size = t.variant.outputTile
        var tile = 0
        for sample in samples {
            for tileRow in 0..<t.tileRows {
                for tileColumn in 0..<t.tileColumns {
                    body(sample, tile, size * tileRow - t.padding, size * tileColumn - t.padding)
                    tile += 1
                }
            }
        }
    }

    /// Bit i set when `first + i` (i < 8) lies in `0..<limit`.
    @inline(__always)
    private static func validMask(first: Int, limit: Int) -> Int {
        var mask = 0
        for i in 0..<8 where first + i >= 0 && first + i < limit { mask |= 1 << i }
        return mask
    }
}
