import Foundation
import TestSupport
import XCTest

/// `pskd train` on image folders and tar shards under mpirun: shards packed from a folder train
/// to byte-identical weights; a damaged image ends the job on every rank with a message naming
/// the file, promptly, and the last complete checkpoint stays valid.
final class ImageTrainingTests: XCTestCase {
    private let smallFolder = Fixtures.path("image-folder/small")

    private func train(
        ranks: Int, dataset: String, dataDir: String, out: String, extra: [String] = [], timeout: Double = 300
    ) throws -> ExecutableRunner.Outcome {
        try ExecutableRunner.mpirun(
            ranks: ranks,
            [
                "train", "--dataset", dataset, "--data-dir", dataDir, "--model", "cnn", "--epochs", "2", "--batch-size", "8",
                "--lr", "0.05", "--prefetch", "1", "--loader-threads", "2", "--out", out,
            ] + extra, timeout: timeout)
    }

    private func weights(_ run: String, epoch: Int = 2) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: "\(run)/checkpoints/epoch-\(String(format: "%04d", epoch))/model.safetensors"))
    }

    func testShardsPackedFromAFolderTrainToTheSameWeightsOnTwoRanks() throws {
        let folderRun = temporaryPath("folder-run")
        let trained = try train(ranks: 2, dataset: "folder", dataDir: smallFolder, out: folderRun)
        XCTAssertEqual(trained.status, 0, trained.output)
        XCTAssertTrue(trained.output.contains("24 samples"), trained.output)
        let records = try String(contentsOfFile: "\(folderRun)/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(records.count, 2)
        XCTAssertTrue(records.allSatisfy { $0.contains("\"data_wait_seconds\"") }, "\(records)")

        let shards = temporaryPath("shards")
        let packed = try ExecutableRunner.run(
            ExecutableRunner.executable.path, ["pack", "--from", smallFolder, "--to", shards, "--shard-size", "8KB"], timeout: 120)
        XCTAssertEqual(packed.status, 0, packed.output)
        let shardRun = temporaryPath("shard-run")
        let fromShards = try train(ranks: 2, dataset: "shards", dataDir: shards, out: shardRun)
        XCTAssertEqual(fromShards.status, 0, fromShards.output)
        XCTAssertEqual(try weights(shardRun), try weights(folderRun), "shards and folder train to the same bytes")

        let oneRank = temporaryPath("folder-run-1")
        let single = try train(ranks: 1, dataset: "folder", dataDir: smallFolder, out: oneRank, extra: ["--loader-threads", "1"])
        XCTAssertEqual(single.status, 0, single.output)
        XCTAssertTrue(single.output.contains("on folder"), single.output)
    }

    /// A JPEG damaged after the first epoch: the resumed job fails on the rank that reads it,
    /// naming the file and sample, ends every rank within the timeout, and the epoch-1
    /// checkpoint still evaluates.
    func testADamagedImageEndsTheJobNamingItAndKeepsTheCheckpoint() throws {
        let folder = try copyOfFixture("image-folder/small")
        let run = temporaryPath("damaged-run")
        let first = try train(ranks: 2, dataset: "folder", dataDir: folder, out: run, extra: ["--stop-after", "1"])
        XCTAssertEqual(first.status, 0, first.output)
        let damaged = "\(folder)/train/square/square-06.jpg"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: damaged))
        var broken = bytes
        for offset in stride(from: bytes.count / 3, to: bytes.count - 2, by: 7) { broken[offset] = 0xFF }
        try broken.prefix(bytes.count * 2 / 3).write(to: URL(fileURLWithPath: damaged))
        let resumed = try train(ranks: 2, dataset: "folder", dataDir: folder, out: run, extra: ["--resume"], timeout: 120)
        XCTAssertNotEqual(resumed.status, 0, resumed.output)
        XCTAssertLessThan(resumed.seconds, 60, "the job ends promptly")
        XCTAssertTrue(resumed.output.contains(damaged) && resumed.output.contains("sample 14"), resumed.output)
        let evaluated = try ExecutableRunner.run(ExecutableRunner.executable.path, ["evaluate", "--checkpoint", run], timeout: 120)
        XCTAssertEqual(evaluated.status, 0, evaluated.output)
        XCTAssertTrue(evaluated.output.contains("epoch 1"), evaluated.output)
    }

    func testBadShardsAreRefusedNamingTheShard() throws {
        let shards = temporaryPath("bad-shards")
        let packed = try ExecutableRunner.run(
            ExecutableRunner.executable.path, ["pack", "--from", smallFolder, "--to", shards], timeout: 120)
        XCTAssertEqual(packed.status, 0, packed.output)
        let shard = try XCTUnwrap(
            try FileManager.default.contentsOfDirectory(atPath: shards).filter { $0.hasPrefix("train-") }.sorted().first)
        let path = "\(shards)/\(shard)"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count / 2 + 100).write(to: URL(fileURLWithPath: path))
        let outcome = try train(ranks: 2, dataset: "shards", dataDir: shards, out: temporaryPath("bad-shard-run"), timeout: 120)
        XCTAssertNotEqual(outcome.status, 0, outcome.output)
        XCTAssertTrue(outcome.output.contains(path), outcome.output)
    }

    func testDataCheckAndPreview() throws {
        let folder = try copyOfFixture("image-folder/small")
        let pskd = ExecutableRunner.executable.path
        let clean = try ExecutableRunner.run(pskd, ["data", "check", "--dataset", "folder", "--data-dir", folder], timeout: 120)
        XCTAssertEqual(clean.status, 0, clean.output)
        XCTAssertTrue(clean.output.contains("24 images decoded") && clean.output.contains("0 failed"), clean.output)
        try Data("<html>".utf8).write(to: URL(fileURLWithPath: "\(folder)/val/circle/circle-01.jpg"))
        let failing = try ExecutableRunner.run(pskd, ["data", "check", "--dataset", "folder", "--data-dir", folder], timeout: 120)
        XCTAssertEqual(failing.status, 1, failing.output)
        XCTAssertTrue(failing.output.contains("val/circle/circle-01.jpg"), failing.output)

        let sheet = temporaryPath("preview.png")
        let preview = try ExecutableRunner.run(
            pskd, ["data", "preview", "--dataset", "folder", "--data-dir", smallFolder, "--out", sheet, "--batch-size", "9"],
            timeout: 120)
        XCTAssertEqual(preview.status, 0, preview.output)
        let png = try Data(contentsOf: URL(fileURLWithPath: sheet))
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        XCTAssertGreaterThan(png.count, 1000)
    }
}
