/// The data sets pskd can read, with their file names, shapes and normalisation constants.
///
/// Normalisation uses the well-known per-channel statistics of each *training* split (the
/// same constants normalise the test split), in [0, 1] pixel units:
/// - Fashion-MNIST: mean 0.2860, std 0.3530 (checked against the real files in the tests);
/// - MNIST: mean 0.1307, std 0.3081;
/// - CIFAR-10: mean (0.4914, 0.4822, 0.4465), std (0.2470, 0.2435, 0.2616);
/// - CIFAR-100: mean (0.5071, 0.4865, 0.4409), std (0.2673, 0.2564, 0.2762).
public enum DatasetKind: String, Sendable, CaseIterable {
    case fashionMNIST = "fashion-mnist"
    case mnist
    case cifar10
    case cifar100

    /// The kind called `name`, or an `unknownDataset` error listing the known names.
    public init(name: String) throws(DataError) {
        guard let kind = DatasetKind(rawValue: name.lowercased()) else {
            throw DataError(.unknownDataset, file: nil,
                            expected: "one of \(DatasetKind.allCases.map(\.rawValue).joined(separator: ", "))",
                            found: "\"\(name)\"", remedy: "pass one of the listed names")
        }
        self = kind
    }

    /// Where the files are when no directory is given: Debian's `dataset-fashion-mnist`
    /// location for Fashion-MNIST, none for the others.
    public var defaultDirectory: String? {
        self == .fashionMNIST ? "/usr/share/datasets/fashion-mnist/" : nil
    }

    /// Image side, channel count and class count.
    public var imageSide: Int { isCIFAR ? CIFARReader.side : 28 }
    public var channels: Int { isCIFAR ? CIFARReader.channels : 1 }
    public var classCount: Int { self == .cifar100 ? 100 : 10 }

    /// Per-channel training-split mean and standard deviation (see the type's documentation).
    public var normalisation: (mean: [Float], std: [Float]) {
        switch self {
        case .fashionMNIST: ([0.2860], [0.3530])
        case .mnist: ([0.1307], [0.3081])
        case .cifar10: ([0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616])
        case .cifar100: ([0.5071, 0.4865, 0.4409], [0.2673, 0.2564, 0.2762])
        }
    }

    var isCIFAR: Bool { self == .cifar10 || self == .cifar100 }

    /// The files of `split`, for messages: IDX base names (each also accepted with `.gz`).
    func fileNames(_ split: DatasetSplit) -> [String] {
        switch (self, split) {
        case (.fashionMNIST, .train), (.mnist, .train): ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"]
        case (.fashionMNIST, .test), (.mnist, .test): ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
        case (.cifar10, .train): (1...5).map { "data_batch_\($0).bin" }
        case (.cifar10, .test): ["test_batch.bin"]
        case (.cifar100, .train): ["train.bin"]
        case (.cifar100, .test): ["test.bin"]
        }
    }

    /// What to do when the files in `directory` (nil: the default) are missing or damaged.
    func remedy(directory: String?) -> String {
        let files = DatasetKind.allSplitFiles(self).joined(separator: ", ")
        switch (self, directory) {
        case (.fashionMNIST, nil):
            return "reinstall Debian's dataset-fashion-mnist (apt-get install --reinstall dataset-fashion-mnist) or pass --data-dir with \(files)"
        case (.fashionMNIST, let directory?):
            return "put intact copies of \(files) (plain or .gz) in \(directory), or drop --data-dir to use dataset-fashion-mnist"
        case (.mnist, _):
            return "pass --data-dir with intact MNIST files \(files) (plain or .gz)"
        case (.cifar10, _), (.cifar100, _):
            return "pass --data-dir with the intact \(self == .cifar10 ? "CIFAR-10" : "CIFAR-100") binary version (\(files))"
        }
    }

    private static func allSplitFiles(_ kind: DatasetKind) -> [String] {
        DatasetSplit.allCases.flatMap(kind.fileNames)
    }

    /// Reads `split` from `directory` with the kind's reader and builds the `Dataset`.
    func read(split: DatasetSplit, directory: String?) throws(DataError) -> Dataset {
        guard let directory else {
            throw DataError(.missingFile, file: nil, expected: "a directory holding \(fileNames(split).joined(separator: ", "))",
                            found: "no directory given and no default for \(rawValue)", remedy: "pass --data-dir")
        }
        let (pixels, labels) = isCIFAR
            ? try readCIFAR(split: split, directory: directory)
            : try readIDX(split: split, directory: directory)
        let (mean, std) = normalisation
        return Dataset(name: rawValue, split: split, height: imageSide, width: imageSide, channels: channels,
                      classCount: classCount, pixels: pixels, labels: labels, mean: mean, std: std)
    }

    private func readIDX(split: DatasetSplit, directory: String) throws(DataError) -> ([UInt8], [Int32]) {
        let names = fileNames(split)
        let imagePath = try FileBytes.locate([names[0], names[0] + ".gz"], in: directory)
        let labelPath = try FileBytes.locate([names[1], names[1] + ".gz"], in: directory)
        let images = try IDXReader.readImages(imagePath)
        guard images.rows == imageSide, images.columns == imageSide else {
            throw DataError(.badShape, file: imagePath, expected: "\(imageSide) × \(imageSide) images",
                            found: "\(images.rows) × \(images.columns)", remedy: DataError.replaceDamagedFile)
        }
        let labels = try IDXReader.readLabels(labelPath, classCount: classCount)
        guard labels.count == images.count else {
            throw DataError(.countMismatch, file: labelPath,
                            expected: "\(images.count) labels, one per image of \(imagePath)",
                            found: "\(labels.count) labels", remedy: DataError.replaceDamagedFile)
        }
        return (images.pixels, labels)
    }

    private func readCIFAR(split: DatasetSplit, directory: String) throws(DataError) -> ([UInt8], [Int32]) {
        var paths: [String] = []
        for name in fileNames(split) {
            paths.append(try FileBytes.locate([name], in: directory))
        }
        let records = try CIFARReader.read(paths, variant: self == .cifar10 ? .cifar10 : .cifar100)
        return (records.pixels, records.labels)
    }
}
