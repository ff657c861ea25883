#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Elapsed wall-clock time on the monotonic clock (`CLOCK_MONOTONIC`): the one timer pskd
/// uses for step times, throughput, progress and communication shares. It never jumps when
/// the system clock is set, and reading it does not allocate.
///
/// ```swift
/// let stopwatch = Stopwatch()
/// try step()
/// print("step: \(stopwatch.elapsedSeconds) s")
/// ```
///
/// Calendar dates (a lock's "since", a report's generation date) are not timers: they use
/// Foundation's `Date`.
public struct Stopwatch: Sendable {
    /// The monotonic time at which the stopwatch started, in seconds from an arbitrary fixed point.
    public let startSeconds: Double

    /// A stopwatch started now.
    public init() { startSeconds = Self.now }

    /// Seconds since the stopwatch started.
    public var elapsedSeconds: Double { Self.now - startSeconds }

    /// The monotonic time now, in seconds from an arbitrary fixed point: for deadlines and
    /// "how long since" kept across threads (the stall watchdog's heartbeats).
    public static var now: Double { monotonicSeconds() }

    /// Seconds from an arbitrary fixed point (the machine's boot), monotonic.
    private static func monotonicSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }
}
