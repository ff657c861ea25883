import Tensors

/// The tiles of Winograd's F(2×2, 3×3) over one channels-last image: 2×2 output tiles, each
/// computed from the 4×4 input tile around it.
struct WinogradTiling: Equatable {
    /// The input image's height and width, and the zero padding on each side.
    let height, width, padding: Int

    var outputHeight: Int { height + 2 * padding - 2 }
    var outputWidth: Int { width + 2 * padding - 2 }
    var tileRows: Int { (outputHeight + 1) / 2 }
    var tileColumns: Int { (outputWidth + 1) / 2 }
    var tilesPerSample: Int { tileRows * tileColumns }
}

/// Winograd's minimal filtering F(2×2, 3×3) (Lavin and Gray, 2016) for 3×3 stride-1
/// convolutions on channels-last images: 16 multiplications per 2×2 output tile and channel pair
/// instead of 36, so 2.25 times fewer than im2col.
///
/// A tile's 4×4 transform-domain values are spread over 16 matrices, one per transform point
/// ξ = 4·i + j: inputs as `[16, tiles, channels]`, filters as `[16, in, out]`. The product in
/// the transform domain is then 16 ordinary GEMMs `[tiles, in] · [in, out]` through OpenBLAS,
/// and the transforms themselves are cheap additions over contiguous channels.
///
/// The matrices (Bᵀ for inputs, G for filters, Aᵀ for outputs):
///
///     Bᵀ = [1  0 −1  0]    G = [1    0    0  ]    Aᵀ = [1  1  1  0]
///          [0  1  1  0]        [1/2  1/2  1/2]         [0  1 −1 −1]
///          [0 −1  1  0]        [1/2 −1/2  1/2]
///          [0  1  0 −1]        [0    0    1  ]
///
/// The backward pass uses the adjoints: `A·dY·Aᵀ` for output gradients and `Gᵀ·dU·G` for the
/// filter gradient.
enum Winograd {
    /// Transform points per tile (4×4).
    static let points = 16

    typealias Vector = Lanes.Vector

    // MARK: - Filters

