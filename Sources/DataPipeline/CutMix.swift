import Tensors

/// The rectangle CutMix pasted into every row of a batch: rows `top..<bottom`, columns
/// `left..<right`.
public struct CutMixBox: Sendable, Equatable {
    public let top: Int
    public let left: Int
    public let bottom: Int
    public let right: Int

    /// The number of pixels in the box.
    public var area: Int { (bottom - top) * (right - left) }
}

/// What CutMix did to a batch, so the trainer mixes targets with the same area ratio:
/// `target(i) = λ · t(i) + (1 − λ) · t(partnerRows[i])`.
public struct CutMixInfo: Sendable, Equatable {
    /// For each row, the row of the same batch whose box was pasted into it (possibly itself).
    public let partnerRows: [Int]
    /// The fraction of every row's image that is its own: `1 − box area / image area`.
    public let lambda: Float
    /// The pasted rectangle, the same for every row.
    public let box: CutMixBox

    /// Writes the mixed targets of `targets` (`[b, classes]`) into `output` (same shape; may not
    /// be `targets` itself, since rows read their partners).
    public func mixTargets(_ targets: Tensor, into output: Tensor) {
        precondition(
            targets.shape == output.shape && targets.rank == 2 && targets.shape[0] == partnerRows.count,
            "mixTargets: targets \(targets.shape) and output \(output.shape) must be [\(partnerRows.count), classes]")
        precondition(!targets.sharesStorage(with: output), "mixTargets: output must not alias targets")
        let classes = targets.shape[1]
        let (source, destination) = (targets.pointer, output.pointer)
        for (row, partner) in partnerRows.enumerated() {
            for c in 0..<classes {
                destination[row * classes + c] =
                    lambda * source[row * classes + c]
                    + (1 - lambda) * source[partner * classes + c]
            }
        }
    }
}

/// CutMix (Yun et al., ICCV 2019) on a batch of NHWC images.
///
/// With probability `p` the batch is mixed: λ ~ Beta(1, 1) (uniform), a box of sides
/// `⌊H·√(1−λ)⌋ × ⌊W·√(1−λ)⌋` centred at a uniform random pixel and clipped to the image, and
/// partners from a random permutation of the batch's rows; each row's box is replaced by its
/// partner's, and λ is set to the exact unpasted fraction, as in the paper's reference code.
/// Draws, in order: the apply decision, λ, the box centre, the partner permutation.
///
/// **CutMix depends on the rank count.** It mixes each rank's share of the global batch on its
/// own, from a generator keyed by (seed, epoch, step, rank): the decision, λ, the box and the
/// partners (a permutation of the rank's b = B/R rows) all change with R, so the same global
/// batch is mixed differently on 1, 2 or 4 ranks, and so is the whole run. (It is independent of
/// `--accumulate-steps`: the loader mixes the rank's whole batch before it is cut into
/// micro-batches.) Rank-independent partners would need groups of the global batch that never
/// straddle ranks for every valid rank count; with b odd for some R (B = 6 on 2 ranks) only
/// groups of one sample qualify, which is no mixing at all, so the dependence stays and is
/// documented instead (README, "How it works").
enum CutMix {
    /// Separates CutMix's generator from the per-sample augmentation streams.
    static let streamKey: UInt64 = 0x4375_744D_6978  // "CutMix"

    /// The generator for one batch, keyed by (seed, epoch, step, rank).
    static func generator(seed: UInt64, epoch: Int, step: Int, rank: Int) -> RandomGenerator {
        RandomGenerator(seed: seed).split(RandomStream.augmentation, streamKey, UInt64(epoch), UInt64(step), UInt64(rank))
    }

    /// Mixes `inputs` (`[b, H, W, C]`) in place with probability `probability`; returns what was
    /// done, or `nil` if the batch was left alone. `scratch` must hold `inputs.count` floats.
    static func apply(
        to inputs: Tensor, probability: Double, random: inout RandomGenerator,
        scratch: UnsafeMutablePointer<Float>
    ) -> CutMixInfo? {
        guard probability > 0, random.nextUniformDouble() < probability else { return nil }
        let (rows, height, width) = (inputs.shape[0], inputs.shape[1], inputs.shape[2])
        let box = drawBox(height: height, width: width, lambda: random.nextUniformDouble(), random: &random)
        var partners = Array(0..<rows)
        partners.withUnsafeMutableBufferPointer { FisherYates.shuffle($0, using: &random) }
        paste(box, partners: partners, inputs: inputs, scratch: scratch)
        let lambda = 1 - Float(box.area) / Float(height * width)
        return CutMixInfo(partnerRows: partners, lambda: lambda, box: box)
    }

    /// The paper's `rand_bbox`: a box of area about `(1 − λ)·H·W` at a random centre, clipped.
    static func drawBox(height: Int, width: Int, lambda: Double, random: inout RandomGenerator) -> CutMixBox {
        let cutRatio = (1 - lambda).squareRoot()
        let cutHeight = Int(Double(height) * cutRatio)
        let cutWidth = Int(Double(width) * cutRatio)
        let centreX = random.nextIndex(below: width)
        let centreY = random.nextIndex(below: height)
        func clip(_ value: Int, _ limit: Int) -> Int { min(max(value, 0), limit) }
        return CutMixBox(
            top: clip(centreY - cutHeight / 2, height), left: clip(centreX - cutWidth / 2, width),
            bottom: clip(centreY + cutHeight / 2, height), right: clip(centreX + cutWidth / 2, width))
    }

    /// Replaces the box of every row with the box of its partner, reading from a copy of the boxes.
    private static func paste(_ box: CutMixBox, partners: [Int], inputs: Tensor, scratch: UnsafeMutablePointer<Float>) {
        let (rows, height, width, channels) = (inputs.shape[0], inputs.shape[1], inputs.shape[2], inputs.shape[3])
        let boxRowLength = (box.right - box.left) * channels
        let boxSize = (box.bottom - box.top) * boxRowLength
        guard boxSize > 0 else { return }
        let imageSize = height * width * channels
        func boxRow(_ image: Int, _ y: Int) -> UnsafeMutablePointer<Float> {
            inputs.pointer + image * imageSize + (y * width + box.left) * channels
        }
        for image in 0..<rows {
            for (line, y) in (box.top..<box.bottom).enumerated() {
                (scratch + image * boxSize + line * boxRowLength).update(from: boxRow(image, y), count: boxRowLength)
            }
        }
        for (image, partner) in partners.enumerated() {
            for (line, y) in (box.top..<box.bottom).enumerated() {
                boxRow(image, y).update(from: scratch + partner * boxSize + line * boxRowLength, count: boxRowLength)
            }
        }
    }
}
