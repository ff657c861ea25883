import Platform
import Synchronization

/// What a rank is doing, as the stall watchdog reports it.
public enum TrainingPhase: UInt8, Sendable, CaseIterable {
    case startup = 0, data, forwardBackward, teacherExchange, evaluation, checkpoint, finished

    /// The name in messages and `stall.json`.
    public var name: String {
        switch self {
        case .startup: "startup"
        case .data: "data"
        case .forwardBackward: "forward/backward"
        case .teacherExchange: "teacher exchange"
        case .evaluation: "evaluation"
        case .checkpoint: "checkpoint"
        case .finished: "finished"
        }
    }
}

/// A collective a rank is inside (waiting for the other ranks, or exchanging with them).
public enum CollectiveKind: UInt8, Sendable, CaseIterable {
    case allReduce = 1, allGather, broadcast, barrier, allToAll

    public var name: String {
        switch self {
        case .allReduce: "all-reduce"
        case .allGather: "all-gather"
        case .broadcast: "broadcast"
        case .barrier: "barrier"
        case .allToAll: "all-to-all"
        }
    }
}

/// Where one rank is, as the main thread last said: the phase, the epoch and step, whether it
/// is inside a collective, and a progress count that grows with every sign of life (a phase
/// entered, a collective completed, an evaluation batch scored).
public struct ProgressState: Sendable, Equatable {
    public var phase = TrainingPhase.startup
    public var collective: CollectiveKind? = nil
    public var epoch = 0
    public var step = 0
    public var progress: UInt64 = 0
    /// `Stopwatch.now` of the last progress.
    public var progressedAt = 0.0
    /// The median duration of the recent training steps (0 before the first).
    public var medianStepSeconds = 0.0

    public init() {}
}

/// The process-wide record of the main thread's progress, read by the stall watchdog's thread.
/// Updating it costs a lock and a clock read: a few times per training step.
public final class ProgressBeacon: Sendable {
    /// The one beacon of this process.
    public static let shared = ProgressBeacon()

    private struct Guarded {
        var state = ProgressState()
        var recentSteps = StepDurations()
        var stepStartedAt: Double? = nil
    }
    private let guarded: Mutex<Guarded>

    public init() {
        var start = Guarded()
        start.state.progressedAt = Stopwatch.now
        guarded = Mutex(start)
    }

    /// The current state.
    public var state: ProgressState { guarded.withLock { $0.state } }

    /// Enters `phase` (a sign of progress).
    public func enter(_ phase: TrainingPhase) {
        guarded.withLock {
            $0.state.phase = phase; Self.progress(&$0.state)
        }
    }

    /// Marks the start of training step `step` (0-based) of `epoch`, in phase forward/backward;
    /// the time since the previous step's start feeds the median step time.
    public func startStep(epoch: Int, step: Int) {
        guarded.withLock { guarded in
            let now = Stopwatch.now
            if let started = guarded.stepStartedAt, guarded.state.epoch == epoch {
                guarded.recentSteps.record(now - started)
                guarded.state.medianStepSeconds = guarded.recentSteps.median
            }
            guarded.stepStartedAt = now
            (guarded.state.epoch, guarded.state.step, guarded.state.phase) = (epoch, step, .forwardBackward)
            Self.progress(&guarded.state)
        }
    }

    /// A sign of progress within the current phase (an evaluation batch scored).
    public func advance() { guarded.withLock { Self.progress(&$0.state) } }

    /// Runs `body` marked as inside `collective`; its completion is progress.
    public func during<Result>(_ collective: CollectiveKind, _ body: () throws -> Result) rethrows -> Result {
        guarded.withLock { $0.state.collective = collective }
        defer {
            guarded.withLock {
                $0.state.collective = nil; Self.progress(&$0.state)
            }
        }
        return try body()
    }

    private static func progress(_ state: inout ProgressState) {
        state.progress &+= 1
        state.progressedAt = Stopwatch.now
    }
}

/// The durations of the last few training steps, for their median.
struct StepDurations {
    private var values: [Double] = []
    private var next = 0
    static let capacity = 63

    mutating func record(_ seconds: Double) {
        if values.count < Self.capacity { values.append(seconds) } else { values[next] = seconds }
        next = (next + 1) % Self.capacity
    }

    var median: Double { values.isEmpty ? 0 : values.sorted()[values.count / 2] }
}
