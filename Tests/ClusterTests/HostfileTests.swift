import Foundation
import XCTest

/// The default hostfile must stay in Open MPI's format: `NAME slots=N` per line, `#` comments.
final class HostfileTests: XCTestCase {
    func testDefaultHostfileIsValid() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("hosts"), encoding: .utf8)
        let entries = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        XCTAssertFalse(entries.isEmpty, "the hostfile lists no node")
        for entry in entries {
            let fields = entry.split(separator: " ")
            XCTAssertEqual(fields.count, 2, "'\(entry)' should be 'NAME slots=N'")
            XCTAssertTrue(fields.last.map { $0.hasPrefix("slots=") && Int($0.dropFirst(6)) ?? 0 > 0 } ?? false, entry)
        }
    }
}
