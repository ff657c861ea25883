import Foundation
import Tensors

// The crop geometry of torchvision's ImageNet recipes (`transforms.RandomResizedCrop`,
// `Resize`, `CenterCrop`, `RandomHorizontalFlip` on PIL images): the same rules, with our
// `RandomGenerator` in place of torch's.

/// torchvision's `RandomResizedCrop.get_params`: a random box of random area and aspect ratio.
public enum RandomResizedCrop {
    /// torchvision's default range of the box's area as a fraction of the image's.
    public static let defaultScale: ClosedRange<Double> = 0.08...1
    /// torchvision's default range of the box's aspect ratio (width / height).
    public static let defaultRatio: ClosedRange<Double> = (3.0 / 4.0)...(4.0 / 3.0)

    /// The box to crop from an image of `width × height` (then resized to the recipe's size).
    ///
    /// The rule is torchvision's: up to 10 tries of
    /// `area = width · height · uniform(scale)`, `ratio = exp(uniform(log ratio.lower, log ratio.upper))`,
    /// `w = round(√(area · ratio))`, `h = round(√(area / ratio))` (round half to even, as Python's
    /// `round`); the first try with `0 < w ≤ width` and `0 < h ≤ height` places the box at a
    /// uniform `top` in `0...height − h` and `left` in `0...width − w`. If no try fits, the centre
    /// fallback: the whole image if its ratio is within `ratio`, else the widest (or tallest) box
    /// of the ratio's nearer bound, `h = round(width / ratio.lower)` or `w = round(height · ratio.upper)`,
    /// at `top = (height − h) / 2`, `left = (width − w) / 2` (rounded down).
    ///
    /// The draws, in this fixed order: per try, `random.nextUniformDouble()` for the area, then
    /// `random.nextUniformDouble()` for the log-ratio (`lower + (upper − lower) · u` each); after a
    /// try that fits, `random.nextIndex(below: height − h + 1)` for `top`, then
    /// `random.nextIndex(below: width − w + 1)` for `left`. The fallback draws nothing more.
    public static func box(
        width: Int, height: Int, scale: ClosedRange<Double> = defaultScale, ratio: ClosedRange<Double> = defaultRatio,
        random: inout RandomGenerator
    ) -> CropBox {
        precondition(width > 0 && height > 0, "the image must not be empty, got \(width)×\(height)")
        precondition(
            scale.lowerBound >= 0 && ratio.lowerBound > 0, "scale must be non-negative and ratio positive, got \(scale) and \(ratio)")
        let area = Double(width * height)
        let (logLower, logUpper) = (log(ratio.lowerBound), log(ratio.upperBound))
        for _ in 0..<10 {
            let targetArea = area * (scale.lowerBound + (scale.upperBound - scale.lowerBound) * random.nextUniformDouble())
            let aspectRatio = exp(logLower + (logUpper - logLower) * random.nextUniformDouble())
            let w = roundHalfEven((targetArea * aspectRatio).squareRoot())
            let h = roundHalfEven((targetArea / aspectRatio).squareRoot())
            if 0 < w && w <= width && 0 < h && h <= height {
                let top = random.nextIndex(below: height - h + 1)
                let left = random.nextIndex(below: width - w + 1)
                return CropBox(top: top, left: left, height: h, width: w)
            }
        }
        return fallbackBox(width: width, height: height, ratio: ratio)
    }

    /// The centre box used when no try fits (see `box`).
    public static func fallbackBox(width: Int, height: Int, ratio: ClosedRange<Double> = defaultRatio) -> CropBox {
        let imageRatio = Double(width) / Double(height)
        var (w, h) = (width, height)
        if imageRatio < ratio.lowerBound {
            h = roundHalfEven(Double(width) / ratio.lowerBound)
        } else if imageRatio > ratio.upperBound {
            w = roundHalfEven(Double(height) * ratio.upperBound)
        }
        return CropBox(top: (height - h) / 2, left: (width - w) / 2, height: h, width: w)
    }
}

/// torchvision's `Resize(size)` with one number: the shorter side becomes `size`.
public enum Resize {
    /// The output size for an image of `width × height`: the shorter side (the width when the
    /// sides are equal) becomes `shorterSide` and the longer `Int(shorterSide · long / short)`,
    /// the quotient in `Double` truncated (torchvision's `_compute_resized_output_size`:
    /// `int(size * long / short)`). Resizing to it is `Resampling.resizeBilinear` of the whole
    /// image; torchvision returns the image unchanged when the size is already right, which
    /// `resizeBilinear` does too (a box the size of the output is a plain copy).
    public static func outputSize(width: Int, height: Int, shorterSide: Int) -> (width: Int, height: Int) {
        precondition(width > 0 && height > 0 && shorterSide > 0, "sizes must be positive, got \(width)×\(height) → \(shorterSide)")
        let (short, long) = width <= height ? (width, height) : (height, width)
        let newLong = Int(Double(shorterSide * long) / Double(short))
        return width <= height ? (shorterSide, newLong) : (newLong, shorterSide)
    }
}

