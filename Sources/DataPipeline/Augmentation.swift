import Tensors

/// Which augmentations to apply. Normalisation `(x / 255 − mean) / std` is always applied.
public struct AugmentationConfig: Sendable, Equatable {
    /// Zero padding on each side before a random crop back to the original size; 0 = no crop.
    public var cropPadding: Int
    /// Whether to flip each image horizontally with probability 0.5.
    public var horizontalFlip: Bool
    /// Probability that a batch gets CutMix; 0 = off. `defaultCutMixProbability` is the paper's.
    public var cutMixProbability: Double
    /// Whether streamed images of any size are cropped with torchvision's `RandomResizedCrop`
    /// (the ImageNet training recipe); when false they are resized and centre-cropped (the
    /// evaluation recipe). Ignored by images that have the data set's size already.
    public var randomResizedCrop: Bool

    /// The CutMix paper's probability (Yun et al., 2019), for when CutMix is turned on.
    public static let defaultCutMixProbability = 0.5

    public init(cropPadding: Int = 0, horizontalFlip: Bool = false, cutMixProbability: Double = 0, randomResizedCrop: Bool = false) {
        precondition(cropPadding >= 0, "crop padding must be non-negative, got \(cropPadding)")
        precondition((0...1).contains(cutMixProbability), "CutMix probability must be in [0, 1], got \(cutMixProbability)")
        self.cropPadding = cropPadding
        self.horizontalFlip = horizontalFlip
        self.cutMixProbability = cutMixProbability
        self.randomResizedCrop = randomResizedCrop
    }

    /// Normalisation only: for evaluation.
    public static let none = AugmentationConfig()

    /// The recipe in words, for messages: "RandomResizedCrop + flip", "crop (padding 4) + flip".
    public var summary: String {
        var parts: [String] = []
        if randomResizedCrop { parts.append("RandomResizedCrop") }
        if cropPadding > 0 { parts.append("crop (padding \(cropPadding))") }
        if horizontalFlip { parts.append("flip") }
        if cutMixProbability > 0 { parts.append("CutMix \(cutMixProbability)") }
        return parts.isEmpty ? "no augmentation" : parts.joined(separator: " + ")
    }
}

