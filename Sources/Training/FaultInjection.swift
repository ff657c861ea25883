import Foundation
import Tensors

/// Faults a test can make one rank commit, from the environment variable `PSKD_TEST_FAULT`
/// (for tests only: no user needs it, and without the variable nothing here does anything):
///
/// - `spin rank=R epoch=E step=S`: rank R busy-loops forever when it starts step S (1-based) of
///   epoch E, without reaching the next collective: a rank that runs but makes no progress.
/// - `slow-evaluation rank=R seconds=X`: rank R sleeps X seconds before each evaluation batch,
///   a slow but progressing evaluation while the other ranks wait for its results.
/// - `nan-parameters rank=R epoch=E step=S`: rank R sets its first parameter to NaN when it
///   starts step S of epoch E: its forward pass, loss and gradients become NaN, and the gradient
///   all-reduce carries the NaN to every rank, as a real overflow would.
/// - `vanish-checkpoint epoch=E`: reading checkpoint E removes its folder right after its
///   `COMPLETE` marker is read, as a training job rotating its checkpoints does to a reader.
struct FaultInjection {
    enum Fault: Equatable {
        case spin(rank: Int, epoch: Int, step: Int)
        case nanParameters(rank: Int, epoch: Int, step: Int)
        case slowEvaluation(rank: Int, seconds: Double)
        case vanishCheckpoint(epoch: Int)
    }

    let fault: Fault?

    /// The fault `PSKD_TEST_FAULT` names, if any.
    static let current = FaultInjection(specification: ProcessInfo.processInfo.environment["PSKD_TEST_FAULT"])

    init(specification: String?) {
        guard let words = specification?.split(separator: " "), let kind = words.first else { fault = nil; return }
        var values: [String: Double] = [:]
        for word in words.dropFirst() {
            let pair = word.split(separator: "=", maxSplits: 1)
            if pair.count == 2, let value = Double(pair[1]) { values[String(pair[0])] = value }
        }
        switch (kind, values["rank"], values["epoch"], values["step"], values["seconds"]) {
        case ("spin", let rank?, let epoch?, let step?, _): fault = .spin(rank: Int(rank), epoch: Int(epoch), step: Int(step))
        case ("nan-parameters", let rank?, let epoch?, let step?, _):
            fault = .nanParameters(rank: Int(rank), epoch: Int(epoch), step: Int(step))
        case ("slow-evaluation", let rank?, _, _, let seconds?): fault = .slowEvaluation(rank: Int(rank), seconds: seconds)
        case ("vanish-checkpoint", _, let epoch?, _, _): fault = .vanishCheckpoint(epoch: Int(epoch))
        default: fault = nil
        }
    }

    /// Busy-loops forever if this is the rank, epoch and step to spin at.
    func atStepStart(rank: Int, epoch: Int, step: Int) {
        guard case .spin(rank, epoch, step) = fault else { return }
        var spins: UInt64 = 0
        while true { spins &+= 1 }
    }

    /// Sets the first of `parameters` to NaN if this is the rank, epoch and step to poison.
    func atStepStart(rank: Int, epoch: Int, step: Int, parameters: Tensor) {
        guard case .nanParameters(rank, epoch, step) = fault else { return }
        parameters[0] = .nan
    }

    /// Removes `folder` if it is the checkpoint to vanish.
    func afterCheckpointMarker(folder: URL, epoch: Int) {
        guard case .vanishCheckpoint(epoch) = fault else { return }
        try? FileManager.default.removeItem(at: folder)
    }

    /// Sleeps before an evaluation batch if this rank is to be slow.
    func beforeEvaluationBatch(rank: Int) {
        guard case .slowEvaluation(rank, let seconds) = fault else { return }
        usleep(UInt32(seconds * 1e6))
    }
}
