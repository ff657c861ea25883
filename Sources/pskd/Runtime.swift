import Collectives

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// How this executable was built.
enum BuildInfo {
    static var configuration: String {
        #if DEBUG
        "debug"
        #else
        "release"
        #endif
    }

    /// What every rank of a job must share: pskd's version and the build configuration.
    static var identity: String { "\(PSKD.configuration.version) \(configuration)" }

    static var description: String {
        var compiler = "Swift"
        #if compiler(>=6.3)
        compiler += " ≥ 6.3"
        #elseif compiler(>=6.0)
        compiler += " 6.x"
        #endif
        return "\(configuration), \(compiler), language mode 6"
    }
}

/// Runs `body` with the world communicator of the backend that launched this process (MPI's
/// under mpirun: `CollectiveBackends`), a single-process communicator otherwise,, after the start-up handshake: every rank must run `subcommand` with
/// the same pskd build and the same `settings` (by default the command line after the
/// subcommand). An error on any rank is printed with the rank and aborts the whole job, so no
/// rank is left waiting in a collective.
func withCommunicator(
    _ subcommand: String, settings: [String: String]? = nil,
    _ body: (any Communicator) throws -> Void
) throws {
    guard let backend = CollectiveBackends.launched else {
        try body(LocalCommunicator())
        return
    }
    let communicator = try backend.init()
    do {
        let arguments = ["arguments": CommandLine.arguments.dropFirst(2).joined(separator: " ")]
        try StartupHandshake(subcommand: subcommand, build: BuildInfo.identity, settings: settings ?? arguments)
            .perform(on: communicator)
        try body(communicator)
    } catch {
        flushOutput()
        communicator.abort("error: \(error)", code: 1)
    }
    flushOutput()
    try communicator.finalize()
}

/// Flushes every C output stream (a rank's stdout is a block-buffered pipe).
func flushOutput() { fflush(nil) }
