#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// One split of an image collection stored as files, one folder per class, torchvision's
/// `ImageFolder` layout:
///
///     DIR/train/CLASS/…/NAME.jpg        the training split
///     DIR/val/CLASS/…/NAME.jpg          the evaluation split (or DIR/test/CLASS/…; val is
///                                       preferred when both exist)
///
/// The classes are the training folder's subfolder names sorted by byte order (torchvision's
/// rule: `cat` is class 3 of CIFAR-10's ten), and class `c` of the evaluation split is the
/// folder with the same name: its folder must hold exactly the training folder's classes. Within
/// a class folder, every file whose name ends in `.jpg`, `.jpeg` or `.png` (any letter case),
/// at any depth, is a sample; the samples of a class are sorted by their path inside the class
/// folder in byte order (for files in nested subfolders this can differ from torchvision, which
/// sorts folder by folder), and a sample's global index is its position in (class, path) order.
/// Other files are skipped and counted (`skippedEntryCount`). Symbolic links to files and
/// folders are followed; a link to a folder that contains it (a directory loop) is an error
/// naming the link.
///
/// The index is built from the directory listing alone (no file is opened) and holds, per
/// sample, its path inside its class folder (all paths in one byte blob), a 4-byte end offset
/// and its 4-byte label: for ImageNet's names (`n01440764_10026.JPEG`, 20 bytes) 28 bytes a
/// sample (`indexByteCount`). A read opens the sample's file, `pread`s it and closes it, so any
/// number of threads may read at once.
public struct ImageFolderStore: EncodedImageStore {
    /// The file name extensions of samples, compared without regard to letter case.
    public static let imageExtensions = ["jpg", "jpeg", "png"]

    /// The collection's folder, `DIR`.
    public let directory: String
    /// Which split this is.
    public let split: DatasetSplit
    /// The split's folder name inside `directory`: `train`, `val` or `test`.
    public let splitFolder: String
    public let classNames: [String]
    public let labels: [Int32]
    public let skippedEntryCount: Int

    /// Every sample's path inside its class folder, one after the other with no separator.
    private let names: [UInt8]
    /// Where sample `i`'s name ends in `names` (it starts where sample `i - 1`'s ends).
    private let nameEnds: [UInt32]
    /// Each class folder's path, `DIR/SPLIT/CLASS/`, as bytes (file names need not be UTF-8).
    private let classFolders: [[UInt8]]

    /// Indexes split `split` of the collection in `directory`; for `.test`, the evaluation
    /// folder `val`, or `test` when there is no `val`.
    ///
    /// - Throws: `DataError` when the split's folder is missing or has no class folder, a class
    ///   folder holds no image (naming it), the evaluation folder's classes differ from the
    ///   training folder's (naming the missing or extra class), a folder cannot be listed, or a
    ///   symbolic link loops back to a folder above it (naming the link).
    public init(directory: String, split: DatasetSplit) throws(DataError) {
        let root = Array(directory.utf8)
        let trainListing = try Self.listClassFolders(Self.join(root, "train"), split: "train")
        let folder: String
        var listing = trainListing
        switch split {
        case .train:
            folder = "train"
        case .test:
            guard let name = Self.evaluationFolderName(in: directory) else {
                throw DataError(
                    .missingFile, file: Self.string(Self.join(root, "val")),
                    expected: "an evaluation split, \(directory)/val/CLASS/… or \(directory)/test/CLASS/…",
                    found: "neither folder", remedy: "put the evaluation images in \(directory)/val, one folder per class")
            }
            folder = name
            listing = try Self.listClassFolders(Self.join(root, name), split: name)
            try Self.checkSameClasses(train: trainListing.classes, evaluation: listing.classes, directory: directory, folder: name)
        }
        let splitPath = Self.join(root, folder)
        var walker = FolderWalker(top: splitPath)
        walker.skipped = listing.skipped
        var lists: [NameList] = []
        for name in listing.classes {
            let classFolder = splitPath + [UInt8(ascii: "/")] + name
            var list = NameList()
            try walker.walk(classFolder, relative: [], into: &list)
            guard list.count > 0 else {
                throw DataError(
                    .badLayout, file: Self.string(classFolder),
                    expected: "at least one .jpg, .jpeg or .png file in every class folder (its subfolders included)",
                    found: "an empty class folder", remedy: "put the class's images in it, or remove the folder from every split")
            }
            lists.append(list)
        }
        try self.init(
            directory: directory, split: split, splitFolder: folder, classFolderNames: listing.classes, lists: lists,
            skipped: walker.skipped)
    }

