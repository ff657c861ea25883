import Platform
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class StopwatchTests: XCTestCase {
    /// A stopwatch counts the time slept, in seconds, and never goes backwards.
    func testElapsedSecondsFollowSleep() {
        let stopwatch = Stopwatch()
        usleep(50_000)
        let first = stopwatch.elapsedSeconds
        let second = stopwatch.elapsedSeconds
        XCTAssertGreaterThanOrEqual(first, 0.05)
        XCTAssertLessThan(first, 5)
        XCTAssertGreaterThanOrEqual(second, first)
    }

    func testStopwatchesStartedLaterShowLess() {
        let earlier = Stopwatch()
        usleep(10_000)
        let later = Stopwatch()
        XCTAssertGreaterThan(later.startSeconds, earlier.startSeconds)
        XCTAssertGreaterThan(earlier.elapsedSeconds, later.elapsedSeconds)
    }
}
