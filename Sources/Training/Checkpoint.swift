import Collectives
import Foundation
import Layers
import Models
import Optimizers
import SelfDistillation
import Tensors

/// What a checkpoint holds: everything needed to continue a run exactly, and nothing that
/// depends on the number of ranks or the teacher's layout (every rank's replica and optimiser
/// state are identical, the teacher table is written whole in index order, and data order and
/// augmentation are keyed by seed, epoch and sample).
struct TrainingSnapshot {
    /// Epochs completed.
    var epoch: Int
    /// `model.safetensors`: parameters, BatchNorm running statistics and batch counts (0-dimensional
    /// int64, as in PyTorch), by PyTorch name: a PyTorch model of the same architecture loads it
    /// with `load_state_dict(strict=True)`.
    var model: [SafeTensors.Entry]
    /// `training-state.safetensors`: optimiser state. The teacher table, its last tensor when
    /// written by this version, is streamed in pieces, never held whole (`teacherSection`).
    var state: [SafeTensors.Entry]
    /// Scalars: optimiser steps, the resolved configuration, versions.
    var metadata: [String: String]
    /// Where a loaded checkpoint's teacher table is; nil when it has none.
    var teacherSection: TeacherSection?

    /// The teacher table's tensor name in the state file.
    static let teacherName = "teacher.probabilities"

    static let modelFile = "model.safetensors"
    static let stateFile = "training-state.safetensors"
    static let formatVersion = "1"

    /// The metadata key of the epoch's `metrics.jsonl` line, kept so that `--resume` can restore
    /// it when the line was lost (cut off when a job ended while writing it).
    static let recordKey = "epoch_record"

