import Collectives
import DataPipeline
import Tensors

/// PS-KD's teacher as the trainer uses it: for every training sample (by global index), the
/// softmax the model gave it the last time it was trained on it (`[N, C]` in all, the one-hot
/// labels before the first epoch), kept either whole on every rank (`TeacherTable`) or split
/// by who reads each row next (`ShardedTeacher`). Both give the same rows bit for bit.
///
/// Every slot of epoch t reads P_{t−1}: the table as it was when the epoch began (the paper's
/// definition; a padding slot, which repeats a sample already trained this epoch, reads that
/// sample's row from before the epoch too). A row not rewritten in an epoch (a padding slot, a
/// CutMix-mixed batch, a sample `dropLast` left out) keeps its value.
///
/// Per epoch, every rank calls, in order: `beginEpoch`, then for each step `rows` and `record`,
/// then `endEpoch`. `record`, `endEpoch`, `tableHash` and `collectRows` are collective.
public protocol Teacher: AnyObject {
    /// N and C.
    var sampleCount: Int { get }
    var classCount: Int { get }
    /// Bytes this rank has received in the teacher's per-step and per-epoch exchanges so far.
    var receivedBytes: Int { get }

    /// Prepares epoch `epoch`'s reads; called before its first step.
    func beginEpoch(_ epoch: Int) throws

    /// This rank's teacher rows at `step` of the current epoch, one per slot, `[b, C]`: a view
    /// valid until the next call.
    ///
    /// - Parameters:
    ///   - indices: the slots' global sample indices.
    ///   - isPadding: which slots are padding.
    func rows(step: Int, indices: [Int], isPadding: [Bool]) -> Tensor

    /// Records this rank's `probabilities` (`[b, C]`) of `step` as the next epoch's teacher for
    /// the slots where `isWritten` holds (collective).
    func record(step: Int, indices: [Int], probabilities: Tensor, isWritten: [Bool]) throws

    /// Completes the epoch: afterwards the teacher holds every sample's row at the epoch's end
    /// (collective).
    func endEpoch(_ epoch: Int) throws

    /// A hash of the whole table in index order, the same on every rank and in both layouts,
    /// computed without gathering the table (collective).
    func tableHash() throws -> UInt64

    /// Hands rank 0 the rows of `samples` in index order (collective): `consume` is called on
    /// rank 0 only, with `samples.count × C` floats, valid during the call.
    func collectRows(_ samples: Range<Int>, _ consume: (UnsafeBufferPointer<Float>) throws -> Void) throws

    /// Takes from `rows` (the rows of `samples` in index order, `samples.count × C` floats) those
    /// this rank keeps, as the table at the start of epoch `nextEpoch` (local: every rank reads
    /// the whole table in pieces, keeping what it needs).
    func restoreRows(_ samples: Range<Int>, from rows: UnsafeBufferPointer<Float>, nextEpoch: Int)
}

/// Row hashes summed into a hash of a whole table in index order, whatever holds the rows.
public enum TeacherHash {
    /// The hash of sample `index`'s row of `classCount` floats at `row`: FNV-1a of its bytes,
    /// mixed with the index so that moving a row changes the table's hash.
    @inlinable public static func row(_ index: Int, _ row: UnsafePointer<Float>, classCount: Int) -> UInt64 {
        var mixed = FNV1a.hash(UnsafeRawBufferPointer(start: row, count: classCount * 4)) ^ (UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }

    /// The table's hash from every rank's partial sum (wrapping addition: order-free).
    static func total(_ partial: UInt64, communicator: any Communicator) throws -> UInt64 {
        try communicator.allGatherV([partial]).reduce(0, &+)
    }
}

/// The replicated teacher: every rank holds the whole `[N, C]` table. Each step's rows are
/// all-gathered and written by global index in rank order, so the copies stay identical.
public final class TeacherTable: Teacher {
    /// The rows, `[sampleCount, classCount]`.
    public let rows: Tensor
    public var sampleCount: Int { rows.shape[0] }
    public var classCount: Int { rows.shape[1] }
    private let communicator: any Communicator
    /// The samples that pad this epoch's last batch, with their rows as the epoch began
    /// (padding repeats samples already trained this epoch, but reads P_{t−1}).
    private let sampler: ShardedSampler?
    private var paddingRows: [Int: [Float]] = [:]
    /// The current step's teacher rows, `[b, C]`.
    private var stepRows = Tensor(zeros: [0])
    public private(set) var receivedBytes = 0

