/// A data set's encoded images and how each one becomes a sample of the data set's shape.
public struct StreamedImages: Sendable {
    /// Where the encoded bytes are (an image folder or tar shards).
    public let store: any EncodedImageStore
    /// How a decoded image of whatever size becomes the model's input.
    public let geometry: ImageGeometry

    public init(store: any EncodedImageStore, geometry: ImageGeometry) {
        (self.store, self.geometry) = (store, geometry)
    }
}

/// How a decoded image becomes a model input.
public enum ImageGeometry: Sendable, Equatable {
    /// Every image has the data set's size already (CIFAR-sized data): the small-image recipe
    /// applies as to data held in memory (zero-padded random crop, flip); an image of any other
    /// size is an error naming its file.
    case fixed(width: Int, height: Int)
    /// Images of any size (ImageNet's recipes): training crops with `RandomResizedCrop` to
    /// `cropSize`, evaluation resizes the shorter side to `evalResize` and centre-crops `cropSize`.
    case resized(ResizedCrop)

    /// The side of the square input and the settings of torchvision's ImageNet recipes.
    public struct ResizedCrop: Sendable, Equatable {
        /// The side of the square model input (torchvision's 224).
        public var cropSize: Int
        /// Evaluation: the shorter side is resized to this before the centre crop (256).
        public var evalResize: Int
        /// `RandomResizedCrop`'s range of the crop's area as a fraction of the image (0.08–1).
        public var scale: ClosedRange<Double>
        /// `RandomResizedCrop`'s range of the crop's aspect ratio, width / height (3/4–4/3).
        public var ratio: ClosedRange<Double>

        /// torchvision's recipe at `cropSize` (224) and `evalResize` (256).
        public init(
            cropSize: Int = 224, evalResize: Int = 256, scale: ClosedRange<Double> = 0.08...1, ratio: ClosedRange<Double> = 0.75...(4.0 / 3)
        ) {
            (self.cropSize, self.evalResize, self.scale, self.ratio) = (cropSize, evalResize, scale, ratio)
        }
    }
}

/// The memory one loader thread reuses for every streamed sample it prepares: the encoded
/// bytes, the decoder, the decoded image and the resampling buffers. Grows to the largest image
/// seen and never shrinks, so a thread allocates nothing per sample once warm.
final class SampleScratch {
    /// The encoded bytes of the current sample (its first `encodedCount`).
    var encoded: [UInt8] = []
    var encodedCount = 0
    let decoder = ImageDecoder()
    /// The current sample, decoded.
    var image = RGBImage()
    /// The resized image before the final crop and normalisation.
    var resized = ByteBuffer()
    var resampling = ResamplingScratch()

    /// Reads and decodes sample `index` of `streamed` into `image`.
    ///
    /// - Throws: `DataError` naming the file (or shard and offset) and the sample index.
    func decode(sample index: Int, of streamed: StreamedImages) throws(DataError) {
        encodedCount = try streamed.store.readEncodedBytes(of: index, into: &encoded)
        let count = encodedCount
        try encoded.withUnsafeBufferPointer { (bytes) throws(DataError) in
            try decoder.decode(
                UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[0..<count])), into: &image,
                source: "\(streamed.store.location(of: index)) (sample \(index))")
        }
    }
}

/// A growable byte buffer that keeps its storage.
struct ByteBuffer {
    var bytes: [UInt8] = []

    /// Makes room for at least `count` bytes.
    mutating func reserve(_ count: Int) {
        if bytes.count < count { bytes = [UInt8](repeating: 0, count: count) }
    }
}
