import Tensors
import XCTest

@testable import DataPipeline

final class AugmentationTests: XCTestCase {
    private let dataset = syntheticDataset(count: 40, side: 6, channels: 2)
    private let cropAndFlip = AugmentationConfig(cropPadding: 2, horizontalFlip: true)

    /// The normalised value of `byte` in `channel` of `dataset`.
    private func normalised(_ byte: UInt8, channel: Int) -> Float {
        (Float(byte) / 255 - dataset.mean[channel]) / dataset.std[channel]
    }

    /// Sample `index` shifted by (rowShift, columnShift), optionally mirrored, zero-padded and
    /// normalised: the reference the augmenter's output must equal exactly.
    private func reference(index: Int, rowShift: Int, columnShift: Int, flip: Bool) -> [Float] {
        let (side, channels) = (dataset.height, dataset.channels)
        var output: [Float] = []
        for y in 0..<side {
            for x in 0..<side {
                let (sourceY, sourceX) = (y + rowShift, (flip ? side - 1 - x : x) + columnShift)
                for c in 0..<channels {
                    let inside = (0..<side).contains(sourceY) && (0..<side).contains(sourceX)
                    let byte = inside ? dataset.pixels[index * dataset.sampleSize + (sourceY * side + sourceX) * channels + c] : 0
                    output.append(normalised(byte, channel: c))
                }
            }
        }
        return output
    }

    /// The (rowShift, columnShift, flip) that reproduces `output`, if any.
    private func placement(of output: [Float], index: Int, padding: Int) -> (Int, Int, Bool)? {
        for rowShift in -padding...padding {
            for columnShift in -padding...padding {
                for flip in [false, true] where reference(index: index, rowShift: rowShift, columnShift: columnShift, flip: flip) == output
                {
                    return (rowShift, columnShift, flip)
                }
            }
        }
        return nil
    }

    func testNoAugmentationIsExactNormalisationInNHWCOrder() throws {
        let augmenter = Augmenter(dataset: dataset, config: .none, seed: 3)
        XCTAssertEqual(try augmenter.augmentedSample(index: 9, epoch: 1), reference(index: 9, rowShift: 0, columnShift: 0, flip: false))
    }

    func testEveryOutputIsACropAndOptionalMirrorOfItsSample() throws {
        let augmenter = Augmenter(dataset: dataset, config: cropAndFlip, seed: 3)
        var placements: [String: Int] = [:]
        for index in 0..<dataset.count {
            for epoch in 1...3 {
                let output = try augmenter.augmentedSample(index: index, epoch: epoch)
                guard let found = placement(of: output, index: index, padding: 2) else {
                    return XCTFail("sample \(index) epoch \(epoch) is not a padded crop or mirror of its image")
                }
                placements["\(found)", default: 0] += 1
            }
        }
        XCTAssertGreaterThan(placements.count, 10, "crop offsets and flips vary: \(placements)")
        XCTAssertTrue(placements.keys.contains { $0.hasSuffix("true)") } && placements.keys.contains { $0.hasSuffix("false)") })
    }

    func testReproducibleForAFixedSeedAndDifferentAcrossEpochsAndSeeds() throws {
        let augmenter = Augmenter(dataset: dataset, config: cropAndFlip, seed: 3)
        let again = Augmenter(dataset: dataset, config: cropAndFlip, seed: 3)
        let otherSeed = Augmenter(dataset: dataset, config: cropAndFlip, seed: 4)
        let epoch1 = try (0..<20).map { try augmenter.augmentedSample(index: $0, epoch: 1) }
        XCTAssertEqual(epoch1, try (0..<20).map { try again.augmentedSample(index: $0, epoch: 1) })
        XCTAssertNotEqual(epoch1, try (0..<20).map { try augmenter.augmentedSample(index: $0, epoch: 2) })
        XCTAssertNotEqual(epoch1, try (0..<20).map { try otherSeed.augmentedSample(index: $0, epoch: 1) })
    }

    func testASampleIsAugmentedTheSameWhateverTheBatchOrRankCount() throws {
        // One rank with batch 8 and two ranks with batch 4 see the same samples per step; each
        // sample's augmented image must not depend on which rank or row it lands in.
        let single = try batchesByIndex(worldSize: 1)
        let pair = try batchesByIndex(worldSize: 2)
        XCTAssertEqual(single.count, dataset.count)
        XCTAssertEqual(single, pair)
        let augmenter = Augmenter(dataset: dataset, config: cropAndFlip, seed: 3)
        XCTAssertEqual(single[17], try augmenter.augmentedSample(index: 17, epoch: 2))
    }

    /// Every non-padding sample's augmented image in epoch 2, by global index.
    private func batchesByIndex(worldSize: Int) throws -> [Int: [Float]] {
        var images: [Int: [Float]] = [:]
        for rank in 0..<worldSize {
            let sampler = try ShardedSampler(
                sampleCount: dataset.count, globalBatchSize: 8, rank: rank,
                worldSize: worldSize, seed: 9)
            let loader = BatchLoader(dataset: dataset, schedule: sampler, augmentation: cropAndFlip, seed: 3, prefetch: 0)
            try loader.forEachBatch(epoch: 2) { batch in
                for row in 0..<batch.count where !batch.isPadding[row] {
                    images[batch.indices[row]] = batch.inputs.rows(row..<row + 1).scalars
                }
            }
        }
        return images
    }

