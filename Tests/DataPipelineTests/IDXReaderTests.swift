import Foundation
import XCTest

@testable import DataPipeline

final class IDXReaderTests: XCTestCase {
    private let pixels = DataFixtures.bytes(count: 3 * 2 * 4, seed: 1)

    func testReadsPlainAndGzipImagesIdentically() throws {
        let fixtures = try DataFixtures(self)
        let file = DataFixtures.idx(extents: [3, 2, 4], payload: pixels)
        let plain = try IDXReader.readImages(fixtures.write("images", file))
        let gzip = try IDXReader.readImages(fixtures.write("images.gz", file, gzip: true))
        for images in [plain, gzip] {
            XCTAssertEqual([images.count, images.rows, images.columns], [3, 2, 4])
            XCTAssertEqual(images.pixels, pixels)
        }
    }

    func testReadsLabels() throws {
        let fixtures = try DataFixtures(self)
        let path = try fixtures.write("labels", DataFixtures.idx(extents: [4], payload: [3, 0, 9, 1]))
        XCTAssertEqual(try IDXReader.readLabels(path, classCount: 10), [3, 0, 9, 1])
    }

    func testReadsConcatenatedGzipMembers() throws {
        let fixtures = try DataFixtures(self)
        let file = DataFixtures.idx(extents: [3, 2, 4], payload: pixels)
        let twoMembers = try DataFixtures.gzipped(Array(file[..<10])) + DataFixtures.gzipped(Array(file[10...]))
        let images = try IDXReader.readImages(fixtures.write("images", twoMembers))
        XCTAssertEqual(images.pixels, pixels)
    }

    func testWrongMagicNamesFileAndBothNumbers() throws {
        let fixtures = try DataFixtures(self)
        let path = try fixtures.write("labels-as-images", DataFixtures.idx(extents: [4], payload: [1, 2, 3, 4]))
        assertDataError(.badMagic, naming: path) { try IDXReader.readImages(path) }
        do {
            _ = try IDXReader.readImages(path)
        } catch {
            XCTAssertTrue(error.description.contains("0x00000803") && error.description.contains("0x00000801"), "\(error)")
        }
    }

    func testTruncatedAndOverlongPayloads() throws {
        let fixtures = try DataFixtures(self)
        let file = DataFixtures.idx(extents: [3, 2, 4], payload: pixels)
        let short = try fixtures.write("short", Array(file.dropLast()))
        let long = try fixtures.write("long", file + [0])
        let header = try fixtures.write("header", Array(file.prefix(7)))
        let empty = try fixtures.write("empty", [])
        for path in [short, long, header, empty] {
            assertDataError(.truncated, naming: path) { try IDXReader.readImages(path) }
        }
    }

    func testHeaderWithHugeExtentsIsAnErrorNotACrash() throws {
        let fixtures = try DataFixtures(self)
        let path = try fixtures.write("huge", DataFixtures.idx(extents: [0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF], payload: []))
        assertDataError(.truncated, naming: path) { try IDXReader.readImages(path) }
    }

    func testTruncatedGzipIsAnError() throws {
        let fixtures = try DataFixtures(self)
        let compressed = try DataFixtures.gzipped(DataFixtures.idx(extents: [3, 2, 4], payload: pixels))
        for cut in [3, compressed.count / 2, compressed.count - 1] {
            let path = try fixtures.write("cut\(cut).gz", Array(compressed.prefix(cut)))
            assertDataError(.corruptCompression, naming: path) { try IDXReader.readImages(path) }
        }
    }

    func testCorruptGzipIsAnError() throws {
        let fixtures = try DataFixtures(self)
        var compressed = try DataFixtures.gzipped(
            DataFixtures.idx(extents: [300, 2, 4], payload: DataFixtures.bytes(count: 2400, seed: 3)))
        for offset in 12..<(compressed.count - 8) { compressed[offset] ^= 0x5A }
        let path = try fixtures.write("corrupt.gz", compressed)
        assertDataError(.corruptCompression, naming: path) { try IDXReader.readImages(path) }
    }

    func testTrailingGarbageAfterGzipIsAnError() throws {
        let fixtures = try DataFixtures(self)
        let compressed = try DataFixtures.gzipped(DataFixtures.idx(extents: [3, 2, 4], payload: pixels))
        let path = try fixtures.write("trailing.gz", compressed + [1, 2, 3])
        assertDataError(.corruptCompression, naming: path) { try IDXReader.readImages(path) }
    }

    func testLabelOutOfRange() throws {
        let fixtures = try DataFixtures(self)
        let path = try fixtures.write("labels", DataFixtures.idx(extents: [3], payload: [1, 10, 2]))
        assertDataError(.labelOutOfRange, naming: path) { try IDXReader.readLabels(path, classCount: 10) }
    }

    func testMissingFile() throws {
        let fixtures = try DataFixtures(self)
        assertDataError(.missingFile, naming: fixtures.path("nothing")) { try IDXReader.readImages(fixtures.path("nothing")) }
    }

