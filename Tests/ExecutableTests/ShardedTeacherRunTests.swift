import Foundation
import TestSupport
import XCTest

/// `--teacher sharded` against `--teacher replicated` in real runs under mpirun: the same
/// training bit for bit, and checkpoints that move between the layouts and rank counts.
final class ShardedTeacherRunTests: XCTestCase {
    /// 250 samples: every batch size below leaves a padded last batch; CutMix leaves rows
    /// unwritten, which must still reach their next reader.
    private let recipe = [
        "train", "--model", "mlp", "--epochs", "3", "--lr", "0.05", "--max-train-samples", "250",
        "--max-test-samples", "64", "--prefetch", "1", "--cutmix", "0.5",
    ]

    @discardableResult
    private func train(ranks: Int, out: String, _ extra: [String]) throws -> String {
        let outcome = try ExecutableRunner.mpirun(ranks: ranks, recipe + ["--out", out] + extra, timeout: 300)
        XCTAssertEqual(outcome.status, 0, outcome.output)
        return outcome.output
    }

    private func file(_ out: String, epoch: Int, _ name: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: out + String(format: "/checkpoints/epoch-%04d/", epoch) + name))
    }

    /// The bytes of `teacher.probabilities` in a checkpoint's state file.
    private func teacherBytes(_ out: String, epoch: Int) throws -> Data {
        let state = try file(out, epoch: epoch, "training-state.safetensors")
        let headerLength = Int(state.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
        let header = try XCTUnwrap(JSONSerialization.jsonObject(with: state.subdata(in: 8..<(8 + headerLength))) as? [String: Any])
        let offsets = try XCTUnwrap((header["teacher.probabilities"] as? [String: Any])?["data_offsets"] as? [Int])
        return state.subdata(in: (8 + headerLength + offsets[0])..<(8 + headerLength + offsets[1]))
    }

    private func teacherHash(after marker: String, in output: String) -> String? {
        output.split(separator: "\n").first { $0.contains(marker) }
            .flatMap { $0.components(separatedBy: "teacher table hash ").last?.split(separator: " ").first.map(String.init) }
    }

    /// On 1, 2, 3 and 4 ranks (odd global batches on 1 and 3), sharded and replicated write the
    /// same model and teacher table every epoch, byte for byte, and say the same table hash.
    func testShardedTrainsExactlyAsReplicatedOnAnyRankCount() throws {
        for (ranks, batch) in [(1, 45), (2, 44), (3, 45), (4, 44)] {
            let (replicated, sharded) = (temporaryPath("replicated\(ranks)"), temporaryPath("sharded\(ranks)"))
            let replicatedOutput = try train(ranks: ranks, out: replicated, ["--batch-size", String(batch)])
            let shardedOutput = try train(ranks: ranks, out: sharded, ["--batch-size", String(batch), "--teacher", "sharded"])
            for epoch in 1...3 {
                XCTAssertEqual(
                    try file(sharded, epoch: epoch, "model.safetensors"), try file(replicated, epoch: epoch, "model.safetensors"),
                    "model after epoch \(epoch) on \(ranks) ranks")
                XCTAssertEqual(
                    try teacherBytes(sharded, epoch: epoch), try teacherBytes(replicated, epoch: epoch),
                    "teacher after epoch \(epoch) on \(ranks) ranks")
            }
            let hash = try XCTUnwrap(teacherHash(after: "identical on all", in: replicatedOutput), replicatedOutput)
            XCTAssertEqual(teacherHash(after: "(sharded over \(ranks) rank(s))", in: shardedOutput), hash, shardedOutput)
        }
    }

    /// With --drop-last the samples left out of an epoch are parked on some rank and still
    /// reach their next reader.
    func testShardedEqualsReplicatedWhenTheLastBatchIsDropped() throws {
        let (replicated, sharded) = (temporaryPath("dropReplicated"), temporaryPath("dropSharded"))
        try train(ranks: 3, out: replicated, ["--batch-size", "48", "--drop-last"])
        try train(ranks: 3, out: sharded, ["--batch-size", "48", "--drop-last", "--teacher", "sharded"])
        XCTAssertEqual(try file(sharded, epoch: 3, "model.safetensors"), try file(replicated, epoch: 3, "model.safetensors"))
        XCTAssertEqual(try teacherBytes(sharded, epoch: 3), try teacherBytes(replicated, epoch: 3))
    }

    /// A checkpoint written sharded on 3 ranks is one N × C table: it resumes replicated on 2
    /// ranks and sharded on 4 with the same table hash.
    func testShardedCheckpointResumesInEitherLayoutOnOtherRankCounts() throws {
        let source = temporaryPath("sharded3")
        let written = try train(ranks: 3, out: source, ["--batch-size", "48", "--teacher", "sharded", "--stop-after", "1"])
        let expected = try XCTUnwrap(teacherHash(after: "(sharded over 3 rank(s))", in: written), written)
        for (ranks, layout) in [(2, "replicated"), (4, "sharded")] {
            let copy = temporaryPath("resume\(ranks)\(layout)")
            try FileManager.default.copyItem(atPath: source, toPath: copy)
            let output = try train(ranks: ranks, out: copy, ["--resume", "--teacher", layout])
            XCTAssertEqual(teacherHash(after: "resumed from", in: output), expected, output)
        }
    }

    /// A damaged teacher section (one flipped byte, or the file cut inside it) fails its
    /// checksum: the previous checkpoint is used, with a warning.
    func testDamagedTeacherSectionIsDetected() throws {
        for damage in ["flip", "truncate"] {
            let out = temporaryPath("damaged-\(damage)")
            try train(ranks: 2, out: out, ["--batch-size", "48", "--teacher", "sharded", "--stop-after", "2"])
            let url = URL(fileURLWithPath: out + "/checkpoints/epoch-0002/training-state.safetensors")
            var state = try Data(contentsOf: url)
            let teacherSize = try teacherBytes(out, epoch: 2).count
            if damage == "flip" {
                state[state.count - teacherSize / 2] ^= 0x40
            } else {
                state = state.prefix(state.count - teacherSize / 3)
            }
            try state.write(to: url)
            let output = try train(ranks: 2, out: out, ["--resume", "--teacher", "sharded"])
            XCTAssertTrue(output.contains("training-state.safetensors does not match its checksum"), output)
            XCTAssertTrue(output.contains("epoch-0001 (epoch 1 of 3 done)"), output)
        }
    }
}
