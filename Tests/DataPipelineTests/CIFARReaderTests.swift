import XCTest

@testable import DataPipeline

final class CIFARReaderTests: XCTestCase {
    /// Writes CIFAR-10 files with `perFile` records each; record k of the split has label k % 10.
    private func writeCIFAR10(_ fixtures: DataFixtures, perFile: Int = 2) throws {
        let names = (1...5).map { "data_batch_\($0).bin" } + ["test_batch.bin"]
        for (fileNumber, name) in names.enumerated() {
            let records = (0..<perFile).flatMap { record -> [UInt8] in
                let sample = (fileNumber % 5) * perFile + record
                return DataFixtures.cifarRecord(labels: [UInt8(sample % 10)], pixelSeed: fileNumber * 100 + record)
            }
            try fixtures.write(name, records)
        }
    }

    func testCIFAR10ConvertsChannelsFirstToChannelsLast() throws {
        let fixtures = try DataFixtures(self)
        try writeCIFAR10(fixtures)
        let train = try Dataset.load(name: "cifar10", split: .train, directory: fixtures.directory)
        XCTAssertEqual([train.count, train.height, train.width, train.channels, train.classCount], [10, 32, 32, 3, 10])
        XCTAssertEqual(train.labels, (0..<10).map { Int32($0) })
        // Sample 7 is record 1 of data_batch_4.bin (file number 3).
        let source = DataFixtures.bytes(count: 3072, seed: 301)
        for (y, x, c) in [(0, 0, 0), (0, 0, 2), (5, 17, 1), (31, 31, 2), (31, 0, 0)] {
            XCTAssertEqual(train.pixels[7 * 3072 + (y * 32 + x) * 3 + c], source[c * 1024 + y * 32 + x], "pixel \(y),\(x),\(c)")
        }
        XCTAssertEqual(train.mean, [0.4914, 0.4822, 0.4465])
        let test = try Dataset.load(name: "cifar10", split: .test, directory: fixtures.directory)
        XCTAssertEqual(test.count, 2)
    }

    func testCIFAR100KeepsFineLabels() throws {
        let fixtures = try DataFixtures(self)
        let records = DataFixtures.cifarRecord(labels: [19, 99], pixelSeed: 1) + DataFixtures.cifarRecord(labels: [3, 42], pixelSeed: 2)
        try fixtures.write("train.bin", records)
        let train = try Dataset.load(name: "cifar100", split: .train, directory: fixtures.directory)
        XCTAssertEqual(train.labels, [99, 42])
        XCTAssertEqual(train.classCount, 100)
        XCTAssertEqual(train.pixels[3072 + 1], DataFixtures.bytes(count: 3072, seed: 2)[1024])
    }

    func testWrongRecordSize() throws {
        let fixtures = try DataFixtures(self)
        try writeCIFAR10(fixtures)
        let damaged = try fixtures.write("data_batch_2.bin", DataFixtures.cifarRecord(labels: [1], pixelSeed: 0) + [0])
        assertDataError(.badRecordSize, naming: damaged) {
            try Dataset.load(name: "cifar10", split: .train, directory: fixtures.directory)
        }
        let empty = try fixtures.write("test_batch.bin", [])
        assertDataError(.badRecordSize, naming: empty) {
            try Dataset.load(name: "cifar10", split: .test, directory: fixtures.directory)
        }
    }

    func testCIFAR100FileReadAsCIFAR10IsARecordSizeError() throws {
        let fixtures = try DataFixtures(self)
        let path = try fixtures.write(
            "test_batch.bin",
            DataFixtures.cifarRecord(labels: [1, 2], pixelSeed: 0) + DataFixtures.cifarRecord(labels: [1, 2], pixelSeed: 1))
        assertDataError(.badRecordSize, naming: path) { try CIFARReader.read([path], variant: .cifar10) }
    }

    func testLabelsOutOfRange() throws {
        let fixtures = try DataFixtures(self)
        let cifar10 = try fixtures.write("a.bin", DataFixtures.cifarRecord(labels: [10], pixelSeed: 0))
        let fine = try fixtures.write("b.bin", DataFixtures.cifarRecord(labels: [0, 100], pixelSeed: 0))
        let coarse = try fixtures.write("c.bin", DataFixtures.cifarRecord(labels: [20, 0], pixelSeed: 0))
        assertDataError(.labelOutOfRange, naming: cifar10) { try CIFARReader.read([cifar10], variant: .cifar10) }
        assertDataError(.labelOutOfRange, naming: fine) { try CIFARReader.read([fine], variant: .cifar100) }
        assertDataError(.labelOutOfRange, naming: coarse) { try CIFARReader.read([coarse], variant: .cifar100) }
    }

    func testMissingBatchFile() throws {
        let fixtures = try DataFixtures(self)
        try writeCIFAR10(fixtures)
        try fixtures.remove("data_batch_3.bin")
        assertDataError(.missingFile, naming: "data_batch_3.bin") {
            try Dataset.load(name: "cifar10", split: .train, directory: fixtures.directory)
        }
    }

    func testNoDirectoryForCIFARAsksForOne() {
        assertDataError(.missingFile, naming: nil) { try Dataset.load(name: "cifar100", split: .train) }
        do {
            _ = try Dataset.load(name: "cifar100", split: .train)
        } catch {
            XCTAssertTrue(error.description.contains("--data-dir"), "\(error)")
        }
    }
}
