import Foundation
import Tensors
import TestSupport
import XCTest

@testable import DataPipeline

/// A tree of fake image files in a fresh temporary folder, removed when the test ends. No store
/// decodes anything, so an "image" is a few distinct bytes.
final class ImageTree {
    let root: String

    init(_ test: XCTestCase) throws {
        root = test.memoryBackedTemporaryPath("images-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    func path(_ relative: String) -> String { "\(root)/\(relative)" }

    /// Writes `bytes` (by default bytes made from the path) at `relative`, creating its folders.
    @discardableResult
    func file(_ relative: String, _ bytes: [UInt8]? = nil) throws -> [UInt8] {
        let contents = bytes ?? Self.fakeImage(relative)
        let target = path(relative)
        try FileManager.default.createDirectory(
            atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(contents).write(to: URL(fileURLWithPath: target))
        return contents
    }

    func folder(_ relative: String) throws {
        try FileManager.default.createDirectory(atPath: path(relative), withIntermediateDirectories: true)
    }

    /// A symbolic link at `relative` to `target` (taken as is: absolute, or relative to the link's folder).
    func link(_ relative: String, to target: String) throws {
        try FileManager.default.createDirectory(
            atPath: (path(relative) as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: path(relative), withDestinationPath: target)
    }

    func remove(_ relative: String) throws { try FileManager.default.removeItem(atPath: path(relative)) }

    /// Distinct bytes for each name, of a length that varies with it (some beyond one tar block).
    static func fakeImage(_ name: String) -> [UInt8] {
        let seed = name.utf8.reduce(0) { ($0 &* 31 &+ Int($1)) & 0xFFFF }
        return [0xFF, 0xD8] + DataFixtures.bytes(count: 40 + seed % 900, seed: seed)
    }

    /// The bytes of every sample of `store`, in index order.
    static func contents(_ store: some EncodedImageStore) throws -> [[UInt8]] {
        var buffer: [UInt8] = []
        return try (0..<store.count).map { index in
            let count = try store.readEncodedBytes(of: index, into: &buffer)
            return Array(buffer[..<count])
        }
    }
}

/// The folder holding the CIFAR-10 JPEG archives (`../shared/data/cifar10-jpeg` beside the
/// repository), unpacked into a temporary folder; the test is skipped when they are missing.
func unpackedCIFAR10JPEG(_ test: XCTestCase) throws -> String {
    let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let archives = repository.deletingLastPathComponent().appendingPathComponent("shared/data/cifar10-jpeg").path
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: archives)) ?? []).filter { $0.hasSuffix(".tar.gz") }.sorted()
    guard names.count == 20 else {
        throw XCTSkip("the CIFAR-10 JPEG archives are not in \(archives) (a fresh clone has no ../shared/data; CI has it)")
    }
    let target = test.memoryBackedTemporaryPath("cifar10-jpeg")
    try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
    for name in names {
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        tar.arguments = ["tar", "-xzf", "\(archives)/\(name)", "-C", target]
        try tar.run()
        tar.waitUntilExit()
        XCTAssertEqual(tar.terminationStatus, 0, "tar -xzf \(name)")
    }
    return target
}

extension XCTestCase {
    /// `temporaryPath(name)`, but in /dev/shm when it exists: tens of thousands of small files
    /// are made and removed there in a second, where a loaded virtual disk takes a minute.
    func memoryBackedTemporaryPath(_ name: String) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: "/dev/shm", isDirectory: &isDirectory), isDirectory.boolValue,
            access("/dev/shm", W_OK) == 0
        else { return temporaryPath(name) }
        let path = "/dev/shm/pskd-\(name)-\(getpid())"
        try? FileManager.default.removeItem(atPath: path)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }
}

