import Foundation
import TestSupport
import XCTest

@testable import DataPipeline

final class ShardPackerTests: XCTestCase {
    /// A folder of three classes, with nested files, mixed-case extensions and a skipped file.
    private func imageFolder() throws -> ImageTree {
        let tree = try ImageTree(self)
        for name in [
            "train/cat/b.JPG", "train/cat/a.jpg", "train/cat/deep/c.jpeg", "train/dog/1.png", "train/dog/2.PNG", "train/dog/notes.txt",
            "train/emu/x.jpg", "val/cat/v.jpg", "val/dog/v.jpg", "val/emu/v.Jpeg", "val/emu/w.jpg",
        ] {
            try tree.file(name)
        }
        try tree.file("train/emu/big.jpg", [0xFF, 0xD8] + DataFixtures.bytes(count: 9_000, seed: 3))
        return tree
    }

    private func tarListing(_ shard: String) throws -> String? {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tar") || FileManager.default.isExecutableFile(atPath: "/bin/tar")
        else {
            return nil
        }
        let tar = Process()
        let output = Pipe()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        tar.arguments = ["tar", "-tvf", shard]
        tar.standardOutput = output
        tar.standardError = output
        try tar.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        tar.waitUntilExit()
        XCTAssertEqual(tar.terminationStatus, 0, text)
        return text
    }

