import Tensors

/// The first collective of every pskd job: each rank contributes a fixed-size record (the
/// subcommand it runs, its build, and a hash of its settings), and every rank compares them
/// with rank 0's before any collective whose size depends on the settings. Ranks that disagree
/// (an MPMD launch mixing `pskd train` and `pskd evaluate`, or two models, or a config file that
/// differs between nodes) get a clear error naming the rank and what differs — never a
/// collective of mismatched sizes, which corrupts memory or hangs.
///
/// Every rank sees the same gathered records and so takes the same branch: when only the
/// settings differ, the settings themselves are gathered (a size-safe exchange) to name the
/// differing keys.
public struct StartupHandshake: Sendable, Equatable {
    /// The subcommand, e.g. `train` (its first 16 bytes are compared).
    public var subcommand: String
    /// pskd's version and build configuration, e.g. `0.1.0 release`.
    public var build: String
    /// The settings every rank must share, by name, as canonical text.
    public var settings: [String: String]

    public init(subcommand: String, build: String, settings: [String: String]) {
        (self.subcommand, self.build, self.settings) = (subcommand, build, settings)
    }

    /// Exchanges the records and throws `HandshakeError` on every rank if any rank differs
    /// from rank 0.
    public func perform(on communicator: any Communicator) throws {
        let gathered = try record.withUnsafeBytes { try communicator.allGather($0) }
        let records = (0..<communicator.size).map { Array(gathered[($0 * Field.recordSize)..<(($0 + 1) * Field.recordSize)]) }
        guard let rank = records.indices.first(where: { records[$0] != records[0] }) else { return }
        let (theirs, ours) = (Record(records[rank]), Record(records[0]))
        guard theirs.magic == ours.magic else {
            throw HandshakeError(
                rank: rank, "is not running this pskd (another program, or a pskd too old to say): install the same pskd on every node")
        }
        guard theirs.subcommand == ours.subcommand else {
            throw HandshakeError(
                rank: rank,
                "runs `pskd \(theirs.subcommand)`, rank 0 runs `pskd \(ours.subcommand)`: every rank of a job must run the same subcommand")
        }
        guard theirs.build == ours.build else {
            throw HandshakeError(
                rank: rank, "runs pskd \(theirs.build), rank 0 runs pskd \(ours.build): install the same pskd build on every node")
        }
        throw HandshakeError(rank: rank, try settingsDifference(rank: rank, communicator: communicator))
    }

    /// The keys whose values differ between `rank` and rank 0, with both values.
    private func settingsDifference(rank: Int, communicator: any Communicator) throws -> String {
        let texts = try communicator.allGatherV(Array(canonicalSettings.utf8) + [0]).split(separator: 0, omittingEmptySubsequences: false)
        func parse(_ text: ArraySlice<UInt8>) -> [String: String] {
            Dictionary(
                String(decoding: text, as: UTF8.self).split(separator: "\n").map { line in
                    let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
                    return (parts[0], parts.count > 1 ? parts[1] : "")
                }, uniquingKeysWith: { first, _ in first })
        }
        let (theirs, ours) = (parse(texts[rank]), parse(texts[0]))
        let differing = Set(theirs.keys).union(ours.keys).sorted().filter { theirs[$0] != ours[$0] }
        let listed = differing.map { "\($0) (rank 0: \(ours[$0] ?? "unset"), rank \(rank): \(theirs[$0] ?? "unset"))" }
        return "has other settings than rank 0: \(listed.joined(separator: ", ")): every rank must run with the same flags and config file"
    }

    /// `key=value` lines in key order.
    private var canonicalSettings: String {
        settings.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\n")
    }

    /// This rank's fixed-size record.
    private var record: [UInt8] {
        var bytes =
            Field.fixed(Field.magic, Field.magicSize) + Field.fixed(subcommand, Field.subcommandSize)
            + Field.fixed(build, Field.buildSize)
        var hash = Array(canonicalSettings.utf8).withUnsafeBytes { FNV1a.hash($0) }
        withUnsafeBytes(of: &hash) { bytes += $0 }
        return bytes
    }

    /// The layout of a record: magic, subcommand, build, settings hash.
    private enum Field {
        static let magic = "pskd-hs1"
        static let magicSize = 8, subcommandSize = 16, buildSize = 32, hashSize = 8
        static let recordSize = magicSize + subcommandSize + buildSize + hashSize

        /// `text`'s UTF-8 bytes cut or zero-padded to `size`.
        static func fixed(_ text: String, _ size: Int) -> [UInt8] {
            let bytes = Array(text.utf8.prefix(size))
            return bytes + [UInt8](repeating: 0, count: size - bytes.count)
        }
    }

    /// A record's fields, read back.
    private struct Record {
        let magic: [UInt8], subcommand: String, build: String

        init(_ bytes: [UInt8]) {
            func text(_ range: Range<Int>) -> String { String(decoding: bytes[range].prefix { $0 != 0 }, as: UTF8.self) }
            magic = Array(bytes[0..<Field.magicSize])
            subcommand = text(Field.magicSize..<(Field.magicSize + Field.subcommandSize))
            build = text((Field.magicSize + Field.subcommandSize)..<(Field.magicSize + Field.subcommandSize + Field.buildSize))
        }
    }
}

/// Ranks of one job that disagree at start-up.
public struct HandshakeError: Error, CustomStringConvertible {
    public let rank: Int
    public let problem: String

    init(rank: Int, _ problem: String) {
        (self.rank, self.problem) = (rank, problem)
    }

    public var description: String { "rank \(rank) \(problem)" }
}
