import Foundation
import Platform

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// A run directory belongs to one run: rank 0 takes its lock before anything is written, and
/// training into a directory that already holds a run needs `--resume` (continue it) or
/// `--overwrite` (replace it); otherwise nothing is touched.
///
/// The lock is an advisory `flock` on `.pskd-lock` inside the directory, held for the job's life:
/// a second job is refused however it spells the path, and a job that dies (killed, out of
/// memory, a lost node) releases it with its file descriptor, so no stale lock outlives its
/// holder. The file's text (host, pid, start time) names the holder in the refusal.
final class RunOwnership {
    /// The names pskd writes in a run directory; `--overwrite` removes these and nothing else
    /// (and the stall reports a resumed run moved aside, `isStallReportName`).
    static let ownNames: Set<String> = ["config.json", "metrics.jsonl", "checkpoints", lockName, stallReportName]
    static let lockName = ".pskd-lock"
    /// Written by the stall watchdog (`Watchdog/StallWatchdog.swift`) when it ends a job.
    static let stallReportName = "stall.json"

    /// Whether pskd wrote `name`: one of `ownNames`, or a stall report a resumed run moved
    /// aside (`stall-20261202T103126Z.json`, `stall-20261202T103126Z-2.json`).
    static func isOwnName(_ name: String) -> Bool {
        if ownNames.contains(name) { return true }
        guard name.hasPrefix("stall-"), name.hasSuffix(".json") else { return false }
        let stem = name.dropFirst(6).dropLast(5)
        return !stem.isEmpty && stem.allSatisfy { $0.isASCII && ($0.isNumber || $0 == "T" || $0 == "Z" || $0 == "-") }
    }

    private let descriptor: Int32

    /// Creates `directory` if needed, takes its lock, and checks (or, with `overwrite`, clears)
    /// what it holds. Throws a `ConfigurationError` naming the problem and the fix; a refused
    /// directory is left as it was (the lock file and any directory created here are removed).
    init(directory path: String, resume: Bool, overwrite: Bool) throws {
        let directory = URL(fileURLWithPath: path, isDirectory: true)
        guard !path.isEmpty else {
            throw ConfigurationError("--out is empty: give the run directory's path (default runs/latest)")
        }
        guard !(resume && overwrite) else {
            throw ConfigurationError("--resume continues the run in \(path), --overwrite replaces it: give one of them")
        }
        if resume, !FileManager.default.fileExists(atPath: path) {
            throw ConfigurationError(
                "--resume: the run directory \(path) does not exist, so there is no run to continue (a mistyped --out?): "
                    + "give the directory of the run to continue, or drop --resume to start a new run there")
        }
        let created = try Self.makeDirectories(path)
        let lockPath = directory.appendingPathComponent(Self.lockName).path
        let (fd, createdLock): (Int32, Bool)
        do {
            (fd, createdLock) = try Self.lock(lockPath, runDirectory: path)
        } catch {
            Self.remove(directories: created)
            throw error
        }
        do {
            let held = try Self.contents(of: directory).subtracting([Self.lockName])
            if overwrite {
                try Self.clear(directory, held: held)
            } else if !resume, !held.isEmpty {
                throw ConfigurationError(
                    "\(path) already holds a run (\(held.sorted().prefix(5).joined(separator: ", "))\(held.count > 5 ? ", …" : "")): "
                        + "give --resume to continue it, --overwrite to replace it, or another --out")
            } else if resume, held.contains(Self.stallReportName) {
                try Self.moveStallReportAside(in: directory)
            }
        } catch {
            if createdLock { unlink(lockPath) }
            close(fd)
            Self.remove(directories: created)
            throw error
        }
        descriptor = fd
    }

    deinit { close(descriptor) }

    /// `mkdir -p path`, naming the component that fails and the system's reason; returns the
    /// directories it created, outermost first (and removes them again when it fails).
    private static func makeDirectories(_ path: String) throws -> [String] {
        var current = path.hasPrefix("/") ? "" : "."
        var created: [String] = []
        for component in path.split(separator: "/") {
            current += "/" + component
            var status = stat()
            if stat(current, &status) == 0 {
                guard status.st_mode & S_IFMT == S_IFDIR else {
                    remove(directories: created)
                    throw ConfigurationError(
                        "cannot create the run directory \(path): \(current) is a file, not a directory; choose another --out")
                }
            } else if mkdir(current, 0o755) == 0 {
                created.append(current)
            } else if errno != EEXIST {
                let reason = String(cString: strerror(errno))
                remove(directories: created)
                throw ConfigurationError("cannot create the run directory \(path): \(current): \(reason); choose another --out")
            }
        }
        return created
    }

    /// Removes `directories` (made by `makeDirectories`), innermost first, if they are still empty.
    private static func remove(directories: [String]) {
        for directory in directories.reversed() { rmdir(directory) }
    }