    func testPackedShardsHoldEverySampleWithItsBytesAndLabelInIndexOrder() throws {
        let tree = try imageFolder()
        let out = tree.path("shards")
        let report = try ShardPacker(shardSize: 4 * 1024).pack(from: tree.root, to: out)
        let shards = try TarShardStore.open(directory: out)
        for (folder, packed) in [
            (try ImageFolderStore(directory: tree.root, split: .train), shards.train),
            (try ImageFolderStore(directory: tree.root, split: .test), shards.test),
        ] {
            XCTAssertEqual(packed.count, folder.count)
            XCTAssertEqual(packed.labels, folder.labels)
            XCTAssertEqual(packed.classNames, folder.classNames)
            XCTAssertEqual(try ImageTree.contents(packed), try ImageTree.contents(folder))
            XCTAssertEqual(packed.splitPrefix, folder.splitFolder)
        }
        XCTAssertEqual(report.splits.map(\.prefix), ["train", "val"])
        XCTAssertEqual(report.splits.map(\.samples), [7, 4])
        XCTAssertEqual(report.classCount, 3)
        XCTAssertEqual(report.splits[0].shards, shards.train.shardPaths)
        XCTAssertGreaterThan(report.splits[0].shards.count, 1)
        XCTAssertEqual(try String(contentsOfFile: "\(out)/classes.txt", encoding: .utf8), "cat\ndog\nemu\n")

        var total = 0
        for shard in report.splits.flatMap(\.shards) {
            let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: shard)[.size] as? Int)
            total += size
            let samples = shards.train.shardPaths.contains(shard) ? shards.train : shards.test
            let members = (0..<samples.count).filter { samples.location(of: $0).hasPrefix(shard + ",") }
            XCTAssertTrue(size <= 4 * 1024 || members.count == 1, "\(shard): \(size) bytes for \(members.count) samples")
        }
        XCTAssertEqual(total, report.splits.map(\.bytes).reduce(0, +))
        XCTAssertTrue(report.description.contains("train: 7 samples in \(report.splits[0].shards.count) shards"), report.description)

        guard try tarListing(report.splits[0].shards[0]) != nil else { return }
        let listing = try report.splits[0].shards.map { try XCTUnwrap(tarListing($0)) }.joined()
        let members = listing.split(separator: "\n").map { String($0.split(separator: " ").last!) }
        XCTAssertEqual(
            members,
            [
                "000000.jpg", "000000.cls", "000001.jpg", "000001.cls", "000002.jpeg", "000002.cls", "000003.png", "000003.cls",
                "000004.png",
                "000004.cls", "000005.jpg", "000005.cls", "000006.jpg", "000006.cls",
            ],
            "b.JPG is sample 1, 2.PNG sample 4, their extensions lower-cased: \(listing)")
    }

    func testASampleLargerThanTheShardSizeGetsAShardOfItsOwn() throws {
        let tree = try ImageTree(self)
        try tree.file("train/a/1.jpg", [1])
        try tree.file("train/a/2.jpg", [UInt8](repeating: 2, count: 10_000))
        try tree.file("train/a/3.jpg", [3])
        let report = try ShardPacker(shardSize: 2_048 + 1_024).pack(from: tree.root, to: tree.path("out"))
        XCTAssertEqual(report.splits.map(\.prefix), ["train"], "no val/ or test/: the training split alone")
        XCTAssertEqual(
            report.splits[0].shards.map { ($0 as NSString).lastPathComponent },
            ["train-000000.tar", "train-000001.tar", "train-000002.tar"])
        let store = try TarShardStore(directory: tree.path("out"), split: .train)
        XCTAssertEqual(try ImageTree.contents(store), [[1], [UInt8](repeating: 2, count: 10_000), [3]])
        XCTAssertEqual(
            try FileManager.default.attributesOfItem(atPath: report.splits[0].shards[0])[.size] as? Int, 3 * 512 + 512 + 1024,
            "a sample of 1 byte: 2 headers, 2 blocks of data; the end-of-archive blocks")
    }

    func testANonEmptyOutputFolderIsRefusedAndNamed() throws {
        let tree = try imageFolder()
        try tree.file("out/keep.txt", [1])
        XCTAssertThrowsError(try ShardPacker().pack(from: tree.root, to: tree.path("out"))) { error in
            let error = error as! DataError
            XCTAssertEqual(error.kind, .invalidConfiguration)
            XCTAssertEqual(error.file, tree.path("out"))
            XCTAssertTrue(error.found.contains("keep.txt"), error.description)
            XCTAssertTrue(error.remedy.contains("rm -r \(tree.path("out"))"), error.description)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tree.path("out")), ["keep.txt"])
        try tree.folder("empty")
        XCTAssertNoThrow(try ShardPacker().pack(from: tree.root, to: tree.path("empty")))
    }

    func testShardSizesTakeKBMBAndGBSuffixes() {
        XCTAssertEqual(ShardPacker.byteCount("1GB"), 1 << 30)
        XCTAssertEqual(ShardPacker.byteCount("256mb"), 256 << 20)
        XCTAssertEqual(ShardPacker.byteCount("64KB"), 64 << 10)
        XCTAssertEqual(ShardPacker.byteCount("2g"), 2 << 30)
        XCTAssertEqual(ShardPacker.byteCount("1048576"), 1 << 20)
        XCTAssertEqual(ShardPacker.byteCount("512B"), 512)
        for bad in ["", "GB", "0", "-1MB", "1.5GB", "1TB", "lots", "99999999999999GB"] { XCTAssertNil(ShardPacker.byteCount(bad), bad) }
    }

    func testCIFAR10JPEGPacksIntoShardsThatReadBackIdentically() throws {
        let directory = try unpackedCIFAR10JPEG(self)
        let out = memoryBackedTemporaryPath("cifar10-shards")
        let report = try ShardPacker(shardSize: 16 << 20).pack(from: directory, to: out)
        XCTAssertEqual(report.splits.map(\.samples), [50_000, 10_000])
        XCTAssertEqual(report.splits.map(\.prefix), ["train", "test"])
        let (train, test) = try TarShardStore.open(directory: out)
        XCTAssertEqual(train.count, 50_000)
        XCTAssertEqual(test.count, 10_000)
        XCTAssertEqual(train.classNames, ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"])
        let folder = try ImageFolderStore(directory: directory, split: .train)
        XCTAssertEqual(train.labels, folder.labels)
        var (a, b) = ([UInt8](), [UInt8]())
        for index in stride(from: 0, to: 50_000, by: 997) {
            let count = try train.readEncodedBytes(of: index, into: &a)
            XCTAssertEqual(count, try folder.readEncodedBytes(of: index, into: &b))
            XCTAssertEqual(a[..<count], b[..<count], "sample \(index)")
        }
        let perSample = Double(train.indexByteCount) / Double(train.count)
        print(
            "CIFAR-10 JPEG shards: \(report.splits[0].shards.count) train shards; index \(train.indexByteCount) bytes, \(perSample) bytes per sample"
        )
        XCTAssertLessThanOrEqual(perSample, 24)
    }
}
