#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// One split of an image collection packed into tar shards in the WebDataset convention
/// (what `pskd pack` writes):
///
///     DIR/train-000000.tar, DIR/train-000001.tar, …   the training split, shards in name order
///     DIR/val-000000.tar, …                           the evaluation split (or test-*.tar; val
///                                                     is preferred when both exist)
///     DIR/classes.txt                                 optional: one class name per line
///
/// A sample is the run of consecutive members that share a key, the member's path up to the
/// first dot of its file name: `KEY.jpg` (or `.jpeg`, `.png`, any letter case) holds the image
/// and `KEY.cls` its class number as decimal text (surrounding whitespace ignored). Members
/// with other extensions are skipped and counted (`skippedEntryCount`); directories, links and
/// other member types are ignored. Headers may be POSIX ustar, with GNU `L` long-name records or
/// pax `x` records (their `path` and `size`).
///
/// The classes are `classes.txt`'s lines when DIR holds it; otherwise the class numbers
/// `0 … m` where `m` is the largest class number in the training split (a class that no
/// training sample has past the largest is then unknown to the store, and an evaluation sample
/// of it is an error). Every sample's class must be below the class count.
///
/// The index is built from the tar headers alone (and the few bytes of each `.cls`; images are
/// never read): per sample its offset (8 bytes), length (4) and label (4), 16 bytes in all
/// (`indexByteCount`). Each shard is opened once; reads are `pread`s on its shared descriptor,
/// so any number of threads may read at once.
public struct TarShardStore: EncodedImageStore {
    /// The shards' folder, `DIR`.
    public let directory: String
    /// Which split this is.
    public let split: DatasetSplit
    /// The shard names' prefix: `train`, `val` or `test`.
    public let splitPrefix: String
    /// The split's shards, in name order.
    public let shardPaths: [String]
    public let classNames: [String]
    public let labels: [Int32]
    public let skippedEntryCount: Int

    /// Where each sample's image member starts, in its shard.
    private let offsets: [UInt64]
    /// Each sample's image size in bytes.
    private let lengths: [UInt32]
    /// The first sample of each shard, and `count` at the end.
    private let shardStarts: [Int]
    private let files: ShardDescriptors

    /// Indexes split `split` of the shards in `directory` (for `.test`, the `val-*.tar` shards,
    /// or `test-*.tar` when there is none).
    ///
    /// - Parameter classNames: the class names when the caller knows them (the training split's,
    ///   for the evaluation split); nil takes `classes.txt`, else for the training split the
    ///   class numbers up to the largest found, else (the evaluation split) the training split's,
    ///   indexing it. `open(directory:)` indexes both splits without indexing the training
    ///   split twice.
    /// - Throws: `DataError` naming the shard, offset, member and sample index where they apply:
    ///   no shard found (naming the pattern), a shard cut short, a header checksum that does not
    ///   match, a `.cls` that is not a class number or not below the class count, an image
    ///   without `.cls` or a `.cls` without an image.
    public init(directory: String, split: DatasetSplit, classNames: [String]? = nil) throws(DataError) {
        let prefix: String
        switch split {
        case .train: prefix = "train"
        case .test:
            guard let found = Self.evaluationPrefix(in: directory) else {
                throw DataError(
                    .missingFile, file: "\(directory)/val-*.tar",
                    expected: "the evaluation split's shards, \(directory)/val-*.tar or \(directory)/test-*.tar",
                    found: "no file matching either", remedy: "pack the evaluation images too (pskd pack packs val/ or test/)")
            }
            prefix = found
        }
        let shardNames = Self.shardNames(in: directory, prefix: prefix)
        guard !shardNames.isEmpty else {
            throw DataError(
                .missingFile, file: "\(directory)/\(prefix)-*.tar", expected: "at least one shard \(prefix)-*.tar in \(directory)",
                found: "none", remedy: "pass the folder that pskd pack wrote (pskd pack --from IMAGES --to DIR)")
        }
        var knownClasses = classNames
        if knownClasses == nil { knownClasses = try Self.readClassFile(directory) }
        if knownClasses == nil && split == .test { knownClasses = try TarShardStore(directory: directory, split: .train).classNames }

        let paths = shardNames.map { "\(directory)/\($0)" }
        var descriptors: [Int32] = []
        var indexer = ShardIndexer(classCount: knownClasses?.count)
        do throws(DataError) {
            for (shard, path) in paths.enumerated() {
                let descriptor: Int32
                switch POSIXFile.openForReading(path) {
                case .success(let value): descriptor = value
                case .failure(let failure):
                    throw DataError(
                        .missingFile, file: path, expected: "a readable shard", found: "it cannot be opened: \(failure)",
                        remedy: "make the shard readable, or pack the collection again")
                }
                descriptors.append(descriptor)
                try indexer.index(shard: shard, path: path, descriptor: descriptor)
            }
        } catch {
            for descriptor in descriptors { close(descriptor) }
            throw error
        }
        files = ShardDescriptors(descriptors)
        let classes = knownClasses ?? (0..<(indexer.largestLabel + 1)).map { String($0) }
        self.directory = directory
        self.split = split
        self.splitPrefix = prefix
        self.shardPaths = paths
        self.classNames = classes
        self.labels = exactCapacity(indexer.labels)
        self.offsets = exactCapacity(indexer.offsets)
        self.lengths = exactCapacity(indexer.lengths)
        self.shardStarts = indexer.shardStarts + [indexer.labels.count]
        self.skippedEntryCount = indexer.skipped
    }

