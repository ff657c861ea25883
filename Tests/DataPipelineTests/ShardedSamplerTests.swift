import XCTest

@testable import DataPipeline

final class ShardedSamplerTests: XCTestCase {
    private func samplers(
        count: Int, globalBatch: Int, worldSize: Int, seed: UInt64 = 11,
        dropLast: Bool = false
    ) throws -> [ShardedSampler] {
        try (0..<worldSize).map {
            try ShardedSampler(
                sampleCount: count, globalBatchSize: globalBatch, rank: $0,
                worldSize: worldSize, seed: seed, dropLast: dropLast)
        }
    }

    func testShardsAreDisjointAndCoverEveryIndexOnceForOneToFourRanks() throws {
        let count = 1_003  // not divisible by 12, nor by any rank count's batch
        for worldSize in 1...4 {
            let ranks = try samplers(count: count, globalBatch: 12, worldSize: worldSize)
            let epochs = ranks.map { $0.epochSlots(epoch: 3) }
            XCTAssertEqual(Set(epochs.map(\.count)), [84], "equal steps per rank, R = \(worldSize)")
            XCTAssertEqual(Set(ranks.map { $0.order(epoch: 3) }).count, 1, "same permutation on every rank")
            let real = epochs.flatMap { $0.flatMap(realIndices) }
            XCTAssertEqual(real.count, count, "R = \(worldSize)")
            XCTAssertEqual(real.sorted(), Array(0..<count), "R = \(worldSize)")
            let paddingCount = epochs.flatMap { $0.flatMap(\.isPadding) }.filter { $0 }.count
            XCTAssertEqual(paddingCount, 84 * 12 - count)
        }
    }

    func testGlobalBatchOfAStepDoesNotDependOnRankCount() throws {
        let count = 1_000
        let single = try samplers(count: count, globalBatch: 128, worldSize: 1)[0].epochSlots(epoch: 1)
        let pair = try samplers(count: count, globalBatch: 128, worldSize: 2).map { $0.epochSlots(epoch: 1) }
        XCTAssertEqual(pair.map(\.count), [single.count, single.count])
        for step in single.indices {
            XCTAssertEqual(pair[0][step].indices + pair[1][step].indices, single[step].indices, "step \(step)")
            XCTAssertEqual(pair[0][step].isPadding + pair[1][step].isPadding, single[step].isPadding)
        }
        for worldSize in [3, 4] {
            let ranks = try samplers(count: count, globalBatch: 96, worldSize: worldSize).map { $0.epochSlots(epoch: 1) }
            let reference = try samplers(count: count, globalBatch: 96, worldSize: 1)[0].epochSlots(epoch: 1)
            for step in reference.indices {
                XCTAssertEqual(ranks.flatMap { $0[step].indices }, reference[step].indices)
            }
        }
    }

    func testPaddingComesFromTheStartOfThePermutationAndIsMarked() throws {
        let sampler = try ShardedSampler(sampleCount: 10, globalBatchSize: 4, rank: 0, worldSize: 1, seed: 5)
        let order = sampler.order(epoch: 2)
        let last = sampler.slots(step: 2, order: order)
        XCTAssertEqual(last.indices, [order[8], order[9], order[0], order[1]])
        XCTAssertEqual(last.isPadding, [false, false, true, true])
    }

    func testFewerSamplesThanTheGlobalBatchWrapsAround() throws {
        let ranks = try samplers(count: 5, globalBatch: 8, worldSize: 4)
        let epochs = ranks.map { $0.epochSlots(epoch: 0) }
        XCTAssertEqual(epochs.map(\.count), [1, 1, 1, 1])
        XCTAssertEqual(epochs.flatMap { $0.flatMap(realIndices) }.sorted(), Array(0..<5))
    }

    func testDropLastDropsThePartialBatch() throws {
        let ranks = try samplers(count: 1_003, globalBatch: 12, worldSize: 3, dropLast: true)
        let epochs = ranks.map { $0.epochSlots(epoch: 1) }
        XCTAssertEqual(epochs.map(\.count), [83, 83, 83])
        let all = epochs.flatMap { $0.flatMap(\.indices) }
        XCTAssertFalse(epochs.flatMap { $0.flatMap(\.isPadding) }.contains(true))
        XCTAssertEqual(Set(all).count, 83 * 12, "no index twice")
    }

    func testPermutationIsReproducibleAndChangesWithEpochAndSeed() throws {
        let sampler = try ShardedSampler(sampleCount: 500, globalBatchSize: 10, rank: 0, worldSize: 1, seed: 1)
        let other = try ShardedSampler(sampleCount: 500, globalBatchSize: 10, rank: 0, worldSize: 1, seed: 2)
        XCTAssertEqual(sampler.order(epoch: 4), sampler.order(epoch: 4))
        XCTAssertEqual(sampler.order(epoch: 4).sorted(), Array(0..<500))
        XCTAssertNotEqual(sampler.order(epoch: 4), sampler.order(epoch: 5))
        XCTAssertNotEqual(sampler.order(epoch: 4), other.order(epoch: 4))
        XCTAssertNotEqual(sampler.order(epoch: 4), Array(0..<500))
    }

