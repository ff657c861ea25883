import XCTest

@testable import Collectives
@testable import Watchdog

/// The stall decision: who is at fault, after how long, and no alarm for a slow but moving rank.
final class StallDetectorTests: XCTestCase {
    /// A view of `rank` last heard `silence` seconds before `now`, whose progress count the
    /// observer last saw change `still` seconds before that.
    private func view(
        _ rank: Int, _ phase: TrainingPhase, in collective: CollectiveKind? = nil, silence: Double = 0.2,
        still: Double = 0, medianStep: Double = 0.05, now: Double = 1000
    ) -> RankView {
        var state = ProgressState()
        (state.phase, state.collective, state.epoch, state.step, state.medianStepSeconds) = (phase, collective, 3, 117, medianStep)
        var view = RankView(rank: rank, host: "node0\(rank + 1)", pid: Int32(4711 + rank), endpoint: .loopback, since: 0)
        view.accept(Heartbeat(rank: rank, state: state, sequence: 1), at: now - silence - still)
        view.accept(Heartbeat(rank: rank, state: state, sequence: 2), at: now - silence)
        return view
    }

    private let detector = StallDetector(explicitTimeout: nil)

    func testDefaultTimeoutIsAMinuteOrTenMedianSteps() {
        XCTAssertEqual(detector.timeout(medianStep: 0.05), 60)
        XCTAssertEqual(detector.timeout(medianStep: 11), 110)
        XCTAssertEqual(StallDetector(explicitTimeout: 5).timeout(medianStep: 11), 5)
        XCTAssertEqual(detector.budget(.checkpoint, timeout: 60), 300)
        XCTAssertEqual(detector.budget(.startup, timeout: 5), 120)
        XCTAssertEqual(detector.budget(.evaluation, timeout: 60), 60)
    }

    func testASilentRankIsStalledAfterTheTimeout() throws {
        let views = [view(0, .forwardBackward, in: .allReduce, still: 61), view(1, .forwardBackward, silence: 62)]
        let stall = try XCTUnwrap(detector.check(views, at: 1000))
        XCTAssertEqual(stall.kind, .silent)
        XCTAssertEqual(stall.rank, 1)
        XCTAssertEqual(stall.seconds, 62, accuracy: 1e-9)
        let line = detector.describe(stall, views)
        XCTAssertTrue(line.hasPrefix("rank 1 (host node02, pid 4712) has made no progress for 62 s"), line)
        XCTAssertTrue(line.contains("phase forward/backward, epoch 3, step 117"), line)
        XCTAssertTrue(line.hasSuffix("the other rank is waiting in all-reduce"), line)
        XCTAssertNil(detector.check([views[0], view(1, .forwardBackward, silence: 59)], at: 1000), "59 s is within the minute")
    }

    /// A rank whose heartbeat goes on but which does not advance while another waits in a
    /// collective; the same rank is fine while nobody waits for it.
    func testARunningRankThatDoesNotAdvanceIsStalledOnlyWhileOthersWait() throws {
        let spinning = view(1, .forwardBackward, still: 65)
        let stall = try XCTUnwrap(detector.check([view(0, .forwardBackward, in: .allReduce, still: 65), spinning], at: 1000))
        XCTAssertEqual(stall.kind, .noProgress)
        XCTAssertEqual(stall.rank, 1)
        XCTAssertTrue(detector.describe(stall, [view(0, .forwardBackward, in: .allReduce), spinning]).contains("its heartbeat goes on"))
        XCTAssertNil(detector.check([view(0, .forwardBackward, still: 65), spinning], at: 1000), "nobody waits")
    }

    /// Evaluation advances batch by batch; only start-up and checkpoints get a longer budget.
    func testLongPhasesHaveTheirOwnBudget() {
        let waiting = view(1, .evaluation, in: .barrier, still: 200)
        XCTAssertNil(detector.check([view(0, .checkpoint, still: 200), waiting], at: 1000), "a 200 s checkpoint is within 5 minutes")
        XCTAssertEqual(detector.check([view(0, .checkpoint, still: 301), waiting], at: 1000)?.rank, 0)
        XCTAssertNil(
            detector.check([view(0, .evaluation, still: 2), view(1, .evaluation, in: .allGather, still: 200)], at: 1000),
            "a rank still scoring batches while the other waits in the gather")
    }

    func testTenSlowStepsRaiseTheTimeout() {
        let views = [view(0, .forwardBackward, in: .allReduce, medianStep: 9), view(1, .forwardBackward, still: 80, medianStep: 9)]
        XCTAssertNil(detector.check(views, at: 1000), "10 × 9 s steps = 90 s")
        XCTAssertEqual(detector.check(views, at: 1011)?.rank, 1)
    }

    func testFinishedRanksAreNeverStalledAndCountAsWaiting() {
        let finished = view(0, .finished, silence: 500)
        XCTAssertNil(detector.check([finished, view(1, .checkpoint, still: 100)], at: 1000))
        XCTAssertEqual(detector.check([finished, view(1, .data, still: 100)], at: 1000)?.rank, 1)
    }

