/// Why a data set could not be read, or why a sampler or loader configuration is invalid.
///
/// Every error names the file involved (when there is one), what was expected, what was found
/// and what to do about it, so a user can act on the message without reading the code:
///
///     train-images-idx3-ubyte.gz: wrong magic number: expected 0x00000803 (IDX unsigned-byte
///     images, 3 dimensions), found 0x00000801. Fix: reinstall dataset-fashion-mnist …
public struct DataError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The kind of problem, for callers and tests that branch on it.
    public enum Kind: String, Sendable, Equatable {
        /// A file or directory does not exist or cannot be read.
        case missingFile
        /// A file's header does not start with the magic number of its format.
        case badMagic
        /// A file ends before the data its header announces, or holds more than it announces.
        case truncated
        /// A gzip stream is corrupt or ends early.
        case corruptCompression
        /// The images and labels of one split disagree on the number of samples.
        case countMismatch
        /// A label is not a valid class index.
        case labelOutOfRange
        /// A file of fixed-size records has a size that is not a whole number of records.
        case badRecordSize
        /// A header announces a shape other than the data set's.
        case badShape
        /// A data set name that no reader knows.
        case unknownDataset
        /// A sampler, augmentation or loader parameter that cannot work.
        case invalidConfiguration
        /// A JPEG or PNG file whose data cannot be decoded: damaged data, a bad CRC, an
        /// unsupported variant or an absurd size.
        case undecodableImage
        /// A directory is not laid out as its reader expects: a class folder missing, extra or
        /// without images, a symbolic link that loops back to a folder above it, no shards.
        case badLayout
        /// A record header is damaged: a tar header whose checksum does not match its bytes, or
        /// whose size field is not a number.
        case badHeader
    }

    /// The kind of problem.
    public let kind: Kind
    /// The file or directory involved, or `nil` for a configuration error.
    public let file: String?
    /// What the reader expected to find.
    public let expected: String
    /// What it found instead.
    public let found: String
    /// What the user should do.
    public let remedy: String

    /// An error of `kind` about `file` (nil when no file is involved).
    public init(_ kind: Kind, file: String?, expected: String, found: String, remedy: String) {
        self.kind = kind
        self.file = file
        self.expected = expected
        self.found = found
        self.remedy = remedy
    }

    /// The same error with another remedy, for a caller that knows where the file came from.
    public func withRemedy(_ newRemedy: String) -> DataError {
        DataError(kind, file: file, expected: expected, found: found, remedy: newRemedy)
    }

    public var description: String {
        let subject = file.map { "\($0): " } ?? ""
        return "\(subject)\(kind.summary): expected \(expected), found \(found). Fix: \(remedy)"
    }

    /// The generic advice for a damaged file; data set loaders replace it with a specific one.
    static let replaceDamagedFile = "replace the file with an intact copy of the data set"
}

extension DataError.Kind {
    /// A few words naming the problem, the start of the error message.
    var summary: String {
        switch self {
        case .missingFile: "missing file"
        case .badMagic: "wrong magic number"
        case .truncated: "wrong file size"
        case .corruptCompression: "corrupt gzip stream"
        case .countMismatch: "image and label counts differ"
        case .labelOutOfRange: "label out of range"
        case .badRecordSize: "wrong record size"
        case .badShape: "wrong image shape"
        case .unknownDataset: "unknown data set"
        case .invalidConfiguration: "invalid configuration"
        case .undecodableImage: "undecodable image"
        case .badLayout: "unexpected layout"
        case .badHeader: "damaged header"
        }
    }
}
