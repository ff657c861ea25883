import Foundation
import Tensors

/// Loads one rank's batches of an epoch into preallocated buffers, optionally prepared ahead
/// on a background thread.
///
///     let loader = BatchLoader(dataset: train, schedule: sampler,
///                              augmentation: DatasetSpec.fashionMNIST.standardAugmentation, seed: 1)
///     for batch in loader.epoch(t) { … }   // or: loader.start(epoch: t); while let batch = loader.next() { … }
///
/// With `prefetch = k > 0` a producer thread fills a ring of `k + 1` buffers: it runs at most
/// `k` batches ahead of the one the consumer holds. With `prefetch = 0` batches are built in
/// `next()` on the caller's thread. Both give bit-identical batches. Memory is bounded by the
/// ring: the data set itself is never copied.
///
/// A loader is driven by one consumer thread. Starting another epoch, `stop()` and `deinit`
/// cancel the producer and wait for it to exit, so stopping mid-epoch never hangs.
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

    /// A loader of `dataset` following `schedule`, augmenting with `augmentation` seeded by `seed`.
    public init(
        dataset: Dataset, schedule: any BatchSchedule, augmentation: AugmentationConfig,
        seed: UInt64, prefetch: Int = 2
    ) {
        precondition(prefetch >= 0, "prefetch must be non-negative, got \(prefetch)")
        precondition(
            schedule.sampleCount == dataset.count,
            "schedule is for \(schedule.sampleCount) samples, data set \(dataset.name) has \(dataset.count)")
        self.prefetch = prefetch
        self.schedule = schedule
        self.assembler = BatchAssembler(
            augmenter: Augmenter(dataset: dataset, config: augmentation, seed: seed),
            schedule: schedule)
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
        let order = schedule.order(epoch: epoch)
        if prefetch == 0 {
            synchronousEpoch = (epoch, order, 0)
        } else {
            startProducer(epoch: epoch, order: order)
        }
    }

    /// The next batch of the epoch, or `nil` when the epoch is over (or was never started).
    /// The previous batch's `inputs` may be overwritten from this call on.
    public func next() -> Batch? {
        if prefetch == 0 { return nextSynchronously() }
        ring.releaseHeld()
        return ring.takeReady().map { ring.buffers[$0].batch }
    }

    /// Starts `epoch` and returns its batches as a sequence.
    public func epoch(_ epoch: Int) -> EpochBatches {
        start(epoch: epoch)
        return EpochBatches(loader: self)
    }

    /// Cancels the epoch in progress and waits for the producer thread to exit.
    public func stop() {
        synchronousEpoch = nil
        ring.cancelAndWait()
    }

    private func nextSynchronously() -> Batch? {
        guard let current = synchronousEpoch, current.nextStep < schedule.stepsPerEpoch else { return nil }
        synchronousEpoch?.nextStep += 1
        let buffers = ring.buffers[0]
        assembler.assemble(epoch: current.epoch, step: current.nextStep, order: current.order, into: buffers)
        return buffers.batch
    }

    private func startProducer(epoch: Int, order: [Int]) {
        let (ring, assembler, steps) = (ring, assembler, schedule.stepsPerEpoch)
        ring.reset()
        let thread = Thread {
            for step in 0..<steps {
                guard let slot = ring.acquireFree() else { break }
                assembler.assemble(epoch: epoch, step: step, order: order, into: ring.buffers[slot])
                ring.publish(slot)
            }
            ring.finishProducing()
        }
        thread.name = "pskd-batch-loader"
        thread.start()
    }
}

/// The batches of one epoch of a `BatchLoader`, as a sequence; each batch is valid until the
/// next is requested.
public struct EpochBatches: Sequence, IteratorProtocol {
    let loader: BatchLoader

    public mutating func next() -> Batch? { loader.next() }
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
    func takeReady() -> Int? {
        locked {
            while ready.isEmpty && producerRunning { condition.wait() }
            guard !ready.isEmpty else { return nil }
            held = ready.removeFirst()
            return held
        }
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
