import CZlib
import Foundation

/// Writes 8-bit RGB images as PNG files (one IDAT chunk, zlib's default compression), for
/// `pskd data preview`.
public enum PNGEncoder {
    /// The PNG file of `image`.
    public static func encode(_ image: RGBImage) -> [UInt8] {
        var file: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var header: [UInt8] = []
        header += bigEndian(UInt32(image.width)) + bigEndian(UInt32(image.height))
        header += [8, 2, 0, 0, 0]  // 8 bits per channel, RGB, deflate, no filter choice, no interlace
        appendChunk("IHDR", header, to: &file)
        appendChunk("IDAT", compressed(scanlines(of: image)), to: &file)
        appendChunk("IEND", [], to: &file)
        return file
    }

    /// Writes `image` to `path` as PNG.
    ///
    /// - Throws: `DataError.Kind.missingFile` naming the path when it cannot be written.
    public static func write(_ image: RGBImage, to path: String) throws(DataError) {
        let bytes = encode(image)
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            throw DataError(
                .missingFile, file: path, expected: "a file pskd can write", found: "it could not be created",
                remedy: "choose a path in a folder that exists and is writable")
        }
    }

    /// Each row preceded by filter type 0 (none).
    private static func scanlines(of image: RGBImage) -> [UInt8] {
        var rows: [UInt8] = []
        rows.reserveCapacity(image.height * (image.rowBytes + 1))
        for y in 0..<image.height {
            rows.append(0)
            rows += image.pixels[(y * image.rowBytes)..<((y + 1) * image.rowBytes)]
        }
        return rows
    }

    private static func compressed(_ bytes: [UInt8]) -> [UInt8] {
        var length = compressBound(uLong(bytes.count))
        var output = [UInt8](repeating: 0, count: Int(length))
        let status = compress2(&output, &length, bytes, uLong(bytes.count), Z_DEFAULT_COMPRESSION)
        precondition(status == Z_OK, "zlib's compress2 failed with \(status) on \(bytes.count) bytes")
        return Array(output.prefix(Int(length)))
    }

    private static func appendChunk(_ type: String, _ data: [UInt8], to file: inout [UInt8]) {
        let typeBytes = Array(type.utf8)
        file += bigEndian(UInt32(data.count)) + typeBytes + data
        let checksum = (typeBytes + data).withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) }
        file += bigEndian(UInt32(checksum))
    }

    private static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }
}