    // MARK: - CutMix

    /// The same batch with and without CutMix (CutMix does not change the per-sample draws).
    private func batchPair(step: Int) throws -> (plain: Batch, mixed: Batch) {
        let sampler = try ShardedSampler(sampleCount: dataset.count, globalBatchSize: 8, rank: 0, worldSize: 1, seed: 1)
        let order = sampler.order(epoch: 1)
        func build(_ probability: Double) throws -> Batch {
            let config = AugmentationConfig(cropPadding: 1, horizontalFlip: true, cutMixProbability: probability)
            let assembler = BatchAssembler(
                augmenter: Augmenter(dataset: dataset, config: config, seed: 5), schedule: sampler, pool: LoaderPool(threadCount: 1))
            let buffers = BatchBuffers(batchSize: 8, height: 6, width: 6, channels: 2)
            try assembler.assemble(epoch: 1, step: step, order: order, into: buffers)
            return buffers.batch
        }
        return (try build(0), try build(1))
    }

    func testCutMixPastesThePartnersBoxAndLambdaIsTheUnpastedFraction() throws {
        var sawPartialBox = false
        for step in 0..<5 {
            let (plain, mixed) = try batchPair(step: step)
            XCTAssertNil(plain.cutMix)
            let cutMix = try XCTUnwrap(mixed.cutMix)
            XCTAssertEqual(cutMix.partnerRows.sorted(), Array(0..<8), "partners are a permutation of the rows")
            let box = cutMix.box
            XCTAssertEqual(cutMix.lambda, 1 - Float(box.area) / 36, accuracy: 1e-7)
            sawPartialBox = sawPartialBox || (box.area > 0 && box.area < 36)
            let (original, result) = (plain.inputs.scalars, mixed.inputs.scalars)
            var ownPixels = 0
            for row in 0..<8 {
                for y in 0..<6 {
                    for x in 0..<6 {
                        let inBox = (box.top..<box.bottom).contains(y) && (box.left..<box.right).contains(x)
                        let source = inBox ? cutMix.partnerRows[row] : row
                        ownPixels += inBox ? 0 : 1
                        for c in 0..<2 {
                            let offset = ((y * 6) + x) * 2 + c
                            XCTAssertEqual(result[row * 72 + offset], original[source * 72 + offset])
                        }
                    }
                }
            }
            XCTAssertEqual(Float(ownPixels) / Float(8 * 36), cutMix.lambda, accuracy: 1e-6, "λ is the exact own-area fraction")
        }
        XCTAssertTrue(sawPartialBox)
    }

    func testCutMixTargetsMixWithTheAreaRatio() throws {
        let (_, mixed) = try batchPair(step: 1)
        let cutMix = try XCTUnwrap(mixed.cutMix)
        let targets = Tensor(zeros: [8, 5])
        for row in 0..<8 { targets[row * 5 + Int(mixed.labels[row])] = 1 }
        let output = Tensor(zeros: [8, 5])
        mixed.mixTargets(targets, into: output)
        for row in 0..<8 {
            var expected = [Float](repeating: 0, count: 5)
            expected[Int(mixed.labels[row])] += cutMix.lambda
            expected[Int(mixed.labels[cutMix.partnerRows[row]])] += 1 - cutMix.lambda
            XCTAssertEqual(Array(output.scalars[row * 5..<(row + 1) * 5]), expected)
        }
    }

    func testCutMixProbabilityDecidesPerBatch() throws {
        let sampler = try ShardedSampler(sampleCount: dataset.count, globalBatchSize: 4, rank: 0, worldSize: 1, seed: 1)
        func mixedSteps(_ probability: Double) throws -> [Bool] {
            let loader = BatchLoader(
                dataset: dataset, schedule: sampler,
                augmentation: AugmentationConfig(cutMixProbability: probability), seed: 2, prefetch: 0)
            return try loader.mapBatches(epoch: 1) { $0.cutMix != nil }
        }
        XCTAssertEqual(try mixedSteps(0), [Bool](repeating: false, count: 10))
        XCTAssertEqual(try mixedSteps(1), [Bool](repeating: true, count: 10))
        let half = try mixedSteps(0.5)
        XCTAssertTrue(half.contains(true) && half.contains(false), "\(half)")
    }

    func testStandardTrainingRecipes() {
        XCTAssertEqual(DatasetSpec.cifar100.standardAugmentation, AugmentationConfig(cropPadding: 4, horizontalFlip: true))
        XCTAssertEqual(DatasetSpec.fashionMNIST.standardAugmentation, AugmentationConfig(horizontalFlip: true))
        XCTAssertEqual(DatasetSpec.mnist.standardAugmentation, .none)
    }
}