    /// The snapshot of a trainer's replica after `epoch` epochs, with that epoch's record.
    init(epoch: Int, model: Model, optimizer: any Optimizer, config: TrainConfig, record: EpochRecord? = nil) throws {
        self.epoch = epoch
        let store = model.parameters
        self.model =
            store.entries.map { .float32($0.name, shape: $0.shape, store.values.pointer + $0.offset, count: $0.count) }
            + store.bufferEntries.map { .float32($0.name, shape: $0.shape, store.buffers.pointer + $0.offset, count: $0.count) }
            + model.network.namedBatchNorms().map { .int64Scalar($0.name + ".num_batches_tracked", Int64($0.layer.batchesTracked)) }
        state = optimizer.stateTensors.map {
            .float32("optimizer." + $0.name, shape: $0.tensor.shape, $0.tensor.pointer, count: $0.tensor.count)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        metadata = [
            "format": "pskd-checkpoint", "format_version": TrainingSnapshot.formatVersion, "epoch": String(epoch),
            "optimizer_steps": String(optimizer.stepCount),
            "config": String(decoding: try encoder.encode(config), as: UTF8.self),
        ]
        if let record { metadata[Self.recordKey] = String(decoding: try RunLog.line(record), as: UTF8.self) }
    }

    init(
        epoch: Int, model: [SafeTensors.Entry], state: [SafeTensors.Entry], metadata: [String: String],
        teacherSection: TeacherSection?
    ) {
        (self.epoch, self.model, self.state, self.metadata, self.teacherSection) = (epoch, model, state, metadata, teacherSection)
    }

    /// Writes this snapshot into a trainer's replica; every tensor must match by name and shape.
    /// The teacher reads the table in pieces and keeps the rows it needs for the next epoch.
    func restore(into model: Model, optimizer: any Optimizer, teacher: (any Teacher)?, source: String) throws {
        try restoreModel(into: model, source: source)
        for (name, tensor) in optimizer.stateTensors { try load("optimizer." + name, into: tensor, source: source) }
        optimizer.stepCount = Int(metadata["optimizer_steps"] ?? "") ?? 0
        if let teacher { try restoreTeacher(teacher, source: source) }
    }

    private func restoreTeacher(_ teacher: any Teacher, source: String) throws {
        let shape = [teacher.sampleCount, teacher.classCount]
        guard let section = teacherSection else {
            throw CheckpointError("\(source) has no tensor '\(Self.teacherName)': it was written for another model or policy")
        }
        guard section.descriptor.dtype == "F32", section.descriptor.shape == shape else {
            throw CheckpointError(
                "\(source): tensor '\(Self.teacherName)' is \(section.descriptor.dtype) \(section.descriptor.shape), the run needs F32 \(shape): use the same model, data set and --max-train-samples as the checkpointed run"
            )
        }
        let file = try FileHandle(forReadingFrom: section.file)
        defer { try? file.close() }
        let rowBytes = teacher.classCount * 4
        for samples in TeacherSection.pieces(sampleCount: teacher.sampleCount, classCount: teacher.classCount) {
            let start = section.descriptor.bytes.lowerBound + samples.lowerBound * rowBytes
            let data = try file.read(start..<(start + samples.count * rowBytes), of: section.file)
            data.withUnsafeBytes { raw in
                teacher.restoreRows(samples, from: raw.assumingMemoryBound(to: Float.self), nextEpoch: epoch + 1)
            }
        }
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
            throw CheckpointError(
                "\(source) does not record a run configuration this pskd can read (written by another version, or not by pskd train)")
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
            throw CheckpointError(
                "\(source): tensor '\(name)' is \(entry.dtype) \(entry.shape), the run needs F32 \(tensor.shape): use the same model, data set and --max-train-samples as the checkpointed run"
            )
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

/// Where a checkpoint's teacher table (`[N, C]` float32 in index order) is in its state file.
struct TeacherSection {
    let file: URL
    let descriptor: SafeTensors.Descriptor

    /// Rows per piece when the table is written or read: about 16 MB, whatever N and C.
    static func pieces(sampleCount: Int, classCount: Int) -> [Range<Int>] {
        let rows = max(1, (16 << 20) / max(classCount * 4, 1))
        return stride(from: 0, to: sampleCount, by: rows).map { $0..<min($0 + rows, sampleCount) }
    }
}

extension FileHandle {
    /// The bytes `range` of the file, or a `CheckpointError` naming `url` when it is shorter.
    func read(_ range: Range<Int>, of url: URL) throws -> Data {
        try seek(toOffset: UInt64(range.lowerBound))
        let data = try read(upToCount: range.count) ?? Data()
        guard data.count == range.count else {
            throw CheckpointError("\(url.path) ends before byte \(range.upperBound): it is truncated")
        }
        return data
    }

    /// The 64-bit FNV-1a checksum of the whole file, read in pieces.
    static func checksum(of url: URL) throws -> UInt64 {
        let file = try FileHandle(forReadingFrom: url)
        defer { try? file.close() }
        var hash = FNV1a.offsetBasis
        while let piece = try file.read(upToCount: 16 << 20), !piece.isEmpty {
            hash = piece.withUnsafeBytes { FNV1a.hash($0, continuing: hash) }
        }
        return hash
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

    /// Saves `snapshot` and the teacher's table: rank 0 writes into a temporary folder, every
    /// rank hands it the teacher rows it holds in pieces of index order (so no rank holds the
    /// whole table unless the teacher is replicated), rank 0 renames the folder into place, and
    /// every rank waits until the checkpoint is complete.
    func save(_ snapshot: TrainingSnapshot, teacher: (any Teacher)?, communicator: any Communicator) throws {
        let final = folder(epoch: snapshot.epoch)
        do {
            let writer = communicator.isRoot ? try CheckpointWriter(snapshot, folder: final, teacher: teacher) : nil
            if let teacher {
                for samples in TeacherSection.pieces(sampleCount: teacher.sampleCount, classCount: teacher.classCount) {
                    try teacher.collectRows(samples) { try writer?.append($0) }
                }
            }
            try writer?.finish()
        } catch let error as any CollectiveError {
            throw error
        } catch {
            throw CheckpointError(
                "cannot write checkpoint \(final.path): \(error.localizedDescription) (disk full or read-only? the previous checkpoint is kept)"
            )
        }
        try communicator.barrier()
        if communicator.isRoot { try markComplete(snapshot) }
        try communicator.barrier()
    }

    private func markComplete(_ snapshot: TrainingSnapshot) throws {
        let final = folder(epoch: snapshot.epoch)
        var checksums: [String: String] = [:]
        for name in [TrainingSnapshot.modelFile, TrainingSnapshot.stateFile] {
            checksums[name] = String(try FileHandle.checksum(of: final.appendingPathComponent(name)), radix: 16)
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
        let scan = newestValidScan()
        return (scan.found, scan.warnings)
    }

    /// `newestValid` for a reader racing a training job that rotates its checkpoints
    /// (`pskd evaluate` on a run directory being trained): a checkpoint removed while it was read
    /// is no fault of the checkpoint, so the folder is scanned again (a newer one has taken its
    /// place), up to `attempts` times; `notes` says each time it happened.
    func newestValidWhileRotating(attempts: Int = 5) -> (
        found: (snapshot: TrainingSnapshot, source: String)?, warnings: [String], notes: [String]
    ) {
        var notes: [String] = []
        for attempt in 1...attempts {
            let scan = newestValidScan()
            guard let vanished = scan.vanished else { return (scan.found, scan.warnings, notes) }
            notes.append(
                "checkpoint \(vanished) was removed while it was read (a training job keeping only its newest "
                    + "--keep-checkpoints rotated it away?): "
                    + (attempt < attempts ? "looking for the newest complete checkpoint again" : "giving up after \(attempts) tries"))
        }
        return (nil, [], notes)
    }

    /// The scan of `newestValid`; `vanished` names the checkpoint folder that was removed while it
    /// was read, if one was (the scan stops there: a newer one may have appeared).
    private func newestValidScan() -> (found: (snapshot: TrainingSnapshot, source: String)?, warnings: [String], vanished: String?) {
        var warnings: [String] = []
        let complete = completeEpochs()
        for name in checkpointFolderNames() where !complete.contains(where: { folder(epoch: $0).lastPathComponent == name }) {
            warnings.append(
                "skipping checkpoint \(directory.appendingPathComponent(name).path): it has no COMPLETE marker "
                    + "(the job stopped while writing it)")
        }
        for epoch in complete.reversed() {
            do {
                return ((try load(folder(epoch: epoch)), folder(epoch: epoch).path), warnings, nil)
            } catch {
                guard FileManager.default.fileExists(atPath: folder(epoch: epoch).path) else {
                    return (nil, warnings, folder(epoch: epoch).path)
                }
                warnings.append("skipping checkpoint \(folder(epoch: epoch).path): \(error)")
            }
        }
        return (nil, warnings, nil)
    }

    /// The names of the folders in `checkpoints/` that look like checkpoints, complete or not.
    private func checkpointFolderNames() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasPrefix("epoch-") }.sorted()
    }

    /// Reads and verifies the checkpoint in `folder`. A file that cannot be read is a
    /// `CheckpointError` naming it and the system's reason.
    func load(_ folder: URL) throws -> TrainingSnapshot {
        let markerURL = folder.appendingPathComponent("COMPLETE")
        guard let marker = try? JSONSerialization.jsonObject(with: Data(contentsOf: markerURL)) as? [String: Any],
            let checksums = marker["checksums"] as? [String: String], let epoch = marker["epoch"] as? Int
        else {
            throw CheckpointError("\(markerURL.path) is missing or unreadable: the checkpoint is incomplete")
        }
        FaultInjection.current.afterCheckpointMarker(folder: folder, epoch: epoch)
        do {
            return try loadVerified(folder, epoch: epoch, checksums: checksums)
        } catch let error as CheckpointError {
            throw error
        } catch {
            throw CheckpointError("cannot read the checkpoint \(folder.path): \(RunOwnership.reason(error))")
        }
    }

    private func loadVerified(_ folder: URL, epoch: Int, checksums: [String: String]) throws -> TrainingSnapshot {
        for name in [TrainingSnapshot.modelFile, TrainingSnapshot.stateFile] {
            let url = folder.appendingPathComponent(name)
            guard let checksum = try? FileHandle.checksum(of: url) else { throw CheckpointError("\(url.path) is missing") }
            guard String(checksum, radix: 16) == checksums[name] else {
                throw CheckpointError("\(url.path) does not match its checksum: it is corrupt or truncated")
            }
        }
        let modelURL = folder.appendingPathComponent(TrainingSnapshot.modelFile)
        let model = try SafeTensors.decode(try Data(contentsOf: modelURL), file: TrainingSnapshot.modelFile)
        let stateURL = folder.appendingPathComponent(TrainingSnapshot.stateFile)
        let state = try FileHandle(forReadingFrom: stateURL)
        defer { try? state.close() }
        let size = Int(try state.seekToEnd())
        let (tensors, metadata) = try SafeTensors.readHeader(fileSize: size, file: TrainingSnapshot.stateFile) {
            try state.read($0, of: stateURL)
        }
        let entries = try tensors.filter { $0.name != TrainingSnapshot.teacherName }.map {
            SafeTensors.Entry(name: $0.name, dtype: $0.dtype, shape: $0.shape, bytes: try state.read($0.bytes, of: stateURL))
        }
        let teacher = tensors.first { $0.name == TrainingSnapshot.teacherName }.map { TeacherSection(file: stateURL, descriptor: $0) }
        return TrainingSnapshot(epoch: epoch, model: model.entries, state: entries, metadata: metadata, teacherSection: teacher)
    }
}

/// Rank 0's writing of one checkpoint into `epoch-NNNN.partial/`: the model file, then the
/// state file's header and optimiser state, then the teacher table appended in pieces; `finish`
/// renames the folder into place.
private final class CheckpointWriter {
    let partial: URL, final: URL
    let state: FileHandle

    init(_ snapshot: TrainingSnapshot, folder final: URL, teacher: (any Teacher)?) throws {
        self.final = final
        partial = final.appendingPathExtension("partial")
        let files = FileManager.default
        try? files.removeItem(at: partial)
        try? files.removeItem(at: final)
        try files.createDirectory(at: partial, withIntermediateDirectories: true)
        try SafeTensors.encode(snapshot.model, metadata: ["format": "pskd-model", "epoch": String(snapshot.epoch)])
            .write(to: partial.appendingPathComponent(TrainingSnapshot.modelFile))
        let stateURL = partial.appendingPathComponent(TrainingSnapshot.stateFile)
        var tensors = snapshot.state.map { (name: $0.name, dtype: $0.dtype, shape: $0.shape) }
        if let teacher { tensors.append((TrainingSnapshot.teacherName, "F32", [teacher.sampleCount, teacher.classCount])) }
        guard files.createFile(atPath: stateURL.path, contents: try SafeTensors.header(tensors, metadata: snapshot.metadata)) else {
            throw CheckpointError("cannot create \(stateURL.path)")
        }
        state = try FileHandle(forWritingTo: stateURL)
        try state.seekToEnd()
        for entry in snapshot.state { try state.write(contentsOf: entry.bytes) }
    }

    /// Appends teacher rows (the next piece in index order).
    func append(_ rows: UnsafeBufferPointer<Float>) throws {
        try state.write(contentsOf: UnsafeRawBufferPointer(rows))
    }

    func finish() throws {
        try state.close()
        try FileManager.default.moveItem(at: partial, to: final)
    }
}