final class ImageFolderStoreTests: XCTestCase {
    func testClassesAreSubfolderNamesInByteOrderAndSamplesSortByPathWithinAClass() throws {
        let tree = try ImageTree(self)
        // Byte order: "B" (0x42) < "a" < "b" < "ä" (0xC3 0xA4); Unicode-aware or case-folding sorts differ.
        for name in ["b/2.jpg", "b/10.jpg", "b/sub/1.jpg", "b/1.jpg", "a/z.png", "B/x.jpg", "ä/q.jpeg", "b/a.jpg"] {
            try tree.file("train/\(name)")
        }
        let store = try ImageFolderStore(directory: tree.root, split: .train)
        XCTAssertEqual(store.classNames, ["B", "a", "b", "ä"])
        XCTAssertEqual(store.splitFolder, "train")
        XCTAssertEqual(store.count, 8)
        XCTAssertEqual(store.labels, [0, 1, 2, 2, 2, 2, 2, 3])
        let expected = ["B/x.jpg", "a/z.png", "b/1.jpg", "b/10.jpg", "b/2.jpg", "b/a.jpg", "b/sub/1.jpg", "ä/q.jpeg"]
        XCTAssertEqual((0..<store.count).map(store.location), expected.map { tree.path("train/\($0)") })
        XCTAssertEqual(try ImageTree.contents(store), expected.map { ImageTree.fakeImage("train/\($0)") })
        XCTAssertEqual(store.skippedEntryCount, 0)
        XCTAssertEqual(store.summary, "\(tree.root)/train (4 class folders, 8 images)")
    }

    func testExtensionsInAnyLetterCaseAreImagesAndOtherFilesAreSkippedAndCounted() throws {
        let tree = try ImageTree(self)
        for name in ["c/a.JPG", "c/b.Jpeg", "c/c.PNG", "c/d.jpg", "c/notes.txt", "c/e.gif", "c/f.jpg.bak", "c/.DS_Store", "c/noext"] {
            try tree.file("train/\(name)")
        }
        try tree.file("train/README.md")
        let store = try ImageFolderStore(directory: tree.root, split: .train)
        XCTAssertEqual(
            (0..<store.count).map(store.location), ["c/a.JPG", "c/b.Jpeg", "c/c.PNG", "c/d.jpg"].map { tree.path("train/\($0)") })
        XCTAssertEqual(store.skippedEntryCount, 6)
        XCTAssertEqual((0..<store.count).map(store.fileExtension), ["jpg", "jpeg", "png", "jpg"])
    }

    func testSymbolicLinksToFilesAndFoldersAreFollowed() throws {
        let tree = try ImageTree(self)
        let outsideFile = try tree.file("elsewhere/photo.jpg")
        let outsideFolder = try tree.file("elsewhere/more/deep.png")
        try tree.file("train/cat/own.jpg")
        try tree.link("train/cat/linked.jpg", to: tree.path("elsewhere/photo.jpg"))
        try tree.link("train/cat/linked-folder", to: "../../elsewhere/more")
        try tree.file("library/dog/1.jpg")
        try tree.link("train/dog", to: tree.path("library/dog"))  // the class folder itself is a link
        let store = try ImageFolderStore(directory: tree.root, split: .train)
        XCTAssertEqual(store.classNames, ["cat", "dog"])
        XCTAssertEqual(
            (0..<store.count).map(store.location),
            ["cat/linked-folder/deep.png", "cat/linked.jpg", "cat/own.jpg", "dog/1.jpg"].map { tree.path("train/\($0)") })
        let contents = try ImageTree.contents(store)
        XCTAssertEqual(contents[0], outsideFolder)
        XCTAssertEqual(contents[1], outsideFile)
    }

    func testALinkToAFolderAboveItIsAnErrorNamingTheLink() throws {
        let tree = try ImageTree(self)
        try tree.file("train/cat/1.jpg")
        try tree.link("train/cat/sub/loop", to: "..")
        XCTAssertThrowsError(try ImageFolderStore(directory: tree.root, split: .train)) { error in
            let error = error as! DataError
            XCTAssertEqual(error.kind, .badLayout)
            XCTAssertEqual(error.file, tree.path("train/cat/sub/loop"))
            XCTAssertTrue(error.found.contains("directory loop"), error.description)
        }
        let other = try ImageTree(self)
        try other.file("train/cat/1.jpg")
        try other.link("train/cat/root", to: other.root)
        XCTAssertThrowsError(try ImageFolderStore(directory: other.root, split: .train)) { error in
            XCTAssertEqual((error as! DataError).file, other.path("train/cat/root"))
        }
    }

