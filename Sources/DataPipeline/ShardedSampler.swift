import Tensors

/// Which samples one rank loads at each step of an epoch: the common interface of the
/// training sampler and the evaluation sharder, consumed by `BatchLoader`.
///
/// An epoch has an *order* (a sequence of global sample indices computed once per epoch) and
/// `stepsPerEpoch` steps, each filling `localBatchSize` slots of this rank's batch from it.
public protocol BatchSchedule: Sendable {
    /// The number of samples in the data set.
    var sampleCount: Int { get }
    /// Rows of this rank's batch at every step.
    var localBatchSize: Int { get }
    /// Steps in every epoch: the same on every rank in training (every step has collectives);
    /// an evaluation's ranks may differ.
    var stepsPerEpoch: Int { get }
    /// This rank's index and the number of ranks.
    var rank: Int { get }
    var worldSize: Int { get }
    /// The epoch's order of global sample indices, the same on every rank.
    func order(epoch: Int) -> [Int]
    /// Writes the global sample index and padding flag of each of this rank's `localBatchSize`
    /// slots at `step` into `indices` and `isPadding`.
    func fillSlots(
        step: Int, order: [Int], indices: UnsafeMutableBufferPointer<Int>,
        isPadding: UnsafeMutableBufferPointer<Bool>)
}

/// One rank's slots at one step, for inspection and tests (the loader fills buffers instead).
public struct BatchSlots: Equatable, Sendable {
    /// Global sample index of each row.
    public var indices: [Int]
    /// Whether each row is padding: a repeated sample trained on to keep ranks in step but never
    /// counted in metrics or written into the teacher table.
    public var isPadding: [Bool]
}

extension BatchSchedule {
    /// This rank's slots at `step` of an epoch with `order`.
    public func slots(step: Int, order: [Int]) -> BatchSlots {
        var indices = [Int](repeating: 0, count: localBatchSize)
        var isPadding = [Bool](repeating: false, count: localBatchSize)
        indices.withUnsafeMutableBufferPointer { indexBuffer in
            isPadding.withUnsafeMutableBufferPointer { paddingBuffer in
                fillSlots(step: step, order: order, indices: indexBuffer, isPadding: paddingBuffer)
            }
        }
        return BatchSlots(indices: indices, isPadding: isPadding)
    }

    /// This rank's slots at every step of `epoch`.
    public func epochSlots(epoch: Int) -> [BatchSlots] {
        let order = order(epoch: epoch)
        return (0..<stepsPerEpoch).map { slots(step: $0, order: order) }
    }
}

/// Exact data-parallel sharding of a training epoch.
///
/// For epoch `e`, one permutation of `0..<N` is drawn by Fisher–Yates from
/// `RandomGenerator(seed: seed).split(RandomStream.dataOrder, UInt64(e))`, identical on every
/// rank. Step `s`'s *global batch* is `permutation[s·B ..< (s+1)·B]` and rank `r` takes its
/// `r`-th contiguous chunk of `b = B / R` positions, so the union of all ranks' batches at a step
/// is the same set whatever the number of ranks. Positions past `N` in the last global batch
/// wrap to the start of the permutation and are marked as padding; with `dropLast` the partial
/// last global batch is dropped instead.
///
/// Epochs are keys, not counters: pass the trainer's epoch number (pskd numbers epochs from 1,
/// as PS-KD's `t = 1…T`). The same number always gives the same permutation.
public struct ShardedSampler: BatchSchedule {
    public let sampleCount: Int
    /// Samples per step over all ranks, `B`.
    public let globalBatchSize: Int
    public let rank: Int
    public let worldSize: Int
    /// The seed of the data order (and, by convention, of the run).
    public let seed: UInt64
    /// Whether the last partial global batch is dropped rather than padded.
    public let dropLast: Bool

    /// `B / R`.
    public var localBatchSize: Int { globalBatchSize / worldSize }

    /// `ceil(N / B)`, or `floor(N / B)` with `dropLast`.
    public var stepsPerEpoch: Int {
        dropLast ? sampleCount / globalBatchSize : (sampleCount + globalBatchSize - 1) / globalBatchSize
    }

    /// A sampler for rank `rank` of `worldSize`; throws `invalidConfiguration` if the global
    /// batch is not a positive multiple of the world size, the rank is out of range, or an epoch
    /// would have no step.
    public init(
        sampleCount: Int, globalBatchSize: Int, rank: Int, worldSize: Int,
        seed: UInt64, dropLast: Bool = false
    ) throws(DataError) {
        try Self.validate(
            sampleCount: sampleCount, globalBatchSize: globalBatchSize, rank: rank,
            worldSize: worldSize, dropLast: dropLast)
        self.sampleCount = sampleCount
        self.globalBatchSize = globalBatchSize
        self.rank = rank
        self.worldSize = worldSize
        self.seed = seed
        self.dropLast = dropLast
    }

