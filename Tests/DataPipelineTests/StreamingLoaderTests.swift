import Foundation
import Tensors
import TestSupport
import XCTest

@testable import DataPipeline

/// The streaming loader on real JPEG and PNG files (`Tests/Fixtures/image-folder`): batches that
/// do not depend on the loader threads, the prefetching or the rank count; pixels as decoding,
/// resampling and normalisation define them; every bad file named.
final class StreamingLoaderTests: XCTestCase {
    private func folder(_ name: String, _ split: DatasetSplit = .train, options: ImageOptions = ImageOptions()) throws -> Dataset {
        try DatasetSpec.folder.load(split, directory: Fixtures.path("image-folder/\(name)"), images: options)
    }

    private func batches(
        _ dataset: Dataset, augmentation: AugmentationConfig, loaderThreads: Int, prefetch: Int, rank: Int = 0, worldSize: Int = 1,
        epoch: Int = 2
    ) throws -> [Int: [Float]] {
        let sampler = try ShardedSampler(sampleCount: dataset.count, globalBatchSize: 6, rank: rank, worldSize: worldSize, seed: 5)
        let loader = BatchLoader(
            dataset: dataset, schedule: sampler, augmentation: augmentation, seed: 3, prefetch: prefetch, loaderThreads: loaderThreads)
        var images: [Int: [Float]] = [:]
        try loader.forEachBatch(epoch: epoch) { batch in
            for row in 0..<batch.count where !batch.isPadding[row] {
                images[batch.indices[row]] = batch.inputs.rows(row..<row + 1).scalars
            }
        }
        return images
    }

    func testSmallImagesKeepTheirSizeAndClassesComeFromTheFolderNames() throws {
        let train = try folder("small")
        XCTAssertEqual([train.count, train.height, train.width, train.channels, train.classCount], [24, 32, 32, 3, 3])
        XCTAssertEqual(train.classNames, ["circle", "square", "stripes"])
        XCTAssertEqual(train.labels, [Int32](repeating: 0, count: 8) + [Int32](repeating: 1, count: 8) + [Int32](repeating: 2, count: 8))
        guard case .streamed(let streamed) = train.images else { return XCTFail("an image folder streams its images") }
        XCTAssertEqual(streamed.geometry, .fixed(width: 32, height: 32))
        XCTAssertEqual(DatasetSpec.folder.standardAugmentation(for: train), AugmentationConfig(cropPadding: 4, horizontalFlip: true))
        XCTAssertEqual(try folder("small", .test).count, 9)
    }

    func testLargeImagesAreCroppedAndResizedToTheImageSize() throws {
        let train = try folder("large", options: ImageOptions(imageSize: 40))
        XCTAssertEqual([train.count, train.height, train.width, train.channels], [12, 40, 40, 3])
        guard case .streamed(let streamed) = train.images else { return XCTFail("an image folder streams its images") }
        XCTAssertEqual(streamed.geometry, .resized(.init(cropSize: 40, evalResize: 46)))
        XCTAssertEqual(streamed.store.skippedEntryCount, 1, "README.txt is skipped and counted")
        XCTAssertEqual(
            DatasetSpec.folder.standardAugmentation(for: train), AugmentationConfig(horizontalFlip: true, randomResizedCrop: true))
        let defaults = try folder("large")
        XCTAssertEqual([defaults.height, defaults.width], [224, 224], "images larger than 64 pixels default to 224")
    }