    func testAnEmptyClassFolderIsAnErrorNamingIt() throws {
        let tree = try ImageTree(self)
        try tree.file("train/cat/1.jpg")
        try tree.file("train/dog/notes.txt")
        try tree.folder("train/dog/empty-subfolder")
        XCTAssertThrowsError(try ImageFolderStore(directory: tree.root, split: .train)) { error in
            let error = error as! DataError
            XCTAssertEqual(error.kind, .badLayout)
            XCTAssertEqual(error.file, tree.path("train/dog"))
        }
        XCTAssertThrowsError(try ImageFolderStore(directory: tree.path("nothing"), split: .train)) { error in
            XCTAssertEqual((error as! DataError).kind, .missingFile)
            XCTAssertEqual((error as! DataError).file, tree.path("nothing/train"))
        }
    }

    func testTheEvaluationSplitIsValOrTestWithTheTrainingClasses() throws {
        let tree = try ImageTree(self)
        for name in ["train/cat/1.jpg", "train/dog/1.jpg", "test/cat/t.jpg", "test/dog/t.jpg", "test/dog/u.jpg"] { try tree.file(name) }
        XCTAssertEqual(ImageFolderStore.evaluationFolderName(in: tree.root), "test")
        let test = try ImageFolderStore(directory: tree.root, split: .test)
        XCTAssertEqual(test.splitFolder, "test")
        XCTAssertEqual(test.labels, [0, 1, 1])
        XCTAssertEqual(test.classNames, ["cat", "dog"])

        for name in ["val/cat/v.jpg", "val/dog/v.jpg"] { try tree.file(name) }
        let val = try ImageFolderStore(directory: tree.root, split: .test)
        XCTAssertEqual(val.splitFolder, "val", "val is preferred when both exist")
        XCTAssertEqual(val.count, 2)

        try tree.file("val/bird/v.jpg")
        XCTAssertThrowsError(try ImageFolderStore(directory: tree.root, split: .test)) { error in
            let error = error as! DataError
            XCTAssertEqual(error.kind, .badLayout)
            XCTAssertEqual(error.file, tree.path("val/bird"))
            XCTAssertTrue(error.found.contains("bird"), error.description)
        }
        try tree.remove("val/bird")
        try tree.remove("val/dog")
        XCTAssertThrowsError(try ImageFolderStore(directory: tree.root, split: .test)) { error in
            let error = error as! DataError
            XCTAssertEqual(error.file, tree.path("val/dog"))
            XCTAssertTrue(error.found.contains("no folder for class dog"), error.description)
        }

        let noEvaluation = try ImageTree(self)
        try noEvaluation.file("train/cat/1.jpg")
        XCTAssertNil(ImageFolderStore.evaluationFolderName(in: noEvaluation.root))
        XCTAssertThrowsError(try ImageFolderStore(directory: noEvaluation.root, split: .test)) { error in
            XCTAssertEqual((error as! DataError).kind, .missingFile)
        }
    }