    /// Both splits of the shards in `directory`, the evaluation split with the training split's classes.
    public static func open(directory: String) throws(DataError) -> (train: TarShardStore, test: TarShardStore) {
        let train = try TarShardStore(directory: directory, split: .train)
        return (train, try TarShardStore(directory: directory, split: .test, classNames: train.classNames))
    }

    /// The evaluation split's shard prefix in `directory`: `val` when a `val-*.tar` exists,
    /// else `test` when a `test-*.tar` exists, else nil.
    public static func evaluationPrefix(in directory: String) -> String? {
        ["val", "test"].first { !shardNames(in: directory, prefix: $0).isEmpty }
    }

    public var count: Int { labels.count }

    /// The bytes the index occupies (the allocated capacity of its arrays).
    public var indexByteCount: Int {
        offsets.capacity * 8 + lengths.capacity * 4 + labels.capacity * 4 + shardStarts.capacity * 8
            + shardPaths.reduce(0) { $0 + $1.utf8.count + 16 } + classNames.reduce(0) { $0 + $1.utf8.count + 16 }
    }

    public var summary: String {
        "\(directory)/\(splitPrefix)-*.tar (\(groupedDigits(shardPaths.count)) shard\(shardPaths.count == 1 ? "" : "s"), "
            + "\(groupedDigits(count)) images, \(groupedDigits(classNames.count)) classes)"
    }

    public func readEncodedBytes(of index: Int, into buffer: inout [UInt8]) throws(DataError) -> Int {
        precondition(index >= 0 && index < count, "sample \(index) is not in 0..<\(count)")
        let shard = shard(of: index)
        let (offset, length) = (Int(offsets[index]), Int(lengths[index]))
        if buffer.count < length { buffer.append(contentsOf: repeatElement(0, count: length - buffer.count)) }
        let result = POSIXFile.read(files.descriptors[shard], into: &buffer, count: length, at: offset)
        switch result {
        case .success(let got) where got == length: return length
        case .success(let got):
            throw DataError(
                .truncated, file: shardPaths[shard],
                expected: "\(length) bytes of sample \(index) (\(location(of: index)))",
                found: "the shard ends after \(got) of them: it was cut short since start-up",
                remedy: "restore the shard (pack the collection again), then restart")
        case .failure(let failure):
            throw DataError(
                .missingFile, file: shardPaths[shard], expected: "\(length) readable bytes of sample \(index) (\(location(of: index)))",
                found: "a read error: \(failure)", remedy: "check the disk, or restore the shard")
        }
    }

