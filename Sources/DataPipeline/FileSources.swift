/// A sample source that reads a fixed list of files per split from a directory.
protocol FileSource: SampleSource {
    /// The files of `split`, in reading order (for IDX, the base names, also accepted with `.gz`).
    func fileNames(_ split: DatasetSplit) -> [String]
    /// Whether a gzip-compressed copy (`name.gz`) of each file is accepted.
    var acceptsGzip: Bool { get }
    /// Decodes `split` from the files in `directory`.
    func read(_ split: DatasetSplit, of spec: DatasetSpec, from directory: String) throws(DataError) -> (pixels: [UInt8], labels: [Int32])
    /// What to do when the files in the directory passed with `--data-dir` are missing or
    /// damaged and there is no installed copy; `files` lists every file of both splits.
    func dataDirectoryRemedy(for spec: DatasetSpec, files: String) -> String
}

extension FileSource {
    func samples(
        of spec: DatasetSpec, split: DatasetSplit,
        directory: String?
    ) throws(DataError) -> (pixels: [UInt8], labels: [Int32]) {
        guard let directory else {
            throw DataError(
                .missingFile, file: nil, expected: "a directory holding \(fileNames(split).joined(separator: ", "))",
                found: "no directory given and no default for \(spec.name)", remedy: "pass --data-dir")
        }
        return try read(split, of: spec, from: directory)
    }

    func remedy(for spec: DatasetSpec, directory: String?) -> String {
        let files = DatasetSplit.allCases.flatMap(fileNames).joined(separator: ", ")
        switch (spec.installedCopy, directory) {
        case (let copy?, nil):
            return "reinstall Debian's \(copy.package) (apt-get install --reinstall \(copy.package)) or pass --data-dir with \(files)"
        case (let copy?, let directory?):
            return
                "put intact copies of \(files)\(acceptsGzip ? " (plain or .gz)" : "") in \(directory), or drop --data-dir to use \(copy.package)"
        case (nil, _):
            return dataDirectoryRemedy(for: spec, files: files)
        }
    }
}

/// MNIST-style IDX files: an image file and a label file per split, plain or gzip-compressed.
struct IDXFiles: FileSource {
    var acceptsGzip: Bool { true }

    func fileNames(_ split: DatasetSplit) -> [String] {
        switch split {
        case .train: ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"]
        case .test: ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
        }
    }

    func read(_ split: DatasetSplit, of spec: DatasetSpec, from directory: String) throws(DataError) -> (pixels: [UInt8], labels: [Int32]) {
        let names = fileNames(split)
        let imagePath = try FileBytes.locate([names[0], names[0] + ".gz"], in: directory)
        let labelPath = try FileBytes.locate([names[1], names[1] + ".gz"], in: directory)
        let images = try IDXReader.readImages(imagePath)
        guard images.rows == spec.height, images.columns == spec.width else {
            throw DataError(
                .badShape, file: imagePath, expected: "\(spec.height) × \(spec.width) images",
                found: "\(images.rows) × \(images.columns)", remedy: DataError.replaceDamagedFile)
        }
        let labels = try IDXReader.readLabels(labelPath, classCount: spec.classCount)
        guard labels.count == images.count else {
            throw DataError(
                .countMismatch, file: labelPath,
                expected: "\(images.count) labels, one per image of \(imagePath)",
                found: "\(labels.count) labels", remedy: DataError.replaceDamagedFile)
        }
        return (images.pixels, labels)
    }

    func dataDirectoryRemedy(for spec: DatasetSpec, files: String) -> String {
        "pass --data-dir with intact \(spec.title) files \(files) (plain or .gz)"
    }
}

/// The binary version of CIFAR-10 or CIFAR-100: fixed-size records in one or more files per split.
struct CIFARFiles: FileSource {
    let variant: CIFARReader.Variant

    var acceptsGzip: Bool { false }

    func fileNames(_ split: DatasetSplit) -> [String] {
        switch (variant, split) {
        case (.cifar10, .train): (1...5).map { "data_batch_\($0).bin" }
        case (.cifar10, .test): ["test_batch.bin"]
        case (.cifar100, .train): ["train.bin"]
        case (.cifar100, .test): ["test.bin"]
        }
    }

    func read(_ split: DatasetSplit, of spec: DatasetSpec, from directory: String) throws(DataError) -> (pixels: [UInt8], labels: [Int32]) {
        var paths: [String] = []
        for name in fileNames(split) {
            paths.append(try FileBytes.locate([name], in: directory))
        }
        let records = try CIFARReader.read(paths, variant: variant)
        return (records.pixels, records.labels)
    }

    func dataDirectoryRemedy(for spec: DatasetSpec, files: String) -> String {
        "pass --data-dir with the intact \(spec.title) binary version (\(files))"
    }
}