    func testAFileThatCannotBeReadAtReadTimeThrowsNamingThePathAndTheSample() throws {
        let tree = try ImageTree(self)
        for name in ["train/cat/1.jpg", "train/cat/2.jpg", "train/cat/3.jpg"] { try tree.file(name) }
        let store = try ImageFolderStore(directory: tree.root, split: .train)
        try tree.remove("train/cat/2.jpg")
        var buffer: [UInt8] = []
        XCTAssertThrowsError(try store.readEncodedBytes(of: 1, into: &buffer)) { error in
            let error = error as! DataError
            XCTAssertEqual(error.kind, .missingFile)
            XCTAssertEqual(error.file, tree.path("train/cat/2.jpg"))
            XCTAssertTrue(error.expected.contains("sample 1 "), error.description)
            XCTAssertTrue(error.found.contains("ENOENT"), error.description)
        }
        try tree.folder("train/cat/2.jpg")
        XCTAssertThrowsError(try store.readEncodedBytes(of: 1, into: &buffer)) { error in
            XCTAssertTrue((error as! DataError).found.contains("folder"), "\(error)")
        }
        try FileManager.default.setAttributes([.posixPermissions: 0], ofItemAtPath: tree.path("train/cat/3.jpg"))
        try asUnprivilegedFileUser {  // root reads anything: check as `nobody`, who cannot
            XCTAssertThrowsError(try store.readEncodedBytes(of: 2, into: &buffer)) { error in
                XCTAssertTrue((error as! DataError).found.contains("EACCES"), "\(error)")
            }
        }
        XCTAssertEqual(try store.readEncodedBytes(of: 0, into: &buffer), ImageTree.fakeImage("train/cat/1.jpg").count)
    }

    /// Runs `body` with this thread's file-system user `nobody` when the tests run as root (Linux
    /// `setfsuid` drops the capability to read any file for the calling thread alone), so a file
    /// without read permission is unreadable as it is to a user's job.
    private func asUnprivilegedFileUser(_ body: () throws -> Void) throws {
        guard geteuid() == 0 else { return try body() }
        typealias SetFSUID = @convention(c) (uid_t) -> Int32  // glibc's, which Swift's Glibc does not import
        let setfsuid = unsafeBitCast(try XCTUnwrap(dlsym(dlopen(nil, RTLD_NOW), "setfsuid")), to: SetFSUID.self)
        let nobody: uid_t = 65534
        _ = setfsuid(nobody)
        defer { _ = setfsuid(0) }
        XCTAssertEqual(setfsuid(nobody), Int32(nobody), "the thread's file-system user is nobody")
        try body()
    }

    func testReadsGrowTheBufferOnlyWhenItIsTooSmall() throws {
        let tree = try ImageTree(self)
        let image = try tree.file("train/cat/1.jpg", [UInt8](repeating: 7, count: 3000))
        let store = try ImageFolderStore(directory: tree.root, split: .train)
        var small: [UInt8] = [1, 2]
        XCTAssertEqual(try store.readEncodedBytes(of: 0, into: &small), 3000)
        XCTAssertEqual(small, image)
        var large = [UInt8](repeating: 9, count: 5000)
        XCTAssertEqual(try store.readEncodedBytes(of: 0, into: &large), 3000)
        XCTAssertEqual(large.count, 5000)
        XCTAssertEqual(Array(large[..<3000]), image)
        XCTAssertEqual(large[3000], 9)
    }

    func testTheIndexOfAGeneratedTreeOf20000ImageNetNamesCostsAtMost32BytesPerSample() throws {
        let tree = try ImageTree(self)
        for c in 0..<20 {
            let synset = "n0\(1_440_764 + c * 1_000)"
            try tree.folder("train/\(synset)")
            for i in 0..<1_000 {
                let descriptor = open(tree.path("train/\(synset)/\(synset)_\(10_026 + i * 7).JPEG"), O_WRONLY | O_CREAT, 0o644)
                XCTAssertGreaterThanOrEqual(descriptor, 0)
                close(descriptor)
            }
        }
        let store = try ImageFolderStore(directory: tree.root, split: .train)
        XCTAssertEqual(store.count, 20_000)
        let perSample = Double(store.indexByteCount) / Double(store.count)
        print("ImageFolderStore index: \(store.indexByteCount) bytes for \(store.count) samples, \(perSample) bytes per sample")
        XCTAssertLessThanOrEqual(perSample, 32)
    }

