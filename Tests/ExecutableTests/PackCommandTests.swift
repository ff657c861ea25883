import Foundation
import TestSupport
import XCTest

/// `pskd pack` through the real executable: what it prints, and its refusals.
final class PackCommandTests: XCTestCase {
    private func pskd(_ arguments: [String]) throws -> ExecutableRunner.Outcome {
        try ExecutableRunner.run(ExecutableRunner.executable.path, arguments, timeout: 120)
    }

    func testPackWritesShardsAndSaysWhatItWrote() throws {
        let root = temporaryPath("pack")
        for name in ["train/cat/1.jpg", "train/cat/2.jpg", "train/dog/1.PNG", "val/cat/1.jpg", "val/dog/1.jpg"] {
            let path = "\(root)/src/\(name)"
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(repeating: UInt8(name.utf8.count), count: 600).write(to: URL(fileURLWithPath: path))
        }
        // 600-byte images: a sample takes 2 560 bytes, a shard 3 584 with its end blocks, over 3 KB: one sample a shard.
        let packed = try pskd(["pack", "--from", "\(root)/src", "--to", "\(root)/out", "--shard-size", "3KB"])
        XCTAssertEqual(packed.status, 0, packed.output)
        XCTAssertTrue(packed.output.contains("train: 3 samples in 3 shards (10 752 bytes, train-*.tar)"), packed.output)
        XCTAssertTrue(packed.output.contains("val: 2 samples in 2 shards"), packed.output)
        XCTAssertTrue(packed.output.contains("classes.txt: 2 classes"), packed.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(root)/out/val-000001.tar"))

        let again = try pskd(["pack", "--from", "\(root)/src", "--to", "\(root)/out"])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.output.contains("\(root)/out: invalid configuration"), again.output)
        XCTAssertTrue(again.output.contains("rm -r \(root)/out"), again.output)

        let badSize = try pskd(["pack", "--from", "\(root)/src", "--to", "\(root)/other", "--shard-size", "big"])
        XCTAssertNotEqual(badSize.status, 0)
        XCTAssertTrue(badSize.output.contains("--shard-size takes a positive size such as 1GB"), badSize.output)
    }
}
