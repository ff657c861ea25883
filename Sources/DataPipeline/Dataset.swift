import Tensors

/// Which part of a data set to load.
public enum DatasetSplit: String, Sendable, CaseIterable {
    case train
    case test
}

/// An image classification data set: its samples' labels, the shape a sample has when it reaches
/// the model, and the images themselves — decoded into memory once (IDX, CIFAR binary, synthetic),
/// or streamed: encoded JPEG/PNG files read, decoded and resized sample by sample on the loader's
/// threads (image folders, tar shards), so that memory does not grow with the data set.
///
/// Samples are addressed by their *global index* `0..<count`, the index the sampler hands out,
/// the loader puts in every batch and the PS-KD teacher table is keyed by.
public struct Dataset: Sendable {
    /// The data set's name, such as `fashion-mnist`.
    public let name: String
    /// Which split this is.
    public let split: DatasetSplit
    /// Image height, width and channel count.
    public let height: Int
    public let width: Int
    public let channels: Int
    /// The number of classes; every label is in `0..<classCount`.
    public let classCount: Int
    /// Where the images are: decoded in memory, or streamed from encoded files.
    public let images: DatasetImages
    /// The class of each sample.
    public let labels: [Int32]
    /// Per-channel mean and standard deviation of the training split, in [0, 1] pixel units,
    /// used to normalise both splits: `(x / 255 − mean) / std`.
    public let mean: [Float]
    public let std: [Float]

    /// The number of samples.
    public var count: Int { labels.count }

    /// The decoded images, `[count, height, width, channels]` row-major (NHWC), one byte per
    /// value; only for a data set held in memory (`images` is `.decoded`).
    public var pixels: [UInt8] {
        guard case .decoded(let pixels) = images else {
            preconditionFailure("\(name) streams its images from files: it has no decoded pixels in memory")
        }
        return pixels
    }

    /// The class names in class-index order: an image collection's, else the class numbers.
    public var classNames: [String] {
        if case .streamed(let streamed) = images { return streamed.store.classNames }
        return (0..<classCount).map(String.init)
    }

    /// Whether the images are streamed from encoded files rather than held in memory.
    public var isStreamed: Bool {
        if case .streamed = images { return true }
        return false
    }

    /// This data set normalised with `mean` and `std` where given (one value per channel,
    /// each standard deviation positive).
    ///
    /// - Throws: `invalidConfiguration` naming `--mean`/`--std` when the counts or values do not fit.
    public func normalised(mean newMean: [Float]?, std newStd: [Float]?) throws(DataError) -> Dataset {
        guard newMean != nil || newStd != nil else { return self }
        for (flag, values) in [("--mean", newMean), ("--std", newStd)] {
            guard let values else { continue }
            guard values.count == channels else {
                throw DataError(
                    .invalidConfiguration, file: nil, expected: "\(flag) with \(channels) value(s), one per channel of \(name)",
                    found: "\(values.count) value(s)", remedy: "give \(channels) comma-separated value(s) to \(flag)")
            }
            guard values.allSatisfy({ $0.isFinite && (flag == "--mean" || $0 > 0) }) else {
                throw DataError(
                    .invalidConfiguration, file: nil, expected: "\(flag) values that are finite\(flag == "--std" ? " and positive" : "")",
                    found: values.map { "\($0)" }.joined(separator: ","),
                    remedy: "give values in [0, 1] pixel units, such as 0.229,0.224,0.225")
            }
        }
        return Dataset(
            name: name, split: split, height: height, width: width, channels: channels, classCount: classCount,
            images: images, labels: labels, mean: newMean ?? mean, std: newStd ?? std)
    }

