import Collectives
import Foundation
import Layers

/// Keeps the model replicas of all ranks identical where they must be.
enum ReplicaAgreement {
    /// Broadcasts rank 0's parameters and buffers, then checks that every rank holds the same
    /// configuration and parameters; a mismatch stops every rank with the same clear message.
    static func establish(model: Model, config: TrainConfig, communicator: any Communicator) throws {
        let store = model.parameters
        try communicator.broadcast(UnsafeMutableRawBufferPointer(store.values.buffer), root: 0)
        try communicator.broadcast(UnsafeMutableRawBufferPointer(store.buffers.buffer), root: 0)
        let mine: [UInt64] = [try configurationHash(config), store.values.contentHash]
        let all = try communicator.allGatherV(mine)
        for rank in 0..<communicator.size where Array(all[(2 * rank)..<(2 * rank + 2)]) != Array(all[0..<2]) {
            let what = all[2 * rank] != all[0] ? "configuration" : "initial parameters"
            throw TrainingError("rank \(rank)'s \(what) differ from rank 0's: every rank must run the same pskd build with the same flags and config file")
        }
    }

    /// Averages BatchNorm running statistics over the ranks (each rank saw only its shard).
    static func averageBatchNormStatistics(model: Model, communicator: any Communicator) throws {
        guard communicator.size > 1, model.parameters.buffers.count > 0 else { return }
        try communicator.allReduceMean(model.parameters.buffers.buffer)
    }

    /// A hash of the configuration's canonical JSON.
    static func configurationHash(_ config: TrainConfig) throws -> UInt64 {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(config).fnv1a
    }
}