/// torchvision's `CenterCrop(size)`.
public enum CenterCrop {
    /// The box of `cropWidth × cropHeight` at the centre of an image of `width × height`, per
    /// axis: when the image is at least the crop's size, `start = round((side − crop) / 2)` (round
    /// half to even, Python's `round`); when it is smaller, torchvision pads it with zeros,
    /// `(crop − side) / 2` (rounded down) before and the rest after, and crops the padded image
    /// whole: the box starts at `−(crop − side) / 2`, outside the image. `Resampling.copyCrop`
    /// fills the parts of a box outside the image with zero bytes, so copying this box is
    /// torchvision's padded crop exactly.
    public static func box(width: Int, height: Int, cropWidth: Int, cropHeight: Int) -> CropBox {
        precondition(width > 0 && height > 0 && cropWidth > 0 && cropHeight > 0, "sizes must be positive")
        return CropBox(
            top: start(side: height, crop: cropHeight), left: start(side: width, crop: cropWidth), height: cropHeight,
            width: cropWidth)
    }

    /// Where a centred crop of `crop` starts on an axis of `side` pixels.
    private static func start(side: Int, crop: Int) -> Int {
        crop > side ? -((crop - side) / 2) : roundHalfEven(Double(side - crop) / 2)
    }
}

/// torchvision's `RandomHorizontalFlip(p)`.
public enum RandomHorizontalFlip {
    /// Whether to mirror: one draw, `random.nextUniform() < probability` (torchvision's
    /// `torch.rand(1) < p`), the same draw as `Augmenter`'s flip.
    public static func draw(probability: Float = 0.5, random: inout RandomGenerator) -> Bool {
        random.nextUniform() < probability
    }
}

extension Resampling {
    /// Copies the `box` of `image`, mirrored left to right if `flipped`, to `output`
    /// (`box.width × box.height × 3` bytes, RGB rows). Parts of the box outside the image are zero
    /// bytes (torchvision's padding of a `CenterCrop` larger than its image, and PIL's `crop`).
    /// Output column `x` is box column `box.width − 1 − x` when flipped: the crop, then the flip.
    public static func copyCrop(_ image: RGBImage, box: CropBox, flipped: Bool = false, into output: UnsafeMutablePointer<UInt8>) {
        image.pixels.withUnsafeBufferPointer { pixels in
            copyCrop(from: pixels.baseAddress!, width: image.width, height: image.height, box: box, flipped: flipped, into: output)
        }
    }

    /// `copyCrop` from an RGB image of `width × height` at `pixels` (rows of `width × 3` bytes),
    /// for example the output of `resizeBilinear`. `output` must not overlap the image.
    public static func copyCrop(
        from pixels: UnsafePointer<UInt8>, width: Int, height: Int, box: CropBox, flipped: Bool = false,
        into output: UnsafeMutablePointer<UInt8>
    ) {
        precondition(box.width > 0 && box.height > 0, "the box must not be empty, got \(box)")
        let outputRowBytes = box.width * 3
        // The box's columns that lie inside the image, as box columns `inside`.
        let inside = Swift.max(0, -box.left)..<Swift.max(Swift.max(0, -box.left), Swift.min(box.width, width - box.left))
        for row in 0..<box.height {
            let line = output + row * outputRowBytes
            let sourceRow = box.top + row
            guard sourceRow >= 0 && sourceRow < height && !inside.isEmpty else {
                line.update(repeating: 0, count: outputRowBytes)
                continue
            }
            let input = pixels + sourceRow * width * 3 + (box.left + inside.lowerBound) * 3  // box column inside.lowerBound
            // Output columns of the inside part: the same when not flipped, mirrored when flipped.
            let outputStart = flipped ? box.width - inside.upperBound : inside.lowerBound
            line.update(repeating: 0, count: outputStart * 3)
            let outputEnd = outputStart + inside.count
            (line + outputEnd * 3).update(repeating: 0, count: (box.width - outputEnd) * 3)
            if flipped {
                var from = input + (inside.count - 1) * 3
                var to = line + outputStart * 3
                for _ in 0..<inside.count {
                    to[0] = from[0]
                    to[1] = from[1]
                    to[2] = from[2]
                    from -= 3
                    to += 3
                }
            } else {
                (line + outputStart * 3).update(from: input, count: inside.count * 3)
            }
        }
    }
}

/// Python's `round` of a non-negative `Double` to an `Int`: halves go to the even neighbour.
func roundHalfEven(_ value: Double) -> Int {
    Int(value.rounded(.toNearestOrEven))
}
