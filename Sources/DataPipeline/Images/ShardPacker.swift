import Foundation

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Packs an image folder (`ImageFolderStore`'s layout) into tar shards that `TarShardStore`
/// reads: `pskd pack --from DIR --to OUT`.
///
/// For each split (`train`, then `val` or `test`, whichever the folder has) it writes
/// `OUT/SPLIT-000000.tar`, `OUT/SPLIT-000001.tar`, …: POSIX ustar archives holding, for sample
/// `i` of the folder (in its global-index order), `KEY.EXT` with the very bytes of the sample's
/// file (its extension lower-cased) and `KEY.cls` with its class number as decimal text, where
/// `KEY` is `i` zero-padded to at least 6 digits (so name order is index order). It also
/// writes `OUT/classes.txt`, the class names one per line. A shard is closed before a sample
/// would make it exceed `shardSize` bytes (a sample larger than that alone gets a shard of its
/// own). Each shard is written as `NAME.tar.partial` and renamed when complete, so an
/// interrupted run leaves no shard that looks whole.
public struct ShardPacker {
    /// The largest shard, in bytes (headers and end-of-archive blocks included).
    public var shardSize: Int

    /// A packer of shards of at most `shardSize` bytes.
    public init(shardSize: Int = 1 << 30) {
        precondition(shardSize > 0, "the shard size must be positive")
        self.shardSize = shardSize
    }

    /// What `pack` wrote for one split.
    public struct SplitReport: Sendable, Equatable {
        /// `train`, `val` or `test`.
        public let prefix: String
        public let samples: Int
        /// The shards' paths, in order.
        public let shards: [String]
        /// The shards' total size in bytes.
        public let bytes: Int
    }

    /// What `pack` wrote.
    public struct Report: Sendable, CustomStringConvertible {
        /// The folder written.
        public let output: String
        /// The splits, training split first.
        public let splits: [SplitReport]
        /// The number of classes (lines of `classes.txt`).
        public let classCount: Int

        public var description: String {
            let lines = splits.map { split in
                "\(split.prefix): \(groupedDigits(split.samples)) samples in \(groupedDigits(split.shards.count)) shard"
                    + "\(split.shards.count == 1 ? "" : "s") (\(groupedDigits(split.bytes)) bytes, \(split.prefix)-*.tar)"
            }
            return (lines + ["classes.txt: \(groupedDigits(classCount)) classes", "in \(output)"]).joined(separator: "\n")
        }
    }

    /// Packs the image folder `source` into shards in `output`, which must be a new or empty folder.
    ///
    /// - Throws: `DataError` when `output` is not empty (or not a folder), the folder cannot be
    ///   indexed (`ImageFolderStore`'s errors), a sample cannot be read, a class name holds a
    ///   line break, or a shard cannot be written.
    public func pack(from source: String, to output: String) throws(DataError) -> Report {
        try Self.prepare(output)
        var stores = [try ImageFolderStore(directory: source, split: .train)]
        if ImageFolderStore.evaluationFolderName(in: source) != nil { stores.append(try ImageFolderStore(directory: source, split: .test)) }
        let classNames = stores[0].classNames
        if let name = classNames.first(where: { $0.contains("\n") || $0.contains("\r") }) {
            throw DataError(
                .badLayout, file: "\(source)/train/\(name)",
                expected: "class folder names without line breaks (classes.txt has one a line)",
                found: "a name with one", remedy: "rename the class folder")
        }
        try Self.write(Array(classNames.map { $0 + "\n" }.joined().utf8), to: "\(output)/classes.txt")
        var reports: [SplitReport] = []
        for store in stores {
            var writer = ShardWriter(output: output, prefix: store.splitFolder, limit: shardSize)
            let width = max(6, String(max(store.count - 1, 0)).count)
            var bytes: [UInt8] = []
            for index in 0..<store.count {
                let length = try store.readEncodedBytes(of: index, into: &bytes)
                let digits = String(index)
                let key = String(repeating: "0", count: width - digits.count) + digits
                try writer.add(
                    key: key, fileExtension: store.fileExtension(of: index), image: bytes[..<length], label: Int(store.labels[index]))
            }
            try writer.finishShard()
            reports.append(SplitReport(prefix: store.splitFolder, samples: store.count, shards: writer.paths, bytes: writer.totalBytes))
        }
        return Report(output: output, splits: reports, classCount: classNames.count)
    }

    /// A size in bytes written `1073741824`, `64KB`, `512MB` or `1GB` (K, M and G, with or
    /// without B, in any letter case, are 1024, 1024² and 1024³), or nil when it is not one.
    public static func byteCount(_ text: String) -> Int? {
        let upper = text.trimmingCharacters(in: .whitespaces).uppercased()
        let units: [(String, Int)] = [
            ("KB", 1 << 10), ("MB", 1 << 20), ("GB", 1 << 30), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("B", 1),
        ]
        var number = Substring(upper)
        var scale = 1
        if let (suffix, value) = units.first(where: { upper.hasSuffix($0.0) }) {
            number = number.dropLast(suffix.count)
            scale = value
        }
        guard !number.isEmpty, number.allSatisfy(\.isASCII), let value = Int(number), value > 0 else { return nil }
        let (product, overflow) = value.multipliedReportingOverflow(by: scale)
        return overflow ? nil : product
    }

    /// Creates `output`, or checks that it is an empty folder.
    private static func prepare(_ output: String) throws(DataError) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw DataError(
                    .invalidConfiguration, file: output, expected: "a new or empty folder to write the shards in", found: "a file",
                    remedy: "choose another --to, or remove the file")
            }
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []
            guard entries.isEmpty else {
                throw DataError(
                    .invalidConfiguration, file: output, expected: "a new or empty folder to write the shards in (nothing is overwritten)",
                    found:
                        "a folder holding \(entries.count) entr\(entries.count == 1 ? "y" : "ies") (\(entries.sorted().prefix(3).joined(separator: ", "))…)",
                    remedy: "choose a new --to folder, or empty this one first (rm -r \(output))")
            }
        }
        do {
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        } catch {
            throw DataError(
                .missingFile, file: output, expected: "a folder that can be created", found: "\(error.localizedDescription)",
                remedy: "choose a --to folder where you may write")
        }
    }

    private static func write(_ bytes: [UInt8], to path: String) throws(DataError) {
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path), options: .withoutOverwriting)
        } catch {
            throw DataError(
                .missingFile, file: path, expected: "a file that can be written", found: "\(error.localizedDescription)",
                remedy: "check the folder's permissions and free space")
        }
    }
}