    /// A table whose rows are the one-hot `labels`. `sampler` (nil: no padding to read
    /// ahead of) tells which samples pad each epoch.
    public init(labels: [Int], classCount: Int, sampler: ShardedSampler? = nil, communicator: any Communicator = LocalCommunicator()) {
        rows = Tensor(zeros: [labels.count, classCount])
        (self.sampler, self.communicator) = (sampler, communicator)
        for (index, label) in labels.enumerated() {
            precondition(label >= 0 && label < classCount, "label \(label) of sample \(index) outside 0..<\(classCount)")
            rows[index * classCount + label] = 1
        }
    }

    /// The row of sample `index`.
    @inlinable public func row(_ index: Int) -> UnsafeMutablePointer<Float> {
        rows.pointer + index * classCount
    }

    public func beginEpoch(_ epoch: Int) throws {
        paddingRows = [:]
        guard let sampler, sampler.trainedPositionCount > sampleCount else { return }
        let order = sampler.order(epoch: epoch)
        for position in sampleCount..<sampler.trainedPositionCount {
            let sample = order[position - sampleCount]
            paddingRows[sample] = Array(UnsafeBufferPointer(start: row(sample), count: classCount))
        }
    }

    public func rows(step: Int, indices: [Int], isPadding: [Bool]) -> Tensor {
        if stepRows.shape != [indices.count, classCount] { stepRows = Tensor(zeros: [indices.count, classCount]) }
        for (slot, index) in indices.enumerated() {
            let target = stepRows.pointer + slot * classCount
            if isPadding[slot], let saved = paddingRows[index] {
                target.update(from: saved, count: classCount)
            } else {
                target.update(from: row(index), count: classCount)
            }
        }
        return stepRows
    }

    /// One all-gather of every rank's (index, row) records, all ranks sending the same number
    /// (a row that must not be written, such as padding, travels with index −1), then writes
    /// in rank order.
    public func record(step: Int, indices: [Int], probabilities: Tensor, isWritten: [Bool]) throws {
        try update(indices: indices, probabilities: probabilities, isWritten: isWritten, communicator: communicator)
    }

    /// Writes this rank's `probabilities` rows for `indices` on every rank (see `record`).
    public func update(
        indices: [Int], probabilities: Tensor, isWritten: [Bool],
        communicator: any Communicator
    ) throws {
        let c = classCount
        let recordSize = MemoryLayout<Int64>.size + c * MemoryLayout<Float>.size
        var records = [UInt8](repeating: 0, count: indices.count * recordSize)
        records.withUnsafeMutableBytes { out in
            for (row, index) in indices.enumerated() {
                let record = out.baseAddress! + row * recordSize
                record.storeBytes(of: Int64(isWritten[row] ? index : -1), as: Int64.self)
                (record + 8).copyMemory(from: probabilities.pointer + row * c, byteCount: c * 4)
            }
        }
        let gathered = try records.withUnsafeBytes { try communicator.allGather($0) }
        receivedBytes += gathered.count
        try gathered.withUnsafeBytes { raw in
            for offset in stride(from: 0, to: raw.count, by: recordSize) {
                let index = Int(raw.loadUnaligned(fromByteOffset: offset, as: Int64.self))
                guard index >= 0 else { continue }
                guard index < sampleCount else {
                    throw TeacherTableError("a rank sent teacher row \(index), outside 0..<\(sampleCount): ranks disagree on the data set")
                }
                UnsafeMutableRawPointer(row(index)).copyMemory(from: raw.baseAddress! + offset + 8, byteCount: c * 4)
            }
        }
    }

    public func endEpoch(_ epoch: Int) throws { paddingRows = [:] }

    /// Also checks that every rank's copy has the same hash.
    public func tableHash() throws -> UInt64 {
        let hash = (0..<sampleCount).reduce(UInt64(0)) { $0 &+ TeacherHash.row($1, row($1), classCount: classCount) }
        let hashes = try communicator.allGatherV([hash])
        guard Set(hashes).count == 1 else {
            let listed = hashes.map { String($0, radix: 16) }
            throw TeacherTableError("teacher tables differ across ranks (hashes \(listed)): this is a bug, please report it")
        }
        return hash
    }

    public func collectRows(_ samples: Range<Int>, _ consume: (UnsafeBufferPointer<Float>) throws -> Void) throws {
        guard communicator.isRoot else { return }
        try consume(UnsafeBufferPointer(start: row(samples.lowerBound), count: samples.count * classCount))
    }

    public func restoreRows(_ samples: Range<Int>, from rows: UnsafeBufferPointer<Float>, nextEpoch: Int) {
        row(samples.lowerBound).update(from: rows.baseAddress!, count: samples.count * classCount)
    }

    /// A hash of the table's bytes, to compare copies across ranks.
    public var contentHash: UInt64 { rows.contentHash }
}

/// Ranks disagree about the teacher table.
public struct TeacherTableError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
