/// Reads IDX files, the format of MNIST and Fashion-MNIST, plain or gzip-compressed.
///
/// An IDX file is a 4-byte magic number `00 00 08 nd` (08 = unsigned bytes, nd = number of
/// dimensions), nd big-endian 32-bit extents, then the bytes in row-major order. Images are
/// `[count, rows, columns]` (nd = 3), labels `[count]` (nd = 1). Grey images have one channel,
/// so row-major IDX pixels are already NHWC.
public enum IDXReader {
    /// Images read from an IDX file: `count` images of `rows × columns` bytes, row-major.
    public struct Images: Sendable {
        public let count: Int
        public let rows: Int
        public let columns: Int
        public let pixels: [UInt8]
    }

    /// The images of the IDX3 file at `path`.
    public static func readImages(_ path: String) throws(DataError) -> Images {
        let bytes = try FileBytes.read(path)
        let extents = try header(bytes, dimensions: 3, what: "IDX unsigned-byte images", file: path)
        let pixels = try payload(bytes, extents: extents, file: path)
        return Images(count: extents[0], rows: extents[1], columns: extents[2], pixels: pixels)
    }

    /// The labels of the IDX1 file at `path`; each must be below `classCount`.
    public static func readLabels(_ path: String, classCount: Int) throws(DataError) -> [Int32] {
        let bytes = try FileBytes.read(path)
        let extents = try header(bytes, dimensions: 1, what: "IDX unsigned-byte labels", file: path)
        let labels = try payload(bytes, extents: extents, file: path)
        return try LabelValidation.checked(labels, classCount: classCount, file: path)
    }

    /// The extents announced by the header, after checking the magic number (first, so a file
    /// of another kind is reported as such even when it is short).
    private static func header(
        _ bytes: [UInt8], dimensions: Int, what: String,
        file: String
    ) throws(DataError) -> [Int] {
        let expectedMagic = UInt32(0x0800) | UInt32(dimensions)
        let headerSize = 4 + 4 * dimensions
        if bytes.count >= 4 {
            let magic = bigEndianUInt32(bytes, at: 0)
            guard magic == expectedMagic else {
                throw DataError(
                    .badMagic, file: file,
                    expected: "\(hex(expectedMagic)) (\(what), \(dimensions) dimension\(dimensions == 1 ? "" : "s"))",
                    found: hex(magic), remedy: DataError.replaceDamagedFile)
            }
        }
        guard bytes.count >= headerSize else {
            throw DataError(
                .truncated, file: file,
                expected: "at least a \(headerSize)-byte IDX header",
                found: "\(bytes.count) bytes", remedy: DataError.replaceDamagedFile)
        }
        return (0..<dimensions).map { Int(bigEndianUInt32(bytes, at: 4 + 4 * $0)) }
    }

    /// The bytes after the header, which must be exactly the product of the extents.
    private static func payload(_ bytes: [UInt8], extents: [Int], file: String) throws(DataError) -> [UInt8] {
        let headerSize = 4 + 4 * extents.count
        let expectedCount = product(extents)
        let foundCount = bytes.count - headerSize
        guard foundCount == expectedCount else {
            let shape = extents.map(String.init).joined(separator: " × ")
            throw DataError(
                .truncated, file: file,
                expected: "\(expectedCount.map(String.init) ?? "an impossible number of") data bytes after the header (\(shape))",
                found: "\(foundCount) bytes", remedy: DataError.replaceDamagedFile)
        }
        return Array(bytes[headerSize...])
    }

    /// The product of `extents`, or `nil` if it overflows (a corrupt header).
    private static func product(_ extents: [Int]) -> Int? {
        var result = 1
        for extent in extents {
            let (value, overflow) = result.multipliedReportingOverflow(by: extent)
            if overflow { return nil }
            result = value
        }
        return result
    }

    private static func bigEndianUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }

    private static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
    }
}

/// Checks that labels are class indices, shared by every reader.
enum LabelValidation {
    /// `labels` as `Int32`, or an error naming the first label that is not below `classCount`.
    static func checked(
        _ labels: [UInt8], classCount: Int, file: String,
        what: String = "label"
    ) throws(DataError) -> [Int32] {
        if let position = labels.firstIndex(where: { Int($0) >= classCount }) {
            throw DataError(
                .labelOutOfRange, file: file,
                expected: "every \(what) in 0..<\(classCount)",
                found: "\(what) \(labels[position]) at sample \(position)",
                remedy: DataError.replaceDamagedFile)
        }
        return labels.map { Int32($0) }
    }
}
