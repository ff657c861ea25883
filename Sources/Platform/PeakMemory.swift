import Foundation

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// The process's peak resident memory (high-water mark), for reporting what a run needed.
public enum PeakMemory {
    /// Peak resident bytes so far: `VmHWM` of `/proc/self/status` on Linux, else `getrusage`'s
    /// `ru_maxrss` (kilobytes on Linux, bytes on macOS).
    public static var residentBytes: UInt64 {
        highWaterMarkFromProc() ?? maximumResidentSetSize()
    }

    /// `VmHWM:  123456 kB` of `/proc/self/status`, in bytes; nil where there is no such file.
    static func highWaterMarkFromProc() -> UInt64? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        return kilobytes(named: "VmHWM", in: status).map { $0 * 1024 }
    }

    /// The number of kilobytes on the line `name:  <number> kB` of a `/proc` status text.
    static func kilobytes(named name: String, in status: String) -> UInt64? {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return nil }
        return line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first
            .flatMap { UInt64($0.trimmingCharacters(in: .whitespaces)) }
    }

    private static func maximumResidentSetSize() -> UInt64 {
        var usage = rusage()
        #if os(Linux)
        guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return 0 }
        return UInt64(max(usage.ru_maxrss, 0)) * 1024
        #else
        guard getrusage(RUSAGE_SELF, &usage) == 0 else { return 0 }
        return UInt64(max(usage.ru_maxrss, 0))
        #endif
    }

    /// `bytes` as a short text in MB (10⁶ bytes), for log lines.
    public static func megabytes(_ bytes: UInt64) -> String {
        String(format: "%.0f MB", Double(bytes) / 1e6)
    }
}
