import Foundation
import Platform

/// Rank 0's progress within an epoch: a bar redrawn in place on a terminal, plain lines
/// (about every 10 % of the epoch) when the output is a file or a pipe.
final class Progress {
    let epoch: Int, epochs: Int, steps: Int, samplesPerStep: Int
    private let log: RunLog
    private let stopwatch = Stopwatch()
    private let isTerminal: Bool
    private var lastStep = 0

    /// `isLaunchedRank`: whether this process is one rank of a launched job (`Communicator.isLaunchedRank`).
    /// Under mpirun a rank's stdout is a pseudo-terminal even when mpirun's is a file: plain lines there.
    init(epoch: Int, epochs: Int, steps: Int, samplesPerStep: Int, log: RunLog, isLaunchedRank: Bool) {
        (self.epoch, self.epochs, self.steps, self.samplesPerStep, self.log) = (epoch, epochs, steps, samplesPerStep, log)
        isTerminal = isatty(1) == 1 && !isLaunchedRank
    }

    var elapsed: Double { stopwatch.elapsedSeconds }
    var samplesPerSecond: Double { Double(lastStep * samplesPerStep) / max(elapsed, 1e-9) }

    /// Reports that `step` (1-based) finished with global mean loss `loss`.
    func advance(step: Int, loss: Double) {
        lastStep = step
        guard log.isWriter else { return }
        let remaining = Double(steps - step) * elapsed / Double(step)
        let text = String(
            format: "epoch %d/%d step %d/%d loss %.4f %.0f samples/s ETA %.0f s",
            epoch, epochs, step, steps, loss, samplesPerSecond, remaining)
        if isTerminal {
            let width = 24, filled = width * step / max(steps, 1)
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            print("\r\(bar) \(text)", terminator: step == steps ? "\n" : "")
            fflush(nil)
        } else if step == steps || step * 10 / steps != (step - 1) * 10 / steps {
            log.say(text)
        }
    }
}