/// Per-sample augmentation: random crop with zero padding, horizontal flip, normalisation; for
/// streamed images of any size, torchvision's `RandomResizedCrop` (training) or resize and
/// centre crop (evaluation) first.
///
/// Each sample's random draws come from its own generator keyed by (seed, epoch, global sample
/// index), never by rank, thread or position in the batch, so a sample is augmented identically
/// whatever the number of ranks or loader threads, and differently in every epoch. Padding pixels
/// are zero bytes, normalised like any other pixel (as torchvision's `RandomCrop(padding:)` then
/// `Normalize`). Decoding and resampling are integer arithmetic, so streamed inputs are the same
/// bytes on every CPU too.
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
    public func augmentedSample(index: Int, epoch: Int) throws(DataError) -> [Float] {
        var output = [Float](repeating: 0, count: dataset.sampleSize)
        try output.withUnsafeMutableBufferPointer { (buffer) throws(DataError) in
            try [index].withUnsafeBufferPointer { (indices) throws(DataError) in
                try augment(indices: indices, epoch: epoch, into: buffer.baseAddress!)
            }
        }
        return output
    }

    /// Writes the augmented images of `indices` in `epoch`, one after another, at `output`, on
    /// the calling thread.
    ///
    /// - Throws: `DataError` when a streamed image cannot be read or decoded, naming its file.
    public func augment(indices: UnsafeBufferPointer<Int>, epoch: Int, into output: UnsafeMutablePointer<Float>) throws(DataError) {
        let scratch = SampleScratch()
        let key = epochKey(epoch)
        for row in indices.indices {
            try augmentSample(indices[row], epochKey: key, into: output + row * dataset.sampleSize, scratch: scratch)
        }
    }

    /// The key of `epoch` that `augmentSample` mixes with each sample's index.
    func epochKey(_ epoch: Int) -> UInt64 {
        var epochGenerator = RandomGenerator(seed: seed).split(RandomStream.augmentation, UInt64(epoch))
        return epochGenerator.next()
    }

    /// Writes sample `index`'s augmented image (`dataset.sampleSize` floats) at `output`, using
    /// `scratch` (one per thread) for a streamed image's bytes and intermediate images.
    func augmentSample(
        _ index: Int, epochKey: UInt64, into output: UnsafeMutablePointer<Float>, scratch: SampleScratch
    ) throws(DataError) {
        var random = Self.sampleGenerator(epochKey: epochKey, index: index)
        switch dataset.images {
        case .decoded(let pixels):
            let placement = drawPlacement(&random)
            pixels.withUnsafeBufferPointer { pixels in
                copy(
                    pixels.baseAddress! + index * dataset.sampleSize, width: dataset.width, height: dataset.height,
                    to: output, placement: placement)
            }
        case .streamed(let streamed):
            try scratch.decode(sample: index, of: streamed)
            try place(scratch.image, of: index, in: streamed, random: &random, into: output, scratch: scratch)
        }
    }

    /// Crops, resizes, mirrors and normalises one decoded image as the data set's geometry says.
    private func place(
        _ image: RGBImage, of index: Int, in streamed: StreamedImages, random: inout RandomGenerator,
        into output: UnsafeMutablePointer<Float>, scratch: SampleScratch
    ) throws(DataError) {
        switch streamed.geometry {
        case .fixed:
            guard image.width == dataset.width, image.height == dataset.height else {
                throw DataError(
                    .badShape, file: streamed.store.location(of: index),
                    expected: "a \(dataset.width)×\(dataset.height) image like the others of \(streamed.store.summary) (sample \(index))",
                    found: "\(image.width)×\(image.height)",
                    remedy: "resize it to \(dataset.width)×\(dataset.height), or pass --image-size to crop and resize images of any size")
            }
            let placement = drawPlacement(&random)
            image.pixels.withUnsafeBufferPointer { pixels in
                copy(pixels.baseAddress!, width: image.width, height: image.height, to: output, placement: placement)
            }
        case .resized(let crop):
            let side = crop.cropSize
            var placement = Placement()
            let box: CropBox
            let (resizedWidth, resizedHeight): (Int, Int)
            if config.randomResizedCrop {
                box = RandomResizedCrop.box(
                    width: image.width, height: image.height, scale: crop.scale, ratio: crop.ratio, random: &random)
                (resizedWidth, resizedHeight) = (side, side)
                if config.horizontalFlip { placement.flip = random.nextUniform() < 0.5 }
            } else {
                box = CropBox(top: 0, left: 0, height: image.height, width: image.width)
                (resizedWidth, resizedHeight) = Resize.outputSize(width: image.width, height: image.height, shorterSide: crop.evalResize)
                let centre = CenterCrop.box(width: resizedWidth, height: resizedHeight, cropWidth: side, cropHeight: side)
                (placement.rowShift, placement.columnShift) = (centre.top, centre.left)
            }
            scratch.resized.reserve(resizedWidth * resizedHeight * 3)
            scratch.resized.bytes.withUnsafeMutableBufferPointer { resized in
                // torchvision's resized_crop crops, then resizes the crop alone: `.box` edges.
                Resampling.resizeBilinear(
                    image, box: box, toWidth: resizedWidth, height: resizedHeight, edges: .box, into: resized.baseAddress!,
                    scratch: &scratch.resampling)
                copy(
                    resized.baseAddress!, width: resizedWidth, height: resizedHeight, to: output, placement: placement)
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

    /// Copies the data set's `height × width` window of an image of `width × height` pixels
    /// (the window's top-left at the placement's shifts, outside the image zero padding),
    /// optionally mirrored, normalising each value.
    private func copy(
        _ source: UnsafePointer<UInt8>, width sourceWidth: Int, height sourceHeight: Int,
        to destination: UnsafeMutablePointer<Float>, placement: Placement
    ) {
        let (height, width, channels) = (dataset.height, dataset.width, dataset.channels)
        lookup.withUnsafeBufferPointer { lookup in
            let rowSize = width * channels
            for y in 0..<height {
                let sourceY = y + placement.rowShift
                let outputRow = destination + y * rowSize
                guard sourceY >= 0 && sourceY < sourceHeight else {
                    fillWithZeroPixels(outputRow, pixelCount: width, lookup: lookup)
                    continue
                }
                let sourceRow = source + sourceY * sourceWidth * channels
                for x in 0..<width {
                    let sourceX = (placement.flip ? width - 1 - x : x) + placement.columnShift
                    let output = outputRow + x * channels
                    guard sourceX >= 0 && sourceX < sourceWidth else {
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
