import Collectives
import Foundation
import Platform
import Synchronization

/// Ends a job whose rank stopped making progress, within a bounded time, naming the rank.
///
/// Why a side channel: a rank waiting in `MPI_Allreduce` for a stopped peer waits forever (Open
/// MPI 4.1 has no progress timeout, and its keep-alive covers only the daemons' links), so the
/// watchdog cannot use MPI to learn about progress. Every rank runs a thread that sends a
/// heartbeat (`Heartbeat`: phase, epoch, step, progress count) a few times a second over UDP —
/// connectionless, so a stopped receiver never blocks a sender, and one small datagram per
/// observer costs nothing measurable. Rank 0 (the monitor) and the last rank (the watcher of rank
/// 0) receive them all and run a `StallDetector`; the watcher acts only when rank 0 is the one
/// stalled, or when rank 0 has failed to act well past the budget.
///
/// What it trusts: MPI's own channel, which carries the job's 32-byte heartbeat key once at
/// start-up (rank 0 draws it; it never travels on the heartbeats' network). The heartbeat port
/// is open on every node, so every datagram is treated as hostile: only records authenticated
/// with the key (HMAC-SHA256), from the address and port registered for the rank they name, and
/// newer than the last one accepted from that rank count (`HeartbeatInbox`); forgeries and
/// replays are dropped and counted. An attacker on the network can still drop or delay
/// heartbeats: then the job ends as stalled (exit 75), never hangs, and never runs on past a
/// real stall.
///
/// Every duration is measured on the observer's own clock (`RankView`), and an observer that was
/// itself suspended (`SuspensionClock`: SIGSTOP, a suspended job, a paused machine) starts its
/// clocks afresh and judges nobody on what it saw before: a job suspended as a whole goes on
/// when it is resumed, and a stopped rank that Open MPI wakes (SIGCONT) to end the job says
/// nothing about the others.
///
/// On a stall the acting rank prints one line naming the rank, writes `stall.json` (every rank's
/// last heartbeat; only the first verdict of a job is written) into the run directory and ends
/// the whole job with `MPI_Abort` and `StallWatchdog.exitCode`; Open MPI's runtime kills every
/// rank, stopped ones included. The abort comes from the watchdog's thread while the main thread
/// may be inside a collective: Open MPI's abort goes to its runtime, not through the
/// communicator's state (checked with Open MPI 4.1, whose `MPI_THREAD_FUNNELED` allows no more
/// formally).
public final class StallWatchdog: @unchecked Sendable {
    /// The exit status of a job ended by the watchdog (`EX_TEMPFAIL`: try again), which
    /// `launch/slurm.sbatch` requeues.
    public static let exitCode: Int32 = 75
    /// The file a verdict writes into the run directory.
    public static let reportName = "stall.json"

    private let rank: Int
    private let inbox: Mutex<HeartbeatInbox>
    private let socket: HeartbeatSocket
    private let key: HeartbeatKey
    private let destinations: [Endpoint]
    private let isObserver: Bool
    private let detector: StallDetector
    private let beacon: ProgressBeacon
    private let runDirectory: String
    private let resumeCommand: String
    private let endJob: @Sendable (String) -> Never
    private let stopping = Atomic<Bool>(false)
    private let stopped = DispatchSemaphore(value: 0)
    /// Seconds between heartbeats.
    private let interval: Double
    /// When the watchdog started, by the calendar (to tell an earlier job's `stall.json`).
    private let startedAt = Date()

    /// Starts the watchdog on every rank (a collective: every rank must call it at the same
    /// point); nil for a one-rank job or `timeout` 0.
    /// - Parameters:
    ///   - communicator: the job's communicator (the key and addresses travel through it once).
    ///   - timeout: `--stall-timeout` in seconds; nil derives it from the step times, 0 is off.
    ///   - runDirectory: where `stall.json` goes.
    ///   - resumeCommand: what to run to continue, for the closing message.
    /// - Throws: `WatchdogError` when no usable network interface or socket exists.
    public static func start(
        communicator: any Communicator, timeout: Double?, runDirectory: String,
        resumeCommand: String, beacon: ProgressBeacon = .shared
    ) throws -> StallWatchdog? {
        guard communicator.size > 1, timeout != 0 else { return nil }
        beacon.enter(.startup)
        var key = HeartbeatKey.randomBytes()
        try key.withUnsafeMutableBytes { try communicator.broadcast($0, root: 0) }
        let hosts = try gatherHostNames(communicator)
        let socket = try HeartbeatSocket(bindingTo: HeartbeatAddress.choose(singleNode: Set(hosts).count == 1))
        var mine: [UInt8] = []
        mine.appendLittleEndian(socket.endpoint.address)
        mine.appendLittleEndian(socket.endpoint.port)
        mine.appendLittleEndian(UInt32(bitPattern: getpid()))
        let all = try mine.withUnsafeBytes { try communicator.allGather($0) }
        let now = Stopwatch.now
        let views = hosts.indices.map { r in
            let record = Array(all[(r * 10)..<(r * 10 + 10)])
            return RankView(
                rank: r, host: hosts[r], pid: Int32(bitPattern: record.littleEndian(UInt32.self, at: 6)),
                endpoint: Endpoint(address: record.littleEndian(UInt32.self, at: 0), port: record.littleEndian(UInt16.self, at: 4)),
                since: now)
        }
        let abortBox = UncheckedBox(communicator)
        let watchdog = StallWatchdog(
            rank: communicator.rank, views: views, socket: socket, key: HeartbeatKey(bytes: key),
            detector: StallDetector(explicitTimeout: timeout), beacon: beacon,
            runDirectory: runDirectory, resumeCommand: resumeCommand,
            endJob: { abortBox.value.abort($0, code: exitCode) })
        watchdog.launchThread()
        return watchdog
    }

