import Foundation
import Platform
import XCTest

final class ProcessPlacementTests: XCTestCase {
    func testPlacementCountsCPUs() {
        XCTAssertGreaterThanOrEqual(ProcessPlacement.allowedCPUCount, 1)
        XCTAssertLessThanOrEqual(ProcessPlacement.allowedCPUCount, ProcessPlacement.onlineCPUCount)
        XCTAssertEqual(ProcessPlacement.blasThreads(requested: 3), 3)
    }

    func testHostNameIsTheKernelsNodeName() throws {
        let name = hostName()
        XCTAssertFalse(name.isEmpty)
        let kernelName = try String(contentsOfFile: "/proc/sys/kernel/hostname", encoding: .utf8)
        XCTAssertEqual(name, kernelName.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