    /// An index of the given names: `lists[c]` holds class `c`'s paths inside its folder, in any
    /// order (sorted here). The initialiser above and the index-size tests build through it.
    init(
        directory: String, split: DatasetSplit, splitFolder: String, classFolderNames: [[UInt8]], lists: [NameList],
        skipped: Int
    ) throws(DataError) {
        let splitPath = Self.join(Array(directory.utf8), splitFolder)
        var names: [UInt8] = []
        names.reserveCapacity(lists.reduce(0) { $0 + $1.bytes.count })
        var ends: [UInt32] = []
        ends.reserveCapacity(lists.reduce(0) { $0 + $1.count })
        var labels: [Int32] = []
        labels.reserveCapacity(ends.capacity)
        for (label, list) in lists.enumerated() {
            for member in list.sortedOrder() {
                names.append(contentsOf: list.bytes[list.range(member)])
                guard names.count <= Int(UInt32.max) else {
                    throw DataError(
                        .invalidConfiguration, file: Self.string(splitPath), expected: "at most 4 GiB of file names in one split",
                        found: "more, at \(ends.count) files", remedy: "split the collection in several folders, or pack it into shards")
                }
                ends.append(UInt32(names.count))
                labels.append(Int32(label))
            }
        }
        self.directory = directory
        self.split = split
        self.splitFolder = splitFolder
        self.classNames = classFolderNames.map { String(decoding: $0, as: UTF8.self) }
        self.classFolders = classFolderNames.map { splitPath + [UInt8(ascii: "/")] + $0 + [UInt8(ascii: "/")] }
        self.names = names
        self.nameEnds = ends
        self.labels = labels
        self.skippedEntryCount = skipped
    }

    public var count: Int { labels.count }

    /// The bytes the index occupies: the name blob, the offsets and labels (their allocated
    /// capacity) and the class folders' paths.
    public var indexByteCount: Int {
        names.capacity + nameEnds.capacity * MemoryLayout<UInt32>.size + labels.capacity * MemoryLayout<Int32>.size
            + classFolders.reduce(0) { $0 + $1.capacity + MemoryLayout<[UInt8]>.size }
            + classNames.reduce(0) { $0 + $1.utf8.count + MemoryLayout<String>.size }
    }

    public var summary: String {
        "\(directory)/\(splitFolder) (\(groupedDigits(classNames.count)) class folders, \(groupedDigits(count)) images)"
    }

    /// The name of the evaluation split's folder in `directory`: `val` when it exists, else
    /// `test` when it exists, else nil.
    public static func evaluationFolderName(in directory: String) -> String? {
        ["val", "test"].first { isDirectory(join(Array(directory.utf8), $0)) }
    }

    public func location(of index: Int) -> String {
        Self.string(path(of: index))
    }

    /// Sample `index`'s file name extension, lower-cased (`jpg`, `jpeg` or `png`).
    func fileExtension(of index: Int) -> String {
        let name = names[nameRange(index)]
        let dot = name.lastIndex(of: UInt8(ascii: ".")).map { $0 + 1 } ?? name.endIndex
        return String(decoding: name[dot...], as: UTF8.self).lowercased()
    }

