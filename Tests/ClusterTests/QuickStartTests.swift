import Foundation
import XCTest

/// README.md's quick-start command, run word for word as a new user would (in a folder of its
/// own, where `launch/` is the checkout's and `runs/` is new), so that it cannot drift from
/// what pskd does: it trains, and running it again is refused as README says.
final class QuickStartTests: XCTestCase {
    func testTheReadmesQuickStartRunsWordForWord() throws {
        let readme = try String(contentsOf: ClusterFixture.root.appendingPathComponent("README.md"), encoding: .utf8)
        let command = try Self.quickStartCommand(in: readme)
        XCTAssertTrue(command.hasPrefix("launch/setup.sh && launch/local.sh "), command)
        let binary = try Self.releaseBinary()
        let scratch = try ClusterFixture.scratch(self, "quickstart")
        try FileManager.default.createSymbolicLink(
            at: scratch.appendingPathComponent("launch"), withDestinationURL: ClusterFixture.root.appendingPathComponent("launch"))
        // launch/setup.sh builds nothing when PSKD_BIN names the release build (a build would
        // wait for this `swift test`, which holds the build folder).
        let run = {
            try ClusterFixture.command(
                ["bash", "-c", "cd \"$0\" && " + command, scratch.path], timeout: 900, environment: ["PSKD_BIN": binary])
        }
        let first = try run()
        print("the quick start took \(String(format: "%.1f", first.seconds)) s")
        XCTAssertEqual(first.status, 0, first.output)
        XCTAssertTrue(first.output.contains("epoch 2: "), first.output)
        let runDirectory = scratch.appendingPathComponent("runs/quickstart")
        XCTAssertEqual(ClusterFixture.metricEpochs(runDirectory), [1, 2])
        XCTAssertTrue(FileManager.default.fileExists(atPath: runDirectory.appendingPathComponent("config.json").path))

        let again = try run()
        XCTAssertNotEqual(again.status, 0, "README: running the command a second time is refused\n\(again.output)")
        XCTAssertTrue(again.output.contains("--resume") && again.output.contains("--overwrite"), again.output)
    }

    /// The first `sh` block after the "## Quick start" heading.
    static func quickStartCommand(in readme: String) throws -> String {
        guard let section = readme.range(of: "## Quick start"),
            let open = readme.range(of: "```sh\n", range: section.upperBound..<readme.endIndex),
            let close = readme.range(of: "\n```", range: open.upperBound..<readme.endIndex)
        else { throw ClusterTestError("README.md has no ```sh block under \"## Quick start\"") }
        return String(readme[open.upperBound..<close.lowerBound])
    }

    /// The release build `launch/setup.sh` makes (`launch/test.sh` runs it first); skips when it
    /// is missing or older than the sources, which it would not be testing.
    static func releaseBinary() throws -> String {
        let binary = ClusterFixture.root.appendingPathComponent(".build/release/pskd")
        guard let built = try? FileManager.default.attributesOfItem(atPath: binary.path)[.modificationDate] as? Date else {
            throw XCTSkip("\(binary.path) is missing: run the tests with launch/test.sh, which builds it (launch/setup.sh)")
        }
        let sources = FileManager.default.enumerator(
            at: ClusterFixture.root.appendingPathComponent("Sources"), includingPropertiesForKeys: [.contentModificationDateKey])
        let newest =
            (sources?.compactMap {
                ($0 as? URL).flatMap { try? $0.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate }
            } ?? []).max()
        if let newest, newest > built {
            throw XCTSkip(
                "\(binary.path) is older than the sources: run the tests with launch/test.sh, which rebuilds it (launch/setup.sh)")
        }
        return binary.path
    }
}
