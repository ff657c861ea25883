import Collectives
import Foundation
import Layers
import Models

/// Keeps the model replicas of all ranks identical where they must be.
enum ReplicaAgreement {
    /// Checks that every rank built the same model on the same data, with fixed-size records,
    /// before any exchange sized by them (the settings were compared by the start-up handshake).
    static func checkShapes(model: Model, data: TrainingData, communicator: any Communicator) throws {
        let store = model.parameters
        try agree(
            on: [
                ("parameters", store.parameterCount), ("buffer values", store.buffers.count),
                ("training samples", data.train.count), ("test samples", data.test.count),
                ("classes", data.train.classCount), ("image height", data.train.height),
                ("image width", data.train.width), ("image channels", data.train.channels),
            ],
            communicator: communicator,
            remedy: "every rank must see the same data set files and build the same model")
    }

    /// Broadcasts rank 0's parameters and buffers, then checks that every rank holds them; a
    /// mismatch stops every rank with the same clear message.
    static func establish(model: Model, communicator: any Communicator) throws {
        let store = model.parameters
        try communicator.broadcast(UnsafeMutableRawBufferPointer(store.values.buffer), root: 0)
        try communicator.broadcast(UnsafeMutableRawBufferPointer(store.buffers.buffer), root: 0)
        try agree(
            on: [("initial parameters (hash)", Int(truncatingIfNeeded: store.values.contentHash))],
            communicator: communicator, remedy: "every rank must run the same pskd build")
    }

    /// Compares named values across ranks with one fixed-size all-gather and throws, on every
    /// rank, naming the first rank and values that differ from rank 0's.
    private static func agree(
        on values: [(name: String, value: Int)], communicator: any Communicator,
        remedy: String
    ) throws {
        let mine = values.map { Int64($0.value) }
        let all = try mine.withUnsafeBytes { try communicator.allGather($0) }.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) }
        let count = values.count
        for rank in 1..<max(communicator.size, 1) {
            let theirs = Array(all[(rank * count)..<((rank + 1) * count)])
            let differing = values.indices.filter { theirs[$0] != all[$0] }
            guard !differing.isEmpty else { continue }
            let listed = differing.map { "\(values[$0].name) (rank 0: \(all[$0]), rank \(rank): \(theirs[$0]))" }
            throw TrainingError("rank \(rank) differs from rank 0 in \(listed.joined(separator: ", ")): \(remedy)")
        }
    }

    /// Averages BatchNorm running statistics over the ranks (each rank saw only its shard).
    static func averageBatchNormStatistics(model: Model, communicator: any Communicator) throws {
        guard communicator.size > 1, model.parameters.buffers.count > 0 else { return }
        try communicator.allReduceMean(model.parameters.buffers.buffer)
    }
}
