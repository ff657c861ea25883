/// A data set pskd can train on, as one value: its name, what one sample looks like, its
/// classes, how its pixels are normalised, its usual training augmentation, and where its
/// samples come from. The known data sets are registered in one list, `DatasetSpec.all`
/// (DatasetRegistry.swift); the command line and config files look one up by name.
///
/// ```swift
/// let spec = try DatasetSpec.named("cifar10")
/// let train = try spec.load(.train, directory: "data/cifar-10-batches-bin")
/// let loader = BatchLoader(dataset: train, schedule: sampler,
///                          augmentation: spec.standardAugmentation, seed: 1)
/// ```
///
/// A new format is a new `SampleSource` (files read from a directory, or samples generated
/// from a seed, which needs no directory) and one more entry in `DatasetSpec.all`.
public struct DatasetSpec: Sendable {
    /// The name the command line and config files use (`fashion-mnist`, `cifar10`).
    public let name: String
    /// The name messages use (`Fashion-MNIST`, `CIFAR-10`).
    public let title: String
    /// Image height, width and channel count of one sample.
    public let height: Int, width: Int, channels: Int
    /// The number of classes; every label is in `0..<classCount`.
    public let classCount: Int
    /// Per-channel mean and standard deviation of the training split, in [0, 1] pixel units,
    /// normalising both splits: `(x / 255 − mean) / std`.
    public let mean: [Float], std: [Float]
    /// The usual training recipe, without CutMix; `--crop-padding` and `--flip` override it.
    public let standardAugmentation: AugmentationConfig
    /// Where an installed copy of the files is, used when no directory is given; nil if none.
    public let installedCopy: InstalledCopy?
    /// Where the samples come from: a reader of files in a directory, or a generator.
    public let source: any SampleSource

    /// A data set description; `mean` and `std` hold one value per channel.
    public init(
        name: String, title: String, height: Int, width: Int, channels: Int, classCount: Int,
        mean: [Float], std: [Float], standardAugmentation: AugmentationConfig,
        installedCopy: InstalledCopy? = nil, source: any SampleSource
    ) {
        (self.name, self.title, self.height, self.width, self.channels) = (name, title, height, width, channels)
        (self.classCount, self.mean, self.std) = (classCount, mean, std)
        (self.standardAugmentation, self.installedCopy, self.source) = (standardAugmentation, installedCopy, source)
    }

    /// Reads (or generates) `split` and builds the `Dataset`.
    ///
    /// - Parameters:
    ///   - split: the training or the test split.
    ///   - directory: where the files are; `nil` means the installed copy, if there is one.
    /// - Returns: the decoded split, with the data set's shape, classes and normalisation.
    /// - Throws: `DataError` naming the file, what was expected and found, and a remedy fitting
    ///   this data set and whether a directory was given.
    ///   - images: the shape and normalisation of images of any size (image folders and
    ///     shards); data sets of a fixed shape only take its `mean` and `std`.
    public func load(_ split: DatasetSplit, directory: String? = nil, images: ImageOptions = ImageOptions()) throws(DataError) -> Dataset {
        do {
            let dataset = try source.load(split, of: self, directory: directory ?? installedCopy?.directory, images: images)
            return try dataset.normalised(mean: images.mean, std: images.std)
        } catch {
            // A streamed collection's errors name the very file and what to do with it.
            throw streamsImages ? error : error.withRemedy(source.remedy(for: self, directory: directory))
        }
    }

    /// The usual training recipe for `dataset` (this spec's split): `RandomResizedCrop` and flip
    /// for streamed images of any size, else `standardAugmentation`.
    public func standardAugmentation(for dataset: Dataset) -> AugmentationConfig {
        guard case .streamed(let streamed) = dataset.images, case .resized = streamed.geometry else { return standardAugmentation }
        return AugmentationConfig(horizontalFlip: true, randomResizedCrop: true)
    }

    /// Whether the images are streamed from encoded files (image folders, shards), whose shape
    /// and class count come from the data.
    public var streamsImages: Bool { source is any ImageCollectionSource }
}

/// A copy of a data set's files installed by a system package, such as Debian's
/// `dataset-fashion-mnist`.
public struct InstalledCopy: Sendable {
    /// The directory holding the files.
    public let directory: String
    /// The package that installs them, for messages telling how to repair them.
    public let package: String

    public init(directory: String, package: String) {
        (self.directory, self.package) = (directory, package)
    }
}

/// Where a data set's samples come from: files in a directory (IDX, the CIFAR binary version),
/// or a procedure that generates them and reads nothing.
public protocol SampleSource: Sendable {
    /// The images and labels of `split`.
    ///
    /// - Parameters:
    ///   - spec: the data set, whose shape and class count the samples must have.
    ///   - split: the training or the test split.
    ///   - directory: the directory given, else the installed copy's; nil when there is neither
    ///     (a source that reads files then throws `missingFile`; a generator ignores it).
    /// - Returns: `pixels` holds `labels.count` images, `[count, height, width, channels]`
    ///   row-major (NHWC), one byte per value.
    func samples(
        of spec: DatasetSpec, split: DatasetSplit,
        directory: String?
    ) throws(DataError) -> (pixels: [UInt8], labels: [Int32])

    /// What to do when `samples` failed, given the directory the user passed (nil: none).
    func remedy(for spec: DatasetSpec, directory: String?) -> String

    /// The `Dataset` of `split`; by default the decoded `samples` with the spec's shape.
    /// Streamed collections build it from their index instead.
    func load(_ split: DatasetSplit, of spec: DatasetSpec, directory: String?, images: ImageOptions) throws(DataError) -> Dataset
}

extension SampleSource {
    func load(_ split: DatasetSplit, of spec: DatasetSpec, directory: String?, images: ImageOptions) throws(DataError) -> Dataset {
        let samples = try samples(of: spec, split: split, directory: directory)
        return Dataset(
            name: spec.name, split: split, height: spec.height, width: spec.width, channels: spec.channels,
            classCount: spec.classCount, pixels: samples.pixels, labels: samples.labels, mean: spec.mean, std: spec.std)
    }
}

extension Dataset {
    /// Loads the data set called `name` (one of `DatasetSpec.names`).
    ///
    /// - Parameter directory: where the files are; `nil` means the data set's installed copy
    ///   (`/usr/share/datasets/fashion-mnist/` for Fashion-MNIST).
    /// - Throws: `DataError` (`unknownDataset` for a name not in `DatasetSpec.names`).
    public static func load(name: String, split: DatasetSplit, directory: String? = nil) throws(DataError) -> Dataset {
        try DatasetSpec.named(name).load(split, directory: directory)
    }
}