/// Writes one split's shards, closing each before it would exceed `limit` bytes.
private struct ShardWriter {
    let output: String
    let prefix: String
    let limit: Int
    /// The shards written and being written.
    private(set) var paths: [String] = []
    /// Bytes written to finished shards.
    private(set) var totalBytes = 0
    private var descriptor: Int32 = -1
    private var shardBytes = 0
    private var pending: [UInt8] = []

    init(output: String, prefix: String, limit: Int) {
        (self.output, self.prefix, self.limit) = (output, prefix, limit)
    }

    /// Appends a sample: `KEY.EXT` holding `image` and `KEY.cls` holding `label`.
    mutating func add(key: String, fileExtension: String, image: ArraySlice<UInt8>, label: Int) throws(DataError) {
        let labelText = Array(String(label).utf8)
        let size = 3 * TarFormat.blockSize + TarFormat.padded(image.count)
        if descriptor >= 0 && shardBytes + size + 2 * TarFormat.blockSize > limit { try finishShard() }
        if descriptor < 0 { try startShard() }
        try member(Array("\(key).\(fileExtension)".utf8), image)
        try member(Array("\(key).cls".utf8), labelText[...])
    }

    /// Ends the open shard with the two zero blocks and gives it its final name.
    mutating func finishShard() throws(DataError) {
        guard descriptor >= 0 else { return }
        pending += repeatElement(0, count: 2 * TarFormat.blockSize)
        shardBytes += 2 * TarFormat.blockSize
        try flush()
        let path = paths[paths.count - 1]
        let closed = close(descriptor)
        descriptor = -1
        guard closed == 0, rename(path + ".partial", path) == 0 else {
            throw writeError(path, "closing and renaming \(path).partial failed: \(POSIXFailure(errno))")
        }
        totalBytes += shardBytes
    }

    private mutating func startShard() throws(DataError) {
        let digits = String(paths.count)
        let path = "\(output)/\(prefix)-\(String(repeating: "0", count: max(0, 6 - digits.count)))\(digits).tar"
        let opened = open(path + ".partial", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard opened >= 0 else { throw writeError(path, "it cannot be created: \(POSIXFailure(errno))") }
        paths.append(path)
        descriptor = opened
        shardBytes = 0
    }

    private mutating func member(_ name: [UInt8], _ bytes: ArraySlice<UInt8>) throws(DataError) {
        pending += TarFormat.fileHeader(path: name, size: bytes.count)
        pending += bytes
        pending += repeatElement(0, count: TarFormat.padded(bytes.count) - bytes.count)
        shardBytes += TarFormat.blockSize + TarFormat.padded(bytes.count)
        if pending.count >= 1 << 20 { try flush() }
    }

    private mutating func flush() throws(DataError) {
        let result = pending.withUnsafeBytes { POSIXFile.write(descriptor, $0) }
        if case .failure(let failure) = result { throw writeError(paths[paths.count - 1], "a write error: \(failure)") }
        pending.removeAll(keepingCapacity: true)
    }

    private func writeError(_ path: String, _ found: String) -> DataError {
        DataError(
            .missingFile, file: path, expected: "a shard that can be written", found: found,
            remedy: "check the folder's permissions and free space, then pack again into an empty folder")
    }
}