    // MARK: - Loading a whole IDX data set

    func testLoadsDatasetFromPlainAndGzipFiles() throws {
        for gzip in [false, true] {
            let fixtures = try DataFixtures(self)
            try fixtures.writeIDXDataset(trainCount: 12, testCount: 5, gzip: gzip)
            let train = try Dataset.load(name: "fashion-mnist", split: .train, directory: fixtures.directory)
            let test = try Dataset.load(name: "mnist", split: .test, directory: fixtures.directory)
            XCTAssertEqual([train.count, test.count], [12, 5])
            XCTAssertEqual([train.height, train.width, train.channels, train.classCount], [28, 28, 1, 10])
            XCTAssertEqual(train.pixels, DataFixtures.bytes(count: 12 * 784, seed: 12))
            XCTAssertEqual(train.labels, (0..<12).map { Int32($0 % 10) })
            XCTAssertEqual(train.mean, [0.2860])
            XCTAssertEqual(train.std, [0.3530])
            XCTAssertEqual(test.mean, [0.1307])
        }
    }

    func testCountMismatchNamesLabelFile() throws {
        let fixtures = try DataFixtures(self)
        try fixtures.writeIDXDataset(trainCount: 12, testCount: 5, gzip: false)
        let labels = try fixtures.write(
            "train-labels-idx1-ubyte", DataFixtures.idx(extents: [11], payload: [UInt8](repeating: 1, count: 11)))
        assertDataError(.countMismatch, naming: labels) {
            try Dataset.load(name: "fashion-mnist", split: .train, directory: fixtures.directory)
        }
    }

    func testWrongImageShapeForDataset() throws {
        let fixtures = try DataFixtures(self)
        try fixtures.writeIDXDataset(trainCount: 2, testCount: 2, gzip: false)
        let images = try fixtures.write(
            "t10k-images-idx3-ubyte", DataFixtures.idx(extents: [2, 32, 32], payload: [UInt8](repeating: 0, count: 2048)))
        assertDataError(.badShape, naming: images) {
            try Dataset.load(name: "fashion-mnist", split: .test, directory: fixtures.directory)
        }
    }

    func testMissingFileTellsWhatToDo() throws {
        let fixtures = try DataFixtures(self)
        try fixtures.writeIDXDataset(trainCount: 2, testCount: 2, gzip: true)
        try fixtures.remove("t10k-labels-idx1-ubyte.gz")
        assertDataError(.missingFile, naming: "t10k-labels-idx1-ubyte") {
            try Dataset.load(name: "fashion-mnist", split: .test, directory: fixtures.directory)
        }
        do {
            _ = try Dataset.load(name: "fashion-mnist", split: .test, directory: fixtures.directory)
        } catch {
            XCTAssertTrue(error.remedy.contains("--data-dir"), "\(error)")
        }
    }

    func testMissingDirectory() {
        assertDataError(.missingFile, naming: "/nonexistent/pskd") {
            try Dataset.load(name: "fashion-mnist", split: .train, directory: "/nonexistent/pskd")
        }
    }

    func testDamagedFileRemedyNamesThePackageForTheDefaultDirectory() {
        let error = DataError(.truncated, file: "x", expected: "a", found: "b", remedy: "")
            .withRemedy(DatasetSpec.fashionMNIST.source.remedy(for: .fashionMNIST, directory: nil))
        XCTAssertTrue(error.description.contains("dataset-fashion-mnist") && error.description.contains("--data-dir"))
    }

    func testUnknownDatasetName() {
        assertDataError(.unknownDataset, naming: "imagenet") { try Dataset.load(name: "imagenet", split: .train) }
    }

    // MARK: - The real Fashion-MNIST

    func testRealFashionMNIST() throws {
        guard let directory = DatasetSpec.fashionMNIST.installedCopy?.directory,
            FileManager.default.fileExists(atPath: directory)
        else {
            throw XCTSkip("Fashion-MNIST is not installed (Debian package dataset-fashion-mnist)")
        }
        let train = try Dataset.load(name: "fashion-mnist", split: .train)
        let test = try Dataset.load(name: "fashion-mnist", split: .test)
        XCTAssertEqual([train.count, test.count], [60_000, 10_000])
        XCTAssertEqual(histogram(train.labels, classes: 10), [Int](repeating: 6_000, count: 10))
        XCTAssertEqual(histogram(test.labels, classes: 10), [Int](repeating: 1_000, count: 10))
        let statistics = Dataset.channelStatistics(pixels: train.pixels, channels: 1)
        XCTAssertEqual(statistics.mean[0], train.mean[0], accuracy: 5e-4)
        XCTAssertEqual(statistics.std[0], train.std[0], accuracy: 5e-4)
    }

    private func histogram(_ labels: [Int32], classes: Int) -> [Int] {
        labels.reduce(into: [Int](repeating: 0, count: classes)) { $0[Int($1)] += 1 }
    }
}
