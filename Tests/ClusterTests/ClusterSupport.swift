import Foundation
import TestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// What the cluster tests share: the repository's launch scripts, root and tool checks, a
/// private scratch folder per test, and processes found by a marker in their command line.
enum ClusterFixture {
    /// The repository (this file is Tests/ClusterTests/ClusterSupport.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// A script of `launch/`, by name.
    static func script(_ name: String) -> String { root.appendingPathComponent("launch/\(name)").path }

    /// The `pskd` executable built with the tests; the launch scripts get it as `PSKD_BIN`.
    static var pskd: String { ExecutableRunner.executable.path }

    /// The training every cluster test starts from: a small MLP on the first samples of
    /// Fashion-MNIST, a few steps per epoch.
    static func recipe(epochs: Int, trainSamples: Int) -> [String] {
        [
            "--model", "mlp", "--epochs", String(epochs), "--batch-size", "48", "--lr", "0.05",
            "--max-train-samples", String(trainSamples), "--max-test-samples", "96", "--prefetch", "1",
        ]
    }

    /// Skips the test unless it runs as root (CI does: namespaces and Slurm daemons need it).
    static func requireRoot() throws {
        if getuid() != 0 {
            throw XCTSkip("needs root (network namespaces, Slurm daemons); CI runs launch/test.sh as root")
        }
    }

    /// The full path of each tool, or an error naming the missing ones and how to get them.
    @discardableResult
    static func requireTools(_ tools: [String]) throws -> [String: String] {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin"
        var found: [String: String] = [:], missing: [String] = []
        for tool in tools {
            let candidates = path.split(separator: ":").map { "\($0)/\(tool)" }
            if let hit = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
                found[tool] = hit
            } else {
                missing.append(tool)
            }
        }
        guard missing.isEmpty else {
            throw ClusterTestError(
                "missing \(missing.joined(separator: ", ")): run the tests with launch/test.sh, which installs "
                    + "Open MPI, iproute2 and slurm-wlm (unshare and timeout come with every Debian: util-linux, coreutils)")
        }
        let pskd = ClusterFixture.pskd
        guard FileManager.default.isExecutableFile(atPath: pskd) else {
            throw ClusterTestError("\(pskd) not found: build it with `swift build --build-tests` (or set PSKD_BIN)")
        }
        return found
    }

    /// A new empty folder unique to this test process and `name`; at the end of the test every
    /// process whose command line names it is killed and the folder is removed.
    static func scratch(_ test: XCTestCase, _ name: String) throws -> URL {
        killStaleProcesses()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pskd-cluster-\(getpid())-\(name)")
        try? FileManager.default.removeItem(at: folder)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        test.addTeardownBlock {
            killProcesses(mentioning: folder.path)
            try? FileManager.default.removeItem(at: folder)
        }
        return folder
    }

    /// Processes (other than this one) whose command line contains `marker`.
    static func processes(mentioning marker: String) -> [pid_t] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap { pid_t($0) }.filter { pid in
            pid != getpid() && (commandLine(of: pid)?.contains(marker) ?? false)
        }
    }

    /// The command line of a process, its arguments joined by spaces.
    static func commandLine(of pid: pid_t) -> String? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !data.isEmpty else { return nil }
        return String(decoding: data.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
    }

    /// The value of an environment variable of a process.
    static func environment(of pid: pid_t, _ name: String) -> String? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return nil }
        for entry in data.split(separator: 0) {
            let text = String(decoding: entry, as: UTF8.self)
            if text.hasPrefix(name + "=") { return String(text.dropFirst(name.count + 1)) }
        }
        return nil
    }

    /// Sends SIGKILL to every process whose command line contains `marker` (processes this
    /// test started: the marker is its private scratch folder).
    static func killProcesses(mentioning marker: String) {
        for pid in processes(mentioning: marker) { kill(pid, SIGKILL) }
    }

    /// Kills processes left by an earlier test process that was itself killed before its
    /// teardown ran: those naming the scratch folder of a test process that no longer exists.
    static func killStaleProcesses() {
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("pskd-cluster-").path
        for pid in processes(mentioning: marker) {
            guard let line = commandLine(of: pid), let range = line.range(of: marker),
                let owner = pid_t(line[range.upperBound...].prefix { $0.isNumber }),
                owner != getpid(), kill(owner, 0) != 0, errno == ESRCH
            else { continue }
            kill(pid, SIGKILL)
        }
    }

    /// The pid of `rank` of the job writing to `run`, once it runs (within 30 s).
    static func rankProcess(_ rank: Int, of run: URL) throws -> pid_t {
        var found: pid_t?
        _ = wait(timeout: 30) {
            found = processes(mentioning: run.path).first {
                (commandLine(of: $0)?.hasPrefix(pskd + " ") ?? false) && environment(of: $0, "OMPI_COMM_WORLD_RANK") == String(rank)
            }
            return found != nil
        }
        guard let found else { throw ClusterTestError("rank \(rank) of \(run.path) not found") }
        return found
    }

    /// Waits until `condition` holds, checking every 50 ms; false after `timeout` seconds.
    @discardableResult
    static func wait(timeout: Double, until condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            usleep(50_000)
        }
        return condition()
    }

    /// Runs a command to its end (killed after `timeout` s) and returns its status and output.
    @discardableResult
    static func command(_ arguments: [String], timeout: Double = 30, environment: [String: String] = [:]) throws -> Outcome {
        let launched = try Launched(arguments, environment: environment)
        let status = launched.waitForExit(timeout: timeout)
        if status == nil { launched.kill() }
        return Outcome(status: status ?? -1, output: launched.output, seconds: launched.seconds)
    }

    /// A finished command: status (-1 when it was killed at its timeout), output, duration.
    struct Outcome {
        let status: Int32
        let output: String
        let seconds: Double
    }

    /// Runs a command that must succeed; the error carries its output.
    @discardableResult
    static func mustRun(_ arguments: [String], timeout: Double = 30, environment: [String: String] = [:]) throws -> String {
        let outcome = try command(arguments, timeout: timeout, environment: environment)
        guard outcome.status == 0 else {
            throw ClusterTestError("`\(arguments.joined(separator: " "))` failed with status \(outcome.status):\n\(outcome.output)")
        }
        return outcome.output
    }

    /// The bytes of a checkpoint file of a run directory.
    static func checkpointFile(_ run: URL, epoch: Int, _ name: String = "model.safetensors") -> URL {
        run.appendingPathComponent(String(format: "checkpoints/epoch-%04d/%@", epoch, name))
    }

    /// The epochs listed in a run directory's metrics.jsonl, in order.
    static func metricEpochs(_ run: URL) -> [Int] {
        guard let text = try? String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["epoch"] as? Int
        }
    }

    /// The hash in "teacher table hash H identical on all N rank(s)".
    static func teacherHash(_ output: String) -> String? {
        output.split(separator: "\n").last { $0.contains("identical on all") }
            .flatMap { $0.components(separatedBy: "teacher table hash ").last?.split(separator: " ").first.map(String.init) }
    }
}

