import Collectives
import Foundation
import Layers
import Models
import Optimizers
import SelfDistillation
import Tensors

/// What a checkpoint holds: everything needed to continue a run exactly, and nothing that
/// depends on the number of ranks (every rank's replica, optimiser state and teacher table are
/// identical, and data order and augmentation are keyed by seed, epoch and sample).
struct TrainingSnapshot {
    /// Epochs completed.
    var epoch: Int
    /// `model.safetensors`: parameters, BatchNorm running statistics and batch counts (0-dimensional
    /// int64, as in PyTorch), by PyTorch name: a PyTorch model of the same architecture loads it
    /// with `load_state_dict(strict=True)`.
    var model: [SafeTensors.Entry]
    /// `training-state.safetensors`: optimiser state and the teacher table.
    var state: [SafeTensors.Entry]
    /// Scalars: optimiser steps, the resolved configuration, versions.
    var metadata: [String: String]

    static let modelFile = "model.safetensors"
    static let stateFile = "training-state.safetensors"
    static let formatVersion = "1"

    /// The snapshot of a trainer's replica after `epoch` epochs.
    init(epoch: Int, model: Model, optimizer: any Optimizer, teacher: TeacherTable?, config: TrainConfig) throws {
        self.epoch = epoch
        let store = model.parameters
        self.model = store.entries.map { .float32($0.name, shape: $0.shape, store.values.pointer + $0.offset, count: $0.count) }
            + store.bufferEntries.map { .float32($0.name, shape: $0.shape, store.buffers.pointer + $0.offset, count: $0.count) }
            + model.network.namedBatchNorms().map { .int64Scalar($0.name + ".num_batches_tracked", Int64($0.layer.batchesTracked)) }
        state = optimizer.stateTensors.map { .float32("optimizer." + $0.name, shape: $0.tensor.shape, $0.tensor.pointer, count: $0.tensor.count) }
        if let teacher {
            state.append(.float32("teacher.probabilities", shape: teacher.rows.shape, teacher.rows.pointer, count: teacher.rows.count))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        metadata = ["format": "pskd-checkpoint", "format_version": TrainingSnapshot.formatVersion, "epoch": String(epoch),
                    "optimizer_steps": String(optimizer.stepCount),
                    "config": String(decoding: try encoder.encode(config), as: UTF8.self)]
    }

    init(epoch: Int, model: [SafeTensors.Entry], state: [SafeTensors.Entry], metadata: [String: String]) {
        (self.epoch, self.model, self.state, self.metadata) = (epoch, model, state, metadata)
    }

    /// Writes this snapshot into a trainer's replica; every tensor must match by name and shape.
    func restore(into model: Model, optimizer: any Optimizer, teacher: TeacherTable?, source: String) throws {
        try restoreModel(into: model, source: source)
        for (name, tensor) in optimizer.stateTensors { try load("optimizer." + name, into: tensor, source: source) }
        optimizer.stepCount = Int(metadata["optimizer_steps"] ?? "") ?? 0
        if let teacher { try load("teacher.probabilities", into: teacher.rows, source: source) }
    }

    /// Writes the parameters, BatchNorm statistics and batch counts into `model`.
    func restoreModel(into model: Model, source: String) throws {
        let store = model.parameters
        for entry in store.entries {
            try load(entry.name, into: store.values.slice(offset: entry.offset, shape: entry.shape), source: source)
        }
        for entry in store.bufferEntries {
            try load(entry.name, into: store.buffers.slice(offset: entry.offset, shape: entry.shape), source: source)
        }
        for (name, layer) in model.network.namedBatchNorms() {
            layer.batchesTracked = Int(entry(named: name + ".num_batches_tracked")?.int64s().first ?? 0)
        }
    }

    /// The configuration of the run that wrote the snapshot.
    func configuration(source: String) throws -> TrainConfig {
        guard let text = metadata["config"], let config = try? JSONDecoder().decode(TrainConfig.self, from: Data(text.utf8)) else {
            throw CheckpointError("\(source) does not record a run configuration this pskd can read (written by another version, or not by pskd train)")
        }
        return config
    }

    private func entry(named name: String) -> SafeTensors.Entry? {
        model.first { $0.name == name } ?? state.first { $0.name == name }
    }

    private func load(_ name: String, into tensor: Tensor, source: String) throws {
        guard let entry = entry(named: name) else {
            throw CheckpointError("\(source) has no tensor '\(name)': it was written for another model or policy")
        }
        guard entry.dtype == "F32", entry.shape == tensor.shape else {
            throw CheckpointError("\(source): tensor '\(name)' is \(entry.dtype) \(entry.shape), the run needs F32 \(tensor.shape): use the same model, data set and --max-train-samples as the checkpointed run")
        }
        entry.floats().withUnsafeBufferPointer { tensor.pointer.update(from: $0.baseAddress!, count: tensor.count) }
    }
}

extension Layer {
    /// Every BatchNorm in the tree with its dotted name.
    func namedBatchNorms(prefix: String = "") -> [(name: String, layer: BatchNorm)] {
        var result: [(name: String, layer: BatchNorm)] = []
        if let norm = self as? BatchNorm { result.append((prefix, norm)) }
        for child in children {
            result += child.layer.namedBatchNorms(prefix: prefix.isEmpty ? child.name : prefix + "." + child.name)
        }
        return result
    }
}

/// A checkpoint that cannot be used, with what to do.
public struct CheckpointError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// The checkpoints of a run directory: `checkpoints/epoch-NNNN/` with the two safetensors files
/// and a `COMPLETE` marker holding their checksums. Written by rank 0 into a temporary folder,
/// renamed into place, and marked complete only after every rank has reached the same point.
struct CheckpointStore {
    let directory: URL
    /// Complete checkpoints kept; older ones are deleted after a new one is complete.
    let keep: Int

