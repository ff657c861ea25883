import Collectives
import DataPipeline
import Tensors

/// The sharded teacher: each rank keeps only the rows it reads, about N·C/R floats, and the rows
/// it will read next epoch, as many again (at most 2·N·C·4/R bytes in all, plus O(B·C)
/// buffers), instead of the whole `[N, C]` table.
///
/// The sampler's order is fixed by (seed, epoch) for any rank count, so every rank knows where
/// each sample sits in every epoch (`ShardedSampler.holder(ofPosition:)`): its slot on the rank
/// that trains it, plus a padding slot when it pads the last batch, or a parked slot when
/// `dropLast` leaves it out. `current` holds the rows of this rank's slots in the current epoch
/// (P_{t−1}, so a step's rows are a contiguous view) and `next` fills with the next epoch's.
///
/// After each step, every rank sends each of its non-padding slots' rows — the new prediction
/// if written, else the row it read — to the rank(s) holding that sample next epoch: one
/// `MPI_Alltoallv` per step of about b·C floats each way, whose counts every rank derives from
/// the plan (no counts are exchanged). Routing per step keeps only O(B·C) floats in flight
/// and spreads the traffic over the epoch as the replicated all-gather does (routing per epoch
/// would need send and receive buffers as large as the table). Parked rows travel at the
/// epoch's end. Every row of the next epoch has exactly one source, so the rows are bit for bit
/// those of the replicated table.
///
/// Besides the rows, a rank keeps four arrays of N entries (this epoch's and next epoch's
/// orders and inverses), as 32-bit integers: 16 bytes per sample in all, for at most
/// `maximumSampleCount` samples.
public final class ShardedTeacher: Teacher {
    /// The most samples a sharded teacher keeps: 2^32, whose indices and primary positions fit
    /// the 32-bit orders and inverses.
    public static let maximumSampleCount = ShardedSampler.maximumCompactSampleCount

    public let sampleCount: Int
    public let classCount: Int
    private let sampler: ShardedSampler
    private let communicator: any Communicator
    /// The epoch whose slots `current` holds, its order (primary position → sample) and its
    /// inverse (sample → primary position), 32-bit (N ≤ `maximumSampleCount`).
    private var epoch: Int
    private var order: [UInt32], inverse: [UInt32]
    /// The next epoch's order and inverse.
    private var nextOrder: [UInt32], nextInverse: [UInt32]
    /// `[heldSlotCount, C]`: this rank's slots in `epoch`, and in `epoch + 1`.
    private var current: Tensor, next: Tensor
    /// Reused exchange buffers and plans.
    private var sendRows: [Float] = [], receiveRows: [Float] = []
    private var receiveSlots: [Int] = []
    /// Bytes this rank received in teacher exchanges so far (for `pskd bench`).
    public private(set) var receivedBytes = 0

    /// A teacher holding the one-hot `labels` for `epoch`'s slots of this rank (`sampler` is
    /// this rank's training sampler); at most `maximumSampleCount` labels (callers check first:
    /// `--teacher sharded` refuses more).
    public init(labels: [Int], classCount: Int, sampler: ShardedSampler, communicator: any Communicator, epoch: Int = 1) {
        precondition(labels.count == sampler.sampleCount, "\(labels.count) labels for \(sampler.sampleCount) samples")
        precondition(
            labels.count <= Self.maximumSampleCount,
            "\(labels.count) samples: a sharded teacher keeps at most \(Self.maximumSampleCount)")
        (sampleCount, self.classCount, self.sampler, self.communicator) = (labels.count, classCount, sampler, communicator)
        self.epoch = epoch
        (order, inverse) = Self.orderAndInverse(sampler, epoch: epoch)
        (nextOrder, nextInverse) = Self.orderAndInverse(sampler, epoch: epoch + 1)
        current = Tensor(zeros: [sampler.heldSlotCount, classCount])
        next = Tensor(zeros: [sampler.heldSlotCount, classCount])
        forEachHeldSample { slot, sample in current[slot * classCount + labels[sample]] = 1 }
    }

    public func beginEpoch(_ epoch: Int) throws {
        precondition(epoch == self.epoch, "the sharded teacher holds epoch \(self.epoch)'s rows, not epoch \(epoch)'s")
    }

    public func rows(step: Int, indices: [Int], isPadding: [Bool]) -> Tensor {
        let b = sampler.localBatchSize
        return current.rows((step * b)..<((step + 1) * b))
    }

    public func record(step: Int, indices: [Int], probabilities: Tensor, isWritten: [Bool]) throws {
        let (b, B) = (sampler.localBatchSize, sampler.globalBatchSize)
        try exchange(
            positions: { rank in (step * B + rank * b)..<(step * B + (rank + 1) * b) },
            source: { slot in
                let local = slot - step * b
                let row = isWritten[local] ? probabilities.pointer + local * self.classCount : self.current.pointer + slot * self.classCount
                return UnsafePointer(row)
            })
    }

