import Foundation
import XCTest

/// The repository's test fixtures, in `Tests/Fixtures/` (outside the test targets, so SwiftPM
/// does not take them for resources).
public enum Fixtures {
    /// The folder `Tests/Fixtures/`.
    public static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Tests/Fixtures")

    /// The path of `relative` under `Tests/Fixtures/`.
    public static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }
}

extension XCTestCase {
    /// A copy of the fixture folder `relative` in the temporary folder (removed when the test
    /// ends), for tests that damage or change it.
    public func copyOfFixture(_ relative: String) throws -> String {
        let copy = temporaryPath(relative.replacingOccurrences(of: "/", with: "-"))
        try FileManager.default.copyItem(atPath: Fixtures.path(relative), toPath: copy)
        return copy
    }
}