    private init(
        rank: Int, views: [RankView], socket: HeartbeatSocket, key: HeartbeatKey, detector: StallDetector,
        beacon: ProgressBeacon, runDirectory: String, resumeCommand: String, endJob: @escaping @Sendable (String) -> Never
    ) {
        self.rank = rank
        self.inbox = Mutex(HeartbeatInbox(views: views, key: key))
        self.socket = socket
        self.key = key
        let observers = [0, views.count - 1]
        destinations = observers.map { views[$0].endpoint }
        isObserver = observers.contains(rank)
        self.detector = detector
        self.beacon = beacon
        self.runDirectory = runDirectory
        self.resumeCommand = resumeCommand
        self.endJob = endJob
        interval = min(0.5, (detector.explicitTimeout ?? 5) / 10)
    }

    /// What rank 0 prints at start: the timeout and where the heartbeats go.
    public var summary: String {
        let timeout =
            detector.explicitTimeout.map { "\(Self.format($0)) s" }
            ?? "max(\(Int(StallDetector.minimumTimeout)) s, \(Int(StallDetector.stepMultiple))× the median step)"
        return "pskd: stall watchdog on: a rank without progress for \(timeout) ends the job with exit code \(Self.exitCode); "
            + "authenticated heartbeats over UDP to \(destinations.map(\.description).joined(separator: " and "))"
    }

    /// Tells the observers this rank has finished and stops the thread. Call on every rank when
    /// training is over, before MPI is finalised.
    /// - Returns: what this rank's monitor refused, for the closing lines (nil on a rank that
    ///   does not observe).
    @discardableResult
    public func stop() -> RejectedDatagrams? {
        beacon.enter(.finished)
        stopping.store(true, ordering: .releasing)
        stopped.wait()
        return isObserver ? inbox.withLock { $0.rejected } : nil
    }

    // MARK: - The thread

    private func launchThread() {
        Thread { [self] in run() }.start()
    }

    /// Sends heartbeats; on an observer also receives them and checks for stalls.
    private func run() {
        Thread.current.name = "pskd-watchdog"  // as `top -H` and /proc/PID/task/*/comm show it
        var sequence: UInt64 = 0
        var nextBeat = Stopwatch.now, nextCheck = nextBeat + 1
        var suspension = SuspensionReport(clock: SuspensionClock(period: interval, at: nextBeat))
        while !stopping.load(ordering: .acquiring) {
            let now = Stopwatch.now
            if let gap = suspension.clock.tick(at: now) { resumeAfterSuspension(gap, at: now, &suspension) }
            if now >= nextBeat {
                sendHeartbeat(sequence: &sequence)
                nextBeat = now + interval
            }
            guard isObserver else {
                usleep(UInt32(max(0, nextBeat - Stopwatch.now) * 1e6))
                continue
            }
            if let (bytes, sender) = socket.receive(waitingAtMost: min(0.1, max(0, nextBeat - Stopwatch.now))) {
                let received = Stopwatch.now
                inbox.withLock { $0.receive(bytes, from: sender, at: received) }
            }
            let checkTime = Stopwatch.now
            if let gap = suspension.clock.tick(at: checkTime) {
                resumeAfterSuspension(gap, at: checkTime, &suspension)
            } else if checkTime >= nextCheck {
                checkForStall(at: checkTime)
                nextCheck = checkTime + min(1, interval)
            }
        }
        for _ in 0..<3 { sendHeartbeat(sequence: &sequence) }  // phase finished: UDP may drop one
        stopped.signal()
    }

    private func sendHeartbeat(sequence: inout UInt64) {
        sequence += 1
        let bytes = Heartbeat(rank: rank, state: beacon.state, sequence: sequence).encoded(key: key)
        for destination in destinations { socket.send(bytes, to: destination) }
    }

    /// This process stood still for `gap` seconds: what it saw of the others is stale, so every
    /// rank gets a whole timeout from now. Says so (at most once a minute, with a count).
    private func resumeAfterSuspension(_ gap: Double, at now: Double, _ report: inout SuspensionReport) {
        if isObserver { inbox.withLock { $0.restartClocks(at: now) } }
        if let line = report.record(gap, at: now) { printError("[rank \(rank)] pskd: \(line)") }
    }

