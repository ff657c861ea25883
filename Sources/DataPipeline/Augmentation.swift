import Tensors

/// Which augmentations to apply. Normalisation `(x / 255 − mean) / std` is always applied.
public struct AugmentationConfig: Sendable, Equatable {
    /// Zero padding on each side before a random crop back to the original size; 0 = no crop.
    public var cropPadding: Int
    /// Whether to flip each image horizontally with probability 0.5.
    public var horizontalFlip: Bool
    /// Probability that a batch gets CutMix; 0 = off. `defaultCutMixProbability` is the paper's.
    public var cutMixProbability: Double

    /// The CutMix paper's probability (Yun et al., 2019), for when CutMix is turned on.
    public static let defaultCutMixProbability = 0.5

    public init(cropPadding: Int = 0, horizontalFlip: Bool = false, cutMixProbability: Double = 0) {
        precondition(cropPadding >= 0, "crop padding must be non-negative, got \(cropPadding)")
        precondition((0...1).contains(cutMixProbability), "CutMix probability must be in [0, 1], got \(cutMixProbability)")
        self.cropPadding = cropPadding
        self.horizontalFlip = horizontalFlip
        self.cutMixProbability = cutMixProbability
    }

    /// Normalisation only: for evaluation.
    public static let none = AugmentationConfig()
}

/// Per-sample augmentation: random crop with zero padding, horizontal flip, normalisation.
///
/// Each sample's random draws come from its own generator keyed by (seed, epoch, global sample
/// index), never by rank or position in the batch, so a sample is augmented identically
/// whatever the number of ranks, and differently in every epoch. Padding pixels are zero bytes,
/// normalised like any other pixel (as torchvision's `RandomCrop(padding:)` then `Normalize`).
public struct Augmenter: Sendable {
    /// The data set whose samples are augmented.
    public let dataset: Dataset
    public let config: AugmentationConfig
    public let seed: UInt64
    /// `lookup[c·256 + v]` is the normalised value of byte `v` in channel `c`.
    private let lookup: [Float]

    public init(dataset: Dataset, config: AugmentationConfig, seed: UInt64) {
        self.dataset = dataset
        self.config = config
        self.seed = seed
        self.lookup = (0..<dataset.channels).flatMap { channel in
            (0..<256).map { (Float($0) / 255 - dataset.mean[channel]) / dataset.std[channel] }
        }
    }

    /// The normalised, augmented image of sample `index` in `epoch`, `[H, W, C]` row-major.
    public func augmentedSample(index: Int, epoch: Int) -> [Float] {
        var output = [Float](repeating: 0, count: dataset.sampleSize)
        output.withUnsafeMutableBufferPointer { buffer in
            [index].withUnsafeBufferPointer { augment(indices: $0, epoch: epoch, into: buffer.baseAddress!) }
        }
        return output
    }

    /// Writes the augmented images of `indices` in `epoch`, one after another, at `output`.
    public func augment(indices: UnsafeBufferPointer<Int>, epoch: Int, into output: UnsafeMutablePointer<Float>) {
        var epochGenerator = RandomGenerator(seed: seed).split(RandomStream.augmentation, UInt64(epoch))
        let epochKey = epochGenerator.next()
        let sampleSize = dataset.sampleSize
        dataset.pixels.withUnsafeBufferPointer { pixels in
            lookup.withUnsafeBufferPointer { lookup in
                for (row, index) in indices.enumerated() {
                    var random = Self.sampleGenerator(epochKey: epochKey, index: index)
                    let placement = drawPlacement(&random)
                    copy(
                        pixels.baseAddress! + index * sampleSize, to: output + row * sampleSize,
                        placement: placement, lookup: lookup)
                }
            }
        }
    }

    /// Where the crop window sits and whether the image is mirrored.
    private struct Placement {
        var rowShift = 0  // source row = output row + rowShift
        var columnShift = 0
        var flip = false
    }

    /// The sample's draws, in a fixed order: crop offsets (if cropping), then flip (if flipping).
    private func drawPlacement(_ random: inout RandomGenerator) -> Placement {
        var placement = Placement()
        let padding = config.cropPadding
        if padding > 0 {
            placement.rowShift = random.nextIndex(below: 2 * padding + 1) - padding
            placement.columnShift = random.nextIndex(below: 2 * padding + 1) - padding
        }
        if config.horizontalFlip {
            placement.flip = random.nextUniform() < 0.5
        }
        return placement
    }

    /// Copies one image through the crop window and optional mirror, normalising each value.
    private func copy(
        _ source: UnsafePointer<UInt8>, to destination: UnsafeMutablePointer<Float>,
        placement: Placement, lookup: UnsafeBufferPointer<Float>
    ) {
        let (height, width, channels) = (dataset.height, dataset.width, dataset.channels)
        let rowSize = width * channels
        for y in 0..<height {
            let sourceY = y + placement.rowShift
            let outputRow = destination + y * rowSize
            guard sourceY >= 0 && sourceY < height else {
                fillWithZeroPixels(outputRow, pixelCount: width, lookup: lookup)
                continue
            }
            let sourceRow = source + sourceY * rowSize
            for x in 0..<width {
                let sourceX = (placement.flip ? width - 1 - x : x) + placement.columnShift
                let output = outputRow + x * channels
                guard sourceX >= 0 && sourceX < width else {
                    fillWithZeroPixels(output, pixelCount: 1, lookup: lookup)
                    continue
                }
                let input = sourceRow + sourceX * channels
                for channel in 0..<channels {
                    output[channel] = lookup[channel &* 256 &+ Int(input[channel])]
                }
            }
        }
    }

    /// Writes `pixelCount` padding pixels (zero bytes, normalised).
    private func fillWithZeroPixels(
        _ destination: UnsafeMutablePointer<Float>, pixelCount: Int,
        lookup: UnsafeBufferPointer<Float>
    ) {
        let channels = dataset.channels
        for pixel in 0..<pixelCount {
            for channel in 0..<channels {
                destination[pixel * channels + channel] = lookup[channel * 256]
            }
        }
    }

    /// The generator of one sample in one epoch: the epoch key and the index go through a
    /// 64-bit finaliser so neighbouring indices get unrelated streams (no allocation).
    static func sampleGenerator(epochKey: UInt64, index: Int) -> RandomGenerator {
        RandomGenerator(seed: mix(epochKey ^ mix(UInt64(truncatingIfNeeded: index) &+ 0x9E37_79B9_7F4A_7C15)))
    }

    /// The SplitMix64 output function.
    private static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
