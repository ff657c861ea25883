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
}