    /// The 32-bit order (the sharded teacher's) is the same permutation, element for element.
    func testCompactOrderIsTheOrderIn32Bits() throws {
        for (count, epoch) in [(1, 1), (500, 4), (1_003, 7)] {
            let sampler = try ShardedSampler(sampleCount: count, globalBatchSize: 10, rank: 0, worldSize: 1, seed: 5)
            XCTAssertEqual(sampler.compactOrder(epoch: epoch).map(Int.init), sampler.order(epoch: epoch), "N = \(count)")
        }
        XCTAssertEqual(ShardedSampler.maximumCompactSampleCount, 1 << 32)
    }

    /// Every position of an epoch has one holder and slot, distinct, within the rank's held
    /// slots; the trained ones are exactly the slots `fillSlots` hands out, step by step.
    func testEveryPositionHasOneHolderAndTrainedOnesMatchTheSlots() throws {
        for (samples, batch, ranks, dropLast) in [(250, 45, 3, false), (250, 44, 4, false), (250, 48, 3, true), (10, 4, 2, true)] {
            let samplers = try (0..<ranks).map {
                try ShardedSampler(sampleCount: samples, globalBatchSize: batch, rank: $0, worldSize: ranks, seed: 5, dropLast: dropLast)
            }
            let sampler = samplers[0]
            XCTAssertEqual(sampler.positionCount, max(sampler.stepsPerEpoch * batch, samples))
            var seen = Set<[Int]>()
            for position in 0..<sampler.positionCount {
                let (rank, slot) = sampler.holder(ofPosition: position)
                XCTAssertTrue((0..<ranks).contains(rank) && (0..<sampler.heldSlotCount).contains(slot), "position \(position)")
                XCTAssertTrue(seen.insert([rank, slot]).inserted, "position \(position) shares a slot")
            }
            let order = sampler.order(epoch: 2)
            for step in 0..<sampler.stepsPerEpoch {
                for (rank, rankSampler) in samplers.enumerated() {
                    let slots = rankSampler.slots(step: step, order: order)
                    for (local, index) in slots.indices.enumerated() {
                        let position = step * batch + rank * (batch / ranks) + local
                        XCTAssertEqual(order[position % samples], index)
                        XCTAssertEqual(sampler.holder(ofPosition: position).rank, rank)
                        XCTAssertEqual(sampler.holder(ofPosition: position).slot, step * (batch / ranks) + local)
                    }
                }
            }
        }
    }

    func testInvalidConfigurations() {
        assertDataError(.invalidConfiguration, naming: nil) {
            try ShardedSampler(sampleCount: 100, globalBatchSize: 10, rank: 0, worldSize: 3, seed: 0)
        }
        assertDataError(.invalidConfiguration, naming: nil) {
            try ShardedSampler(sampleCount: 100, globalBatchSize: 12, rank: 3, worldSize: 3, seed: 0)
        }
        assertDataError(.invalidConfiguration, naming: nil) {
            try ShardedSampler(sampleCount: 5, globalBatchSize: 8, rank: 0, worldSize: 1, seed: 0, dropLast: true)
        }
        assertDataError(.invalidConfiguration, naming: nil) {
            try ShardedSampler(sampleCount: 0, globalBatchSize: 8, rank: 0, worldSize: 1, seed: 0)
        }
        do {
            _ = try ShardedSampler(sampleCount: 100, globalBatchSize: 10, rank: 0, worldSize: 3, seed: 0)
        } catch {
            XCTAssertTrue(error.description.contains("divisible"), "\(error)")
        }
    }

    // MARK: - Evaluation sharding

    /// Blocks of 10 by sample index, dealt round-robin: every sample once, and a block's batch
    /// (rows, padding) the same whatever the rank count, so its probabilities are too.
    func testEvaluationBlocksAreFixedBySampleIndexWhateverTheRanks() throws {
        for count in [1_003, 3, 40] {
            let single = try EvaluationSharder(sampleCount: count, blockSize: 10, rank: 0, worldSize: 1).epochSlots(epoch: 0)
            XCTAssertEqual(single.count, (count + 9) / 10)
            for (block, slots) in single.enumerated() {
                XCTAssertEqual(slots.indices.count, 10)
                XCTAssertEqual(realIndices(slots), Array((block * 10)..<min(block * 10 + 10, count)), "block \(block)")
            }
            for worldSize in [2, 3, 4, 7] {
                var seen: [Int] = []
                for rank in 0..<worldSize {
                    let sharder = try EvaluationSharder(sampleCount: count, blockSize: 10, rank: rank, worldSize: worldSize)
                    for (step, slots) in sharder.epochSlots(epoch: 0).enumerated() {
                        let block = sharder.block(step: step)
                        XCTAssertEqual(block % worldSize, rank)
                        XCTAssertEqual(slots, single[block], "block \(block) on rank \(rank) of \(worldSize), N = \(count)")
                        seen += realIndices(slots)
                    }
                }
                XCTAssertEqual(seen.sorted(), Array(0..<count), "each sample once, N = \(count), R = \(worldSize)")
            }
        }
        let idle = try EvaluationSharder(sampleCount: 3, blockSize: 10, rank: 2, worldSize: 4)
        XCTAssertEqual(idle.stepsPerEpoch, 0, "more ranks than blocks: a rank with nothing to score")
    }

    private func realIndices(_ slots: BatchSlots) -> [Int] {
        zip(slots.indices, slots.isPadding).filter { !$0.1 }.map(\.0)
    }
}