    /// Sends the parked rows (not trained this epoch) to their next holders, then makes the
    /// next epoch's rows current.
    public func endEpoch(_ epoch: Int) throws {
        let parked = sampler.trainedPositionCount..<max(sampler.trainedPositionCount, sampleCount)
        try exchange(
            positions: { rank in parked.filter { self.sampler.holder(ofPosition: $0).rank == rank } },
            source: { slot in UnsafePointer(self.current.pointer + slot * self.classCount) })
        swap(&current, &next)
        self.epoch += 1
        (order, inverse) = (nextOrder, nextInverse)
        (nextOrder, nextInverse) = Self.orderAndInverse(sampler, epoch: self.epoch + 1)
    }

    /// One all-to-all: every rank sends the rows of its primary positions among
    /// `positions(rank)` (`rank`'s positions, the same list on every rank) to the holders of
    /// those samples next epoch, in the order of `positions` and `forEachNextPosition`, which
    /// the receivers follow too; `source(slot)` is the row to send from this rank's `slot`.
    private func exchange<Positions: Sequence<Int>>(
        positions: (_ rank: Int) -> Positions,
        source: (_ slot: Int) -> UnsafePointer<Float>
    ) throws {
        let (size, me, c) = (communicator.size, communicator.rank, classCount)
        var sendCounts = [Int](repeating: 0, count: size), receiveCounts = [Int](repeating: 0, count: size)
        var outgoing: [[Int]] = Array(repeating: [], count: size)  // per holder: this rank's slots to send
        receiveSlots.removeAll(keepingCapacity: true)
        for rank in 0..<size {
            for position in positions(rank) where position < sampleCount {
                let sourceSlot = rank == me ? sampler.holder(ofPosition: position).slot : -1
                forEachNextPosition(of: Int(order[position])) { destination in
                    let (holder, slot) = sampler.holder(ofPosition: destination)
                    if rank == me { outgoing[holder].append(sourceSlot) }
                    if holder == me {
                        receiveSlots.append(slot)
                        receiveCounts[rank] += c * 4
                    }
                }
            }
        }
        sendRows.removeAll(keepingCapacity: true)
        for holder in 0..<size {
            for slot in outgoing[holder] { sendRows.append(contentsOf: UnsafeBufferPointer(start: source(slot), count: c)) }
            sendCounts[holder] = outgoing[holder].count * c * 4
        }
        if receiveRows.count < receiveSlots.count * c { receiveRows = [Float](repeating: 0, count: receiveSlots.count * c) }
        try sendRows.withUnsafeBytes { send in
            try receiveRows.withUnsafeMutableBytes { receive in
                try communicator.allToAllV(send, sendCounts: sendCounts, into: receive, receiveCounts: receiveCounts)
            }
        }
        receivedBytes += receiveCounts.reduce(0, +)
        receiveRows.withUnsafeBufferPointer { rows in
            for (row, slot) in receiveSlots.enumerated() {
                (next.pointer + slot * c).update(from: rows.baseAddress! + row * c, count: c)
            }
        }
    }

    /// Calls `body` with each position sample `sample` takes next epoch: its primary one, then
    /// the padding one when it pads the last batch.
    private func forEachNextPosition(of sample: Int, _ body: (Int) -> Void) {
        Self.forEachPosition(of: sample, inverse: nextInverse, sampleCount: sampleCount, sampler: sampler, body)
    }

    /// `sample`'s primary position in the epoch of `inverse`, then its padding position if any.
    private static func forEachPosition(
        of sample: Int, inverse: [UInt32], sampleCount: Int, sampler: ShardedSampler,
        _ body: (Int) -> Void
    ) {
        let primary = Int(inverse[sample])
        body(primary)
        if primary + sampleCount < sampler.trainedPositionCount { body(primary + sampleCount) }
    }

    public func tableHash() throws -> UInt64 {
        var partial: UInt64 = 0
        forEachHeldSample(primaryOnly: true) { slot, sample in
            partial &+= TeacherHash.row(sample, current.pointer + slot * classCount, classCount: classCount)
        }
        return try TeacherHash.total(partial, communicator: communicator)
    }

