import XCTest

@testable import Collectives
@testable import Watchdog

/// The stall decision: who is at fault, after how long, and no alarm for a slow but moving rank.
final class StallDetectorTests: XCTestCase {
    /// A view of `rank` last heard `silence` seconds before `now`, without progress for `still`
    /// seconds at that time.
    private func view(
        _ rank: Int, _ phase: TrainingPhase, in collective: CollectiveKind? = nil, silence: Double = 0.2,
        still: Double = 0, medianStep: Double = 0.05, now: Double = 1000
    ) -> RankView {
        var state = ProgressState()
        (state.phase, state.collective, state.epoch, state.step, state.medianStepSeconds) = (phase, collective, 3, 117, medianStep)
        return RankView(
            rank: rank, host: "node0\(rank + 1)", pid: Int32(4711 + rank), endpoint: .loopback,
            last: Heartbeat(rank: rank, state: state, secondsSinceProgress: still, sequence: 1), heardAt: now - silence)
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

    func testStepDurationsGiveTheirMedian() {
        var durations = StepDurations()
        XCTAssertEqual(durations.median, 0)
        for seconds in [5.0, 1, 3] { durations.record(seconds) }
        XCTAssertEqual(durations.median, 3)
        for _ in 0..<100 { durations.record(0.5) }
        XCTAssertEqual(durations.median, 0.5, "only the recent steps count")
    }
}
