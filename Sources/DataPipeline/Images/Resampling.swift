/// A rectangle of whole pixels in an image: rows `top..<top + height`, columns `left..<left + width`.
///
/// `resizeBilinear` takes boxes inside the image; `copyCrop` also takes boxes that extend outside
/// it (the outside reads as zero pixels, which is how a centre crop larger than its image pads).
public struct CropBox: Sendable, Hashable, CustomStringConvertible {
    /// The first row.
    public var top: Int
    /// The first column.
    public var left: Int
    /// The number of rows.
    public var height: Int
    /// The number of columns.
    public var width: Int

    /// The box of `height` rows from `top` and `width` columns from `left` (torchvision's
    /// `(i, j, h, w)` order).
    public init(top: Int, left: Int, height: Int, width: Int) {
        (self.top, self.left, self.height, self.width) = (top, left, height, width)
    }

    /// The whole of an image of `width × height`.
    public init(width: Int, height: Int) {
        self.init(top: 0, left: 0, height: height, width: width)
    }

    /// One past the last row.
    public var bottom: Int { top + height }
    /// One past the last column.
    public var right: Int { left + width }

    /// Whether the box lies within an image of `width × height` (and is not empty).
    public func isInside(width imageWidth: Int, height imageHeight: Int) -> Bool {
        top >= 0 && left >= 0 && height > 0 && width > 0 && bottom <= imageHeight && right <= imageWidth
    }

    /// `(left, top) width×height`, for messages.
    public var description: String { "(\(left), \(top)) \(width)×\(height)" }
}

/// Which pixels the filter may read near a box's edges.
public enum ResamplingEdges: Sendable, Hashable {
    /// Pillow's `img.resize(size, BILINEAR, box=…)`: the box only places the filter; near the
    /// box's edges the filter reads the pixels beyond it, up to the image's edges.
    case image
    /// `img.crop(box).resize(size, BILINEAR)`: as if the box were cut out first, the filter stops
    /// at the box's edges (and the box's sides are "the image's" in the choice of the first
    /// pass). This is what torchvision's `RandomResizedCrop` (`F.resized_crop`, a crop then a
    /// resize) does to a PIL image.
    case box
}

/// The buffers `Resampling.resizeBilinear` works in, kept from one call to the next: a loader
/// thread holds one, and once it has grown to the largest image and output sizes seen, resizing
/// allocates nothing.
public struct ResamplingScratch: Sendable {
    /// Both axes' coefficient tables (per output index: first input index, tap count, then
    /// `taps` fixed-point weights) and one row's sums in the vertical pass.
    var integers: [Int32] = []
    /// The first pass's output: the rows the vertical pass reads, resized in width, or (vertical
    /// pass first) the output's rows over the columns the horizontal pass reads.
    var intermediate: [UInt8] = []

    /// Empty buffers; the first calls grow them.
    public init() {}

    /// The bytes the buffers hold now.
    public var byteCount: Int { integers.count * 4 + intermediate.count }
}

/// Pillow's bilinear resampling of 8-bit RGB images, bit for bit, and the crop-copy that goes
/// with torchvision's crops and flips.
///
/// `resizeBilinear` reproduces Pillow 13's `Image.resize(size, Image.BILINEAR, box=…)`
/// (`src/libImaging/Resample.c`) for mode `RGB`, step by step:
///
/// - **Coefficients**, per axis, in `Double` as Pillow computes them: `scale = boxLength / outSize`,
///   the filter widened to `support = max(scale, 1)` when shrinking (so shrinking antialiases),
///   output `i`'s centre `boxStart + (i + 0.5) · scale`, its taps from `Int(centre − support + 0.5)`
///   (at least 0) to `Int(centre + support + 0.5)` (at most the image's size), each weighted by the
///   triangle `max(0, 1 − |(x − centre + 0.5) / max(scale, 1)|)` and divided by their sum; then fixed
///   point with 22 fraction bits, `Int32(0.5 + weight · 2²²)` (truncated).
/// - **Sums** in `Int32`, starting at `2²¹` (the rounding half), clipped to 0…255 after an
///   arithmetic shift by 22. Integers from there on, so every CPU gives the same bytes.
/// - **Passes**: a box the size of the output is a plain crop (no arithmetic). Otherwise, as
///   Pillow 13.0's `ImagingResampleInner` orders them (PR #9549 put the choice in C; the rule
///   below was checked against the release on 400 random sizes and boxes, where the two orders
///   give different bytes, and on both sides of its boundary): the vertical pass goes first when
///   the output has fewer rows than the image and the image loses more than twice as many rows as
///   columns, `imageHeight − height > 2 · (imageWidth − width)` (the image's sides, not the box's);
///   the horizontal pass goes first otherwise, over only the rows the vertical pass reads (from the
///   first output row's first tap to the last one's last). A pass is skipped when its axis is
///   unchanged: the output as wide as the image and the box spanning its full width (likewise in
///   height). Which pass goes first changes the bytes (the first pass's output is rounded to
///   8 bits), so the rule is part of the result.
///
/// Pillow's other paths do not apply: `reducing_gap` is `None` in `resize` by default (no
/// `reduce` first), and RGB has no premultiplied alpha.
public enum Resampling {
    /// Fraction bits of the fixed-point weights (Pillow's `PRECISION_BITS`, 32 − 8 − 2).
    static let precisionBits: Int32 = 22

