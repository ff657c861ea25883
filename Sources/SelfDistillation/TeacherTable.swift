import Collectives
import Tensors

/// PS-KD's teacher: for every training sample (by global index), the softmax the model gave it
/// the last time it was trained on, `[N, C]`. Starts as the one-hot labels, so epoch 1's
/// targets are the labels. Every rank holds an identical copy: each step's rows are
/// all-gathered and written by global index in rank order.
public final class TeacherTable {
    /// The rows, `[sampleCount, classCount]`.
    public let rows: Tensor
    public var sampleCount: Int { rows.shape[0] }
    public var classCount: Int { rows.shape[1] }

    /// A table whose rows are the one-hot `labels`.
    public init(labels: [Int], classCount: Int) {
        rows = Tensor(zeros: [labels.count, classCount])
        for (index, label) in labels.enumerated() {
            precondition(label >= 0 && label < classCount, "label \(label) of sample \(index) outside 0..<\(classCount)")
            rows[index * classCount + label] = 1
        }
    }

    /// The row of sample `index`.
    @inlinable public func row(_ index: Int) -> UnsafeMutablePointer<Float> {
        rows.pointer + index * classCount
    }

    /// Writes this rank's `probabilities` rows for `indices` on every rank: one all-gather of
    /// every rank's (index, row) records, all ranks sending the same number (a row that must not
    /// be written, such as padding, travels with index −1), then writes in rank order, so the
    /// tables stay identical.
    public func update(indices: [Int], probabilities: Tensor, isWritten: [Bool],
                       communicator: any Communicator) throws {
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

    /// A hash of the table's bytes, to compare copies across ranks.
    public var contentHash: UInt64 { rows.contentHash }
}

/// Ranks disagree about the teacher table.
public struct TeacherTableError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
