import Foundation
import TestSupport
import XCTest

/// Ranks of one job that disagree at start-up (MPMD launches mixing models, settings or
/// subcommands) stop with a clear error on every rank before any collective sized by their
/// settings: no memory corruption, no hang.
final class StartupHandshakeTests: XCTestCase {
    private func train(_ extra: [String], out: String) -> [String] {
        ["train", "--epochs", "1", "--max-train-samples", "200", "--max-test-samples", "50", "--out", out] + extra
    }

    private func assertStoppedCleanly(
        _ outcome: ExecutableRunner.Outcome, saying expected: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertNotEqual(outcome.status, 0, outcome.output, file: file, line: line)
        XCTAssertTrue(outcome.output.contains(expected), "expected “\(expected)” in: \(outcome.output)", file: file, line: line)
        for crash in ["corrupted", "Segmentation fault", "signal 11", "Fatal error"] {
            XCTAssertFalse(outcome.output.contains(crash), "crashed (\(crash)): \(outcome.output)", file: file, line: line)
        }
        XCTAssertLessThan(outcome.seconds, 60, "stopped promptly", file: file, line: line)
    }

    func testDifferentModelsStopBeforeTheParametersAreBroadcast() throws {
        let out = temporaryPath("handshake-models")
        let outcome = try ExecutableRunner.mpirun(
            programs: [
                (1, train(["--model", "mlp"], out: out)),
                (1, train(["--model", "cnn"], out: out)),
            ], timeout: 120)
        assertStoppedCleanly(outcome, saying: #"rank 1 has other settings than rank 0: model (rank 0: "mlp", rank 1: "cnn")"#)
    }

    func testDifferentSubcommandsStopInsteadOfHanging() throws {
        let out = temporaryPath("handshake-subcommands")
        let outcome = try ExecutableRunner.mpirun(
            programs: [
                (1, train(["--model", "mlp"], out: out)),
                (1, ["evaluate", "--checkpoint", out]),
            ], timeout: 120)
        assertStoppedCleanly(outcome, saying: "rank 1 runs `pskd evaluate`, rank 0 runs `pskd train`")
    }

    func testDifferentSeedsAreNamed() throws {
        let out = temporaryPath("handshake-seeds")
        let outcome = try ExecutableRunner.mpirun(
            programs: [
                (1, train(["--model", "mlp", "--seed", "1"], out: out)),
                (1, train(["--model", "mlp", "--seed", "2"], out: out)),
            ], timeout: 120)
        assertStoppedCleanly(outcome, saying: "seed (rank 0: 1, rank 1: 2)")
    }
}
