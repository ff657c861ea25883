/// What an observer has heard: every rank's view, and how many datagrams it refused.
///
/// A datagram updates a rank's view only if it is a heartbeat authenticated with the job's key
/// (`Heartbeat(decoding:key:ranks:)`), comes from the address and port registered for the rank it
/// names, and has a sequence number above the last one accepted from that rank. Anything else is
/// counted and dropped: a stranger's noise or a forgery fails authentication; an authentic record
/// sent again, or relayed from another address, is a replay.
struct HeartbeatInbox {
    private(set) var views: [RankView]
    private(set) var rejected = RejectedDatagrams()
    private let key: HeartbeatKey

    init(views: [RankView], key: HeartbeatKey) {
        (self.views, self.key) = (views, key)
    }

    enum Outcome: Equatable { case accepted, unauthenticated, replayed }

    /// Takes one datagram received at `now` from `sender`.
    @discardableResult
    mutating func receive(_ bytes: ArraySlice<UInt8>, from sender: Endpoint, at now: Double) -> Outcome {
        guard let beat = Heartbeat(decoding: bytes, key: key, ranks: views.count) else {
            rejected.unauthenticated += 1
            return .unauthenticated
        }
        guard views[beat.rank].endpoint == sender, beat.sequence > (views[beat.rank].last?.sequence ?? 0) else {
            rejected.replayed += 1
            return .replayed
        }
        views[beat.rank].accept(beat, at: now)
        return .accepted
    }

    /// Starts every rank's clocks afresh at `now` (`RankView.restartClocks`).
    mutating func restartClocks(at now: Double) {
        for index in views.indices { views[index].restartClocks(at: now) }
    }
}

/// Datagrams an observer dropped.
public struct RejectedDatagrams: Equatable, Sendable, CustomStringConvertible {
    /// Not an authentic heartbeat of this job: noise, another program's traffic, a forgery.
    public var unauthenticated = 0
    /// An authentic heartbeat not newer than the last one accepted from its rank, or from
    /// another address than the rank's.
    public var replayed = 0

    public var total: Int { unauthenticated + replayed }

    /// "3 datagrams rejected (2 failed authentication, 1 replayed)", or "no datagram rejected".
    public var description: String {
        total == 0
            ? "no datagram rejected"
            : "\(total) datagram\(total == 1 ? "" : "s") rejected (\(unauthenticated) failed authentication, \(replayed) replayed)"
    }
}

/// Notices that this process itself stood still — stopped by SIGSTOP (a debugger, Slurm's
/// `scontrol suspend`, a preempting scheduler), on a paused virtual machine, or starved of CPU —
/// so that nothing it saw of the others before is taken as fresh. The watchdog's loop ticks at
/// least every `period` seconds, and the monotonic clock runs on while a process is stopped:
/// a gap between two ticks far beyond the period is a suspension.
struct SuspensionClock {
    /// The smallest gap taken as a suspension.
    let threshold: Double
    private var lastTick: Double

    /// A clock for a loop that ticks at least every `period` seconds, started at `now`.
    init(period: Double, at now: Double) {
        threshold = max(2, 4 * period)
        lastTick = now
    }

    /// Records a tick at `now`; returns the gap since the previous tick when it was a suspension.
    mutating func tick(at now: Double) -> Double? {
        defer { lastTick = max(lastTick, now) }
        let gap = now - lastTick
        return gap > threshold ? gap : nil
    }
}
