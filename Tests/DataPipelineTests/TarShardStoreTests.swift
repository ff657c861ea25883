import Foundation
import TestSupport
import XCTest

@testable import DataPipeline

/// Tar archives written byte by byte here (not by `TarFormat`, which they check): ustar headers,
/// GNU `L` long-name records and pax `x` records.
enum TarBytes {
    /// A 512-byte header. `ustar` false writes GNU's magic (`ustar  \0`), which has no prefix field.
    static func header(_ name: String, size: Int, type: Character = "0", ustar: Bool = true, prefix: String = "") -> [UInt8] {
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, _ start: Int) { for (i, byte) in text.utf8.enumerated() { block[start + i] = byte } }
        put(String(name.prefix(100)), 0)
        put("0000644", 100)
        put("0001750", 108)
        put("0001750", 116)
        put(String(format: "%011o", size), 124)
        put(String(format: "%011o", 1_700_000_000), 136)
        block[156] = type.asciiValue!
        put(ustar ? "ustar\u{0}00" : "ustar  \u{0}", 257)
        put("user", 265)
        put("group", 297)
        if ustar { put(prefix, 345) }
        put("        ", 148)
        let sum = block.reduce(0) { $0 + Int($1) }
        put(String(format: "%06o", sum), 148)
        block[154] = 0
        return block
    }

    static func padding(_ count: Int) -> [UInt8] { [UInt8](repeating: 0, count: (512 - count % 512) % 512) }

    /// A member: header, bytes, padding.
    static func member(_ name: String, _ bytes: [UInt8], type: Character = "0", ustar: Bool = true) -> [UInt8] {
        header(name, size: bytes.count, type: type, ustar: ustar) + bytes + padding(bytes.count)
    }

    static func member(_ name: String, _ text: String) -> [UInt8] { member(name, Array(text.utf8)) }

    /// A member whose name is longer than 100 bytes, after a GNU `././@LongLink` record.
    static func gnuLongMember(_ name: String, _ bytes: [UInt8]) -> [UInt8] {
        let longName = Array(name.utf8) + [0]
        return member("././@LongLink", longName, type: "L", ustar: false) + member(name, bytes, ustar: false)
    }

    /// A member whose path is in a pax extended header.
    static func paxMember(_ name: String, _ bytes: [UInt8]) -> [UInt8] {
        let body = " path=\(name)\n"  // a record counts its own length's digits
        var length = body.utf8.count + 1
        while String(length).count + body.utf8.count != length { length = String(length).count + body.utf8.count }
        let record = "\(length)\(body)"
        return member("PaxHeaders/x", Array(record.utf8), type: "x") + member("placeholder-name", bytes)
    }

    static let end = [UInt8](repeating: 0, count: 1024)
}