    /// The epoch's permutation of `0..<sampleCount`, the same on every rank.
    public func order(epoch: Int) -> [Int] { permutation(epoch: epoch, as: Int.self) }

    /// Sample counts whose indices fit the 32-bit orders of `compactOrder(epoch:)`: 2^32.
    public static let maximumCompactSampleCount = Int(UInt32.max) + 1

    /// `order(epoch:)` as 32-bit sample indices, element for element (the same draws), at half
    /// the memory: for state kept per sample at scale (the sharded teacher's orders and
    /// inverses). Requires `sampleCount <= maximumCompactSampleCount`.
    public func compactOrder(epoch: Int) -> [UInt32] {
        precondition(
            sampleCount <= Self.maximumCompactSampleCount,
            "\(sampleCount) samples do not fit 32-bit orders (at most \(Self.maximumCompactSampleCount))")
        return permutation(epoch: epoch, as: UInt32.self)
    }

    /// The Fisher–Yates permutation of `0..<sampleCount` drawn for `epoch`, stored as `Index`.
    private func permutation<Index: FixedWidthInteger>(epoch: Int, as _: Index.Type) -> [Index] {
        precondition(epoch >= 0, "epoch must be non-negative, got \(epoch)")
        var random = RandomGenerator(seed: seed).split(RandomStream.dataOrder, UInt64(epoch))
        var permutation = (0..<sampleCount).map { Index(truncatingIfNeeded: $0) }
        permutation.withUnsafeMutableBufferPointer { FisherYates.shuffle($0, using: &random) }
        return permutation
    }

    public func fillSlots(
        step: Int, order: [Int], indices: UnsafeMutableBufferPointer<Int>,
        isPadding: UnsafeMutableBufferPointer<Bool>
    ) {
        precondition(step >= 0 && step < stepsPerEpoch, "step \(step) outside 0..<\(stepsPerEpoch)")
        let first = step * globalBatchSize + rank * localBatchSize
        for slot in 0..<localBatchSize {
            let position = first + slot
            indices[slot] = order[position % sampleCount]
            isPadding[slot] = position >= sampleCount
        }
    }

    private static func validate(
        sampleCount: Int, globalBatchSize: Int, rank: Int, worldSize: Int,
        dropLast: Bool
    ) throws(DataError) {
        func invalid(_ expected: String, _ found: String, _ remedy: String) -> DataError {
            DataError(.invalidConfiguration, file: nil, expected: expected, found: found, remedy: remedy)
        }
        guard worldSize > 0, rank >= 0, rank < worldSize else {
            throw invalid("a rank in 0..<worldSize", "rank \(rank) of world size \(worldSize)", "check the launcher")
        }
        guard globalBatchSize > 0, globalBatchSize % worldSize == 0 else {
            throw invalid(
                "a positive global batch size divisible by the \(worldSize) ranks",
                "global batch size \(globalBatchSize)",
                "choose a batch size that is a multiple of the number of ranks")
        }
        guard sampleCount > 0, !dropLast || sampleCount >= globalBatchSize else {
            throw invalid(
                "at least \(dropLast ? globalBatchSize : 1) samples", "\(sampleCount) samples",
                "use a smaller batch or turn off drop-last")
        }
    }
}

/// Sharding of an evaluation pass by global index, so that its results never depend on the
/// number of ranks.
///
/// The data set in order is cut into blocks of `blockSize` consecutive samples, the last one
/// filled up with padding rows (which repeat samples from the start and are never counted).
/// Block `b` is scored whole, as one batch, by rank `b mod R` at its step `b / R`. A sample's
/// batch — its block, every row in the same place — is thus the same for any number of ranks,
/// and so are its probabilities, bit for bit (the decomposition rule in Parallel.swift applied
/// across ranks). Every sample is counted exactly once. Ranks may take different numbers of
/// steps, none at all when there are more ranks than blocks: evaluation has no collective per
/// step.
public struct EvaluationSharder: BatchSchedule {
    /// The block size of every evaluation (training's and `pskd evaluate`'s), so both give the
    /// same probabilities for the same model.
    public static let standardBlockSize = 128

