/// Reads the binary versions of CIFAR-10 and CIFAR-100.
///
/// Each file is a sequence of fixed-size records: the label byte(s), then a 32 × 32 colour
/// image as 1024 red, 1024 green and 1024 blue bytes (channels first, rows row-major).
/// CIFAR-10 records have one label (10 classes); CIFAR-100 records a coarse label (20
/// superclasses) then a fine label (100 classes), and we keep the fine one. Pixels are
/// converted to channels-last (HWC) order as they are read.
public enum CIFARReader {
    /// The two binary layouts.
    public enum Variant: Sendable {
        case cifar10
        case cifar100

        /// Label bytes at the start of each record.
        var labelBytes: Int { self == .cifar10 ? 1 : 2 }
        /// The number of classes of the label we keep.
        public var classCount: Int { self == .cifar10 ? 10 : 100 }
        /// Bytes per record: labels plus 3 × 32 × 32 pixels.
        var recordSize: Int { labelBytes + CIFARReader.imageBytes }
    }

    /// Images and labels read from one or more files, concatenated in order.
    public struct Records: Sendable {
        public var pixels: [UInt8] = []  // NHWC, [count, 32, 32, 3]
        public var labels: [Int32] = []
        public var count: Int { labels.count }
    }

    /// Image side length and channel count of CIFAR.
    public static let side = 32
    public static let channels = 3
    static let imageBytes = side * side * channels

    /// The records of every file in `paths`, in order.
    public static func read(_ paths: [String], variant: Variant) throws(DataError) -> Records {
        var records = Records()
        for path in paths {
            try append(path, variant: variant, to: &records)
        }
        return records
    }

    private static func append(_ path: String, variant: Variant, to records: inout Records) throws(DataError) {
        let bytes = try FileBytes.read(path)
        let recordCount = try wholeRecordCount(bytes.count, variant: variant, file: path)
        if variant == .cifar100 {
            _ = try LabelValidation.checked(
                strided(bytes, offset: 0, variant: variant, count: recordCount),
                classCount: 20, file: path, what: "coarse label")
        }
        let fineLabels = strided(bytes, offset: variant.labelBytes - 1, variant: variant, count: recordCount)
        records.labels += try LabelValidation.checked(fineLabels, classCount: variant.classCount, file: path)
        appendPixels(bytes, variant: variant, count: recordCount, to: &records.pixels)
    }

    /// The number of records in a file of `byteCount` bytes, which must be a positive multiple
    /// of the record size.
    private static func wholeRecordCount(_ byteCount: Int, variant: Variant, file: String) throws(DataError) -> Int {
        let size = variant.recordSize
        guard byteCount > 0, byteCount % size == 0 else {
            let labels = variant == .cifar10 ? "1 label byte" : "2 label bytes (coarse, fine)"
            throw DataError(
                .badRecordSize, file: file,
                expected: "a positive multiple of \(size) bytes (\(labels) + \(imageBytes) pixel bytes per image)",
                found: "\(byteCount) bytes (\(byteCount / size) whole records and \(byteCount % size) bytes more)",
                remedy: "check that the file is from the \(variant == .cifar10 ? "CIFAR-10" : "CIFAR-100") binary version and is complete")
        }
        return byteCount / size
    }

    /// The byte at `offset` of each of the first `count` records.
    private static func strided(_ bytes: [UInt8], offset: Int, variant: Variant, count: Int) -> [UInt8] {
        (0..<count).map { bytes[$0 * variant.recordSize + offset] }
    }

    /// Appends the pixels of each record, converted from CHW to HWC.
    private static func appendPixels(_ bytes: [UInt8], variant: Variant, count: Int, to pixels: inout [UInt8]) {
        let start = pixels.count
        let planeSize = side * side
        pixels += repeatElement(0, count: count * imageBytes)
        bytes.withUnsafeBufferPointer { source in
            pixels.withUnsafeMutableBufferPointer { destination in
                for record in 0..<count {
                    let input = record * variant.recordSize + variant.labelBytes
                    let output = start + record * imageBytes
                    for position in 0..<planeSize {
                        for channel in 0..<channels {
                            destination[output + position * channels + channel] =
                                source[input + channel * planeSize + position]
                        }
                    }
                }
            }
        }
    }
}
