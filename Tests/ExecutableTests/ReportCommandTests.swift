import Foundation
import RunFixtures
import TestSupport
import XCTest

/// `pskd report` as a command: an experiment folder with one damaged run is still reported
/// (status 0), the damaged run named with the reason; a folder with no readable run fails.
final class ReportCommandTests: XCTestCase {
    func testAnUnreadableRunIsNamedAndTheOthersReported() throws {
        let fixture = try FixtureRuns(self)
        try fixture.experiment(seeds: [1], epochs: 2)
        let broken = fixture.root.appendingPathComponent("broken")
        try FileManager.default.createDirectory(at: broken, withIntermediateDirectories: true)
        try Data("{\"epochs\": \"many\"}".utf8).write(to: broken.appendingPathComponent("config.json"))
        let page = fixture.root.appendingPathComponent("report.html").path

        let outcome = try ExecutableRunner.run(
            ExecutableRunner.executable.path, ["report", fixture.root.path, "--output", page], timeout: 60)
        XCTAssertEqual(outcome.status, 0, outcome.output)
        XCTAssertTrue(outcome.output.contains("warning: \(broken.path) is not in the report: "), outcome.output)
        XCTAssertTrue(outcome.output.contains("is not a pskd configuration"), outcome.output)
        XCTAssertTrue(
            outcome.output.contains("pskd report: 3 runs, 3 policies → \(page); 1 run(s) left out, unreadable: \(broken.path)"),
            outcome.output)
        XCTAssertTrue(try String(contentsOfFile: page, encoding: .utf8).contains("is not in the report"))

        let none = try ExecutableRunner.run(
            ExecutableRunner.executable.path, ["report", broken.path, "--output", page], timeout: 60)
        XCTAssertNotEqual(none.status, 0, none.output)
        XCTAssertTrue(none.output.contains("is not a pskd configuration"), none.output)
    }
}
