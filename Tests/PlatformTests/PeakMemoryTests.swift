import XCTest
@testable import Platform

final class PeakMemoryTests: XCTestCase {
    /// Touching 64 MB raises the high-water mark by about that much, and it never falls.
    func testTheHighWaterMarkFollowsWhatTheProcessTouches() {
        let before = PeakMemory.residentBytes
        XCTAssertGreaterThan(before, 1_000_000, "a process takes more than 1 MB")
        let size = 64 << 20
        let touched = [UInt8](repeating: 1, count: size)
        let after = PeakMemory.residentBytes
        XCTAssertGreaterThanOrEqual(after, before + UInt64(size) / 2, "64 MB touched: \(before) → \(after)")
        XCTAssertEqual(touched[size - 1], 1)
        XCTAssertGreaterThanOrEqual(PeakMemory.residentBytes, after)
    }

    func testStatusLinesAreReadInKilobytes() {
        let status = "Name:\tpskd\nVmPeak:\t  900 kB\nVmHWM:\t   12345 kB\nVmRSS:\t  100 kB\n"
        XCTAssertEqual(PeakMemory.kilobytes(named: "VmHWM", in: status), 12345)
        XCTAssertNil(PeakMemory.kilobytes(named: "VmSwap", in: status))
        XCTAssertEqual(PeakMemory.megabytes(5_100_000_000), "5100 MB")
    }
}