    /// `DIR/train-000003.tar, member 0001234.jpg at byte 1 234 560`: the member's path as its own
    /// header gives it (the first 100 bytes of a long name).
    public func location(of index: Int) -> String {
        let shard = shard(of: index)
        let offset = Int(offsets[index])
        var header = [UInt8](repeating: 0, count: TarFormat.blockSize)
        var member = "?"
        if offset >= TarFormat.blockSize,
            case .success(TarFormat.blockSize) = POSIXFile.read(
                files.descriptors[shard], into: &header, count: TarFormat.blockSize, at: offset - TarFormat.blockSize),
            case .header(let parsed) = TarFormat.parse(header[...])
        {
            member = String(decoding: parsed.path, as: UTF8.self)
        }
        return "\(shardPaths[shard]), member \(member) at byte \(groupedDigits(offset))"
    }

    // MARK: - Private

    private func shard(of index: Int) -> Int {
        var (low, high) = (0, shardStarts.count - 1)  // shardStarts[low] <= index < shardStarts[high]
        while high - low > 1 {
            let middle = (low + high) / 2
            if shardStarts[middle] <= index { low = middle } else { high = middle }
        }
        return low
    }

    /// The names `PREFIX-*.tar` in `directory`, sorted by byte order.
    private static func shardNames(in directory: String, prefix: String) -> [String] {
        guard case .success(let entries) = DirectoryEntry.list(Array(directory.utf8)) else { return [] }
        let head = Array((prefix + "-").utf8)
        let tail = Array(".tar".utf8)
        return entries.map(\.name).filter {
            $0.count >= head.count + tail.count && $0.starts(with: head) && $0.suffix(4).elementsEqual(tail)
        }
        .sorted { $0.lexicographicallyPrecedes($1) }.map { String(decoding: $0, as: UTF8.self) }
    }

    /// `classes.txt`'s lines, or nil when there is no such file.
    private static func readClassFile(_ directory: String) throws(DataError) -> [String]? {
        let path = "\(directory)/classes.txt"
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        let bytes = try FileBytes.read(path)
        var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line in
            line.last == UInt8(ascii: "\r") ? line.dropLast() : line
        }
        if lines.last?.isEmpty == true { lines.removeLast() }
        if let empty = lines.firstIndex(where: { $0.isEmpty }) ?? (lines.isEmpty ? 0 : nil) {
            throw DataError(
                .badLayout, file: path, expected: "one class name per line",
                found: lines.isEmpty ? "no line" : "an empty line \(empty + 1)", remedy: "write one name per class, or remove the file")
        }
        return lines.map { String(decoding: $0, as: UTF8.self) }
    }
}

/// The open descriptors of a split's shards, closed when the last store using them goes.
private final class ShardDescriptors: Sendable {
    let descriptors: [Int32]

    init(_ descriptors: [Int32]) { self.descriptors = descriptors }

    deinit { for descriptor in descriptors { close(descriptor) } }
}

/// Builds a shard set's index, shard by shard, from the tar headers.
private struct ShardIndexer {
    /// The class count when known in advance (classes.txt, or the training split's).
    let classCount: Int?
    var offsets: [UInt64] = []
    var lengths: [UInt32] = []
    var labels: [Int32] = []
    var shardStarts: [Int] = []
    var skipped = 0
    var largestLabel = -1

    init(classCount: Int?) { self.classCount = classCount }

    /// The sample being gathered: the members so far that share `key`.
    private struct Group {
        var key: [UInt8]
        var image: (offset: Int, length: Int, path: [UInt8])?
        var label: (value: Int, path: [UInt8], offset: Int)?
        var others = 0
    }