    public func readEncodedBytes(of index: Int, into buffer: inout [UInt8]) throws(DataError) -> Int {
        precondition(index >= 0 && index < count, "sample \(index) is not in 0..<\(count)")
        let folder = classFolders[Int(labels[index])]
        let range = nameRange(index)
        let opened: Result<Int32, POSIXFailure> = withUnsafeTemporaryAllocation(of: CChar.self, capacity: folder.count + range.count + 1) {
            path in
            var end = 0
            for byte in folder { path[end] = CChar(bitPattern: byte); end += 1 }
            for byte in names[range] { path[end] = CChar(bitPattern: byte); end += 1 }
            path[end] = 0
            return POSIXFile.openForReading(path.baseAddress!)
        }
        let descriptor: Int32
        switch opened {
        case .success(let value): descriptor = value
        case .failure(let failure): throw readError(index, found: "it cannot be opened: \(failure)")
        }
        defer { close(descriptor) }
        let size: Int
        switch POSIXFile.status(descriptor) {
        case .success(let status) where status.isRegular: size = status.size
        case .success: throw readError(index, found: "a folder or other non-file of that name")
        case .failure(let failure): throw readError(index, found: "no status: \(failure)")
        }
        if buffer.count < size { buffer.append(contentsOf: repeatElement(0, count: size - buffer.count)) }
        switch POSIXFile.read(descriptor, into: &buffer, count: size, at: 0) {
        case .success(let got) where got == size: return size
        case .success(let got): throw readError(index, found: "\(got) bytes where the file had \(size) when opened (it shrank)")
        case .failure(let failure): throw readError(index, found: "a read error: \(failure)")
        }
    }

    // MARK: - Private

    private func nameRange(_ index: Int) -> Range<Int> {
        (index == 0 ? 0 : Int(nameEnds[index - 1]))..<Int(nameEnds[index])
    }

    private func path(of index: Int) -> [UInt8] {
        classFolders[Int(labels[index])] + names[nameRange(index)]
    }

    private func readError(_ index: Int, found: String) -> DataError {
        DataError(
            .missingFile, file: location(of: index),
            expected: "the readable image file of sample \(index) of \(directory)/\(splitFolder), as indexed at start-up", found: found,
            remedy: "restore the file (or make it readable), or restart so that the folder is indexed again as it is now")
    }

    /// The class folders of a split folder, sorted by byte order, and how many other entries it has.
    private static func listClassFolders(_ path: [UInt8], split: String) throws(DataError) -> (classes: [[UInt8]], skipped: Int) {
        let entries: [DirectoryEntry]
        switch DirectoryEntry.list(path) {
        case .success(let list): entries = list
        case .failure(let failure):
            throw DataError(
                .missingFile, file: string(path), expected: "a folder of class folders (\(split)/CLASS/NAME.jpg)",
                found: "it cannot be listed: \(failure)", remedy: "pass the folder that holds \(split)/ (and val/ or test/)")
        }
        var classes: [[UInt8]] = []
        var skipped = 0
        for entry in entries {
            if entry.kind(in: path) == .directory { classes.append(entry.name) } else { skipped += 1 }
        }
        guard !classes.isEmpty else {
            throw DataError(
                .badLayout, file: string(path), expected: "one folder per class (\(split)/CLASS/NAME.jpg)",
                found: "no folder among its \(entries.count) entries", remedy: "put each class's images in a folder named after the class")
        }
        return (classes.sorted { $0.lexicographicallyPrecedes($1) }, skipped)
    }

    private static func checkSameClasses(train: [[UInt8]], evaluation: [[UInt8]], directory: String, folder: String) throws(DataError) {
        let trainSet = Set(train)
        let evaluationSet = Set(evaluation)
        let missing = train.filter { !evaluationSet.contains($0) }.map { string($0) }
        let extra = evaluation.filter { !trainSet.contains($0) }.map { string($0) }
        func refuse(_ names: [String], found: String, remedy: String) throws(DataError) {
            guard let first = names.first else { return }
            throw DataError(
                .badLayout, file: "\(directory)/\(folder)/\(first)",
                expected: "the same \(train.count) class folders as \(directory)/train", found: found, remedy: remedy)
        }
        let plural = (missing.count > 1, extra.count > 1)
        try refuse(
            missing, found: "no folder for class\(plural.0 ? "es" : "") \(listed(missing)) of the training split",
            remedy: "add the missing class folder\(plural.0 ? "s" : "") with their evaluation images")
        try refuse(
            extra, found: "class folder\(plural.1 ? "s" : "") \(listed(extra)) that the training split does not have",
            remedy: "remove the extra folder\(plural.1 ? "s" : ""), or add the class to \(directory)/train")
    }

