#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Writes `message` and a newline to standard error, after flushing every C output stream
/// (so that it follows what was printed before it), retrying short writes.
///
/// - Parameter message: one line of text, without the newline.
public func printError(_ message: String) {
    fflush(nil)
    let line = Array((message + "\n").utf8)
    line.withUnsafeBytes { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = write(2, bytes.baseAddress! + offset, bytes.count - offset)
            if written <= 0 { return }
            offset += written
        }
    }
}
