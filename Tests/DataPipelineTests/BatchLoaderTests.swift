import XCTest

@testable import DataPipeline

final class BatchLoaderTests: XCTestCase {
    private let dataset = syntheticDataset(count: 103, side: 5, channels: 3)
    private let augmentation = AugmentationConfig(cropPadding: 2, horizontalFlip: true, cutMixProbability: 0.5)

    /// Everything a batch carries, copied so it outlives the loader's buffers.
    private struct Snapshot: Equatable {
        let epoch: Int, step: Int
        let inputs: [Float]
        let shape: [Int]
        let labels: [Int32]
        let indices: [Int]
        let isPadding: [Bool]
        let cutMix: CutMixInfo?

        init(_ batch: Batch) {
            (epoch, step, inputs, shape) = (batch.epoch, batch.step, batch.inputs.scalars, batch.inputs.shape)
            (labels, indices, isPadding, cutMix) = (batch.labels, batch.indices, batch.isPadding, batch.cutMix)
        }
    }

    private func loader(prefetch: Int, rank: Int = 0, worldSize: Int = 1) throws -> BatchLoader {
        let sampler = try ShardedSampler(
            sampleCount: dataset.count, globalBatchSize: 8, rank: rank,
            worldSize: worldSize, seed: 21)
        return BatchLoader(dataset: dataset, schedule: sampler, augmentation: augmentation, seed: 4, prefetch: prefetch)
    }

    private func snapshots(_ loader: BatchLoader, epoch: Int) throws -> [Snapshot] {
        try loader.mapBatches(epoch: epoch, Snapshot.init)
    }

    func testPrefetchingGivesBitIdenticalBatchesToSynchronousLoading() throws {
        let synchronous = try loader(prefetch: 0)
        for prefetch in [1, 3] {
            let prefetching = try loader(prefetch: prefetch)
            for epoch in [1, 2] {
                let expected = try snapshots(synchronous, epoch: epoch)
                XCTAssertEqual(expected.count, 13)
                XCTAssertEqual(expected.map(\.step), Array(0..<13))
                XCTAssertTrue(expected.contains { $0.cutMix != nil } && expected.contains { $0.cutMix == nil })
                XCTAssertEqual(try snapshots(prefetching, epoch: epoch), expected, "prefetch \(prefetch), epoch \(epoch)")
            }
        }
    }

    func testBatchesCarryLabelsIndicesAndPaddingOfTheSampler() throws {
        let sampler = try ShardedSampler(sampleCount: dataset.count, globalBatchSize: 8, rank: 1, worldSize: 2, seed: 21)
        let loaded = try snapshots(try loader(prefetch: 2, rank: 1, worldSize: 2), epoch: 5)
        let expected = sampler.epochSlots(epoch: 5)
        XCTAssertEqual(loaded.map(\.indices), expected.map(\.indices))
        XCTAssertEqual(loaded.map(\.isPadding), expected.map(\.isPadding))
        for batch in loaded {
            XCTAssertEqual(batch.shape, [4, 5, 5, 3])
            XCTAssertEqual(batch.labels, batch.indices.map { dataset.labels[$0] })
        }
    }

    func testEpochEndsWithNilAndStaysEnded() throws {
        for prefetch in [0, 2] {
            let loader = try loader(prefetch: prefetch)
            XCTAssertNil(try loader.next(), "nothing before start")
            loader.start(epoch: 1)
            for _ in 0..<loader.stepsPerEpoch { XCTAssertNotNil(try loader.next()) }
            XCTAssertNil(try loader.next())
            XCTAssertNil(try loader.next())
        }
    }

    func testStoppingMidEpochDoesNotHangAndRestartsCleanly() throws {
        let expected = try snapshots(try loader(prefetch: 0), epoch: 3)
        for prefetch in [1, 2] {
            let loader = try loader(prefetch: prefetch)
            loader.start(epoch: 3)
            _ = try loader.next()
            loader.stop()
            XCTAssertNil(try loader.next())
            loader.start(epoch: 7)  // abandon this one without reading
            XCTAssertEqual(try snapshots(loader, epoch: 3), expected)
        }
    }

    func testDroppingALoaderMidEpochJoinsItsThread() throws {
        for prefetch in [1, 4] {
            var loader: BatchLoader? = try self.loader(prefetch: prefetch)
            loader?.start(epoch: 1)
            _ = try loader?.next()
            weak let weakLoader = loader
            loader = nil
            XCTAssertNil(weakLoader, "the producer thread must not keep the loader alive")
        }
    }

    func testEvaluationLoadingCountsEverySampleOnce() throws {
        var seen: [Int] = []
        for rank in 0..<3 {
            let sharder = try EvaluationSharder(sampleCount: dataset.count, blockSize: 16, rank: rank, worldSize: 3)
            let loader = BatchLoader(dataset: dataset, schedule: sharder, augmentation: .none, seed: 0, prefetch: 1)
            try loader.forEachBatch(epoch: 1) { batch in
                seen += zip(batch.indices, batch.isPadding).filter { !$0.1 }.map(\.0)
                XCTAssertEqual(batch.realCount, batch.isPadding.filter { !$0 }.count)
            }
        }
        XCTAssertEqual(seen.sorted(), Array(0..<dataset.count))
    }

    func testBenchmarkDeliversTheRequestedBatchesAcrossEpochs() throws {
        let result = try LoaderBenchmark.run(
            dataset: dataset, batchSize: 16, prefetch: 1, batches: 20,
            augmentation: augmentation)
        XCTAssertEqual(result.batches, 20)
        XCTAssertEqual(result.samples, 320)
        XCTAssertGreaterThan(result.samplesPerSecond, 0)
    }
}
