#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// SIGINT and SIGTERM (Ctrl-C, `scancel`, a batch system's time limit, mpirun passing a signal
/// on) ask training to stop at the next step boundary instead of ending the process at once:
/// the handler only records the signal; every step all-reduces whether any rank has one, so all
/// ranks stop at the same step, and rank 0 says where and how to resume. A second signal ends
/// the process at once.
public enum StopRequest {
    /// The signal received (0 = none). Written by the handler, read between steps.
    nonisolated(unsafe) public private(set) static var signal: Int32 = 0

    /// Installs the handlers for SIGINT and SIGTERM (once per process).
    public static func install() {
        _ = installed
    }

    private static let installed: Void = {
        for number in [SIGINT, SIGTERM] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { received in
                guard StopRequest.signal == 0 else {  // a second signal ends the process at once
                    Glibc.signal(received, SIG_DFL)
                    raise(received)
                    return
                }
                StopRequest.signal = received
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            sigaction(number, &action, nil)
        }
    }()

    /// The signal's name, e.g. `SIGINT`.
    public static func name(_ number: Int32) -> String {
        switch number {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        default: "signal \(number)"
        }
    }
}

/// Training stopped at a step boundary because a rank received a signal; the run directory's
/// last complete checkpoint is intact.
public struct TrainingInterrupted: Error, CustomStringConvertible {
    /// The signal this rank received (0 when another rank received one).
    public let signal: Int32
    public let epoch: Int, step: Int

    public var description: String {
        "stopped by \(signal == 0 ? "a signal on another rank" : StopRequest.name(signal)) at epoch \(epoch), step \(step)"
    }

    /// The conventional exit status of a process ended by the signal (130 for SIGINT).
    public var exitStatus: Int32 { 128 + (signal == 0 ? SIGTERM : signal) }
}