    private func checkForStall(at now: Double) {
        let snapshot = inbox.withLock { $0 }
        guard let stall = detector.check(snapshot.views, at: now) else { return }
        // Rank 0 acts on any stall; the watcher on rank 0's, or when rank 0 has not acted in time.
        guard rank == 0 || stall.rank == 0 || stall.seconds > stall.budget + 15 else { return }
        let line = detector.describe(stall, snapshot.views)
        let report = writeReport(stall, line: line, inbox: snapshot, now: now)
        endJob("pskd: \(line). \(report); ending the job with exit code \(Self.exitCode) (stall): continue with \(resumeCommand)")
    }

    /// Writes `stall.json` unless a verdict of this job already did (the first verdict wins:
    /// the file appears whole, by `link`, only where none exists); returns what to say about it.
    private func writeReport(_ stall: Stall, line: String, inbox: HeartbeatInbox, now: Double) -> String {
        let path = URL(fileURLWithPath: runDirectory).appendingPathComponent(Self.reportName).path
        let report: [String: Any] = [
            "message": line, "kind": stall.kind.rawValue, "rank": stall.rank as Any? ?? NSNull(),
            "seconds": Self.rounded(stall.seconds), "budget_seconds": Self.rounded(stall.budget),
            "timeout_seconds": Self.rounded(detector.timeout(inbox.views)), "detected_by_rank": rank,
            "detected_at": ISO8601DateFormatter().string(from: Date()), "exit_code": Int(Self.exitCode),
            "rejected_datagrams": ["unauthenticated": inbox.rejected.unauthenticated, "replayed": inbox.rejected.replayed],
            "ranks": inbox.views.map { Self.json($0, now: now) },
        ]
        let temporary = path + ".rank\(rank).tmp"
        defer { unlink(temporary) }
        do {
            try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
            let data = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
            try data.write(to: URL(fileURLWithPath: temporary))
        } catch {
            return "(could not write \(path): \(error.localizedDescription))"
        }
        guard link(temporary, path) == 0 else {
            guard errno == EEXIST else { return "(could not write \(path): \(String(cString: strerror(errno))))" }
            guard isFromAnEarlierJob(path), rename(temporary, path) == 0 else { return "\(path) holds the first verdict of this job" }
            return "Every rank's last heartbeat is in \(path) (it replaced an earlier job's report, not yet moved aside)"
        }
        return "Every rank's last heartbeat is in \(path)"
    }

    /// Whether the file at `path` was written before this job started (a resumed run moves an
    /// earlier `stall.json` aside once it owns the run directory, shortly after the watchdog starts).
    private func isFromAnEarlierJob(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && Double(info.st_mtim.tv_sec) < startedAt.timeIntervalSince1970 - 1
    }

    private static func json(_ view: RankView, now: Double) -> [String: Any] {
        var entry: [String: Any] = [
            "rank": view.rank, "host": view.host, "pid": Int(view.pid),
            "seconds_since_heartbeat": rounded(view.silence(at: now)),
        ]
        if let state = view.last?.state {
            entry["phase"] = state.phase.name
            entry["collective"] = state.collective?.name ?? NSNull()
            entry["epoch"] = state.epoch
            entry["step"] = state.step
            entry["progress"] = state.progress
            entry["seconds_since_progress"] = rounded(view.stillness(at: now))
            entry["median_step_seconds"] = rounded(state.medianStepSeconds)
        }
        return entry
    }

    private static func rounded(_ seconds: Double) -> Double { (seconds * 1000).rounded() / 1000 }
    private static func format(_ seconds: Double) -> String { seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds) }

    /// Every rank's host name, in rank order.
    private static func gatherHostNames(_ communicator: any Communicator) throws -> [String] {
        var name = [CChar](repeating: 0, count: 65)
        gethostname(&name, 64)
        let bytes = name.prefix(64).map { UInt8(bitPattern: $0) }
        let all = try bytes.withUnsafeBytes { try communicator.allGather($0) }
        return (0..<communicator.size).map { r in
            String(decoding: all[(r * 64)..<(r * 64 + 64)].prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}

/// What a rank says about its own suspensions: the first at once, then at most one line a
/// minute, counting those in between (a rank paused again and again would otherwise fill the log).
struct SuspensionReport {
    var clock: SuspensionClock
    private var lastSaid = -Double.infinity
    private var unsaid = 0, unsaidSeconds = 0.0

    init(clock: SuspensionClock) { self.clock = clock }

    /// Records a suspension of `gap` seconds ended at `now`; returns the line to print, if any.
    mutating func record(_ gap: Double, at now: Double) -> String? {
        unsaid += 1
        unsaidSeconds += gap
        guard now - lastSaid >= 60 else { return nil }
        defer { (lastSaid, unsaid, unsaidSeconds) = (now, 0, 0) }
        let what =
            unsaid == 1
            ? "this rank was suspended for \(Int(gap.rounded())) s"
            : "this rank was suspended \(unsaid) times (\(Int(unsaidSeconds.rounded())) s in all) in the last minute"
        return what + " (stopped by a signal or a scheduler, a paused machine, or starved of CPU); "
            + "its stall watchdog restarts its timeouts and judges nobody on what it saw before"
    }
}

/// Carries a value that is not `Sendable` into the watchdog's thread, which only uses it to
/// abort the job.
private final class UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
