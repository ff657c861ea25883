import Tensors

/// The shape of a synthetic data set: how many samples, classes and features.
public struct SyntheticShape: Sendable, Equatable {
    /// Training samples N.
    public var trainSamples: Int
    /// Test samples (a split of its own, drawn from the same class clusters).
    public var testSamples: Int
    /// Classes C.
    public var classes: Int
    /// Features D per sample.
    public var features: Int

    public init(trainSamples: Int, testSamples: Int, classes: Int, features: Int) {
        (self.trainSamples, self.testSamples, self.classes, self.features) = (trainSamples, testSamples, classes, features)
    }

    /// The shape `--dataset synthetic` has when no `--synthetic-*` setting is given.
    public static let standard = SyntheticShape(trainSamples: 60_000, testSamples: 10_000, classes: 10, features: 64)
}

/// Samples generated from a seed, reading nothing: Gaussian class clusters that a model can
/// learn well above chance, at any size (ImageNet's 1 281 167 × 1 000 included).
///
/// Class c has a centre whose D coordinates are each −1 or +1 (signs drawn from the seed);
/// a sample of class c is its centre plus independent normal noise of standard deviation
/// `noise` = 2 per coordinate, so two classes are told apart along their centres' difference with
/// a margin of about `√(differing coordinates)/noise` standard deviations (about 2.8 for
/// D = 64): learnable, not trivial. Sample i has label `i mod C` (balanced classes in every
/// prefix of C samples). A value x is stored as the byte `clamp(round(128 + 16·x), 0, 255)`
/// (`DatasetSpec.mean`/`std` undo the affine map), so the set takes N·D bytes: 82 MB for
/// N = 1 281 167, D = 64.
///
/// Every sample is drawn from its own stream, split from the seed by (split, index): the bytes
/// are the same on every rank, for any thread count, and a prefix of a larger set.
struct SyntheticSource: SampleSource {
    let shape: SyntheticShape
    let seed: UInt64

    /// Noise standard deviation per coordinate, in units of a centre coordinate.
    static let noise: Float = 2
    /// Bytes per unit of feature value, and the byte of value 0.
    static let scale: Float = 16, offset: Float = 128
    /// Samples generated per piece of work (a piece's bounds depend on the count alone).
    static let block = 4096

    func samples(
        of spec: DatasetSpec, split: DatasetSplit,
        directory: String?
    ) throws(DataError) -> (pixels: [UInt8], labels: [Int32]) {
        let count = split == .train ? shape.trainSamples : shape.testSamples
        let features = shape.features
        let centres = classCentres()
        let root = RandomGenerator(seed: seed).split(RandomStream.syntheticData)
        let splitKey: UInt64 = split == .train ? 1 : 2
        let labels = (0..<count).map { Int32($0 % shape.classes) }
        var pixels = [UInt8](repeating: 0, count: count * features)
        pixels.withUnsafeMutableBufferPointer { pixels in
            let output = pixels.baseAddress!
            Parallel.forEachBlock(of: count, size: Self.block) { block in
                for index in block {
                    var generator = root.split(splitKey, UInt64(index))
                    let centre = (index % shape.classes) * features
                    for feature in 0..<features {
                        let value = centres[centre + feature] + Self.noise * generator.nextNormal()
                        output[index * features + feature] = Self.byte(value)
                    }
                }
            }
        }
        return (pixels, labels)
    }

    func remedy(for spec: DatasetSpec, directory: String?) -> String {
        "synthetic data reads no files; check the --synthetic-* settings"
    }

    /// The C × D class centres, each coordinate −1 or +1.
    private func classCentres() -> [Float] {
        var generator = RandomGenerator(seed: seed).split(RandomStream.syntheticData, 0)
        return (0..<(shape.classes * shape.features)).map { _ in generator.next() & 1 == 0 ? -1 : 1 }
    }

    /// The stored byte of feature value `value`.
    static func byte(_ value: Float) -> UInt8 {
        UInt8(min(max((offset + scale * value).rounded(), 0), 255))
    }

    /// The mean and standard deviation of the stored bytes in [0, 1] units (every coordinate
    /// is ±1 plus noise: variance 1 + noise²), for normalising.
    static var normalisation: (mean: Float, std: Float) {
        (offset / 255, scale * (1 + noise * noise).squareRoot() / 255)
    }
}

extension DatasetSpec {
    /// The synthetic data set of `shape`, generated from `seed` (see `SyntheticSource`): each
    /// sample is a 1 × D "image" of one channel, which `mlp` takes as D inputs.
    public static func synthetic(_ shape: SyntheticShape, seed: UInt64) -> DatasetSpec {
        let (mean, std) = SyntheticSource.normalisation
        return DatasetSpec(
            name: "synthetic", title: "Synthetic", height: 1, width: shape.features, channels: 1, classCount: shape.classes,
            mean: [mean], std: [std], standardAugmentation: AugmentationConfig(cropPadding: 0, horizontalFlip: false),
            source: SyntheticSource(shape: shape, seed: seed))
    }
}