    func testEveryRankWaitingForTooLongIsAStallOfTheNetwork() throws {
        let views = [view(0, .forwardBackward, in: .allReduce, still: 301), view(1, .forwardBackward, in: .allReduce, still: 305)]
        let stall = try XCTUnwrap(detector.check(views, at: 1000))
        XCTAssertEqual(stall.kind, .everyoneWaiting)
        XCTAssertNil(stall.rank)
        XCTAssertTrue(detector.describe(stall, views).contains("every rank has waited in all-reduce for 301 s"))
        XCTAssertNil(detector.check([view(0, .forwardBackward, in: .allReduce, still: 100), views[1]], at: 1000))
    }

    /// Time without progress is what the observer saw: heartbeats that keep arriving with the
    /// same count add up; a new count starts it again, however late the sender says it is.
    func testStillnessIsMeasuredOnTheObserversClock() {
        var state = ProgressState()
        state.progress = 5
        var rank = RankView(rank: 1, host: "node02", pid: 1, endpoint: .loopback, since: 100)
        XCTAssertEqual(rank.stillness(at: 103), 3, "from the watchdog's start before the first heartbeat")
        rank.accept(Heartbeat(rank: 1, state: state, sequence: 1), at: 104)
        rank.accept(Heartbeat(rank: 1, state: state, sequence: 2), at: 108)
        XCTAssertEqual(rank.stillness(at: 110), 6)
        XCTAssertEqual(rank.silence(at: 110), 2)
        state.progress = 6
        rank.accept(Heartbeat(rank: 1, state: state, sequence: 3), at: 111)
        XCTAssertEqual(rank.stillness(at: 112), 1)
        rank.restartClocks(at: 200)
        XCTAssertEqual([rank.silence(at: 201), rank.stillness(at: 201)], [1, 1], "after the observer's own suspension")
    }

    /// A rank paused 3 s of every 3.3 s (each pause shorter than a 5 s timeout) that advances
    /// whenever it runs is never stalled, while the other rank waits for it each time.
    func testASlowRankThatAdvancesIsNeverStalled() {
        let detector = StallDetector(explicitTimeout: 5)
        var waiting = ProgressState(), slow = ProgressState()
        (waiting.phase, waiting.collective, slow.phase) = (.forwardBackward, .allReduce, .forwardBackward)
        var views = [0, 1].map { RankView(rank: $0, host: "node0\($0 + 1)", pid: Int32($0), endpoint: .loopback, since: 0) }
        var sequence: UInt64 = 0
        var now = 0.0
        while now < 120 {
            // 0.3 s running: heartbeats every 0.1 s, a step completed; then 3 s stopped, silent.
            for _ in 0..<3 {
                sequence += 1
                views[0].accept(Heartbeat(rank: 0, state: waiting, sequence: sequence), at: now)
                views[1].accept(Heartbeat(rank: 1, state: slow, sequence: sequence), at: now)
                XCTAssertNil(detector.check(views, at: now), "at \(now) s")
                now += 0.1
            }
            slow.progress += 1
            for _ in 0..<30 {
                views[0].accept(Heartbeat(rank: 0, state: waiting, sequence: sequence), at: now)
                XCTAssertNil(detector.check(views, at: now), "at \(now) s")
                now += 0.1
            }
        }
    }

    /// Pauses beyond the loop's period are suspensions; the threshold is at least 2 s.
    func testSuspensionClockNoticesGaps() {
        var clock = SuspensionClock(period: 0.5, at: 10)
        XCTAssertEqual(clock.threshold, 2)
        XCTAssertNil(clock.tick(at: 10.6))
        XCTAssertNil(clock.tick(at: 12.5))
        XCTAssertEqual(clock.tick(at: 82.5), 70)
        XCTAssertNil(clock.tick(at: 82.6))
        XCTAssertEqual(SuspensionClock(period: 1, at: 0).threshold, 4)
    }

    /// The first suspension is said at once; repeats within a minute are counted into the next line.
    func testSuspensionsAreSaidAtMostOnceAMinute() throws {
        var report = SuspensionReport(clock: SuspensionClock(period: 0.5, at: 0))
        let first = try XCTUnwrap(report.record(70, at: 70))
        XCTAssertTrue(first.hasPrefix("this rank was suspended for 70 s ("), first)
        XCTAssertNil(report.record(3, at: 80))
        XCTAssertNil(report.record(3, at: 90))
        let later = try XCTUnwrap(report.record(3, at: 131))
        XCTAssertTrue(later.hasPrefix("this rank was suspended 3 times (9 s in all) in the last minute"), later)
    }

    func testStepDurationsGiveTheirMedian() {
        var durations = StepDurations()
        XCTAssertEqual(durations.median, 0)
        for seconds in [5.0, 1, 3] { durations.record(seconds) }
        XCTAssertEqual(durations.median, 3)
        for _ in 0..<100 { durations.record(0.5) }
        XCTAssertEqual(durations.median, 0.5, "only the recent steps count")
    }
}