    /// Opens (creating it if needed) and locks `lockPath` without waiting, then writes this
    /// process's identity into it; returns the descriptor and whether it created the file.
    private static func lock(_ lockPath: String, runDirectory: String) throws -> (Int32, created: Bool) {
        var created = true
        var fd = open(lockPath, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o644)
        if fd < 0, errno == EEXIST {
            created = false
            fd = open(lockPath, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
        }
        guard fd >= 0 else {
            throw ConfigurationError("cannot open the lock \(lockPath): \(String(cString: strerror(errno))); choose another --out")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let reason = errno
            guard reason != EWOULDBLOCK else {
                let holder = (try? String(contentsOfFile: lockPath, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
                close(fd)
                throw ConfigurationError(
                    "\(runDirectory) is in use by another pskd job (\(holder.flatMap { $0.isEmpty ? nil : $0 } ?? "holder unknown")): "
                        + "wait for it to end, or choose another --out")
            }
            // A file system without flock (some parallel file systems unless mounted with it):
            // train unprotected rather than not at all, and say so.
            printError(
                "pskd: warning: cannot lock \(lockPath) (\(String(cString: strerror(reason)))): "
                    + "a second job on \(runDirectory) would not be detected")
        }
        let identity = "host \(hostName()), pid \(getpid()), since \(ISO8601DateFormatter().string(from: Date()))\n"
        _ = ftruncate(fd, 0)
        _ = identity.withCString { pwrite(fd, $0, strlen($0), 0) }
        return (fd, created)
    }

    /// Renames the stall report of an earlier job, `stall.json`, to `stall-<UTC time it was
    /// written>.json` (the watchdog writes `stall.json` only where none exists, so a resumed run
    /// that stalls again gets a report of its own, and the history is kept), and says so.
    private static func moveStallReportAside(in directory: URL) throws {
        let report = directory.appendingPathComponent(stallReportName)
        guard !isSymbolicLink(report) else {
            throw ConfigurationError(
                "--resume: \(report.path) is a symbolic link, not the stall report pskd writes: remove it, then resume")
        }
        let written = (try? FileManager.default.attributesOfItem(atPath: report.path)[.modificationDate] as? Date) ?? Date()
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let stem = "stall-" + formatter.string(from: written)
        var name = stem + ".json", suffix = 1
        while FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path) {
            suffix += 1
            name = "\(stem)-\(suffix).json"
        }
        let target = directory.appendingPathComponent(name)
        do {
            try FileManager.default.moveItem(at: report, to: target)
        } catch {
            throw ConfigurationError(
                "--resume: cannot move the previous stall report \(report.path) aside to \(name): \(reason(error)); "
                    + "move or remove it yourself, then resume")
        }
        print("pskd: --resume: moved the previous job's stall report aside: \(report.path) → \(name)")
        fflush(nil)
    }

    /// The names in `directory`, not following links.
    private static func contents(of directory: URL) throws -> Set<String> {
        do {
            return Set(try FileManager.default.contentsOfDirectory(atPath: directory.path))
        } catch {
            throw ConfigurationError("cannot read the run directory \(directory.path): \(reason(error)); choose another --out")
        }
    }

    /// Removes pskd's own files from `directory`, after checking that it holds nothing else and
    /// that none of them is a symbolic link (whose target is never touched).
    private static func clear(_ directory: URL, held: Set<String>) throws {
        let foreign = held.filter { !isOwnName($0) }
        guard foreign.isEmpty else {
            throw ConfigurationError(
                "--overwrite: \(directory.path) holds files pskd did not write (\(foreign.sorted().prefix(5).joined(separator: ", "))): "
                    + "nothing was removed; choose another --out")
        }
        let checkpoints = directory.appendingPathComponent("checkpoints")
        if held.contains("checkpoints"), !isSymbolicLink(checkpoints) {
            let strangers = try contents(of: checkpoints).filter {
                !isCheckpointFolderName($0) || isSymbolicLink(checkpoints.appendingPathComponent($0))
            }
            guard strangers.isEmpty else {
                throw ConfigurationError(
                    "--overwrite: \(checkpoints.path) holds entries pskd did not write (\(strangers.sorted().prefix(5).joined(separator: ", "))): "
                        + "nothing was removed; choose another --out")
            }
        }
        let links = held.filter { isSymbolicLink(directory.appendingPathComponent($0)) }
        guard links.isEmpty else {
            throw ConfigurationError(
                "--overwrite: \(directory.path) holds symbolic links (\(links.sorted().joined(separator: ", "))): "
                    + "nothing was removed; remove them yourself or choose another --out")
        }
        for name in held.sorted() {
            do {
                try FileManager.default.removeItem(at: directory.appendingPathComponent(name))
            } catch {
                throw ConfigurationError("--overwrite: cannot remove \(directory.appendingPathComponent(name).path): \(reason(error))")
            }
        }
    }

    /// `epoch-NNNN` or `epoch-NNNN.partial`, as `CheckpointStore` names its folders.
    private static func isCheckpointFolderName(_ name: String) -> Bool {
        let stem = name.hasSuffix(".partial") ? String(name.dropLast(8)) : name
        return stem.hasPrefix("epoch-") && stem.count > 6 && stem.dropFirst(6).allSatisfy { $0.isASCII && $0.isNumber }
    }

    private static func isSymbolicLink(_ url: URL) -> Bool {
        (try? FileManager.default.attributesOfItem(atPath: url.path)[.type] as? FileAttributeType) == .typeSymbolicLink
    }

    /// The operating system's words for a file error, without Foundation's domain and code.
    static func reason(_ error: Error) -> String {
        let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError
        if let code = underlying.map({ Int32($0.code) }), underlying?.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(code))
        }
        return (error as NSError).localizedDescription
    }
}