    public let sampleCount: Int
    /// Samples per block: every batch is one whole block.
    public let blockSize: Int
    public let rank: Int
    public let worldSize: Int

    public var localBatchSize: Int { blockSize }
    /// `ceil(N / blockSize)`.
    public var blockCount: Int { (sampleCount + blockSize - 1) / blockSize }
    /// The blocks this rank scores: `rank`, `rank + R`, `rank + 2R`, … below `blockCount`.
    public var stepsPerEpoch: Int { rank < blockCount ? (blockCount - rank + worldSize - 1) / worldSize : 0 }

    /// A sharder for rank `rank` of `worldSize` with blocks of `blockSize` samples.
    public init(
        sampleCount: Int, blockSize: Int = EvaluationSharder.standardBlockSize,
        rank: Int, worldSize: Int
    ) throws(DataError) {
        guard sampleCount > 0, blockSize > 0, worldSize > 0, rank >= 0, rank < worldSize else {
            throw DataError(
                .invalidConfiguration, file: nil,
                expected: "positive sample count and block size, and a rank in 0..<worldSize",
                found: "\(sampleCount) samples, blocks of \(blockSize), rank \(rank) of \(worldSize)",
                remedy: "check the evaluation settings")
        }
        self.sampleCount = sampleCount
        self.blockSize = blockSize
        self.rank = rank
        self.worldSize = worldSize
    }

    /// The identity order: evaluation reads the data set in order.
    public func order(epoch: Int) -> [Int] { Array(0..<sampleCount) }

    /// The block this rank scores at `step`.
    public func block(step: Int) -> Int { step * worldSize + rank }

    public func fillSlots(
        step: Int, order: [Int], indices: UnsafeMutableBufferPointer<Int>,
        isPadding: UnsafeMutableBufferPointer<Bool>
    ) {
        precondition(step >= 0 && step < stepsPerEpoch, "step \(step) outside 0..<\(stepsPerEpoch)")
        let first = block(step: step) * blockSize
        for slot in 0..<blockSize {
            let position = first + slot
            indices[slot] = order[position % sampleCount]
            isPadding[slot] = position >= sampleCount
        }
    }
}

/// The Fisher–Yates shuffle used for data order and CutMix partners, so both draw identically
/// (the draws depend only on the count, not on the element type).
enum FisherYates {
    static func shuffle<Element>(_ values: UnsafeMutableBufferPointer<Element>, using random: inout RandomGenerator) {
        guard values.count > 1 else { return }
        for i in stride(from: values.count - 1, to: 0, by: -1) {
            values.swapAt(i, random.nextIndex(below: i + 1))
        }
    }
}

/// Where an epoch's samples sit across ranks, for state kept per sample and sharded by who reads
/// it (the sharded PS-KD teacher).
///
/// An epoch has `positionCount` *positions*. Position `q` holds sample `order[q mod N]`:
/// positions below `N` are the permutation itself (each sample once, its *primary* position),
/// positions from `N` up to `steps·B` are the padding of the last batch (their samples repeat
/// the permutation's start). A trained position `q < steps·B` belongs to the rank and slot that
/// train it: rank `(q mod B) / b`, slot `(q / B)·b + q mod b`, so a rank's slots of step `s` are
/// `s·b ..< (s+1)·b`. With `dropLast` the positions `steps·B ..< N` are not trained: they are
/// *parked*, dealt round-robin to the ranks after their trained slots. Every rank can place
/// every position of any epoch, for any rank count.
extension ShardedSampler {
    /// Positions of every epoch: `max(steps·B, N)`.
    public var positionCount: Int { max(stepsPerEpoch * globalBatchSize, sampleCount) }

    /// Positions trained in an epoch: `steps·B`.
    public var trainedPositionCount: Int { stepsPerEpoch * globalBatchSize }

    /// Slots every rank holds: its trained slots, then room for its share of the parked
    /// positions (`ceil(parked / R)`).
    public var heldSlotCount: Int {
        let parked = positionCount - trainedPositionCount
        return stepsPerEpoch * localBatchSize + (parked + worldSize - 1) / worldSize
    }

    /// The rank holding position `position` and its slot there.
    @inlinable public func holder(ofPosition position: Int) -> (rank: Int, slot: Int) {
        let trained = trainedPositionCount
        if position < trained {
            let column = position % globalBatchSize
            return (column / localBatchSize, (position / globalBatchSize) * localBatchSize + column % localBatchSize)
        }
        let parked = position - trained
        return (parked % worldSize, stepsPerEpoch * localBatchSize + parked / worldSize)
    }
}
