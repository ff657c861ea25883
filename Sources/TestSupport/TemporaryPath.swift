import Foundation
import XCTest

extension XCTestCase {
    /// A path in the temporary folder, unique to this process and `name`, that does not exist
    /// yet and is removed (with everything under it) when the test ends.
    public func temporaryPath(_ name: String) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pskd-\(name)-\(getpid())").path
        try? FileManager.default.removeItem(atPath: path)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// `contents` written to a file in the temporary folder (named after `name`), removed when
    /// the test ends; returns its path.
    public func temporaryFile(_ name: String, _ contents: Data) throws -> String {
        let path = temporaryPath(name)
        try contents.write(to: URL(fileURLWithPath: path))
        return path
    }

    /// A text file in the temporary folder, removed when the test ends; returns its path.
    public func temporaryFile(_ name: String, _ contents: String) throws -> String {
        try temporaryFile(name, Data(contents.utf8))
    }
}