    func testBatchesAreTheSameForAnyLoaderThreadsPrefetchAndRankCount() throws {
        for (name, options) in [("small", ImageOptions()), ("large", ImageOptions(imageSize: 40))] {
            let train = try folder(name, options: options)
            let augmentation = DatasetSpec.folder.standardAugmentation(for: train)
            let reference = try batches(train, augmentation: augmentation, loaderThreads: 1, prefetch: 0)
            XCTAssertEqual(reference.count, train.count)
            for (threads, prefetch) in [(2, 0), (3, 2), (1, 1)] {
                XCTAssertEqual(
                    try batches(train, augmentation: augmentation, loaderThreads: threads, prefetch: prefetch), reference,
                    "\(name): \(threads) loader threads, prefetch \(prefetch)")
            }
            var twoRanks: [Int: [Float]] = [:]
            for rank in 0..<2 {
                twoRanks.merge(try batches(train, augmentation: augmentation, loaderThreads: 2, prefetch: 1, rank: rank, worldSize: 2)) {
                    a, _ in a
                }
            }
            XCTAssertEqual(twoRanks, reference, "\(name): 2 ranks")
            XCTAssertNotEqual(
                try batches(train, augmentation: augmentation, loaderThreads: 1, prefetch: 0, epoch: 3), reference,
                "\(name): another epoch draws other crops")
        }
    }

    func testWithoutAugmentationASmallImageIsItsDecodedPixelsNormalised() throws {
        let test = try folder("small", .test)
        guard case .streamed(let streamed) = test.images else { return XCTFail("an image folder streams its images") }
        let scratch = SampleScratch()
        try scratch.decode(sample: 4, of: streamed)
        let expected = (0..<(32 * 32 * 3)).map { position in
            (Float(scratch.image.pixels[position]) / 255 - test.mean[position % 3]) / test.std[position % 3]
        }
        let augmenter = Augmenter(dataset: test, config: .none, seed: 1)
        XCTAssertEqual(try augmenter.augmentedSample(index: 4, epoch: 1), expected)
        XCTAssertEqual(test.mean, ImageOptions.imageNetMean)
        XCTAssertEqual(test.std, ImageOptions.imageNetStd)
    }

    func testEvaluationResizesTheShorterSideThenCentreCrops() throws {
        let test = try folder("large", .test, options: ImageOptions(imageSize: 40, evalResize: 50))
        guard case .streamed(let streamed) = test.images else { return XCTFail("an image folder streams its images") }
        let scratch = SampleScratch()
        for index in 0..<test.count {
            try scratch.decode(sample: index, of: streamed)
            let image = scratch.image
            let size = Resize.outputSize(width: image.width, height: image.height, shorterSide: 50)
            XCTAssertEqual(min(size.width, size.height), 50)
            var resized = [UInt8](repeating: 0, count: size.width * size.height * 3)
            var resampling = ResamplingScratch()
            Resampling.resizeBilinear(
                image, box: CropBox(width: image.width, height: image.height), toWidth: size.width, height: size.height,
                into: &resized, scratch: &resampling)
            let box = CenterCrop.box(width: size.width, height: size.height, cropWidth: 40, cropHeight: 40)
            var expected: [Float] = []
            for y in 0..<40 {
                for x in 0..<40 {
                    for c in 0..<3 {
                        let byte = resized[((y + box.top) * size.width + x + box.left) * 3 + c]
                        expected.append((Float(byte) / 255 - test.mean[c]) / test.std[c])
                    }
                }
            }
            XCTAssertEqual(try Augmenter(dataset: test, config: .none, seed: 1).augmentedSample(index: index, epoch: 1), expected)
        }
    }

