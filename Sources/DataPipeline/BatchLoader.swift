import Foundation
import Platform
import Tensors

/// Loads one rank's batches of an epoch into preallocated buffers, optionally prepared ahead
/// on a background thread.
///
///     let loader = BatchLoader(dataset: train, schedule: sampler,
///                              augmentation: DatasetSpec.fashionMNIST.standardAugmentation, seed: 1)
///     loader.start(epoch: t)
///     while let batch = try loader.next() { … }     // or: try loader.forEachBatch(epoch: t) { batch in … }
///
/// With `prefetch = k > 0` a producer thread fills a ring of `k + 1` buffers: it runs at most
/// `k` batches ahead of the one the consumer holds. With `prefetch = 0` batches are built in
/// `next()` on the caller's thread. Streamed images (image folders, tar shards) are read and
/// decoded on `loaderThreads` threads, the producer among them. Every combination gives
/// bit-identical batches. Memory is bounded by the ring and one image per loader thread: the
/// data set itself is never copied, and a streamed one is never read whole.
///
/// A loader is driven by one consumer thread. Starting another epoch, `stop()` and `deinit`
/// cancel the producer and wait for it to exit, so stopping mid-epoch never hangs. A sample that
/// cannot be read or decoded ends the epoch: `next()` throws its `DataError` once the batches
/// before it have been delivered.
public final class BatchLoader {
    /// Batches prepared ahead (0 = synchronous).
    public let prefetch: Int
    /// The sample schedule (training sampler or evaluation sharder).
    public let schedule: any BatchSchedule
    private let assembler: BatchAssembler
    private let ring: PrefetchRing
    private var synchronousEpoch: (epoch: Int, order: [Int], nextStep: Int)?

    /// Steps per epoch, the same on every rank.
    public var stepsPerEpoch: Int { schedule.stepsPerEpoch }

    /// Seconds `next()` has waited for a batch since the last `start(epoch:)`: how long
    /// training waited for data.
    public private(set) var waitingSeconds = 0.0

    /// A loader of `dataset` following `schedule`, augmenting with `augmentation` seeded by
    /// `seed`; streamed images are decoded on `loaderThreads` threads.
    public init(
        dataset: Dataset, schedule: any BatchSchedule, augmentation: AugmentationConfig,
        seed: UInt64, prefetch: Int = 2, loaderThreads: Int = 1
    ) {
        precondition(prefetch >= 0, "prefetch must be non-negative, got \(prefetch)")
        precondition(
            schedule.sampleCount == dataset.count,
            "schedule is for \(schedule.sampleCount) samples, data set \(dataset.name) has \(dataset.count)")
        self.prefetch = prefetch
        self.schedule = schedule
        self.assembler = BatchAssembler(
            augmenter: Augmenter(dataset: dataset, config: augmentation, seed: seed),
            schedule: schedule, pool: LoaderPool(threadCount: dataset.isStreamed ? loaderThreads : 1))
        let buffers = (0...prefetch).map { _ in
            BatchBuffers(
                batchSize: schedule.localBatchSize, height: dataset.height,
                width: dataset.width, channels: dataset.channels)
        }
        self.ring = PrefetchRing(buffers: buffers)
    }

    deinit { stop() }

    /// Begins `epoch`, cancelling whatever epoch was in progress.
    public func start(epoch: Int) {
        stop()
        waitingSeconds = 0
        let order = schedule.order(epoch: epoch)
        if prefetch == 0 {
            synchronousEpoch = (epoch, order, 0)
        } else {
            startProducer(epoch: epoch, order: order)
        }
    }

    /// The next batch of the epoch, or `nil` when the epoch is over (or was never started).
    /// The previous batch's `inputs` may be overwritten from this call on.
    ///
    /// - Throws: `DataError` naming the sample that could not be read or decoded; the epoch is
    ///   then over.
    public func next() throws(DataError) -> Batch? {
        let stopwatch = Stopwatch()
        defer { waitingSeconds += stopwatch.elapsedSeconds }
        if prefetch == 0 { return try nextSynchronously() }
        ring.releaseHeld()
        return try ring.takeReady().map { ring.buffers[$0].batch }
    }

    /// Starts `epoch` and calls `body` with each of its batches in step order (each valid
    /// until `body` returns).
    public func forEachBatch(epoch: Int, _ body: (Batch) throws -> Void) throws {
        start(epoch: epoch)
        while let batch = try next() { try body(batch) }
    }