    /// Resizes the `box` of `image` to `width × height` with Pillow's bilinear filter, writing
    /// `width × height × 3` bytes (rows top to bottom, RGB) at `output`.
    ///
    /// With `edges: .image` (the default) the output equals Pillow 13's
    /// `img.resize((width, height), Image.BILINEAR, box=(left, top, right, bottom))` byte for byte;
    /// with `edges: .box` it equals `img.crop(box).resize((width, height), Image.BILINEAR)`.
    /// The box must lie inside the image and the output size be positive.
    ///
    /// - Parameter scratch: buffers reused between calls; nothing is allocated once they have
    ///   grown to the sizes in use.
    public static func resizeBilinear(
        _ image: RGBImage, box: CropBox, toWidth width: Int, height: Int, edges: ResamplingEdges = .image,
        into output: UnsafeMutablePointer<UInt8>, scratch: inout ResamplingScratch
    ) {
        precondition(width > 0 && height > 0, "the output size must be positive, got \(width)×\(height)")
        precondition(
            box.isInside(width: image.width, height: image.height),
            "the box \(box) is not inside the \(image.width)×\(image.height) image")
        precondition(image.width < 1 << 24 && image.height < 1 << 24, "Pillow's box coordinates are Float: sides below 2^24")
        let stride = image.rowBytes
        image.pixels.withUnsafeBufferPointer { pixels in
            let base = pixels.baseAddress!
            switch edges {
            case .image:
                resample(
                    View(base: base, stride: stride, width: image.width, height: image.height), box: box,
                    width: width, height: height, output: output, scratch: &scratch)
            case .box:
                let view = View(
                    base: base + box.top * stride + box.left * 3, stride: stride, width: box.width, height: box.height)
                resample(
                    view, box: CropBox(width: box.width, height: box.height), width: width, height: height, output: output,
                    scratch: &scratch)
            }
        }
    }

    /// The image (or the part of it cut out with `edges: .box`) that Pillow's passes see.
    private struct View {
        var base: UnsafePointer<UInt8>
        /// Bytes from one row to the next.
        var stride: Int
        var width: Int
        var height: Int
    }

