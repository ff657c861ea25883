import Collectives

/// What an observing rank knows of one rank of the job, every time on the observer's own clock.
struct RankView {
    let rank: Int
    let host: String
    let pid: Int32
    /// Where its heartbeats come from (a datagram from elsewhere is not its heartbeat).
    let endpoint: Endpoint
    /// Its last heartbeat, nil before the first.
    private(set) var last: Heartbeat?
    /// When its last heartbeat arrived (the watchdog's start, or the end of its suspension, before).
    private(set) var heardAt: Double
    /// When the observer last saw its progress count change (or the start, or the end of a suspension).
    private(set) var progressSeenAt: Double

    init(rank: Int, host: String, pid: Int32, endpoint: Endpoint, since start: Double) {
        (self.rank, self.host, self.pid, self.endpoint) = (rank, host, pid, endpoint)
        (heardAt, progressSeenAt) = (start, start)
    }

    /// Takes `beat`, received at `now`: a progress count other than the last one is progress seen now.
    mutating func accept(_ beat: Heartbeat, at now: Double) {
        if beat.state.progress != last?.state.progress { progressSeenAt = now }
        last = beat
        heardAt = now
    }

    /// Starts both clocks afresh at `now` (after the observer itself was suspended, when what
    /// it last saw is stale): the rank has a whole timeout from `now` to be heard and to advance.
    mutating func restartClocks(at now: Double) {
        (heardAt, progressSeenAt) = (now, now)
    }

    /// Seconds without a heartbeat at `now`.
    func silence(at now: Double) -> Double { now - heardAt }

    /// Seconds without progress at `now`, as the observer saw it: since its heartbeats last
    /// carried a new progress count. The sender's own durations are never used.
    func stillness(at now: Double) -> Double { now - progressSeenAt }

    var isFinished: Bool { last?.state.phase == .finished }
    var isInCollective: Bool { last?.state.collective != nil }

    /// "phase all-reduce, epoch 3, step 117" (the collective it is inside, else its phase).
    var whereabouts: String {
        guard let state = last?.state else { return "no heartbeat received yet" }
        let phase =
            state.collective.map { state.phase == .forwardBackward ? $0.name : "\(state.phase.name), \($0.name)" } ?? state.phase.name
        return state.epoch == 0 ? "phase \(phase)" : "phase \(phase), epoch \(state.epoch), step \(state.step)"
    }

    /// "rank 1 (host node02, pid 4711)".
    var identity: String { "rank \(rank) (host \(host), pid \(pid))" }
}

/// A rank that stopped making progress, as a stall detector found it.
struct Stall: Equatable {
    enum Kind: String { case silent = "no heartbeat", noProgress = "no progress", everyoneWaiting = "every rank waiting" }
    let kind: Kind
    /// The rank at fault (nil when every rank waits in a collective).
    let rank: Int?
    /// How long it has been so.
    let seconds: Double
    /// The budget it exceeded.
    let budget: Double
}

/// Decides, from the ranks' heartbeats, whether the job has stalled and who is at fault.
///
/// A rank is stalled when its heartbeat stops for longer than the timeout (the process is
/// stopped, dead or cut off: its heartbeat thread no longer runs), or when it has made no
/// progress for longer than its phase's budget while another rank waits in a collective (it
/// runs but does not reach the collective the others wait for). Every phase advances at least
/// once per training step or evaluation batch; only the indivisible ones, start-up (loading the
/// data) and writing a checkpoint, get a longer budget.
struct StallDetector {
    /// `--stall-timeout`, or nil to derive the timeout from the step times.
    let explicitTimeout: Double?

    /// The derived timeout: at least a minute, and ten times the median step.
    static let minimumTimeout = 60.0, stepMultiple = 10.0
    /// Start-up and checkpoint budgets: five timeouts, and at least two minutes.
    static let longPhaseMultiple = 5.0, minimumLongPhase = 120.0

    /// The timeout for ranks whose slowest median step is `medianStep` seconds.
    func timeout(medianStep: Double) -> Double {
        explicitTimeout ?? max(Self.minimumTimeout, Self.stepMultiple * medianStep)
    }

    /// The timeout given what `views` report.
    func timeout(_ views: [RankView]) -> Double {
        timeout(medianStep: views.compactMap { $0.last?.state.medianStepSeconds }.max() ?? 0)
    }

    /// How long a rank may go without progress in `phase`.
    func budget(_ phase: TrainingPhase?, timeout: Double) -> Double {
        switch phase {
        case .startup, .checkpoint, nil: max(Self.longPhaseMultiple * timeout, Self.minimumLongPhase)
        default: timeout
        }
    }

    /// The stall at `now`, or nil: a silent rank first, then the longest-stuck one.
    func check(_ views: [RankView], at now: Double) -> Stall? {
        let timeout = timeout(views)
        let running = views.filter { !$0.isFinished }
        let silent = running.map { ($0, $0.silence(at: now)) }.filter { $0.1 > timeout }
        if let (view, seconds) = silent.max(by: { $0.1 < $1.1 }) {
            return Stall(kind: .silent, rank: view.rank, seconds: seconds, budget: timeout)
        }
        let stuck = running.filter { view in
            !view.isInCollective && view.stillness(at: now) > budget(view.last?.state.phase, timeout: timeout)
                && views.contains { $0.rank != view.rank && ($0.isInCollective || $0.isFinished) }
        }
        if let view = stuck.max(by: { $0.stillness(at: now) < $1.stillness(at: now) }) {
            return Stall(
                kind: .noProgress, rank: view.rank, seconds: view.stillness(at: now),
                budget: budget(view.last?.state.phase, timeout: timeout))
        }
        let longBudget = budget(nil, timeout: timeout)
        if !running.isEmpty, running.allSatisfy(\.isInCollective),
            let latest = running.map({ $0.stillness(at: now) }).min(), latest > longBudget
        {
            return Stall(kind: .everyoneWaiting, rank: nil, seconds: latest, budget: longBudget)
        }
        return nil
    }

    /// The line a person reads: who, for how long, doing what, and what the others do.
    func describe(_ stall: Stall, _ views: [RankView]) -> String {
        let seconds = Int(stall.seconds.rounded())
        guard let rank = stall.rank, let view = views.first(where: { $0.rank == rank }) else {
            let collectives = Set(views.compactMap { $0.last?.state.collective?.name }).sorted().joined(separator: ", ")
            return "every rank has waited in \(collectives) for \(seconds) s with no progress anywhere: "
                + "the network or MPI itself is stuck"
        }
        let cause =
            stall.kind == .silent
            ? "no heartbeat for \(seconds) s: the process is stopped, hung in the kernel or cut off; last \(view.whereabouts)"
            : "\(view.whereabouts); its heartbeat goes on, so it runs without reaching the next step or collective"
        return "\(view.identity) has made no progress for \(seconds) s (\(cause)); \(othersDoing(except: rank, views))"
    }

    /// "other ranks are waiting in all-reduce", or each rank's whereabouts when they differ.
    private func othersDoing(except rank: Int, _ views: [RankView]) -> String {
        let others = views.filter { $0.rank != rank }
        let doings = others.map { view -> String in
            if view.isFinished { return "finished" }
            if let collective = view.last?.state.collective { return "waiting in \(collective.name)" }
            return "in " + view.whereabouts
        }
        if Set(doings).count == 1, let doing = doings.first {
            return (others.count == 1 ? "the other rank is " : "the other ranks are ") + doing
        }
        return zip(others, doings).map { "rank \($0.rank) is \($1)" }.joined(separator: ", ")
    }
}
