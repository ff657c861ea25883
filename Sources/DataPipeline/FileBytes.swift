import CZlib
import Foundation

/// Reads whole data files into memory, inflating gzip-compressed ones.
///
/// Compression is recognised by the gzip magic bytes (1f 8b), not by the file name, so a
/// compressed file without the `.gz` suffix (or a plain one with it) still reads correctly.
enum FileBytes {
    /// The bytes of the file at `path`, decompressed when the file is gzip.
    static func read(_ path: String) throws(DataError) -> [UInt8] {
        let raw = try readRaw(path)
        return isGzip(raw) ? try Gzip.inflate(raw, file: path) : raw
    }

    /// The first path in `candidates` (file names inside `directory`) that exists.
    ///
    /// Throws `missingFile` naming every candidate when none exists.
    static func locate(_ candidates: [String], in directory: String) throws(DataError) -> String {
        let paths = candidates.map { (directory as NSString).appendingPathComponent($0) }
        if let found = paths.first(where: { FileManager.default.isReadableFile(atPath: $0) }) {
            return found
        }
        var isDirectory: ObjCBool = false
        let directoryExists = FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory)
        let found =
            directoryExists && isDirectory.boolValue
            ? "none of them in the directory"
            : "no directory \(directory)"
        throw DataError(
            .missingFile, file: paths[0],
            expected: "one of \(candidates.joined(separator: ", ")) in \(directory)",
            found: found, remedy: "pass the directory that holds these files")
    }

    static func isGzip(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
    }

    private static func readRaw(_ path: String) throws(DataError) -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw DataError(
                .missingFile, file: path, expected: "a readable file",
                found: "no such file, or no permission to read it",
                remedy: DataError.replaceDamagedFile)
        }
        defer { try? handle.close() }
        do {
            return [UInt8](try handle.readToEnd() ?? Data())
        } catch {
            throw DataError(
                .missingFile, file: path, expected: "a readable file",
                found: "a read error (\(error))", remedy: DataError.replaceDamagedFile)
        }
    }
}

/// gzip decompression through zlib's `inflate`, with every failure turned into a `DataError`.
///
/// The loop always either makes progress or stops with an error: a corrupt stream, a stream
/// that ends early and trailing bytes that are not another gzip member all throw.
enum Gzip {
    /// The decompressed contents of `compressed`, which may hold several gzip members.
    static func inflate(_ compressed: [UInt8], file: String) throws(DataError) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: initialCapacity(compressed))
        var produced = 0
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw corrupt(file, "zlib could not initialise (out of memory?)")
        }
        defer { inflateEnd(&stream) }
        var consumed = 0
        while true {
            if produced == output.count { output += repeatElement(0, count: output.count) }
            let before = (consumed, produced)
            let status = step(
                &stream, input: compressed, consumed: &consumed,
                output: &output, produced: &produced)
            switch status {
            case Z_STREAM_END where consumed == compressed.count:
                output.removeSubrange(produced...)
                return output
            case Z_STREAM_END:
                try startNextMember(&stream, compressed, at: consumed, file: file)
            case Z_OK, Z_BUF_ERROR:
                guard (consumed, produced) != before || produced == output.count else {
                    throw corrupt(file, "the stream ends after \(compressed.count) bytes, before its end marker (truncated file)")
                }
            default:
                throw corrupt(file, "zlib error \(status) (\(message(stream))) after \(consumed) compressed bytes")
            }
        }
    }

    /// One call of `inflate` over the remaining input and free output (each capped to 1 GiB,
    /// since zlib counts in 32 bits).
    private static func step(
        _ stream: inout z_stream, input: [UInt8], consumed: inout Int,
        output: inout [UInt8], produced: inout Int
    ) -> Int32 {
        let chunk = 1 << 30
        return input.withUnsafeBufferPointer { inputBuffer in
            output.withUnsafeMutableBufferPointer { outputBuffer in
                let availableIn = min(inputBuffer.count - consumed, chunk)
                let availableOut = min(outputBuffer.count - produced, chunk)
                stream.next_in = UnsafeMutablePointer(mutating: inputBuffer.baseAddress! + consumed)
                stream.avail_in = uInt(availableIn)
                stream.next_out = outputBuffer.baseAddress! + produced
                stream.avail_out = uInt(availableOut)
                let status = CZlib.inflate(&stream, Z_NO_FLUSH)
                consumed += availableIn - Int(stream.avail_in)
                produced += availableOut - Int(stream.avail_out)
                return status
            }
        }
    }

    /// Resets the stream for another gzip member at `offset`, or throws on trailing garbage.
    private static func startNextMember(
        _ stream: inout z_stream, _ compressed: [UInt8], at offset: Int,
        file: String
    ) throws(DataError) {
        guard compressed.count - offset >= 2, compressed[offset] == 0x1F, compressed[offset + 1] == 0x8B else {
            throw corrupt(file, "\(compressed.count - offset) bytes of trailing data after the gzip stream")
        }
        inflateReset(&stream)
    }

    /// The output size recorded in the gzip trailer (modulo 2³²), if plausible, else a guess.
    private static func initialCapacity(_ compressed: [UInt8]) -> Int {
        let guess = max(4 * compressed.count, 1 << 16)
        guard compressed.count >= 18 else { return guess }
        let trailer = compressed.suffix(4).reversed().reduce(0) { $0 << 8 | Int($1) }
        return trailer > 0 && trailer <= 1024 * compressed.count ? trailer : guess
    }

    private static func message(_ stream: z_stream) -> String {
        stream.msg.map { String(cString: $0) } ?? "no message"
    }

    private static func corrupt(_ file: String, _ found: String) -> DataError {
        DataError(
            .corruptCompression, file: file, expected: "a complete, valid gzip stream",
            found: found, remedy: DataError.replaceDamagedFile)
    }
}