    func testTheIndexOf1_28MillionSyntheticImageNetNamesCostsAtMost32BytesPerSample() throws {
        var lists: [NameList] = []
        var classes: [[UInt8]] = []
        for c in 0..<1_000 {
            let synset = "n0\(1_440_764 + c * 1_000)"
            classes.append(Array(synset.utf8))
            var list = NameList()
            for i in 0..<1_281 { list.append(Array("\(synset)_\(10_000 + (i * 7_919) % 90_000).JPEG".utf8)) }  // 20 bytes
            lists.append(list)
        }
        let store = try ImageFolderStore(
            directory: "/data/imagenet", split: .train, splitFolder: "train", classFolderNames: classes, lists: lists, skipped: 0)
        XCTAssertEqual(store.count, 1_281_000)
        let perSample = Double(store.indexByteCount) / Double(store.count)
        print(
            "ImageFolderStore index: \(store.indexByteCount) bytes for \(store.count) synthetic ImageNet names, \(perSample) bytes per sample"
        )
        XCTAssertLessThanOrEqual(perSample, 32)
        XCTAssertEqual(store.location(of: 1_281), "/data/imagenet/train/n01441764/n01441764_10000.JPEG")
        XCTAssertEqual(store.location(of: 1_282), "/data/imagenet/train/n01441764/n01441764_10004.JPEG")
    }

    func testCIFAR10JPEGFolder() throws {
        let directory = try unpackedCIFAR10JPEG(self)
        let train = try ImageFolderStore(directory: directory, split: .train)
        let test = try ImageFolderStore(directory: directory, split: .test)
        let cifar = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        XCTAssertEqual(train.classNames, cifar)
        XCTAssertEqual(test.classNames, cifar)
        XCTAssertEqual(test.splitFolder, "test")
        XCTAssertEqual(train.count, 50_000)
        XCTAssertEqual(test.count, 10_000)
        XCTAssertEqual(train.skippedEntryCount, 0)
        XCTAssertEqual(train.labels[4_999], 0)
        XCTAssertEqual(train.labels[5_000], 1)
        XCTAssertEqual(train.location(of: 5_000), "\(directory)/train/automobile/0000.jpg")
        var buffer: [UInt8] = []
        let count = try train.readEncodedBytes(of: 12_345, into: &buffer)
        XCTAssertEqual(Array(buffer[..<2]), [0xFF, 0xD8], "a JPEG starts with SOI")
        XCTAssertEqual(
            Array(buffer[..<count]), [UInt8](try Data(contentsOf: URL(fileURLWithPath: train.location(of: 12_345)))))
        let perSample = Double(train.indexByteCount) / Double(train.count)
        print("CIFAR-10 JPEG folder index: \(train.indexByteCount) bytes for \(train.count) samples, \(perSample) bytes per sample")
        XCTAssertLessThanOrEqual(perSample, 32)
    }
}

/// A store of labels alone, whose sample `i` reads as the bytes of `i`.
private struct LabelStore: EncodedImageStore {
    let labels: [Int32]
    let classNames: [String]
    var count: Int { labels.count }
    var skippedEntryCount: Int { 0 }
    var summary: String { "labels" }

    init(sizes: [Int]) {
        labels = sizes.enumerated().flatMap { c, size in Array(repeating: Int32(c), count: size) }
        classNames = sizes.indices.map(String.init)
    }

    init(labels: [Int32], classes: Int) {
        self.labels = labels
        classNames = (0..<classes).map(String.init)
    }

    func readEncodedBytes(of index: Int, into buffer: inout [UInt8]) throws(DataError) -> Int {
        buffer = withUnsafeBytes(of: index.littleEndian, Array.init)
        return buffer.count
    }

    func location(of index: Int) -> String { "#\(index)" }
}

final class ClassProportionalSubsetTests: XCTestCase {
    private func sizes(_ subset: EncodedImageSubset) -> [Int] {
        var sizes = [Int](repeating: 0, count: subset.classNames.count)
        for label in subset.labels { sizes[Int(label)] += 1 }
        return sizes
    }

