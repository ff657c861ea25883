import Foundation

/// Runs the built `pskd` executable, alone or under `mpirun`, for tests that need real
/// processes and real MPI. The executable is found beside the test bundle in the build folder
/// (or at `$PSKD_BIN`).
public enum ExecutableRunner {
    /// What a finished process left.
    public struct Outcome: Sendable {
        public let status: Int32
        public let output: String
        public let seconds: Double
    }

    /// The `pskd` executable built with the tests.
    public static var executable: URL {
        if let path = ProcessInfo.processInfo.environment["PSKD_BIN"] { return URL(fileURLWithPath: path) }
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = testBinary.deletingLastPathComponent()
        // On Linux the xctest executable sits in the build folder; on macOS it is inside a bundle.
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("pskd")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return testBinary.deletingLastPathComponent().appendingPathComponent("pskd")
    }

    /// Runs `pskd arguments…` under `mpirun -np ranks` (oversubscribed, allowed as root), killing
    /// it after `timeout` seconds.
    public static func mpirun(ranks: Int, _ arguments: [String], timeout: Double = 300) throws -> Outcome {
        try run("/usr/bin/env", ["mpirun"] + mpirunOptions(ranks: ranks) + [executable.path] + arguments, timeout: timeout)
    }

    /// Runs several programs in one MPI job (MPMD): one `(ranks, arguments)` pair per program.
    public static func mpirun(programs: [(ranks: Int, arguments: [String])], timeout: Double = 300) throws -> Outcome {
        var command = ["mpirun", "--oversubscribe", "--bind-to", "none"]
        for (index, program) in programs.enumerated() {
            if index > 0 { command.append(":") }
            command += ["-np", String(program.ranks), executable.path] + program.arguments
        }
        return try run("/usr/bin/env", command, timeout: timeout)
    }

    /// The mpirun options tests use: any rank count on a 2-core machine, one BLAS thread per rank.
    public static func mpirunOptions(ranks: Int) -> [String] {
        ["-np", String(ranks), "--oversubscribe", "--bind-to", "none", "-x", "OPENBLAS_NUM_THREADS=1"]
    }

    /// A process for `program arguments…` with the environment that lets mpirun run as root,
    /// its stdout and stderr merged into the returned pipe; not started yet.
    public static func process(_ program: String, _ arguments: [String]) -> (Process, Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        return (process, pipe)
    }

    /// Runs a program with the environment that lets mpirun run as root, merging stdout and stderr.
    public static func run(_ program: String, _ arguments: [String], timeout: Double) throws -> Outcome {
        let (process, pipe) = process(program, arguments)
        let collector = OutputCollector(pipe.fileHandleForReading)
        let start = Date()
        try process.run()
        let deadline = start.addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            process.terminate()
            usleep(500_000)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        return Outcome(
            status: process.terminationStatus, output: collector.finish(),
            seconds: Date().timeIntervalSince(start))
    }
}

/// Reads a pipe to its end on a background thread so a chatty child never blocks on a full pipe.
private final class OutputCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                lock.lock(); data.append(chunk); lock.unlock()
            }
            done.signal()
        }
    }

    func finish() -> String {
        _ = done.wait(timeout: .now() + 10)
        lock.lock(); defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }
}