    private static func listed(_ names: [String]) -> String {
        names.count <= 5 ? names.joined(separator: ", ") : names.prefix(5).joined(separator: ", ") + " and \(names.count - 5) more"
    }

    static func join(_ folder: [UInt8], _ name: String) -> [UInt8] {
        folder + [UInt8(ascii: "/")] + Array(name.utf8)
    }

    static func string(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    private static func isDirectory(_ path: [UInt8]) -> Bool {
        withCPath(path) { pointer in
            var info = stat()
            return stat(pointer, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
        }
    }
}

/// Paths (each a slice of one byte blob) collected while walking a class folder.
struct NameList {
    /// The paths, one after the other.
    var bytes: [UInt8] = []
    /// Where each path ends in `bytes`.
    var ends: [Int] = []

    var count: Int { ends.count }

    mutating func append(_ name: [UInt8]) {
        bytes.append(contentsOf: name)
        ends.append(bytes.count)
    }

    func range(_ index: Int) -> Range<Int> { (index == 0 ? 0 : ends[index - 1])..<ends[index] }

    /// The positions of the paths in byte order.
    func sortedOrder() -> [Int] {
        bytes.withUnsafeBufferPointer { blob in
            (0..<count).sorted { left, right in
                let (a, b) = (range(left), range(right))
                let common = min(a.count, b.count)
                let order = common == 0 ? 0 : memcmp(blob.baseAddress! + a.lowerBound, blob.baseAddress! + b.lowerBound, common)
                return order != 0 ? order < 0 : a.count < b.count
            }
        }
    }
}

/// An entry of a directory listing.
struct DirectoryEntry {
    enum Kind { case directory, file, other }

    let name: [UInt8]
    /// `d_type`: what `readdir` says the entry is (`DT_LNK` and `DT_UNKNOWN` need a `stat`).
    let type: UInt8

    /// The entries of the directory at `path` but `.` and `..`, in the order `readdir` gives.
    static func list(_ path: [UInt8]) -> Result<[DirectoryEntry], POSIXFailure> {
        guard let directory = withCPath(path, { opendir($0) }) else { return .failure(POSIXFailure(errno)) }
        defer { closedir(directory) }
        var entries: [DirectoryEntry] = []
        errno = 0
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: &entry.pointee.d_name) { raw in
                Array(raw.prefix(while: { $0 != 0 }))
            }
            if name != [UInt8(ascii: ".")] && name != [UInt8(ascii: "."), UInt8(ascii: ".")] {
                entries.append(DirectoryEntry(name: name, type: entry.pointee.d_type))
            }
        }
        if errno != 0 { return .failure(POSIXFailure(errno)) }
        return .success(entries)
    }

    /// What the entry is, following symbolic links (a dangling link is a file, which fails when read).
    func kind(in folder: [UInt8]) -> Kind {
        switch Int32(type) {
        case Int32(DT_DIR): return .directory
        case Int32(DT_REG): return .file
        case Int32(DT_LNK), Int32(DT_UNKNOWN):
            var info = stat()
            guard withCPath(folder + [UInt8(ascii: "/")] + name, { stat($0, &info) }) == 0 else { return .file }
            switch info.st_mode & S_IFMT {
            case S_IFDIR: return .directory
            case S_IFREG: return .file
            default: return .other
            }
        default: return .other
        }
    }
}

/// Walks class folders depth first, following symbolic links and refusing directory loops.
private struct FolderWalker {
    /// Entries that are neither image files nor folders.
    var skipped = 0
    /// The folders from `/` down to the one being walked, by device and inode, and their paths.
    private var ancestors: [(device: UInt64, inode: UInt64, path: [UInt8])] = []