    /// Writes `U = G·g·Gᵀ` of every 3×3 filter `g` of `weight` (PyTorch layout `[out, in, 3, 3]`)
    /// into `u` as `[16, in, out]`; when `rotated`, the filters of the transposed convolution
    /// (each `g` turned by 180°, in and out swapped) as `[16, out, in]`, which maps output
    /// gradients to input gradients. Eight filters at a time, those adjacent in `u`.
    static func transformFilters(
        _ weight: UnsafePointer<Float>, outputs: Int, inputs: Int, rotated: Bool,
        into u: UnsafeMutablePointer<Float>
    ) {
        let pointStride = outputs * inputs
        let (rows, columns) = rotated ? (outputs, inputs) : (inputs, outputs)  // u is [16, rows, columns]
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 9 * Lanes.width) { gathered in
            let gathered = gathered.baseAddress!
            gathered.initialize(repeating: 0, count: 9 * Lanes.width)
            for row in 0..<rows {
                for column in Swift.stride(from: 0, to: columns, by: Lanes.width) {
                    let lanes = min(Lanes.width, columns - column)
                    // gathered[8·(3·i + j) + lane]: tap (i, j) of the eight filters, one a lane.
                    for lane in 0..<lanes {
                        let (o, c) = rotated ? (row, column + lane) : (column + lane, row)
                        let g = weight + (o * inputs + c) * 9
                        if rotated {
                            for k in 0..<9 { gathered[k * Lanes.width + lane] = g[8 - k] }
                        } else {
                            for k in 0..<9 { gathered[k * Lanes.width + lane] = g[k] }
                        }
                    }
                    @inline(__always) func tap(_ k: Int) -> Vector { Lanes.load(gathered + k * Lanes.width) }
                    // The columns of G·g (4×3), then the rows of (G·g)·Gᵀ (4×4).
                    let c0 = filterPoints(tap(0), tap(3), tap(6))
                    let c1 = filterPoints(tap(1), tap(4), tap(7))
                    let c2 = filterPoints(tap(2), tap(5), tap(8))
                    let block = u + row * columns + column
                    storeRow(0, filterPoints(c0.0, c1.0, c2.0), block, pointStride, lanes)
                    storeRow(1, filterPoints(c0.1, c1.1, c2.1), block, pointStride, lanes)
                    storeRow(2, filterPoints(c0.2, c1.2, c2.2), block, pointStride, lanes)
                    storeRow(3, filterPoints(c0.3, c1.3, c2.3), block, pointStride, lanes)
                }
            }
        }
    }

    /// Adds the filter gradient `Gᵀ·dU·G` of every channel pair to `gradient`
    /// (`[out, in, 3, 3]`), from `du` (`[16, in, out]`), eight output channels at a time.
    static func filterGradients(
        _ du: UnsafePointer<Float>, outputs: Int, inputs: Int,
        into gradient: UnsafeMutablePointer<Float>
    ) {
        let pointStride = outputs * inputs
        for c in 0..<inputs {
            for o in Swift.stride(from: 0, to: outputs, by: Lanes.width) {
                let lanes = min(Lanes.width, outputs - o)
                let block = du + c * outputs + o
                @inline(__always) func point(_ i: Int, _ j: Int) -> Vector {
                    Lanes.load(block + (i * 4 + j) * pointStride, lanes: lanes)
                }
                // The columns of Gᵀ·dU (3×4), then the rows of (Gᵀ·dU)·G (3×3).
                let c0 = filterGradientPoints(point(0, 0), point(1, 0), point(2, 0), point(3, 0))
                let c1 = filterGradientPoints(point(0, 1), point(1, 1), point(2, 1), point(3, 1))
                let c2 = filterGradientPoints(point(0, 2), point(1, 2), point(2, 2), point(3, 2))
                let c3 = filterGradientPoints(point(0, 3), point(1, 3), point(2, 3), point(3, 3))
                let rows = (
                    filterGradientPoints(c0.0, c1.0, c2.0, c3.0), filterGradientPoints(c0.1, c1.1, c2.1, c3.1),
                    filterGradientPoints(c0.2, c1.2, c2.2, c3.2)
                )
                for lane in 0..<lanes {
                    let g = gradient + ((o + lane) * inputs + c) * 9
                    g[0] += rows.0.0[lane]
                    g[1] += rows.0.1[lane]
                    g[2] += rows.0.2[lane]
                    g[3] += rows.1.0[lane]
                    g[4] += rows.1.1[lane]
                    g[5] += rows.1.2[lane]
                    g[6] += rows.2.0[lane]
                    g[7] += rows.2.1[lane]
                    g[8] += rows.2.2[lane]
                }
            }
        }
    }

    /// Stores transform points (i, 0) … (i, 3) of eight filters, `block` pointing at them in
    /// point 0's matrix.
    @inline(__always)
    private static func storeRow(
        _ i: Int, _ row: (Vector, Vector, Vector, Vector),
        _ block: UnsafeMutablePointer<Float>, _ pointStride: Int, _ lanes: Int
    ) {
        Lanes.store(row.0, block + (4 * i + 0) * pointStride, lanes: lanes)
        Lanes.store(row.1, block + (4 * i + 1) * pointStride, lanes: lanes)
        Lanes.store(row.2, block + (4 * i + 2) * pointStride, lanes: lanes)
        Lanes.store(row.3, block + (4 * i + 3) * pointStride, lanes: lanes)
    }

    /// G applied to three filter taps.
    @inline(__always)
    private static func filterPoints(_ g0: Vector, _ g1: Vector, _ g2: Vector) -> (Vector, Vector, Vector, Vector) {
        (g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2)
    }

    /// Gᵀ applied to four transform points.
    @inline(__always)
    private static func filterGradientPoints(_ u0: Vector, _ u1: Vector, _ u2: Vector, _ u3: Vector) -> (Vector, Vector, Vector) {
        (u0 + (u1 + u2) / 2, (u1 - u2) / 2, (u1 + u2) / 2 + u3)
    }

    // MARK: - Inputs, outputs and output gradients (per tile, over channel blocks)

    /// Writes `V = Bᵀ·d·B` of every 4×4 input tile `d` of images `samples` of `x`
    /// (`[N, H, W, channels]`, zero outside the image) into `v` as `[16, tiles, channels]`,
    /// tiles numbered from `samples.lowerBound`.
    static func transformInputs(
        _ x: UnsafePointer<Float>, channels: Int, tiling t: WinogradTiling,
        samples: Range<Int>, into v: UnsafeMutablePointer<Float>
    ) {
        let pointStride = samples.count * t.tilesPerSample * channels
        forEachTile(t, samples: samples) { sample, tile, top, left in
            let image = x + sample * t.height * t.width * channels
            let rows = validMask(first: top, limit: t.height), columns = validMask(first: left, limit: t.width)
            let out = v + tile * channels
            Lanes.forEachGroup(channels: channels) { c, lanes in
                @inline(__always) func d(_ i: Int, _ j: Int) -> Vector {
                    guard rows & (1 << i) != 0, columns & (1 << j) != 0 else { return .zero }
                    return Lanes.load(image + ((top + i) * t.width + left + j) * channels + c, lanes: lanes)
                }
                let r0 = inputPoints(d(0, 0), d(0, 1), d(0, 2), d(0, 3))
                let r1 = inputPoints(d(1, 0), d(1, 1), d(1, 2), d(1, 3))
                let r2 = inputPoints(d(2, 0), d(2, 1), d(2, 2), d(2, 3))
                let r3 = inputPoints(d(3, 0), d(3, 1), d(3, 2), d(3, 3))
                let block = out + c
                storeColumn(0, inputPoints(r0.0, r1.0, r2.0, r3.0), block, pointStride, lanes)
                storeColumn(1, inputPoints(r0.1, r1.1, r2.1, r3.1), block, pointStride, lanes)
                storeColumn(2, inputPoints(r0.2, r1.2, r2.2, r3.2), block, pointStride, lanes)
                storeColumn(3, inputPoints(r0.3, r1.3, r2.3, r3.3), block, pointStride, lanes)
            }
        }
    }

    /// Writes `Y = Aᵀ·m·A` (+ bias) of every tile of `m` (`[16, tiles, channels]`) into the 2×2
    /// output tiles of images `samples` of `y` (`[N, Ho, Wo, channels]`), skipping the row or
    /// column of a tile that falls outside an odd-sized output.
    static func transformOutputs(
        _ m: UnsafePointer<Float>, channels: Int, tiling t: WinogradTiling,
        samples: Range<Int>, bias: UnsafePointer<Float>?,
        into y: UnsafeMutablePointer<Float>
    ) {
        let pointStride = samples.count * t.tilesPerSample * channels
        let (height, width) = (t.outputHeight, t.outputWidth)
        forEachTile(t, samples: samples) { sample, tile, top, left in
            let image = y + sample * height * width * channels
            let (row, column) = (top + t.padding, left + t.padding)  // the output tile's corner
            let (twoRows, twoColumns) = (row + 1 < height, column + 1 < width)
            let source = m + tile * channels
            Lanes.forEachGroup(channels: channels) { c, lanes in
                @inline(__always) func p(_ i: Int, _ j: Int) -> Vector {
                    Lanes.load(source + (i * 4 + j) * pointStride + c, lanes: lanes)
                }
                let b = bias.map { Lanes.load($0 + c, lanes: lanes) } ?? .zero
                let r0 = outputPoints(p(0, 0), p(0, 1), p(0, 2), p(0, 3))
                let r1 = outputPoints(p(1, 0), p(1, 1), p(1, 2), p(1, 3))
                let r2 = outputPoints(p(2, 0), p(2, 1), p(2, 2), p(2, 3))
                let r3 = outputPoints(p(3, 0), p(3, 1), p(3, 2), p(3, 3))
                let left = outputPoints(r0.0, r1.0, r2.0, r3.0), right = outputPoints(r0.1, r1.1, r2.1, r3.1)
                let corner = image + (row * width + column) * channels + c
                Lanes.store(left.0 + b, corner, lanes: lanes)
                if twoColumns { Lanes.store(right.0 + b, corner + channels, lanes: lanes) }
                if twoRows {
                    Lanes.store(left.1 + b, corner + width * channels, lanes: lanes)
                    if twoColumns { Lanes.store(right.1 + b, corner + (width + 1) * channels, lanes: lanes) }
                }
            }
        }
    }

    /// Writes `A·dY·Aᵀ` of every 2×2 tile of output gradients `dy` (`[N, Ho, Wo, channels]`,
    /// zero outside the output) of images `samples` into `dm` as `[16, tiles, channels]`: the
    /// adjoint of `transformOutputs`.
    static func transformOutputGradients(
        _ dy: UnsafePointer<Float>, channels: Int, tiling t: WinogradTiling,
        samples: Range<Int>, into dm: UnsafeMutablePointer<Float>
    ) {
        let pointStride = samples.count * t.tilesPerSample * channels
        let (height, width) = (t.outputHeight, t.outputWidth)
        forEachTile(t, samples: samples) { sample, tile, top, left in
            let image = dy + sample * height * width * channels
            let (row, column) = (top + t.padding, left + t.padding)
            let (twoRows, twoColumns) = (row + 1 < height, column + 1 < width)
            let out = dm + tile * channels
            let corner = image + (row * width + column) * channels
            Lanes.forEachGroup(channels: channels) { c, lanes in
                let g00 = Lanes.load(corner + c, lanes: lanes)
                let g01 = twoColumns ? Lanes.load(corner + channels + c, lanes: lanes) : .zero
                let g10 = twoRows ? Lanes.load(corner + width * channels + c, lanes: lanes) : .zero
                let g11 = twoRows && twoColumns ? Lanes.load(corner + (width + 1) * channels + c, lanes: lanes) : .zero
                let top = gradientPoints(g00, g01), bottom = gradientPoints(g10, g11)
                let block = out + c
                storeColumn(0, gradientPoints(top.0, bottom.0), block, pointStride, lanes)
                storeColumn(1, gradientPoints(top.1, bottom.1), block, pointStride, lanes)
                storeColumn(2, gradientPoints(top.2, bottom.2), block, pointStride, lanes)
                storeColumn(3, gradientPoints(top.3, bottom.3), block, pointStride, lanes)
            }
        }
    }

    /// Stores transform points (0, j) … (3, j) of one tile's channel block, `block` pointing at
    /// the block in point 0's matrix.
    @inline(__always)
    private static func storeColumn(
        _ j: Int, _ column: (Vector, Vector, Vector, Vector),
        _ block: UnsafeMutablePointer<Float>, _ pointStride: Int, _ lanes: Int
    ) {
        Lanes.store(column.0, block + (0 + j) * pointStride, lanes: lanes)
        Lanes.store(column.1, block + (4 + j) * pointStride, lanes: lanes)
        Lanes.store(column.2, block + (8 + j) * pointStride, lanes: lanes)
        Lanes.store(column.3, block + (12 + j) * pointStride, lanes: lanes)
    }

    /// Bᵀ applied to four values along one axis.
    @inline(__always)
    private static func inputPoints(_ d0: Vector, _ d1: Vector, _ d2: Vector, _ d3: Vector) -> (Vector, Vector, Vector, Vector) {
        (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
    }

    /// Aᵀ applied to four transform points along one axis.
    @inline(__always)
    private static func outputPoints(_ m0: Vector, _ m1: Vector, _ m2: Vector, _ m3: Vector) -> (Vector, Vector) {
        (m0 + m1 + m2, m1 - m2 - m3)
    }

    /// A applied to two output gradients along one axis.
    @inline(__always)
    private static func gradientPoints(_ g0: Vector, _ g1: Vector) -> (Vector, Vector, Vector, Vector) {
        (g0, g0 + g1, g0 - g1, -g1)
    }

    // MARK: - Walking tiles and channels

    /// Calls `body(sample, tile, top, left)` for every tile of images `samples`, on the caller's
    /// thread (the convolution splits its chunks over threads): `tile` counts from the first
    /// image of `samples`, and `top`, `left` are the input tile's corner (negative inside the
    /// padding).
    @inline(__always)
    private static func forEachTile(_ t: WinogradTiling, samples: Range<Int>, _ body: (Int, Int, Int, Int) -> Void) {
        var tile = 0
        for sample in samples {
            for tileRow in 0..<t.tileRows {
                for tileColumn in 0..<t.tileColumns {
                    body(sample, tile, 2 * tileRow - t.padding, 2 * tileColumn - t.padding)
                    tile += 1
                }
            }
        }
    }

    /// Bit i set when `first + i` (i < 4) lies in `0..<limit`.
    @inline(__always)
    private static func validMask(first: Int, limit: Int) -> Int {
        var mask = 0
        for i in 0..<4 where first + i >= 0 && first + i < limit { mask |= 1 << i }
        return mask
    }
}