    /// Starts `epoch` and returns `transform` of each of its batches, in step order (a batch's
    /// `inputs` are only valid inside `transform`: copy what you keep).
    public func mapBatches<Value>(epoch: Int, _ transform: (Batch) throws -> Value) throws -> [Value] {
        var values: [Value] = []
        try forEachBatch(epoch: epoch) { values.append(try transform($0)) }
        return values
    }

    /// Cancels the epoch in progress and waits for the producer thread to exit.
    public func stop() {
        synchronousEpoch = nil
        ring.cancelAndWait()
    }

    private func nextSynchronously() throws(DataError) -> Batch? {
        guard let current = synchronousEpoch, current.nextStep < schedule.stepsPerEpoch else { return nil }
        synchronousEpoch?.nextStep += 1
        let buffers = ring.buffers[0]
        do throws(DataError) {
            try assembler.assemble(epoch: current.epoch, step: current.nextStep, order: current.order, into: buffers)
        } catch {
            synchronousEpoch = nil
            throw error
        }
        return buffers.batch
    }

    private func startProducer(epoch: Int, order: [Int]) {
        let (ring, assembler, steps) = (ring, assembler, schedule.stepsPerEpoch)
        ring.reset()
        let thread = Thread {
            for step in 0..<steps {
                guard let slot = ring.acquireFree() else { break }
                do throws(DataError) {
                    try assembler.assemble(epoch: epoch, step: step, order: order, into: ring.buffers[slot])
                } catch {
                    ring.fail(error)
                    break
                }
                ring.publish(slot)
            }
            ring.finishProducing()
        }
        thread.name = "pskd-batch-loader"
        thread.start()
    }
}

/// The ring of batch buffers shared by one producer and one consumer, guarded by a condition
/// variable. A buffer is, at any time, free, being filled, ready (in `ready`, in step order) or
/// held by the consumer.
final class PrefetchRing: @unchecked Sendable {
    let buffers: [BatchBuffers]
    private let condition = NSCondition()
    private var free: [Int]
    private var ready: [Int] = []
    private var held: Int?
    private var cancelled = false
    private var producerRunning = false
    /// Why the producer stopped before the end of the epoch, for the consumer to throw.
    private var failure: DataError?

    init(buffers: [BatchBuffers]) {
        self.buffers = buffers
        self.free = Array(buffers.indices)
        free.reserveCapacity(buffers.count)
        ready.reserveCapacity(buffers.count)
    }

    /// Returns every buffer to the free list before a new producer starts.
    func reset() {
        locked {
            precondition(!producerRunning, "a producer is still running")
            free = Array(buffers.indices)
            ready.removeAll(keepingCapacity: true)
            held = nil
            cancelled = false
            failure = nil
            producerRunning = true
        }
    }

    /// Producer: waits for a free buffer; `nil` if cancelled.
    func acquireFree() -> Int? {
        locked {
            while free.isEmpty && !cancelled { condition.wait() }
            return cancelled ? nil : free.removeFirst()
        }
    }

    /// Producer: hands a filled buffer to the consumer.
    func publish(_ slot: Int) {
        locked {
            ready.append(slot)
            condition.broadcast()
        }
    }

    /// Producer: records why it stops early (the consumer throws it after the ready batches).
    func fail(_ error: DataError) {
        locked { failure = error }
    }

    /// Producer: announces that it has exited its loop.
    func finishProducing() {
        locked {
            producerRunning = false
            condition.broadcast()
        }
    }

    /// Consumer: gives back the buffer it held.
    func releaseHeld() {
        locked {
            if let slot = held {
                free.append(slot)
                held = nil
                condition.broadcast()
            }
        }
    }

    /// Consumer: waits for the next ready buffer; `nil` once the producer is done and all its
    /// buffers have been taken.
    ///
    /// - Throws: the producer's failure, once the buffers it filled before it have been taken
    ///   (then `nil` after that, as at the end of an epoch).
    func takeReady() throws(DataError) -> Int? {
        let (slot, failure): (Int?, DataError?) = locked {
            while ready.isEmpty && producerRunning { condition.wait() }
            guard !ready.isEmpty else {
                defer { self.failure = nil }
                return (nil, self.failure)
            }
            held = ready.removeFirst()
            return (held, nil)
        }
        if let failure { throw failure }
        return slot
    }

    /// Cancels the producer (if any) and waits until it has exited.
    func cancelAndWait() {
        locked {
            cancelled = true
            condition.broadcast()
            while producerRunning { condition.wait() }
            ready.removeAll(keepingCapacity: true)
        }
    }

    private func locked<Result>(_ body: () -> Result) -> Result {
        condition.lock()
        defer { condition.unlock() }
        return body()
    }
}
