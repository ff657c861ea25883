/// Which part of a data set to load.
public enum DatasetSplit: String, Sendable, CaseIterable {
    case train
    case test
}

/// An image classification data set decoded into memory once: bytes in NHWC order plus labels.
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
    /// All images, `[count, height, width, channels]` row-major (NHWC), one byte per value.
    public let pixels: [UInt8]
    /// The class of each sample.
    public let labels: [Int32]
    /// Per-channel mean and standard deviation of the training split, in [0, 1] pixel units,
    /// used to normalise both splits: `(x / 255 − mean) / std`.
    public let mean: [Float]
    public let std: [Float]

    /// The number of samples.
    public var count: Int { labels.count }
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
        self.pixels = pixels
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
