import Collectives
import DataPipeline
import SelfDistillation
import Tensors
import XCTest

/// The sharded teacher on one rank against the replicated table: the same rows read at every
/// step, the same table after every epoch (padding, unwritten rows and dropped samples
/// included), and a restore that yields the same rows. (Several ranks: ShardedTeacherRunTests.)
final class ShardedTeacherTests: XCTestCase {
    private let classes = 3

    private func labels(_ count: Int) -> [Int] { (0..<count).map { $0 % classes } }

    /// Plays `epochs` epochs of fake predictions (a function of epoch, step and slot) through
    /// both teachers, writing only some rows, and compares what they hand out and hold.
    private func playBoth(samples: Int, batch: Int, dropLast: Bool, epochs: Int) throws -> (TeacherTable, ShardedTeacher) {
        let sampler = try ShardedSampler(sampleCount: samples, globalBatchSize: batch, rank: 0, worldSize: 1, seed: 3, dropLast: dropLast)
        let communicator = LocalCommunicator()
        let replicated = TeacherTable(labels: labels(samples), classCount: classes, sampler: sampler, communicator: communicator)
        let sharded = ShardedTeacher(labels: labels(samples), classCount: classes, sampler: sampler, communicator: communicator)
        for epoch in 1...epochs {
            try replicated.beginEpoch(epoch)
            try sharded.beginEpoch(epoch)
            let order = sampler.order(epoch: epoch)
            for step in 0..<sampler.stepsPerEpoch {
                let slots = sampler.slots(step: step, order: order)
                XCTAssertEqual(
                    sharded.rows(step: step, indices: slots.indices, isPadding: slots.isPadding).scalars,
                    replicated.rows(step: step, indices: slots.indices, isPadding: slots.isPadding).scalars,
                    "rows read at epoch \(epoch), step \(step)")
                let predictions = Tensor(
                    shape: [batch, classes], values: (0..<(batch * classes)).map { Float(epoch * 1000 + step * 100 + $0) })
                let isWritten = slots.isPadding.enumerated().map { !$1 && ($0 + step + epoch) % 3 != 0 }
                try replicated.record(step: step, indices: slots.indices, probabilities: predictions, isWritten: isWritten)
                try sharded.record(step: step, indices: slots.indices, probabilities: predictions, isWritten: isWritten)
            }
            try replicated.endEpoch(epoch)
            try sharded.endEpoch(epoch)
            XCTAssertEqual(try sharded.tableHash(), try replicated.tableHash(), "table after epoch \(epoch)")
        }
        return (replicated, sharded)
    }

    func testOneRankShardedReadsAndHoldsWhatTheTableDoes() throws {
        _ = try playBoth(samples: 23, batch: 5, dropLast: false, epochs: 4)
        _ = try playBoth(samples: 23, batch: 5, dropLast: true, epochs: 4)
    }

    /// A padding slot reads its sample's row from before the epoch (P_{t−1}), although the
    /// sample was trained, and its row rewritten, earlier in the same epoch.
    func testPaddingReadsTheRowFromBeforeTheEpoch() throws {
        let sampler = try ShardedSampler(sampleCount: 5, globalBatchSize: 4, rank: 0, worldSize: 1, seed: 1)
        let table = TeacherTable(labels: labels(5), classCount: classes, sampler: sampler)
        try table.beginEpoch(1)
        let order = sampler.order(epoch: 1)
        let first = sampler.slots(step: 0, order: order)
        let before = Array(UnsafeBufferPointer(start: table.row(order[0]), count: classes))
        try table.record(
            step: 0, indices: first.indices, probabilities: Tensor(shape: [4, classes], values: Array(repeating: 0.5, count: 12)),
            isWritten: [true, true, true, true])
        let last = sampler.slots(step: 1, order: order)
        XCTAssertEqual(last.isPadding, [false, true, true, true])
        XCTAssertEqual(last.indices[1], order[0])
        let read = table.rows(step: 1, indices: last.indices, isPadding: last.isPadding).scalars
        XCTAssertEqual(Array(read[classes..<(2 * classes)]), before, "padding reads P_{t−1}, not this epoch's 0.5s")
    }

    /// Restoring a table in pieces gives the sharded teacher the rows the replicated one holds.
    func testRestoringInPiecesKeepsTheRowsOfTheNextEpoch() throws {
        let (replicated, _) = try playBoth(samples: 23, batch: 5, dropLast: false, epochs: 2)
        let sampler = try ShardedSampler(sampleCount: 23, globalBatchSize: 5, rank: 0, worldSize: 1, seed: 3)
        let restored = ShardedTeacher(labels: labels(23), classCount: classes, sampler: sampler, communicator: LocalCommunicator())
        for piece in stride(from: 0, to: 23, by: 7).map({ $0..<min($0 + 7, 23) }) {
            restored.restoreRows(
                piece, from: UnsafeBufferPointer(start: replicated.row(piece.lowerBound), count: piece.count * classes),
                nextEpoch: 3)
        }
        XCTAssertEqual(try restored.tableHash(), try replicated.tableHash())
        var collected: [Float] = []
        try restored.collectRows(0..<23) { collected += $0 }
        XCTAssertEqual(collected, replicated.rows.scalars, "collected in index order")
    }
}