    /// At most `limit` samples (all when `limit` is nil or not smaller): the first `limit` of a
    /// data set held in memory (IDX and CIFAR files are stored in no class order), and for a
    /// streamed collection (stored class by class) a subset drawn from every class in proportion
    /// to its size, fixed by `seed` and the split (`classProportionalSubset`).
    public func limited(to limit: Int?, seed: UInt64) throws(DataError) -> Dataset {
        guard let limit, limit < count else { return self }
        switch images {
        case .decoded(let pixels):
            return Dataset(
                name: name, split: split, height: height, width: width, channels: channels,
                classCount: classCount, pixels: Array(pixels.prefix(limit * sampleSize)),
                labels: Array(labels.prefix(limit)), mean: mean, std: std)
        case .streamed(let streamed):
            let generator = RandomGenerator(seed: seed).split(split == .train ? 0 : 1)
            let subset = try classProportionalSubset(of: streamed.store, count: limit, generator: generator)
            return Dataset(
                name: name, split: split, height: height, width: width, channels: channels, classCount: classCount,
                images: .streamed(StreamedImages(store: subset, geometry: streamed.geometry)), labels: subset.labels,
                mean: mean, std: std)
        }
    }

    /// This data set with other labels (one per sample), for label noise.
    public func with(labels newLabels: [Int32]) -> Dataset {
        precondition(newLabels.count == count, "\(name): \(newLabels.count) labels for \(count) samples")
        return Dataset(
            name: name, split: split, height: height, width: width, channels: channels, classCount: classCount,
            images: images, labels: newLabels, mean: mean, std: std)
    }
    /// Bytes (and floats, once normalised) per image: `height × width × channels`.
    public var sampleSize: Int { height * width * channels }

    /// A data set from decoded arrays. `pixels` must hold `labels.count` NHWC images.
    public init(
        name: String, split: DatasetSplit, height: Int, width: Int, channels: Int,
        classCount: Int, pixels: [UInt8], labels: [Int32], mean: [Float], std: [Float]
    ) {
        precondition(
            pixels.count == labels.count * height * width * channels,
            "\(name): \(pixels.count) pixel bytes do not make \(labels.count) images of \(height)×\(width)×\(channels)")
        self.init(
            name: name, split: split, height: height, width: width, channels: channels, classCount: classCount,
            images: .decoded(pixels), labels: labels, mean: mean, std: std)
    }

    /// A data set of `images` (decoded or streamed) whose samples reach the model as
    /// `height × width × channels`.
    public init(
        name: String, split: DatasetSplit, height: Int, width: Int, channels: Int,
        classCount: Int, images: DatasetImages, labels: [Int32], mean: [Float], std: [Float]
    ) {
        precondition(
            mean.count == channels && std.count == channels,
            "\(name): need one mean and std per channel (\(channels)), got \(mean.count) and \(std.count)")
        precondition(
            labels.allSatisfy { $0 >= 0 && Int($0) < classCount },
            "\(name): labels must be in 0..<\(classCount)")
        self.name = name
        self.split = split
        self.height = height
        self.width = width
        self.channels = channels
        self.classCount = classCount
        self.images = images
        self.labels = labels
        self.mean = mean
        self.std = std
    }

    /// The per-channel mean and population standard deviation of `pixels` in [0, 1] units, for
    /// checking the constants of a `DatasetSpec` or normalising a data set without them.
    public static func channelStatistics(pixels: [UInt8], channels: Int) -> (mean: [Float], std: [Float]) {
        let valuesPerChannel = Double(max(pixels.count / channels, 1))
        var mean: [Float] = []
        var std: [Float] = []
        pixels.withUnsafeBufferPointer { buffer in
            for channel in 0..<channels {
                var (sum, sumOfSquares): (UInt64, UInt64) = (0, 0)
                for position in stride(from: channel, to: buffer.count, by: channels) {
                    let value = UInt64(buffer[position])
                    sum += value
                    sumOfSquares += value * value
                }
                let average = Double(sum) / valuesPerChannel / 255
                let variance = Double(sumOfSquares) / valuesPerChannel / (255 * 255) - average * average
                mean.append(Float(average))
                std.append(Float(max(variance, 0).squareRoot()))
            }
        }
        return (mean, std)
    }
}

/// Where a data set's images are.
public enum DatasetImages: Sendable {
    /// Every image decoded in memory: `[count, height, width, channels]` bytes, NHWC.
    case decoded([UInt8])
    /// Encoded image files, read and decoded one sample at a time by the loader.
    case streamed(StreamedImages)
}