    func testEveryClassGetsItsShareWithLargestRemainderRoundingToExactlyK() throws {
        let store = LabelStore(sizes: [500, 300, 200])
        let subset = try classProportionalSubset(of: store, count: 10, generator: RandomGenerator(seed: 1))
        XCTAssertEqual(subset.count, 10)
        XCTAssertEqual(sizes(subset), [5, 3, 2])

        // Shares 7 × (4, 3, 3) / 10 = 2.8, 2.1, 2.1: floors 2, 2, 2 and the one left to class 0.
        XCTAssertEqual(
            sizes(try classProportionalSubset(of: LabelStore(sizes: [4, 3, 3]), count: 7, generator: RandomGenerator(seed: 1))), [3, 2, 2])
        // Equal remainders go in class order: 4 × (3, 3, 3) / 9 = 1.33 each.
        XCTAssertEqual(
            sizes(try classProportionalSubset(of: LabelStore(sizes: [3, 3, 3]), count: 4, generator: RandomGenerator(seed: 1))), [2, 1, 1])

        let classSizes = [1_300, 732, 1_000, 999, 1_281]
        let uneven = LabelStore(sizes: classSizes)
        for k in [5, 17, 100, 2_345, 5_312] {
            let subset = try classProportionalSubset(of: uneven, count: k, generator: RandomGenerator(seed: UInt64(k)))
            XCTAssertEqual(subset.count, k)
            for (c, size) in sizes(subset).enumerated() {
                let share = Double(k) * Double(classSizes[c]) / 5_312
                XCTAssertLessThan(abs(Double(size) - share), 1, "class \(c) of \(k)")
                XCTAssertGreaterThan(size, 0, "every class is present")
            }
        }
    }

    func testMembersKeepTheirOrderAndTheViewRenumbersAndReadsThroughTheBase() throws {
        let store = LabelStore(labels: (0..<1_000).map { Int32($0 % 7) }, classes: 7)
        let subset = try classProportionalSubset(of: store, count: 123, generator: RandomGenerator(seed: 9))
        XCTAssertEqual(subset.members, subset.members.sorted())
        XCTAssertEqual(Set(subset.members).count, 123)
        XCTAssertEqual(subset.labels, subset.members.map { store.labels[Int($0)] })
        XCTAssertEqual((0..<123).map(subset.label(of:)), subset.labels)
        var buffer: [UInt8] = []
        _ = try subset.readEncodedBytes(of: 5, into: &buffer)
        XCTAssertEqual(buffer, withUnsafeBytes(of: Int(subset.members[5]).littleEndian, Array.init))
        XCTAssertEqual(subset.location(of: 5), "#\(subset.members[5]) (sample 5 of the subset)")
        XCTAssertEqual(subset.indexByteCount, 4 * subset.members.capacity)
        XCTAssertLessThanOrEqual(subset.indexByteCount, 4 * 123 + 16, "4 bytes per kept sample, and malloc's rounding")
        XCTAssertEqual(
            try classProportionalSubset(of: store, count: 1_000, generator: RandomGenerator(seed: 9)).members, (0..<1_000).map(UInt32.init))
    }

    func testTheSeedFixesTheChoiceAndDifferentSeedsDiffer() throws {
        let store = LabelStore(sizes: [400, 400, 200])
        let first = try classProportionalSubset(of: store, count: 100, generator: RandomGenerator(seed: 42))
        let again = try classProportionalSubset(of: store, count: 100, generator: RandomGenerator(seed: 42))
        let other = try classProportionalSubset(of: store, count: 100, generator: RandomGenerator(seed: 43))
        XCTAssertEqual(first.members, again.members)
        XCTAssertNotEqual(first.members, other.members)
        XCTAssertEqual(sizes(other), sizes(first))
        XCTAssertNotEqual(first.members, (0..<100).map(UInt32.init), "not the first K")
    }

    func testACountOutsideOneToTheStoreSizeIsRefused() {
        let store = LabelStore(sizes: [3, 3])
        for k in [0, -1, 7] {
            XCTAssertThrowsError(try classProportionalSubset(of: store, count: k, generator: RandomGenerator(seed: 1))) { error in
                XCTAssertEqual((error as! DataError).kind, .invalidConfiguration)
            }
        }
    }
}
