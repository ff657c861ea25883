/// The data sets pskd knows: the one place a data set is registered.
///
/// Normalisation uses the well-known per-channel statistics of each *training* split (the
/// same constants normalise the test split), in [0, 1] pixel units:
/// - Fashion-MNIST: mean 0.2860, std 0.3530 (checked against the real files in the tests);
/// - MNIST: mean 0.1307, std 0.3081;
/// - CIFAR-10: mean (0.4914, 0.4822, 0.4465), std (0.2470, 0.2435, 0.2616);
/// - CIFAR-100: mean (0.5071, 0.4865, 0.4409), std (0.2673, 0.2564, 0.2762).
///
/// Training augmentation: crop with padding 4 and flip for CIFAR (the paper's recipe); flip
/// without crop for Fashion-MNIST (garments are roughly mirror-symmetric, and the 28 × 28 images
/// are centred); nothing for MNIST (digits are not mirror-symmetric).
///
/// `synthetic` is listed with its standard shape and seed 1; a run builds it from its
/// `--synthetic-*` settings and `--seed` (`DatasetSpec.synthetic(_:seed:)`).
extension DatasetSpec {
    /// Every known data set, in the order help texts and messages list them.
    public static let all: [DatasetSpec] = [fashionMNIST, mnist, cifar10, cifar100, folder, shards, synthetic(.standard, seed: 1)]

    /// The registered names.
    public static var names: [String] { all.map(\.name) }

    /// The data set called `name` (case-insensitive).
    ///
    /// - Throws: `DataError.Kind.unknownDataset`, listing the known names.
    public static func named(_ name: String) throws(DataError) -> DatasetSpec {
        guard let spec = all.first(where: { $0.name == name.lowercased() }) else {
            throw DataError(
                .unknownDataset, file: nil, expected: "one of \(names.joined(separator: ", "))",
                found: "\"\(name)\"", remedy: "pass one of the listed names")
        }
        return spec
    }

    /// Zalando's Fashion-MNIST (IDX files), installed by Debian's `dataset-fashion-mnist`.
    public static let fashionMNIST = DatasetSpec(
        name: "fashion-mnist", title: "Fashion-MNIST", height: 28, width: 28, channels: 1, classCount: 10,
        mean: [0.2860], std: [0.3530],
        standardAugmentation: AugmentationConfig(cropPadding: 0, horizontalFlip: true),
        installedCopy: InstalledCopy(directory: "/usr/share/datasets/fashion-mnist/", package: "dataset-fashion-mnist"),
        source: IDXFiles())

    /// LeCun's MNIST digits (IDX files).
    public static let mnist = DatasetSpec(
        name: "mnist", title: "MNIST", height: 28, width: 28, channels: 1, classCount: 10,
        mean: [0.1307], std: [0.3081], standardAugmentation: AugmentationConfig(), source: IDXFiles())

    /// A user's image folder (`DIR/train/CLASS/…`, `DIR/val/CLASS/…`), JPEG and PNG files of any
    /// size, streamed. The shape and class count come from the data; the ones listed here
    /// (ImageNet's 224 × 224 × 3, 1 000 classes) are what `pskd bench` measures with.
    /// Normalisation is ImageNet's unless `--mean`/`--std` say otherwise; the standard training
    /// recipe is `RandomResizedCrop` + flip for large images, padded crop + flip for small ones.
    public static let folder = DatasetSpec(
        name: "folder", title: "image folder", height: 224, width: 224, channels: 3, classCount: 1000,
        mean: ImageOptions.imageNetMean, std: ImageOptions.imageNetStd,
        standardAugmentation: AugmentationConfig(cropPadding: 4, horizontalFlip: true), source: ImageFolderFiles())

    /// Tar shards in the WebDataset convention (`DIR/train-*.tar`, `DIR/val-*.tar`; `pskd pack`
    /// writes them from an image folder), streamed by offset; otherwise as `folder`.
    public static let shards = DatasetSpec(
        name: "shards", title: "tar shards", height: 224, width: 224, channels: 3, classCount: 1000,
        mean: ImageOptions.imageNetMean, std: ImageOptions.imageNetStd,
        standardAugmentation: AugmentationConfig(cropPadding: 4, horizontalFlip: true), source: TarShardFiles())

    /// CIFAR-10, binary version.
    public static let cifar10 = DatasetSpec(
        name: "cifar10", title: "CIFAR-10", height: CIFARReader.side, width: CIFARReader.side,
        channels: CIFARReader.channels, classCount: CIFARReader.Variant.cifar10.classCount,
        mean: [0.4914, 0.4822, 0.4465], std: [0.2470, 0.2435, 0.2616],
        standardAugmentation: AugmentationConfig(cropPadding: 4, horizontalFlip: true),
        source: CIFARFiles(variant: .cifar10))

    /// CIFAR-100 (fine labels), binary version.
    public static let cifar100 = DatasetSpec(
        name: "cifar100", title: "CIFAR-100", height: CIFARReader.side, width: CIFARReader.side,
        channels: CIFARReader.channels, classCount: CIFARReader.Variant.cifar100.classCount,
        mean: [0.5071, 0.4865, 0.4409], std: [0.2673, 0.2564, 0.2762],
        standardAugmentation: AugmentationConfig(cropPadding: 4, horizontalFlip: true),
        source: CIFARFiles(variant: .cifar100))
}