/// A failure of the test's own set-up, with what to do.
struct ClusterTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A process started by a test (with posix_spawn, in a process group of its own, with no file
/// descriptor of the test process but its output pipe), whose merged output can be read while it
/// runs and whose exit time is recorded.
final class Launched: @unchecked Sendable {
    let pid: pid_t
    let started = Date()
    private let lock = NSLock()
    private var data = Data()
    private var status: Int32?
    private var ended: Date?
    /// Whether the output pipe reached its end (every writer exited or closed it).
    private var outputComplete = false

    /// Starts `arguments` (the first is looked up in PATH) with extra environment variables.
    init(_ arguments: [String], environment: [String: String] = [:]) throws {
        var merged = ProcessInfo.processInfo.environment
        merged["PATH"] = (merged["PATH"] ?? "/usr/bin:/bin") + ":/usr/local/sbin:/usr/sbin:/sbin"
        merged["PSKD_BIN"] = ClusterFixture.pskd
        for (key, value) in environment { merged[key] = value }

        var pipe: [Int32] = [0, 0]
        guard Glibc.pipe(&pipe) == 0 else { throw ClusterTestError("pipe: \(String(cString: strerror(errno)))") }
        _ = fcntl(pipe[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(pipe[1], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, pipe[1], 2)
        _ = Launched.addCloseFrom?(&actions, 3)  // no other descriptor of the test process leaks into the child
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setpgroup(&attributes, 0)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        sigaddset(&defaults, SIGTERM)
        sigaddset(&defaults, SIGINT)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = (["/usr/bin/env"] + arguments).map { strdup($0) } + [nil]
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var spawned: pid_t = 0
        let result = posix_spawn(&spawned, "/usr/bin/env", &actions, &attributes, argv, envp)
        close(pipe[1])
        guard result == 0 else {
            close(pipe[0])
            throw ClusterTestError("cannot start \(arguments.joined(separator: " ")): \(String(cString: strerror(result)))")
        }
        pid = spawned
        let reader = pipe[0], child = spawned
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = read(reader, &buffer, buffer.count)
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                lock.lock(); data.append(contentsOf: buffer[0..<count]); lock.unlock()
            }
            close(reader)
            lock.lock(); outputComplete = true; lock.unlock()
        }
        Thread.detachNewThread { [self] in
            var raw: Int32 = 0
            while waitpid(child, &raw, 0) < 0 && errno == EINTR {}
            // The exit status, or 128 + the signal that ended it (as a shell reports it).
            let code = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
            lock.lock(); (status, ended) = (code, Date()); lock.unlock()
        }
    }

    /// Everything printed so far.
    var output: String {
        lock.lock(); defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which Swift does not
    /// see without _GNU_SOURCE.
    private static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    /// When the process exited, or nil while it runs.
    var exitTime: Date? {
        lock.lock(); defer { lock.unlock() }
        return ended
    }

    private var exitStatus: Int32? {
        lock.lock(); defer { lock.unlock() }
        return status
    }

    /// Seconds from start to exit (or to now).
    var seconds: Double { (exitTime ?? Date()).timeIntervalSince(started) }

    /// Waits until the output contains `text`; false if it does not within `timeout` seconds
    /// or the process ends first.
    func waitForOutput(_ text: String, timeout: Double) -> Bool {
        ClusterFixture.wait(timeout: timeout) { output.contains(text) || exitTime != nil }
        return output.contains(text)
    }

    /// Waits for the exit and returns the status (128 + the signal if killed), or nil if it
    /// still runs after `timeout` seconds.
    func waitForExit(timeout: Double) -> Int32? {
        guard ClusterFixture.wait(timeout: timeout, until: { exitTime != nil }) else { return nil }
        // Output written just before the exit may still be in the pipe: read it to its end (a
        // child that outlives the process may hold the pipe open, so not for ever).
        _ = ClusterFixture.wait(timeout: 3) { lock.withLock { outputComplete } }
        return exitStatus
    }

    /// Sends `signal` to the process's group (the process and the children that stayed in it).
    func signal(_ signal: Int32) {
        if exitTime == nil { Glibc.kill(-pid, signal) }
    }

    /// Kills the process group (SIGKILL) and waits for the process to end.
    func kill() {
        signal(SIGKILL)
        _ = waitForExit(timeout: 10)
    }

    deinit { if exitTime == nil { Glibc.kill(-pid, SIGKILL) } }
}
