import XCTest

@testable import Platform

final class PeakMemoryTests: XCTestCase {
    /// Touching 64 MB more than the process ever held raises the high-water mark by about that
    /// much, and it never falls.
    func testTheHighWaterMarkFollowsWhatTheProcessTouches() throws {
        let before = PeakMemory.residentBytes
        XCTAssertGreaterThan(before, 1_000_000, "a process takes more than 1 MB")
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let resident = try XCTUnwrap(PeakMemory.kilobytes(named: "VmRSS", in: status)) * 1024
        let size = Int(before - min(resident, before)) + (64 << 20)
        let touched = [UInt8](repeating: 1, count: size)
        let after = PeakMemory.residentBytes
        XCTAssertGreaterThanOrEqual(after, before + (32 << 20), "\(size) bytes touched: \(before) → \(after)")
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