    init(runDirectory: String, keep: Int) {
        directory = URL(fileURLWithPath: runDirectory).appendingPathComponent("checkpoints", isDirectory: true)
        self.keep = max(keep, 1)
    }

    func folder(epoch: Int) -> URL { directory.appendingPathComponent(String(format: "epoch-%04d", epoch), isDirectory: true) }

    /// Saves `snapshot`: rank 0 writes, every rank waits until the checkpoint is complete.
    func save(_ snapshot: TrainingSnapshot, communicator: any Communicator) throws {
        if communicator.isRoot { try writeFiles(snapshot) }
        try communicator.barrier()
        if communicator.isRoot { try markComplete(snapshot) }
        try communicator.barrier()
    }

    private func writeFiles(_ snapshot: TrainingSnapshot) throws {
        let final = folder(epoch: snapshot.epoch)
        let partial = final.appendingPathExtension("partial")
        let files = FileManager.default
        try? files.removeItem(at: partial)
        try? files.removeItem(at: final)
        do {
            try files.createDirectory(at: partial, withIntermediateDirectories: true)
            try SafeTensors.encode(snapshot.model, metadata: ["format": "pskd-model", "epoch": String(snapshot.epoch)])
                .write(to: partial.appendingPathComponent(TrainingSnapshot.modelFile))
            try SafeTensors.encode(snapshot.state, metadata: snapshot.metadata)
                .write(to: partial.appendingPathComponent(TrainingSnapshot.stateFile))
            try files.moveItem(at: partial, to: final)
        } catch {
            throw CheckpointError("cannot write checkpoint \(final.path): \(error.localizedDescription) (disk full or read-only? the previous checkpoint is kept)")
        }
    }

