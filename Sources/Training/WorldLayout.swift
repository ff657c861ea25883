import Collectives
import Foundation
import Platform

/// Where a job ran: its ranks, the nodes they ran on, the most ranks on one node and the most
/// threads one rank computed with. Every row of `metrics.jsonl` records the layout of the job
/// that trained that epoch (`ranks`, `nodes`, `ranks_per_node`, `threads_per_rank`): a run
/// resumed on another layout keeps each epoch's own, which `config.json` (the run's settings,
/// one for the whole run) could not say.
public struct WorldLayout: Codable, Sendable, Equatable {
    /// The number of ranks.
    public var ranks: Int
    /// The number of nodes (distinct host names) the ranks ran on.
    public var nodes: Int
    /// The most ranks on one node (`ranks / nodes` when every node runs as many).
    public var ranksPerNode: Int
    /// The most threads one rank computed with (`--threads`, or what its CPU binding gave).
    public var threadsPerRank: Int

    public init(ranks: Int, nodes: Int, ranksPerNode: Int, threadsPerRank: Int) {
        (self.ranks, self.nodes, self.ranksPerNode, self.threadsPerRank) = (ranks, nodes, ranksPerNode, threadsPerRank)
    }

    /// The layout of ranks whose host names and thread counts are `hosts` and `threads` (one per rank).
    public init(hosts: [String], threads: [Int]) {
        let perNode = Dictionary(hosts.map { ($0, 1) }, uniquingKeysWith: +)
        self.init(
            ranks: hosts.count, nodes: perNode.count, ranksPerNode: perNode.values.max() ?? 0, threadsPerRank: threads.max() ?? 0)
    }

    /// Every rank's host name and `threads`, gathered in one collective; the same on every rank.
    static func gather(threads: Int, communicator: any Communicator) throws -> WorldLayout {
        // One line per rank, "threads host": host names hold no line break.
        let line = Array("\(threads) \(hostName())\n".utf8)
        let bytes = try line.withUnsafeBytes { try communicator.allGatherV($0) }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        let pairs = lines.map { line -> (String, Int) in
            let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            return (parts.count > 1 ? String(parts[1]) : "", Int(parts[0]) ?? 0)
        }
        return WorldLayout(hosts: pairs.map(\.0), threads: pairs.map(\.1))
    }
}