    /// Pillow's `_resize` and `ImagingResampleInner` on `view`.
    private static func resample(
        _ view: View, box: CropBox, width: Int, height: Int, output: UnsafeMutablePointer<UInt8>,
        scratch: inout ResamplingScratch
    ) {
        let outputRowBytes = width * 3
        // `_resize`: a whole-pixel box the size of the output is ImagingCrop.
        if box.width == width && box.height == height {
            for row in 0..<height {
                (output + row * outputRowBytes).update(
                    from: view.base + (box.top + row) * view.stride + box.left * 3, count: outputRowBytes)
            }
            return
        }
        let needHorizontal = width != view.width || box.left != 0 || box.right != width
        let needVertical = height != view.height || box.top != 0 || box.bottom != height
        // Pillow 13 runs the vertical pass first when the image loses more than twice as many
        // rows as columns (the image's sides, not the box's).
        let verticalFirst = height < view.height && view.height - height > 2 * (view.width - width)
        let verticalTaps = tapCount(boxLength: box.height, outSize: height)
        let horizontalTaps = tapCount(boxLength: box.width, outSize: width)
        let verticalTable = height * (2 + verticalTaps)
        let horizontalTable = width * (2 + horizontalTaps)
        // The widest row the vertical pass sums: the output's, or (vertical pass first) the
        // columns the horizontal pass reads, at most the box and the filter's reach each side.
        let verticalRowBytes = Swift.max(width, Swift.min(view.width, box.width + 2 * horizontalTaps)) * 3

        // The buffers leave the scratch for the call (no copy: each has one owner), so that
        // their pointers can be held at once.
        var integers: [Int32] = []
        var intermediate: [UInt8] = []
        swap(&integers, &scratch.integers)
        swap(&intermediate, &scratch.intermediate)
        defer {
            swap(&integers, &scratch.integers)
            swap(&intermediate, &scratch.intermediate)
        }
        grow(&integers, to: verticalTable + horizontalTable + verticalRowBytes)
        integers.withUnsafeMutableBufferPointer { integers in
            let verticalCoefficients = integers.baseAddress!
            let horizontalCoefficients = verticalCoefficients + verticalTable
            let accumulator = horizontalCoefficients + horizontalTable
            computeCoefficients(
                inSize: view.height, start: box.top, end: box.bottom, outSize: height, taps: verticalTaps,
                table: verticalCoefficients)
            if needHorizontal {
                computeCoefficients(
                    inSize: view.width, start: box.left, end: box.right, outSize: width, taps: horizontalTaps,
                    table: horizontalCoefficients)
            }
            switch (needHorizontal, needVertical) {
            case (true, true) where verticalFirst:
                // Only the columns the horizontal pass reads are summed (Pillow sums all of them;
                // the others it never reads).
                let (firstColumn, endColumn) = span(of: horizontalCoefficients, count: width, taps: horizontalTaps)
                let rowBytes = (endColumn - firstColumn) * 3
                assert(rowBytes <= verticalRowBytes, "the accumulator holds \(verticalRowBytes) bytes, not \(rowBytes)")
                grow(&intermediate, to: height * rowBytes)
                intermediate.withUnsafeMutableBufferPointer { intermediate in
                    let rows = intermediate.baseAddress!
                    verticalPass(
                        source: view.base + firstColumn * 3, sourceStride: view.stride, rowBytes: rowBytes, destination: rows,
                        outHeight: height, taps: verticalTaps, table: verticalCoefficients, accumulator: accumulator)
                    shiftFirstIndices(of: horizontalCoefficients, count: width, taps: horizontalTaps, by: firstColumn)
                    horizontalPass(
                        source: rows, sourceStride: rowBytes, inputColumns: endColumn - firstColumn, rows: height,
                        destination: output, outWidth: width, taps: horizontalTaps, table: horizontalCoefficients)
                }
            case (true, true):
                // Horizontal first, over the rows the vertical pass reads only.
                let (firstRow, endRow) = span(of: verticalCoefficients, count: height, taps: verticalTaps)
                grow(&intermediate, to: (endRow - firstRow) * outputRowBytes)
                intermediate.withUnsafeMutableBufferPointer { intermediate in
                    let rows = intermediate.baseAddress!
                    horizontalPass(
                        source: view.base + firstRow * view.stride, sourceStride: view.stride, inputColumns: view.width,
                        rows: endRow - firstRow, destination: rows, outWidth: width, taps: horizontalTaps,
                        table: horizontalCoefficients)
                    shiftFirstIndices(of: verticalCoefficients, count: height, taps: verticalTaps, by: firstRow)
                    verticalPass(
                        source: rows, sourceStride: outputRowBytes, rowBytes: outputRowBytes, destination: output,
                        outHeight: height, taps: verticalTaps, table: verticalCoefficients, accumulator: accumulator)
                }
            case (true, false):
                // The box spans every row: the output's rows are the image's.
                horizontalPass(
                    source: view.base, sourceStride: view.stride, inputColumns: view.width, rows: height,
                    destination: output, outWidth: width, taps: horizontalTaps, table: horizontalCoefficients)
            case (false, true):
                // The box spans every column and the output is as wide.
                verticalPass(
                    source: view.base, sourceStride: view.stride, rowBytes: outputRowBytes, destination: output,
                    outHeight: height, taps: verticalTaps, table: verticalCoefficients, accumulator: accumulator)
            case (false, false):
                // Neither pass: Pillow's ImagingCopy (unreachable after the crop above).
                for row in 0..<height {
                    (output + row * outputRowBytes).update(from: view.base + row * view.stride, count: outputRowBytes)
                }
            }
        }
    }