    mutating func index(shard: Int, path: String, descriptor: Int32) throws(DataError) {
        shardStarts.append(labels.count)
        let fileSize: Int
        switch POSIXFile.status(descriptor) {
        case .success(let status): fileSize = status.size
        case .failure(let failure):
            throw DataError(
                .missingFile, file: path, expected: "a readable shard", found: "no status: \(failure)", remedy: "check the disk")
        }
        var block = [UInt8](repeating: 0, count: 2 * TarFormat.blockSize)
        var offset = 0
        var longPath: [UInt8]?
        var paxPath: [UInt8]?
        var paxSize: Int?
        var group: Group?

        func error(_ kind: DataError.Kind, _ expected: String, _ found: String, remedy: String = "pack the collection again") -> DataError {
            DataError(kind, file: path, expected: expected, found: found, remedy: remedy)
        }
        func read(_ count: Int, at position: Int) throws(DataError) -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: count)
            switch POSIXFile.read(descriptor, into: &bytes, count: count, at: position) {
            case .success(let got) where got == count: return bytes
            case .success(let got):
                throw error(.truncated, "\(count) bytes at byte \(groupedDigits(position))", "the shard ends after \(got): cut short")
            case .failure(let failure):
                throw error(.missingFile, "\(count) readable bytes at byte \(groupedDigits(position))", "a read error: \(failure)")
            }
        }

        while true {
            guard offset + TarFormat.blockSize <= fileSize else {
                let complete = group.map { $0.image != nil && $0.label != nil } ?? false
                throw error(
                    .truncated,
                    "another header or the end-of-archive blocks at byte \(groupedDigits(offset)), after \(labels.count + (complete ? 1 : 0)) samples",
                    "the shard ends at byte \(groupedDigits(fileSize)): it was cut short")
            }
            let got: Int
            switch POSIXFile.read(descriptor, into: &block, count: block.count, at: offset) {
            case .success(let value): got = value
            case .failure(let failure):
                throw error(.missingFile, "a readable header at byte \(groupedDigits(offset))", "a read error: \(failure)")
            }
            let header: TarFormat.Header
            switch TarFormat.parse(block[0..<TarFormat.blockSize]) {
            case .end:
                try finish(&group, path: path)
                return
            case .badChecksum(let stored, let computed):
                throw error(
                    .badHeader, "a tar header at byte \(groupedDigits(offset)) (sample \(labels.count)) whose checksum matches its bytes",
                    "checksum field \(stored), bytes summing to \(computed) (octal \(String(computed, radix: 8)))")
            case .badSize(let field):
                throw error(.badHeader, "a size in the tar header at byte \(groupedDigits(offset))", "size field \(field)")
            case .header(let parsed):
                header = parsed
            }
            let start = offset + TarFormat.blockSize
            let size = paxSize ?? header.size
            let name = paxPath ?? longPath ?? header.path
            let member = String(decoding: name, as: UTF8.self)
            if header.isRegularFile {
                let key = Self.extensionAndKey(name).key
                if group?.key != key {
                    try finish(&group, path: path)
                    group = Group(key: key)
                }
            }
            guard size <= fileSize - start else {
                throw error(
                    .truncated,
                    "the \(groupedDigits(size)) bytes of member \(member) at byte \(groupedDigits(start)) (sample \(labels.count))",
                    "a shard of \(groupedDigits(fileSize)) bytes: it was cut short")
            }
            switch header.type {
            case TarFormat.TypeFlag.gnuLongName, TarFormat.TypeFlag.paxExtended:
                guard size <= 1 << 20 else {
                    throw error(.badHeader, "a long-name or pax record of at most 1 MiB at byte \(groupedDigits(offset))", "\(size) bytes")
                }
                let record = try read(size, at: start)
                if header.type == TarFormat.TypeFlag.gnuLongName {
                    longPath = Array(TarFormat.cString(record[...]))
                } else {
                    let values = TarFormat.paxValues(record[...])
                    paxPath = values.path ?? paxPath
                    paxSize = values.size ?? paxSize
                }
            case _ where header.isRegularFile:
                (longPath, paxPath, paxSize) = (nil, nil, nil)
                var cls: ArraySlice<UInt8>?
                if Self.extensionAndKey(name).extension == "cls" {
                    if size <= got - TarFormat.blockSize {
                        cls = block[TarFormat.blockSize..<(TarFormat.blockSize + size)]
                    } else {
                        cls = try read(min(size, 4096), at: start)[...]
                    }
                }
                try add(name, offset: start, size: size, cls: cls, to: &group!, path: path)
            default:
                (longPath, paxPath, paxSize) = (nil, nil, nil)
                if header.type != TarFormat.TypeFlag.directory { skipped += 1 }
            }
            offset = start + TarFormat.padded(size)
        }
    }

    /// The extension (after the first dot of the file name, lower-cased) and the key (the path before it).
    static func extensionAndKey(_ path: [UInt8]) -> (extension: String, key: [UInt8]) {
        let nameStart = path.lastIndex(of: UInt8(ascii: "/")).map { $0 + 1 } ?? 0
        guard let dot = path[nameStart...].firstIndex(of: UInt8(ascii: ".")) else { return ("", path) }
        return (String(decoding: path[(dot + 1)...], as: UTF8.self).lowercased(), Array(path[..<dot]))
    }

    /// Adds member `name` (data at `offset`, `size` bytes; `cls` its bytes if it is a `.cls`) to `group`, the sample of its key.
    private mutating func add(_ name: [UInt8], offset: Int, size: Int, cls: ArraySlice<UInt8>?, to group: inout Group, path: String)
        throws(DataError)
    {
        let kind = Self.extensionAndKey(name).extension
        let member = String(decoding: name, as: UTF8.self)
        func duplicate(_ what: String) -> DataError {
            DataError(
                .badLayout, file: path, expected: "one \(what) member per key (sample \(labels.count))",
                found: "a second one, \(member) at byte \(groupedDigits(offset))", remedy: "give each sample its own key")
        }
        if ImageFolderStore.imageExtensions.contains(kind) {
            guard group.image == nil else { throw duplicate("image") }
            guard size <= Int(UInt32.max) else {
                throw DataError(
                    .invalidConfiguration, file: path, expected: "images below 4 GiB", found: "\(member) of \(groupedDigits(size)) bytes",
                    remedy: "leave the image out")
            }
            group.image = (offset, size, name)
        } else if let cls {
            guard group.label == nil else { throw duplicate(".cls") }
            let text = String(decoding: cls, as: UTF8.self).trimmingWhitespace
            guard size <= 4096, !text.isEmpty, text.utf8.allSatisfy({ (48...57).contains($0) }), let value = Int32(text) else {
                throw DataError(
                    .labelOutOfRange, file: path,
                    expected:
                        "a class number (decimal digits) in member \(member) at byte \(groupedDigits(offset)) (sample \(labels.count))",
                    found: size > 4096 ? "\(groupedDigits(size)) bytes" : "\"\(text.prefix(40))\"",
                    remedy: "write the sample's class number, from 0, in its .cls")
            }
            if let classCount, Int(value) >= classCount {
                throw DataError(
                    .labelOutOfRange, file: path,
                    expected:
                        "a class number below the class count \(classCount) in member \(member) at byte \(groupedDigits(offset)) (sample \(labels.count))",
                    found: "\(value)", remedy: "fix the .cls, or list every class in classes.txt")
            }
            group.label = (Int(value), name, offset)
        } else {
            group.others += 1
        }
    }

    /// Adds the gathered sample, or throws when it has an image or a label but not both.
    private mutating func finish(_ group: inout Group?, path: String) throws(DataError) {
        guard let gathered = group else { return }
        group = nil
        skipped += gathered.others
        let key = String(decoding: gathered.key, as: UTF8.self)
        switch (gathered.image, gathered.label) {
        case (nil, nil): return
        case (let image?, nil):
            throw DataError(
                .countMismatch, file: path, expected: "a \(key).cls member beside the image (sample \(labels.count))",
                found: "image \(String(decoding: image.path, as: UTF8.self)) at byte \(groupedDigits(image.offset)) without one",
                remedy: "pack the collection again: every image needs its class in KEY.cls, next to it")
        case (nil, let label?):
            throw DataError(
                .countMismatch, file: path, expected: "an image member \(key).jpg, .jpeg or .png beside the .cls (sample \(labels.count))",
                found: "\(String(decoding: label.path, as: UTF8.self)) at byte \(groupedDigits(label.offset)) without one",
                remedy: "pack the collection again: every .cls needs its image, next to it")
        case (let image?, let label?):
            offsets.append(UInt64(image.offset))
            lengths.append(UInt32(image.length))
            labels.append(Int32(label.value))
            largestLabel = max(largestLabel, label.value)
        }
    }
}

extension String {
    /// The text without leading and trailing spaces, tabs, carriage returns and newlines.
    fileprivate var trimmingWhitespace: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