    func testMeanAndStdOverrideTheNormalisationAndAreChecked() throws {
        let options = ImageOptions(mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25])
        let train = try folder("small", options: options)
        XCTAssertEqual(train.mean, [0.5, 0.5, 0.5])
        XCTAssertThrowsError(try folder("small", options: ImageOptions(mean: [0.5]))) { error in
            XCTAssertTrue("\(error)".contains("--mean with 3 value(s)"), "\(error)")
        }
        XCTAssertThrowsError(try folder("small", options: ImageOptions(std: [1, 0, 1]))) { error in
            XCTAssertTrue("\(error)".contains("--std values that are finite and positive"), "\(error)")
        }
    }

    /// A damaged file ends the epoch with an error naming it and its sample index, after the
    /// batches before it, whatever the loader threads; nothing hangs.
    func testADamagedImageEndsTheEpochWithAnErrorNamingIt() throws {
        let copy = try copyOfFixture("image-folder/small")
        let train = try DatasetSpec.folder.load(.train, directory: copy)
        let damaged = "\(copy)/train/square/square-03.jpg"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: damaged))
        bytes = bytes.prefix(bytes.count / 2)
        try bytes.write(to: URL(fileURLWithPath: damaged))
        for (threads, prefetch) in [(1, 0), (2, 2)] {
            let sampler = try ShardedSampler(sampleCount: train.count, globalBatchSize: 4, rank: 0, worldSize: 1, seed: 5)
            let loader = BatchLoader(
                dataset: train, schedule: sampler, augmentation: .none, seed: 3, prefetch: prefetch, loaderThreads: threads)
            var delivered = 0
            XCTAssertThrowsError(try loader.forEachBatch(epoch: 1) { _ in delivered += 1 }) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains(damaged) && message.contains("sample 11"), message)
            }
            XCTAssertLessThan(delivered, sampler.stepsPerEpoch)
            XCTAssertNil(try loader.next(), "the epoch is over after the error")
        }
    }

    func testAFileRemovedAfterIndexingIsNamed() throws {
        let copy = try copyOfFixture("image-folder/small")
        let train = try DatasetSpec.folder.load(.train, directory: copy)
        let removed = "\(copy)/train/stripes/stripes-01.jpg"
        try FileManager.default.removeItem(atPath: removed)
        XCTAssertThrowsError(try Augmenter(dataset: train, config: .none, seed: 1).augmentedSample(index: 17, epoch: 1)) { error in
            XCTAssertTrue("\(error)".contains(removed), "\(error)")
        }
    }

    func testAnImageOfAnotherSizeAmongSmallImagesIsNamed() throws {
        let copy = try copyOfFixture("image-folder/small")
        try FileManager.default.removeItem(atPath: "\(copy)/train/circle/circle-05.jpg")
        try FileManager.default.copyItem(
            atPath: Fixtures.path("image-folder/large/train/circle/circle-00.jpg"), toPath: "\(copy)/train/circle/circle-05.jpg")
        let train = try DatasetSpec.folder.load(.train, directory: copy)
        XCTAssertThrowsError(try Augmenter(dataset: train, config: .none, seed: 1).augmentedSample(index: 5, epoch: 1)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("circle-05.jpg") && message.contains("120×90") && message.contains("--image-size"), message)
        }
    }

    func testASubsetTakesEveryClass() throws {
        let train = try folder("small").limited(to: 9, seed: 4)
        XCTAssertEqual(train.count, 9)
        XCTAssertEqual(Set(train.labels), [0, 1, 2])
        XCTAssertEqual(train.labels, train.labels.sorted(), "kept in their order")
        XCTAssertEqual(try folder("small").limited(to: 9, seed: 4).labels, train.labels)
    }

    func testCheckListsEveryFailingImage() throws {
        let copy = try copyOfFixture("image-folder/small")
        try Data().write(to: URL(fileURLWithPath: "\(copy)/train/circle/circle-02.jpg"))
        try Data("not a picture\n".utf8).write(to: URL(fileURLWithPath: "\(copy)/train/stripes/stripes-07.jpg"))
        let train = try DatasetSpec.folder.load(.train, directory: copy)
        guard case .streamed(let streamed) = train.images else { return XCTFail("an image folder streams its images") }
        for threads in [1, 2] {
            let report = ImageCheck.run(streamed.store, threads: threads)
            XCTAssertEqual(report.checked, 24)
            XCTAssertEqual(report.failures.map(\.index), [2, 23], "threads \(threads)")
            XCTAssertTrue(report.failures[0].location.hasSuffix("circle/circle-02.jpg"))
        }
    }
}