final class TarShardStoreTests: XCTestCase {
    private func write(_ bytes: [UInt8], _ name: String, in directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: "\(directory)/\(name)"))
    }

    private func assertError(
        _ body: @autoclosure () throws -> some Any, _ kind: DataError.Kind, mentions: [String], file: StaticString = #filePath,
        line: UInt = #line
    ) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard let error = error as? DataError else { return XCTFail("\(error)", file: file, line: line) }
            XCTAssertEqual(error.kind, kind, error.description, file: file, line: line)
            for text in mentions { XCTAssertTrue(error.description.contains(text), "\(text) in \(error)", file: file, line: line) }
        }
    }

    func testASampleIsTheConsecutiveMembersSharingAKey() throws {
        let directory = temporaryPath("shards")
        let shard =
            TarBytes.header("dir/", size: 0, type: "5")
            + TarBytes.member("dir/k1.jpg", [1, 2, 3]) + TarBytes.member("dir/k1.cls", " 3\n")
            + TarBytes.member("k2.cls", "0") + TarBytes.member("k2.PNG", [4, 5]) + TarBytes.member("k2.json", "{}")
            + TarBytes.header("link.jpg", size: 0, type: "2")
            + TarBytes.member("k3.meta.txt", "x")  // a key without image or label: skipped
            + TarBytes.member("k4.jpeg", [UInt8](repeating: 6, count: 700)) + TarBytes.member("k4.cls", "1") + TarBytes.end
        try write(shard, "train-000000.tar", in: directory)
        let store = try TarShardStore(directory: directory, split: .train)
        XCTAssertEqual(store.count, 3)
        XCTAssertEqual(store.labels, [3, 0, 1])
        XCTAssertEqual(store.classNames, ["0", "1", "2", "3"], "no classes.txt: the largest class number + 1")
        XCTAssertEqual(store.skippedEntryCount, 3, "k2.json, the link and k3.meta.txt")
        XCTAssertEqual(try ImageTree.contents(store), [[1, 2, 3], [4, 5], [UInt8](repeating: 6, count: 700)])
        XCTAssertEqual(store.location(of: 1), "\(directory)/train-000000.tar, member k2.PNG at byte 4 096")
        XCTAssertEqual(store.summary, "\(directory)/train-*.tar (1 shard, 3 images, 4 classes)")
        XCTAssertLessThanOrEqual(store.indexByteCount - 3 * 16, 200, "16 bytes a sample, and the shard's and classes' names")
    }

    func testShardsAreReadInNameOrderAndClassesTxtNamesTheClasses() throws {
        let directory = temporaryPath("shards")
        try write(TarBytes.member("b.jpg", [2]) + TarBytes.member("b.cls", "1") + TarBytes.end, "train-2.tar", in: directory)
        try write(TarBytes.member("a.jpg", [1]) + TarBytes.member("a.cls", "0") + TarBytes.end, "train-10.tar", in: directory)
        try write(TarBytes.member("c.jpg", [3]) + TarBytes.member("c.cls", "2") + TarBytes.end, "val-0.tar", in: directory)
        try write(TarBytes.member("d.jpg", [4]) + TarBytes.member("d.cls", "2") + TarBytes.end, "test-0.tar", in: directory)
        try write(TarBytes.end, "train-3.tar.partial", in: directory)
        try write(Array("cat\ndog\r\nbird\n".utf8), "classes.txt", in: directory)
        let (train, test) = try TarShardStore.open(directory: directory)
        XCTAssertEqual(train.shardPaths, ["train-10.tar", "train-2.tar"].map { "\(directory)/\($0)" }, "byte order of the names")
        XCTAssertEqual(try ImageTree.contents(train), [[1], [2]])
        XCTAssertEqual(train.classNames, ["cat", "dog", "bird"])
        XCTAssertEqual(test.splitPrefix, "val", "val is preferred when both exist")
        XCTAssertEqual(test.labels, [2])
        XCTAssertEqual(test.classNames, ["cat", "dog", "bird"])
        try FileManager.default.removeItem(atPath: "\(directory)/val-0.tar")
        let fallback = try TarShardStore(directory: directory, split: .test)
        XCTAssertEqual(fallback.splitPrefix, "test")
        XCTAssertEqual(try ImageTree.contents(fallback), [[4]])
    }

    func testNoShardIsAnErrorNamingThePattern() throws {
        let directory = temporaryPath("shards")
        try write(TarBytes.end, "training-0.tar", in: directory)
        assertError(try TarShardStore(directory: directory, split: .train), .missingFile, mentions: ["\(directory)/train-*.tar"])
        assertError(try TarShardStore(directory: directory, split: .test), .missingFile, mentions: ["val-*.tar", "test-*.tar"])
    }

    func testAShardCutShortIsAnErrorAtIndexingAndAtReading() throws {
        let directory = temporaryPath("shards")
        let image = [UInt8](repeating: 9, count: 3000)
        let whole =
            TarBytes.member("000000.jpg", [7]) + TarBytes.member("000000.cls", "0") + TarBytes.member("000001.jpg", image)
            + TarBytes.member("000001.cls", "1") + TarBytes.end
        try write(Array(whole[..<(2048 + 1000)]), "train-000000.tar", in: directory)
        assertError(
            try TarShardStore(directory: directory, split: .train), .truncated,
            mentions: ["train-000000.tar", "member 000001.jpg at byte 2 560", "sample 1", "cut short"])

        try write(Array(whole.dropLast(1024)), "train-000000.tar", in: directory)
        assertError(try TarShardStore(directory: directory, split: .train), .truncated, mentions: ["end-of-archive", "after 2 samples"])

        try write(whole, "train-000000.tar", in: directory)
        let store = try TarShardStore(directory: directory, split: .train)
        XCTAssertEqual(store.count, 2)
        truncate("\(directory)/train-000000.tar", off_t(2048 + 1000))
        var buffer: [UInt8] = []
        XCTAssertEqual(try store.readEncodedBytes(of: 0, into: &buffer), 1)
        assertError(
            try store.readEncodedBytes(of: 1, into: &buffer), .truncated,
            mentions: ["train-000000.tar", "sample 1", "member 000001.jpg at byte 2 560", "after 488 of them"])
    }

    func testABadHeaderChecksumIsAnError() throws {
        let directory = temporaryPath("shards")
        var shard = TarBytes.member("a.jpg", [1]) + TarBytes.member("a.cls", "0") + TarBytes.end
        shard[1024] ^= 0x01  // the second header's name
        try write(shard, "train-0.tar", in: directory)
        assertError(
            try TarShardStore(directory: directory, split: .train), .badHeader, mentions: ["train-0.tar", "byte 1 024", "checksum"])
    }

    func testAClsThatIsNotAClassNumberIsAnError() throws {
        let directory = temporaryPath("shards")
        for bad in ["x1", "", " ", "-1", "1.5", "99999999999"] {
            try write(TarBytes.member("a.jpg", [1]) + TarBytes.member("a.cls", bad) + TarBytes.end, "train-0.tar", in: directory)
            assertError(
                try TarShardStore(directory: directory, split: .train), .labelOutOfRange,
                mentions: ["train-0.tar", "member a.cls at byte 1 536", "sample 0"])
        }
    }

    func testAClassNumberNotBelowTheClassCountIsAnErrorInEitherSplit() throws {
        let directory = temporaryPath("shards")
        try write(TarBytes.member("a.jpg", [1]) + TarBytes.member("a.cls", "1") + TarBytes.end, "train-0.tar", in: directory)
        try write(TarBytes.member("b.jpg", [1]) + TarBytes.member("b.cls", "2") + TarBytes.end, "val-0.tar", in: directory)
        XCTAssertEqual(try TarShardStore(directory: directory, split: .train).classNames, ["0", "1"])
        assertError(
            try TarShardStore(directory: directory, split: .test), .labelOutOfRange, mentions: ["val-0.tar", "class count 2", "found 2"])
        try write(Array("only\n".utf8), "classes.txt", in: directory)
        assertError(try TarShardStore(directory: directory, split: .train), .labelOutOfRange, mentions: ["train-0.tar", "class count 1"])
    }

    func testAnImageWithoutClsAndAClsWithoutImageAreErrors() throws {
        let directory = temporaryPath("shards")
        try write(
            TarBytes.member("a.jpg", [1]) + TarBytes.member("a.cls", "0") + TarBytes.member("b.jpg", [1]) + TarBytes.member("c.cls", "0")
                + TarBytes.end, "train-0.tar", in: directory)
        assertError(try TarShardStore(directory: directory, split: .train), .countMismatch, mentions: ["b.cls", "sample 1", "b.jpg"])
        try write(TarBytes.member("c.cls", "0") + TarBytes.end, "train-0.tar", in: directory)
        assertError(try TarShardStore(directory: directory, split: .train), .countMismatch, mentions: ["c.cls at byte 512", "without"])
    }

    func testGNULongNamesAndPaxPathsNameTheMembers() throws {
        let directory = temporaryPath("shards")
        let folder = String(repeating: "long-folder-name/", count: 8)
        let shard =
            TarBytes.gnuLongMember("\(folder)sample.jpg", [1, 1]) + TarBytes.gnuLongMember("\(folder)sample.cls", Array("4".utf8))
            + TarBytes.paxMember("\(folder)other.png", [2]) + TarBytes.paxMember("\(folder)other.cls", Array("1".utf8))
            + TarBytes.member("short.jpg", [3]) + TarBytes.member("short.cls", "0") + TarBytes.end
        try write(shard, "train-0.tar", in: directory)
        let store = try TarShardStore(directory: directory, split: .train)
        XCTAssertEqual(store.labels, [4, 1, 0], "a long name's key is its whole path up to the dot")
        XCTAssertEqual(try ImageTree.contents(store), [[1, 1], [2], [3]])
    }

    func testArchivesWrittenByGNUTarInGNUAndPaxFormats() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tar") || FileManager.default.isExecutableFile(atPath: "/bin/tar")
        else {
            throw XCTSkip("no tar program")
        }
        let tree = try ImageTree(self)
        let folder = String(repeating: "a-folder-with-a-long-name/", count: 5)
        var names: [String] = []
        var images: [[UInt8]] = []
        for i in 0..<4 {
            images.append(try tree.file("src/\(folder)\(i).jpg"))
            try tree.file("src/\(folder)\(i).cls", Array(" \(i % 2)\n".utf8))
            names += ["\(folder)\(i).jpg", "\(folder)\(i).cls"]
        }
        for format in ["gnu", "pax", "ustar"] where format != "ustar" || folder.utf8.count <= 155 {
            let directory = tree.path(format)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let tar = Process()
            tar.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            tar.arguments = ["tar", "--format=\(format)", "-cf", "\(directory)/train-0.tar", "-C", tree.path("src")] + names
            try tar.run()
            tar.waitUntilExit()
            XCTAssertEqual(tar.terminationStatus, 0, format)
            let store = try TarShardStore(directory: directory, split: .train)
            XCTAssertEqual(store.labels, [0, 1, 0, 1], format)
            XCTAssertEqual(try ImageTree.contents(store), images, format)
        }
    }

    func testConcurrentReadsShareTheShardDescriptors() throws {
        let directory = temporaryPath("shards")
        var shard: [UInt8] = []
        var images: [[UInt8]] = []
        for i in 0..<200 {
            let image = ImageTree.fakeImage("\(i)")
            images.append(image)
            shard += TarBytes.member(String(format: "%06d.jpg", i), image) + TarBytes.member(String(format: "%06d.cls", i), "\(i % 5)")
        }
        try write(shard + TarBytes.end, "train-0.tar", in: directory)
        let store = try TarShardStore(directory: directory, split: .train)
        let mismatches = Mismatches()
        let expected = images
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            var buffer: [UInt8] = []
            for round in 0..<5 {
                for index in stride(from: (worker + round) % 8, to: 200, by: 8) {
                    let count = (try? store.readEncodedBytes(of: index, into: &buffer)) ?? -1
                    if count < 0 || Array(buffer[..<count]) != expected[index] { mismatches.add(index) }
                }
            }
        }
        XCTAssertEqual(mismatches.indices, [])
    }
}

/// Indices collected from several threads.
private final class Mismatches: @unchecked Sendable {
    private let lock = NSLock()
    private var found: [Int] = []
    func add(_ index: Int) { lock.withLock { found.append(index) } }
    var indices: [Int] { lock.withLock { found } }
}