    /// The input indices a coefficient table reads: from the first entry's first index to the
    /// last entry's end (entries' first indices never decrease).
    private static func span(of table: UnsafePointer<Int32>, count: Int, taps: Int) -> (first: Int, end: Int) {
        let last = table + (count - 1) * (2 + taps)
        return (Int(table[0]), Int(last[0] + last[1]))
    }

    /// Makes a table's first indices relative to input index `offset`.
    private static func shiftFirstIndices(of table: UnsafeMutablePointer<Int32>, count: Int, taps: Int, by offset: Int) {
        for i in 0..<count { table[i * (2 + taps)] -= Int32(offset) }
    }

    /// Grows `array` to at least `count` elements (allocating only when it is too small).
    private static func grow<T: FixedWidthInteger>(_ array: inout [T], to count: Int) {
        if array.count < count { array = [T](repeating: 0, count: count) }
    }

    /// Pillow's `ksize`: the most taps an output pixel can have, `2 · ⌈support⌉ + 1`.
    static func tapCount(boxLength: Int, outSize: Int) -> Int {
        let support = Swift.max(Double(boxLength) / Double(outSize), 1.0)
        return Int(support.rounded(.up)) * 2 + 1
    }

    /// Pillow's `precompute_coeffs` then `normalize_coeffs_8bpc` for one axis, into `table`: for
    /// each output index `i`, the entry at `table + i · (2 + taps)` holds the first input index,
    /// the number of taps `count`, and `taps` fixed-point weights (those past `count` zero). The
    /// same `Double` operations in the same order as Pillow's C.
    static func computeCoefficients(
        inSize: Int, start: Int, end: Int, outSize: Int, taps: Int, table: UnsafeMutablePointer<Int32>
    ) {
        // Pillow's box is Float; whole numbers below 2^24 convert exactly, and so does their difference.
        let scale = Double(end - start) / Double(outSize)
        let filterScale = Swift.max(scale, 1.0)
        let support = 1.0 * filterScale  // the bilinear filter's support is 1
        let inverseFilterScale = 1.0 / filterScale
        let one = Double(1 << Int(precisionBits))
        for i in 0..<outSize {
            let center = Double(start) + (Double(i) + 0.5) * scale
            let first = Swift.max(Int(center - support + 0.5), 0)
            let count = Swift.min(Int(center + support + 0.5), inSize) - first
            var sum = 0.0
            for x in 0..<Swift.max(count, 0) {
                sum += triangle((Double(x + first) - center + 0.5) * inverseFilterScale)
            }
            let entry = table + i * (2 + taps)
            entry[0] = Int32(first)
            entry[1] = Int32(count)
            for x in 0..<taps {
                guard x < count else {
                    entry[2 + x] = 0
                    continue
                }
                var weight = triangle((Double(x + first) - center + 0.5) * inverseFilterScale)
                if sum != 0 { weight /= sum }
                entry[2 + x] = weight < 0 ? Int32(-0.5 + weight * one) : Int32(0.5 + weight * one)
            }
        }
    }

    /// Pillow's `bilinear_filter`.
    @inline(__always) private static func triangle(_ x: Double) -> Double {
        let distance = x < 0 ? -x : x
        return distance < 1 ? 1 - distance : 0
    }

    /// The fixed-point sum's byte: Pillow's `clip8` (an arithmetic shift, then 0…255).
    @inline(__always) static func clip(_ sum: Int32) -> UInt8 {
        UInt8(clamping: sum &>> precisionBits)
    }

    /// Gives every entry of a horizontal table the same number of taps, the most any has, by
    /// moving an entry's start left where it would run past the row's `inputColumns` pixels and
    /// its weights right to match, with zero weights around them: the sums are unchanged (zero
    /// weights add nothing), and the pass's inner loop runs a fixed number of times (no
    /// mispredicted branch when counts alternate, as they do when shrinking). Returns the count.
    private static func equalizeTapCounts(of table: UnsafeMutablePointer<Int32>, count: Int, taps: Int, inputColumns: Int) -> Int {
        var common = 0
        for i in 0..<count { common = Swift.max(common, Int(table[i * (2 + taps) + 1])) }
        // Every entry's taps lie within the row, so `common ≤ inputColumns`.
        for i in 0..<count {
            let entry = table + i * (2 + taps)
            let (first, taken) = (Int(entry[0]), Int(entry[1]))
            let start = Swift.min(first, inputColumns - common)
            let shift = first - start
            if shift > 0 {
                for t in stride(from: taken - 1, through: 0, by: -1) { entry[2 + shift + t] = entry[2 + t] }
                for t in 0..<shift { entry[2 + t] = 0 }
            }
            for t in (shift + taken)..<common { entry[2 + t] = 0 }
            entry[0] = Int32(start)
            entry[1] = Int32(common)
        }
        return common
    }