    /// Sends rank 0 this rank's rows of `samples` in index order; rank 0 receives the other
    /// ranks' rows, adds its own, and puts them in index order in place, knowing which rank
    /// holds each sample: one buffer of the piece's rows on rank 0, and on the other ranks
    /// only the rows they send.
    public func collectRows(_ samples: Range<Int>, _ consume: (UnsafeBufferPointer<Float>) throws -> Void) throws {
        let (size, me, c) = (communicator.size, communicator.rank, classCount)
        let holders = samples.map { sampler.holder(ofPosition: Int(inverse[$0])) }
        var send: [Float] = []
        var receiveCounts = [Int](repeating: 0, count: size)
        if communicator.isRoot {
            for holder in holders where holder.rank != me { receiveCounts[holder.rank] += c * 4 }
        } else {
            send.reserveCapacity(holders.reduce(0) { $0 + ($1.rank == me ? c : 0) })
            for holder in holders where holder.rank == me {
                send.append(contentsOf: UnsafeBufferPointer(start: current.pointer + holder.slot * c, count: c))
            }
        }
        var sendCounts = [Int](repeating: 0, count: size)
        sendCounts[0] = send.count * 4
        var rows = [Float](repeating: 0, count: communicator.isRoot ? samples.count * c : 0)
        try send.withUnsafeBytes { sendBytes in
            try rows.withUnsafeMutableBytes { receiveBytes in
                try communicator.allToAllV(sendBytes, sendCounts: sendCounts, into: receiveBytes, receiveCounts: receiveCounts)
            }
        }
        guard communicator.isRoot else { return }
        rows.withUnsafeMutableBufferPointer { rows in
            let base = rows.baseAddress!
            // `rows` holds the rows of ranks 1, 2, …, then rank 0's own go after them, each
            // rank's in index order: row i of the piece is at `source[i]`.
            var next = [Int](repeating: 0, count: size), start = 0
            for rank in Array(1..<size) + [0] {
                next[rank] = start
                start += rank == 0 ? holders.count - receiveCounts.reduce(0, +) / (c * 4) : receiveCounts[rank] / (c * 4)
            }
            var source = [Int](repeating: 0, count: holders.count)
            for (row, holder) in holders.enumerated() {
                source[row] = next[holder.rank]
                next[holder.rank] += 1
                if holder.rank == me { (base + source[row] * c).update(from: current.pointer + holder.slot * c, count: c) }
            }
            // Row i takes the row at source[i]: follow each cycle of the permutation, the
            // cycle's first row set aside.
            var placed = [Bool](repeating: false, count: holders.count)
            let aside = UnsafeMutablePointer<Float>.allocate(capacity: c)
            defer { aside.deallocate() }
            for first in source.indices where !placed[first] {
                placed[first] = true
                guard source[first] != first else { continue }
                aside.update(from: base + first * c, count: c)
                var target = first
                while source[target] != first {
                    (base + target * c).update(from: base + source[target] * c, count: c)
                    target = source[target]
                    placed[target] = true
                }
                (base + target * c).update(from: aside, count: c)
            }
        }
        try rows.withUnsafeBufferPointer { try consume($0) }
    }

    public func restoreRows(_ samples: Range<Int>, from rows: UnsafeBufferPointer<Float>, nextEpoch: Int) {
        if nextEpoch != epoch {
            epoch = nextEpoch
            (order, inverse) = Self.orderAndInverse(sampler, epoch: epoch)
            (nextOrder, nextInverse) = Self.orderAndInverse(sampler, epoch: epoch + 1)
        }
        for sample in samples {
            Self.forEachPosition(of: sample, inverse: inverse, sampleCount: sampleCount, sampler: sampler) { position in
                let (rank, slot) = sampler.holder(ofPosition: position)
                guard rank == communicator.rank else { return }
                (current.pointer + slot * classCount).update(
                    from: rows.baseAddress! + (sample - samples.lowerBound) * classCount,
                    count: classCount)
            }
        }
    }

    /// Calls `body(slot, sample)` for every position this rank holds in the current epoch; with
    /// `primaryOnly`, without padding positions (so each sample comes once over all ranks).
    /// (A walk, not a list: a list would cost 16 bytes per held slot.)
    private func forEachHeldSample(primaryOnly: Bool = false, _ body: (_ slot: Int, _ sample: Int) -> Void) {
        let end = primaryOnly ? sampleCount : sampler.positionCount
        for position in 0..<end {
            let (rank, slot) = sampler.holder(ofPosition: position)
            if rank == communicator.rank { body(slot, Int(order[position % sampleCount])) }
        }
    }

    /// `epoch`'s order and its inverse, 32-bit: sample indices and primary positions are below
    /// N ≤ `maximumSampleCount`.
    private static func orderAndInverse(_ sampler: ShardedSampler, epoch: Int) -> ([UInt32], [UInt32]) {
        let order = sampler.compactOrder(epoch: epoch)
        var inverse = [UInt32](repeating: 0, count: order.count)
        for (position, sample) in order.enumerated() { inverse[Int(sample)] = UInt32(truncatingIfNeeded: position) }
        return (order, inverse)
    }
}