    private func markComplete(_ snapshot: TrainingSnapshot) throws {
        let final = folder(epoch: snapshot.epoch)
        var checksums: [String: String] = [:]
        for name in [TrainingSnapshot.modelFile, TrainingSnapshot.stateFile] {
            checksums[name] = String(try Data(contentsOf: final.appendingPathComponent(name)).fnv1a, radix: 16)
        }
        let marker = try JSONSerialization.data(withJSONObject: ["epoch": snapshot.epoch, "checksums": checksums], options: [.sortedKeys])
        try marker.write(to: final.appendingPathComponent("COMPLETE"), options: .atomic)
        pruneOlder(than: snapshot.epoch)
    }

    private func pruneOlder(than epoch: Int) {
        let complete = completeEpochs()
        for old in complete.dropLast(keep) where old < epoch {
            try? FileManager.default.removeItem(at: folder(epoch: old))
        }
    }

    /// Epochs of the checkpoints that have a marker, ascending (not yet verified).
    func completeEpochs() -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.compactMap { name -> Int? in
            guard name.hasPrefix("epoch-"), !name.hasSuffix(".partial"), let epoch = Int(name.dropFirst(6)) else { return nil }
            let marker = folder(epoch: epoch).appendingPathComponent("COMPLETE")
            return FileManager.default.fileExists(atPath: marker.path) ? epoch : nil
        }.sorted()
    }

    /// The newest checkpoint whose files match their checksums (nil if there is none), and a
    /// warning naming each newer checkpoint folder that was skipped and why: no `COMPLETE`
    /// marker (the job stopped while writing it) or files that do not verify.
    func newestValid() -> (found: (snapshot: TrainingSnapshot, source: String)?, warnings: [String]) {
        var warnings: [String] = []
        let complete = completeEpochs()
        for name in checkpointFolderNames() where !complete.contains(where: { folder(epoch: $0).lastPathComponent == name }) {
            warnings.append("skipping checkpoint \(directory.appendingPathComponent(name).path): it has no COMPLETE marker "
                + "(the job stopped while writing it)")
        }
        for epoch in complete.reversed() {
            do {
                return ((try load(folder(epoch: epoch)), folder(epoch: epoch).path), warnings)
            } catch {
                warnings.append("skipping checkpoint \(folder(epoch: epoch).path): \(error)")
            }
        }
        return (nil, warnings)
    }

    /// The names of the folders in `checkpoints/` that look like checkpoints, complete or not.
    private func checkpointFolderNames() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasPrefix("epoch-") }.sorted()
    }

    /// Reads and verifies the checkpoint in `folder`.
    func load(_ folder: URL) throws -> TrainingSnapshot {
        let markerURL = folder.appendingPathComponent("COMPLETE")
        guard let marker = try? JSONSerialization.jsonObject(with: Data(contentsOf: markerURL)) as? [String: Any],
              let checksums = marker["checksums"] as? [String: String], let epoch = marker["epoch"] as? Int else {
            throw CheckpointError("\(markerURL.path) is missing or unreadable: the checkpoint is incomplete")
        }
        var contents: [String: Data] = [:]
        for name in [TrainingSnapshot.modelFile, TrainingSnapshot.stateFile] {
            let url = folder.appendingPathComponent(name)
            guard let data = try? Data(contentsOf: url) else { throw CheckpointError("\(url.path) is missing") }
            guard String(data.fnv1a, radix: 16) == checksums[name] else {
                throw CheckpointError("\(url.path) does not match its checksum: it is corrupt or truncated")
            }
            contents[name] = data
        }
        let model = try SafeTensors.decode(contents[TrainingSnapshot.modelFile]!, file: TrainingSnapshot.modelFile)
        let state = try SafeTensors.decode(contents[TrainingSnapshot.stateFile]!, file: TrainingSnapshot.stateFile)
        return TrainingSnapshot(epoch: epoch, model: model.entries, state: state.entries, metadata: state.metadata)
    }
}

extension Data {
    /// A 64-bit FNV-1a checksum.
    var fnv1a: UInt64 { withUnsafeBytes { FNV1a.hash($0) } }
}
