import CZlib
import Foundation
import TestSupport
import XCTest

@testable import DataPipeline

/// Writes small data files in the real formats into a fresh temporary directory, removed when
/// the test ends.
final class DataFixtures {
    let directory: String

    init(_ test: XCTestCase) throws {
        directory = test.temporaryPath("data-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    /// Writes `bytes` to `name`, gzip-compressed through zlib when `gzip` is set.
    @discardableResult
    func write(_ name: String, _ bytes: [UInt8], gzip: Bool = false) throws -> String {
        let target = path(name)
        if gzip {
            try Self.writeGzip(bytes, to: target)
        } else {
            try Data(bytes).write(to: URL(fileURLWithPath: target))
        }
        return target
    }

    func remove(_ name: String) throws { try FileManager.default.removeItem(atPath: path(name)) }

    /// An IDX file: magic 00 00 08 nd, big-endian extents, payload.
    static func idx(extents: [Int], payload: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [0, 0, 0x08, UInt8(extents.count)]
        for extent in extents { bytes += bigEndian(UInt32(extent)) }
        return bytes + payload
    }

    /// Deterministic pseudo-random bytes.
    static func bytes(count: Int, seed: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761 &+ seed &* 40_503) >> 7) }
    }

    /// A CIFAR record: label byte(s) then 3072 CHW pixels.
    static func cifarRecord(labels: [UInt8], pixelSeed: Int) -> [UInt8] {
        labels + bytes(count: 3072, seed: pixelSeed)
    }

    /// Writes the four IDX files of a 28 × 28 data set with `trainCount` and `testCount` samples.
    func writeIDXDataset(trainCount: Int, testCount: Int, gzip: Bool) throws {
        for (prefix, count) in [("train", trainCount), ("t10k", testCount)] {
            let suffix = gzip ? ".gz" : ""
            try write(
                "\(prefix)-images-idx3-ubyte\(suffix)",
                Self.idx(extents: [count, 28, 28], payload: Self.bytes(count: count * 784, seed: count)), gzip: gzip)
            try write(
                "\(prefix)-labels-idx1-ubyte\(suffix)",
                Self.idx(extents: [count], payload: (0..<count).map { UInt8($0 % 10) }), gzip: gzip)
        }
    }

    /// The gzip encoding of `bytes`, made by zlib.
    static func gzipped(_ bytes: [UInt8]) throws -> [UInt8] {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("pskd-gzip-\(UUID().uuidString).gz").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try writeGzip(bytes, to: file)
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
    }

    private static func writeGzip(_ bytes: [UInt8], to path: String) throws {
        guard let file = gzopen(path, "wb") else { throw CocoaError(.fileWriteUnknown) }
        let written = bytes.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
        guard gzclose(file) == Z_OK, written == bytes.count else { throw CocoaError(.fileWriteUnknown) }
    }

    private static func bigEndian(_ value: UInt32) -> [UInt8] {
        [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: value >> $0) }
    }
}

/// Asserts that `body` throws a `DataError` of `kind` whose message names `file`.
func assertDataError<T>(
    _ kind: DataError.Kind, naming file: String?, _ body: () throws -> T,
    file sourceFile: StaticString = #filePath, line: UInt = #line
) {
    do {
        _ = try body()
        XCTFail("expected a \(kind) DataError, nothing was thrown", file: sourceFile, line: line)
    } catch let error as DataError {
        XCTAssertEqual(error.kind, kind, "\(error)", file: sourceFile, line: line)
        if let file {
            XCTAssertTrue(
                error.description.contains(file), "message does not name \(file): \(error)",
                file: sourceFile, line: line)
        }
        XCTAssertFalse(
            error.expected.isEmpty || error.found.isEmpty || error.remedy.isEmpty,
            "message lacks expected/found/remedy: \(error)", file: sourceFile, line: line)
    } catch {
        XCTFail("expected a DataError, got \(error)", file: sourceFile, line: line)
    }
}

/// A small synthetic data set of `count` `side × side × channels` images with labels `i % classes`.
func syntheticDataset(count: Int, side: Int = 6, channels: Int = 2, classes: Int = 5) -> Dataset {
    Dataset(
        name: "synthetic", split: .train, height: side, width: side, channels: channels, classCount: classes,
        pixels: DataFixtures.bytes(count: count * side * side * channels, seed: 7),
        labels: (0..<count).map { Int32($0 % classes) },
        mean: (0..<channels).map { 0.3 + 0.1 * Float($0) }, std: (0..<channels).map { 0.25 + 0.05 * Float($0) })
}