    /// A walker of the folders below `top` (a link to `top` or any folder above it is a loop).
    init(top: [UInt8]) {
        guard let resolved = withCPath(top, { realpath($0, nil) }) else { return }
        defer { free(resolved) }
        let path = Array(String(cString: resolved).utf8)
        for end in path.indices where end == 0 || path[end] == UInt8(ascii: "/") {
            let folder = end == 0 ? [UInt8(ascii: "/")] : Array(path[..<end])
            if let identity = Self.identity(folder) { ancestors.append((identity.device, identity.inode, folder)) }
        }
        if path.count > 1, let identity = Self.identity(path) { ancestors.append((identity.device, identity.inode, path)) }
    }

    /// Appends the image files below `folder` to `list` as `relative` + their path below it.
    mutating func walk(_ folder: [UInt8], relative: [UInt8], into list: inout NameList) throws(DataError) {
        guard let identity = Self.identity(folder) else {
            throw DataError(
                .missingFile, file: ImageFolderStore.string(folder), expected: "a readable folder",
                found: "no status: \(POSIXFailure(errno))", remedy: "make the folder readable (chmod a+rx)")
        }
        if let loop = ancestors.first(where: { $0.device == identity.device && $0.inode == identity.inode }) {
            throw DataError(
                .badLayout, file: ImageFolderStore.string(folder),
                expected: "class folders without a symbolic link to a folder that contains the link",
                found: "a link to \(ImageFolderStore.string(loop.path)), a folder above it (a directory loop, walked forever)",
                remedy: "remove the link, or point it at a folder outside the class folder")
        }
        let entries: [DirectoryEntry]
        switch DirectoryEntry.list(folder) {
        case .success(let list): entries = list
        case .failure(let failure):
            throw DataError(
                .missingFile, file: ImageFolderStore.string(folder), expected: "a readable folder",
                found: "it cannot be listed: \(failure)", remedy: "make the folder readable (chmod a+rx)")
        }
        ancestors.append((identity.device, identity.inode, folder))
        defer { ancestors.removeLast() }
        for entry in entries {
            switch entry.kind(in: folder) {
            case .directory:
                try walk(folder + [UInt8(ascii: "/")] + entry.name, relative: relative + entry.name + [UInt8(ascii: "/")], into: &list)
            case .file where Self.isImageName(entry.name):
                list.append(relative + entry.name)
            case .file, .other:
                skipped += 1
            }
        }
    }

    /// Whether `name` ends in `.jpg`, `.jpeg` or `.png`, in any letter case.
    static func isImageName(_ name: [UInt8]) -> Bool {
        guard let dot = name.lastIndex(of: UInt8(ascii: ".")) else { return false }
        let suffix = name[(dot + 1)...].map { $0 | 0x20 }  // ASCII letters to lower case
        return ImageFolderStore.imageExtensions.contains { Array($0.utf8) == suffix }
    }

    private static func identity(_ path: [UInt8]) -> (device: UInt64, inode: UInt64)? {
        var info = stat()
        guard withCPath(path, { stat($0, &info) }) == 0 else { return nil }
        return (UInt64(info.st_dev), UInt64(info.st_ino))
    }
}

/// Calls `body` with `path` as a NUL-terminated C string.
func withCPath<R>(_ path: [UInt8], _ body: (UnsafePointer<CChar>) -> R) -> R {
    (path + [0]).withUnsafeBufferPointer { bytes in
        bytes.withMemoryRebound(to: CChar.self) { body($0.baseAddress!) }
    }
}

/// A copy of `array` in storage of its own size (an array grown by appending holds up to twice
/// the room it needs), for indexes that stay in memory for the whole run.
func exactCapacity<Element>(_ array: [Element]) -> [Element] {
    [Element](unsafeUninitializedCapacity: array.count) { storage, initialized in
        _ = storage.initialize(fromContentsOf: array)
        initialized = array.count
    }
}

/// `1234567` as `1 234 567`, for messages.
func groupedDigits(_ value: Int) -> String {
    let digits = Array(String(value.magnitude))
    var text = ""
    for (position, digit) in digits.enumerated() {
        if position > 0 && (digits.count - position) % 3 == 0 { text.append(" ") }
        text.append(digit)
    }
    return value < 0 ? "-" + text : text
}
