/// The parts of the POSIX tar format (ustar headers, pax `x` records, GNU `L` long names) that
/// `TarShardStore` reads and `ShardPacker` writes.
///
/// An archive is a sequence of 512-byte blocks: a header block per member, the member's bytes
/// padded with zeros to a whole block, and two zero blocks at the end.
enum TarFormat {
    static let blockSize = 512

    /// Member types (the header's `typeflag` byte).
    enum TypeFlag {
        static let regular = UInt8(ascii: "0")
        static let oldRegular: UInt8 = 0
        static let contiguous = UInt8(ascii: "7")
        static let directory = UInt8(ascii: "5")
        /// GNU: the member's bytes are the next header's path.
        static let gnuLongName = UInt8(ascii: "L")
        /// pax: the member's bytes are `length key=value\n` records for the next header.
        static let paxExtended = UInt8(ascii: "x")
    }

    /// A header block's fields that the index needs.
    struct Header {
        /// The path: `prefix/name` for POSIX ustar, `name` otherwise.
        var path: [UInt8]
        /// The member's size in bytes.
        var size: Int
        var type: UInt8

        var isRegularFile: Bool {
            type == TypeFlag.regular || type == TypeFlag.oldRegular || type == TypeFlag.contiguous
        }
    }

    /// What a 512-byte block holds.
    enum Block {
        /// A block of zeros: the end of the archive.
        case end
        case header(Header)
        /// The checksum field does not match the header's bytes.
        case badChecksum(stored: String, computed: Int)
        /// The size field is not a number.
        case badSize(String)
    }

    /// Parses the header block `block` (512 bytes).
    static func parse(_ block: ArraySlice<UInt8>) -> Block {
        precondition(block.count == blockSize)
        let base = block.startIndex
        func field(_ start: Int, _ length: Int) -> ArraySlice<UInt8> { block[(base + start)..<(base + start + length)] }
        if block.allSatisfy({ $0 == 0 }) { return .end }

        var unsigned = 0
        var signed = 0
        for (position, byte) in block.enumerated() {
            let value = (148..<156).contains(position) ? 0x20 : byte
            unsigned += Int(value)
            signed += Int(Int8(bitPattern: value))
        }
        let checksumField = field(148, 8)
        guard let stored = octal(checksumField), stored == unsigned || stored == signed else {
            return .badChecksum(stored: text(checksumField), computed: unsigned)
        }
        let sizeField = field(124, 12)
        guard let size = number(sizeField) else { return .badSize(text(sizeField)) }

        var path = Array(cString(field(0, 100)))
        let isPOSIX = field(257, 6).elementsEqual("ustar\0".utf8)
        let prefix = cString(field(345, 155))
        if isPOSIX && !prefix.isEmpty { path = Array(prefix) + [UInt8(ascii: "/")] + path }
        return .header(Header(path: path, size: size, type: block[base + 156]))
    }

    /// A ustar header for a regular file of `size` bytes at `path` (at most 100 bytes), mode
    /// 0644, owner 0, modification time `modified` (seconds since 1970).
    static func fileHeader(path: [UInt8], size: Int, modified: Int = 0) -> [UInt8] {
        precondition(path.count <= 100 && size < 1 << 33)
        var block = [UInt8](repeating: 0, count: blockSize)
        func put(_ bytes: some Collection<UInt8>, at start: Int) {
            for (offset, byte) in bytes.enumerated() { block[start + offset] = byte }
        }
        func putOctal(_ value: Int, at start: Int, width: Int) {
            let digits = String(value, radix: 8)
            put(Array((String(repeating: "0", count: width - 1 - digits.count) + digits).utf8), at: start)  // then a NUL
        }
        put(path, at: 0)
        putOctal(0o644, at: 100, width: 8)
        putOctal(0, at: 108, width: 8)
        putOctal(0, at: 116, width: 8)
        putOctal(size, at: 124, width: 12)
        putOctal(modified, at: 136, width: 12)
        block[156] = TypeFlag.regular
        put("ustar\0".utf8, at: 257)
        put("00".utf8, at: 263)
        putOctal(0, at: 329, width: 8)
        putOctal(0, at: 337, width: 8)
        put(String(repeating: " ", count: 8).utf8, at: 148)
        let sum = block.reduce(0) { $0 + Int($1) }
        putOctal(sum, at: 148, width: 7)  // six digits, then a NUL and the space left in place
        block[154] = 0
        return block
    }

    /// `size` rounded up to whole blocks.
    static func padded(_ size: Int) -> Int { (size + blockSize - 1) / blockSize * blockSize }

    /// The `path` and `size` of a pax extended header's records (`length key=value\n` each).
    static func paxValues(_ records: ArraySlice<UInt8>) -> (path: [UInt8]?, size: Int?) {
        var path: [UInt8]?
        var size: Int?
        var start = records.startIndex
        while start < records.endIndex {
            guard let space = records[start...].firstIndex(of: UInt8(ascii: " ")),
                let length = Int(String(decoding: records[start..<space], as: UTF8.self)), length > 0,
                start + length <= records.endIndex
            else { break }
            let record = records[(space + 1)..<(start + length - 1)]  // without the newline
            if let equals = record.firstIndex(of: UInt8(ascii: "=")) {
                let key = String(decoding: record[..<equals], as: UTF8.self)
                let value = record[(equals + 1)...]
                if key == "path" { path = Array(value) }
                if key == "size" { size = Int(String(decoding: value, as: UTF8.self)) }
            }
            start += length
        }
        return (path, size)
    }

    /// The bytes of `field` up to its first NUL.
    static func cString(_ field: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        field.prefix { $0 != 0 }
    }

    /// A numeric field: octal digits (leading spaces, ending at a NUL or space), or GNU's
    /// base-256 (first byte's high bit set) for sizes beyond 8 GiB.
    static func number(_ field: ArraySlice<UInt8>) -> Int? {
        guard let first = field.first, first & 0x80 != 0 else { return octal(field) }
        guard first == 0x80 else { return nil }  // a negative or too large value
        var value = 0
        for byte in field.dropFirst() {
            guard value >> 55 == 0 else { return nil }
            value = value << 8 | Int(byte)
        }
        return value
    }

    private static func octal(_ field: ArraySlice<UInt8>) -> Int? {
        let digits = field.drop { $0 == UInt8(ascii: " ") }.prefix { $0 != 0 && $0 != UInt8(ascii: " ") }
        guard !digits.isEmpty, digits.count <= 21 else { return nil }
        var value = 0
        for digit in digits {
            guard (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(digit) else { return nil }
            value = value * 8 + Int(digit - UInt8(ascii: "0"))
        }
        return value
    }

    /// A field's bytes as printable text, for messages.
    static func text(_ field: ArraySlice<UInt8>) -> String {
        "\""
            + String(decoding: cString(field), as: UTF8.self).unicodeScalars.map { $0.isASCII && $0.value >= 0x20 ? String($0) : "?" }
            .joined()
            + "\""
    }
}