    /// Resizes `rows` rows of width: output column `i` of a row is the sum over its taps of
    /// `weight · pixel`, per channel. The rows are `inputColumns` pixels wide; the table's tap
    /// counts are first made equal (`equalizeTapCounts`), and the common counts of 2 to 6 taps
    /// (enlarging, and shrinking up to about 2.5×) get a loop of constant length.
    private static func horizontalPass(
        source: UnsafePointer<UInt8>, sourceStride: Int, inputColumns: Int, rows: Int, destination: UnsafeMutablePointer<UInt8>,
        outWidth: Int, taps: Int, table: UnsafeMutablePointer<Int32>
    ) {
        let count = equalizeTapCounts(of: table, count: outWidth, taps: taps, inputColumns: inputColumns)
        // Each call is inlined with its count a constant, so that its loop has a fixed length.
        switch count {
        case 2: horizontalRows(source, sourceStride, rows, destination, outWidth, 2 + taps, table, count: 2)
        case 3: horizontalRows(source, sourceStride, rows, destination, outWidth, 2 + taps, table, count: 3)
        case 4: horizontalRows(source, sourceStride, rows, destination, outWidth, 2 + taps, table, count: 4)
        case 5: horizontalRows(source, sourceStride, rows, destination, outWidth, 2 + taps, table, count: 5)
        case 6: horizontalRows(source, sourceStride, rows, destination, outWidth, 2 + taps, table, count: 6)
        default: horizontalRows(source, sourceStride, rows, destination, outWidth, 2 + taps, table, count: count)
        }
    }

    /// The horizontal pass's loops, for `count` taps per output pixel.
    @inline(__always) private static func horizontalRows(
        _ source: UnsafePointer<UInt8>, _ sourceStride: Int, _ rows: Int, _ destination: UnsafeMutablePointer<UInt8>,
        _ outWidth: Int, _ entrySize: Int, _ table: UnsafePointer<Int32>, count: Int
    ) {
        let half: Int32 = 1 << (precisionBits - 1)
        for row in 0..<rows {
            let input = source + row * sourceStride
            let line = destination + row * outWidth * 3
            var entry = table
            for i in 0..<outWidth {
                var pixel = input + Int(entry[0]) &* 3
                var (red, green, blue) = (half, half, half)
                for t in 0..<count {
                    let w = entry[2 &+ t]
                    red &+= Int32(pixel[0]) &* w
                    green &+= Int32(pixel[1]) &* w
                    blue &+= Int32(pixel[2]) &* w
                    pixel += 3
                }
                let out = line + i &* 3
                out[0] = clip(red)
                out[1] = clip(green)
                out[2] = clip(blue)
                entry += entrySize
            }
        }
    }

    /// Resizes in height: output row `j` is the sum over its taps of `weight · row`, byte by
    /// byte, accumulated a whole row at a time (the order of integer sums does not matter).
    private static func verticalPass(
        source: UnsafePointer<UInt8>, sourceStride: Int, rowBytes: Int, destination: UnsafeMutablePointer<UInt8>,
        outHeight: Int, taps: Int, table: UnsafePointer<Int32>, accumulator: UnsafeMutablePointer<Int32>
    ) {
        let half: Int32 = 1 << (precisionBits - 1)
        for j in 0..<outHeight {
            let entry = table + j * (2 + taps)
            let first = Int(entry[0])
            let count = Int(entry[1])
            let line = destination + j * rowBytes
            accumulator.update(repeating: half, count: rowBytes)
            for t in 0..<count {
                let input = source + (first + t) * sourceStride
                let w = entry[2 + t]
                for b in 0..<rowBytes {
                    accumulator[b] &+= Int32(input[b]) &* w
                }
            }
            for b in 0..<rowBytes {
                line[b] = clip(accumulator[b])
            }
        }
    }
}
