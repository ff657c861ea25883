/// The settings that shape a data set of images of any size (`--image-size`, `--eval-resize`,
/// `--mean`, `--std`); unset values take the data's own or torchvision's.
public struct ImageOptions: Sendable, Equatable {
    /// The side of the square training crop; nil: the images' own size when they are small
    /// (both sides at most `ImageOptions.smallImageSide`), else 224.
    public var imageSize: Int?
    /// Evaluation's shorter side before the centre crop; nil: `imageSize · 256 / 224`, rounded
    /// (256 for 224).
    public var evalResize: Int?
    /// Per-channel normalisation in [0, 1] pixel units; nil: the data set's (ImageNet's for
    /// image folders and shards).
    public var mean: [Float]?
    public var std: [Float]?

    public init(imageSize: Int? = nil, evalResize: Int? = nil, mean: [Float]? = nil, std: [Float]? = nil) {
        (self.imageSize, self.evalResize, self.mean, self.std) = (imageSize, evalResize, mean, std)
    }

    /// Images whose sides are both at most this (CIFAR's 32, Tiny ImageNet's 64) keep their size
    /// and the small-image recipe (zero-padded random crop and flip) unless `imageSize` is given.
    public static let smallImageSide = 64

    /// torchvision's ImageNet normalisation, which its recipes apply to every image data set.
    public static let imageNetMean: [Float] = [0.485, 0.456, 0.406]
    public static let imageNetStd: [Float] = [0.229, 0.224, 0.225]

    /// The evaluation resize for a crop of `side`: 256 · side / 224, rounded.
    static func defaultEvalResize(for side: Int) -> Int { Int((Double(side) * 256 / 224).rounded()) }
}

/// A source of encoded image files streamed sample by sample: an image folder or tar shards.
/// It builds each split's index and leaves the pixels on disk.
protocol ImageCollectionSource: SampleSource {
    /// The index of `split` under `directory`; the evaluation split is checked against the
    /// training split's classes.
    func store(_ split: DatasetSplit, in directory: String) throws(DataError) -> any EncodedImageStore
    /// What `--data-dir` must hold, for messages.
    var layout: String { get }
}

extension ImageCollectionSource {
    /// A streamed collection has no decoded arrays: `load` builds its `Dataset`.
    func samples(of spec: DatasetSpec, split: DatasetSplit, directory: String?) throws(DataError) -> (pixels: [UInt8], labels: [Int32]) {
        throw DataError(
            .invalidConfiguration, file: directory, expected: "a data set held in memory",
            found: "\(spec.name), whose images are streamed from files", remedy: "load it with DatasetSpec.load")
    }

    func load(_ split: DatasetSplit, of spec: DatasetSpec, directory: String?, images: ImageOptions) throws(DataError) -> Dataset {
        guard let directory else {
            throw DataError(
                .missingFile, file: nil, expected: "--data-dir with \(layout)", found: "no directory given",
                remedy: "pass --data-dir")
        }
        let store = try store(split, in: directory)
        let geometry = try Self.geometry(of: store, options: images)
        let (width, height): (Int, Int)
        switch geometry {
        case .fixed(let w, let h): (width, height) = (w, h)
        case .resized(let crop): (width, height) = (crop.cropSize, crop.cropSize)
        }
        return Dataset(
            name: spec.name, split: split, height: height, width: width, channels: 3,
            classCount: store.classNames.count, images: .streamed(StreamedImages(store: store, geometry: geometry)),
            labels: store.labels, mean: ImageOptions.imageNetMean, std: ImageOptions.imageNetStd)
    }

    func remedy(for spec: DatasetSpec, directory: String?) -> String {
        directory == nil ? "pass --data-dir with \(layout)" : "check that --data-dir holds \(layout)"
    }

    /// The geometry `options` ask for, or, without `--image-size`, the one the first sample's
    /// size implies (its header alone is read).
    static func geometry(of store: any EncodedImageStore, options: ImageOptions) throws(DataError) -> ImageGeometry {
        if let side = options.imageSize {
            return .resized(.init(cropSize: side, evalResize: options.evalResize ?? ImageOptions.defaultEvalResize(for: side)))
        }
        var bytes: [UInt8] = []
        let count = try store.readEncodedBytes(of: 0, into: &bytes)
        let size = try bytes.withUnsafeBufferPointer { (buffer) throws(DataError) in
            try ImageDecoder.size(
                of: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: buffer[0..<count])), source: "\(store.location(of: 0)) (sample 0)")
        }
        if max(size.width, size.height) <= ImageOptions.smallImageSide, options.evalResize == nil {
            return .fixed(width: size.width, height: size.height)
        }
        return .resized(.init(cropSize: 224, evalResize: options.evalResize ?? 256))
    }
}

/// `--dataset folder`: `DIR/train/CLASS/*.jpg|png` and `DIR/val/CLASS/…` (or `test/`).
struct ImageFolderFiles: ImageCollectionSource {
    var layout: String { "train/CLASS/… and val/CLASS/… (or test/CLASS/…) folders of .jpg, .jpeg or .png files" }

    func store(_ split: DatasetSplit, in directory: String) throws(DataError) -> any EncodedImageStore {
        try ImageFolderStore(directory: directory, split: split)
    }
}

/// `--dataset shards`: `DIR/train-*.tar` and `DIR/val-*.tar` (or `test-*.tar`), WebDataset style.
struct TarShardFiles: ImageCollectionSource {
    var layout: String { "train-*.tar and val-*.tar (or test-*.tar) shards of KEY.jpg|png + KEY.cls members (pskd pack writes them)" }

    func store(_ split: DatasetSplit, in directory: String) throws(DataError) -> any EncodedImageStore {
        split == .train ? try TarShardStore(directory: directory, split: .train) : try TarShardStore.open(directory: directory).test
    }
}
