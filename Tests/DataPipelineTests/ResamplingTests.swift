import Foundation
import Tensors
import XCTest

@testable import DataPipeline

/// `Resampling.resizeBilinear` against Pillow's own output (`Tests/Fixtures/resampling`, see its
/// README), the crop-copy, and torchvision's crop geometry.
final class ResamplingTests: XCTestCase {
    private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/resampling")

    /// One line of `cases.json`.
    private struct ReferenceCase: Decodable {
        var name: String
        var source: [Int]  // width, height
        var box: [Int]  // left, top, width, height
        var size: [Int]  // width, height
        var edges: String  // "image" or "box"
        var fnv1a64: String
        var file: String?
    }

    /// The fixtures' test image of `width × height` (the README's `source`): 8×8 cells alternating
    /// hash noise and gradients.
    static func testImage(width: Int, height: Int) -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<3 {
                    let value: UInt8
                    if ((x >> 3) + (y >> 3)) & 1 == 0 {
                        var h = UInt32(x) &* 0x9E37_79B1 &+ UInt32(y) &* 0x85EB_CA77 &+ UInt32(c) &* 0xC2B2_AE3D
                        h ^= h >> 15
                        h = h &* 0x2C1B_3C6D
                        h ^= h >> 12
                        value = UInt8(truncatingIfNeeded: h)
                    } else {
                        value = UInt8(truncatingIfNeeded: x * 3 + y * 2 + c * 60)
                    }
                    pixels[(y * width + x) * 3 + c] = value
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    private static func fnv1a64(_ bytes: [UInt8]) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    private func resize(
        _ image: RGBImage, box: CropBox, width: Int, height: Int, edges: ResamplingEdges = .image,
        scratch: inout ResamplingScratch
    ) -> [UInt8] {
        var output = [UInt8](repeating: 0xAA, count: width * height * 3)
        output.withUnsafeMutableBufferPointer {
            Resampling.resizeBilinear(
                image, box: box, toWidth: width, height: height, edges: edges, into: $0.baseAddress!, scratch: &scratch)
        }
        return output
    }

    private func referenceCases() throws -> [ReferenceCase] {
        try JSONDecoder().decode([ReferenceCase].self, from: Data(contentsOf: fixtures.appendingPathComponent("cases.json")))
    }

    // MARK: Pillow's output

    /// Every case of the fixtures, byte for byte: shrinking by 1.3×, 2×, 3.7×, 7×, enlarging,
    /// boxes inside and touching each edge, skipped passes, a box the output's size (a crop),
    /// one-pixel-wide images, odd and tall sizes, `edges: .box`, and the recipes' sizes (those by
    /// digest only). One scratch serves all cases one after another, and a fresh one each.
    func testEveryCaseMatchesPillowByteForByte() throws {
        let cases = try referenceCases()
        XCTAssertGreaterThanOrEqual(cases.count, 30)
        var sharedScratch = ResamplingScratch()
        for reference in cases {
            let image = Self.testImage(width: reference.source[0], height: reference.source[1])
            let box = CropBox(top: reference.box[1], left: reference.box[0], height: reference.box[3], width: reference.box[2])
            let edges: ResamplingEdges = reference.edges == "box" ? .box : .image
            let (width, height) = (reference.size[0], reference.size[1])
            var freshScratch = ResamplingScratch()
            let output = resize(image, box: box, width: width, height: height, edges: edges, scratch: &freshScratch)
            let reused = resize(image, box: box, width: width, height: height, edges: edges, scratch: &sharedScratch)
            XCTAssertEqual(reused, output, "\(reference.name): a used scratch changes the output")
            if let file = reference.file {
                let expected = [UInt8](try Data(contentsOf: fixtures.appendingPathComponent(file)))
                XCTAssertEqual(expected.count, output.count, reference.name)
                let differences = zip(output, expected).map { abs(Int($0) - Int($1)) }
                XCTAssertEqual(
                    differences.filter { $0 != 0 }.count, 0,
                    "\(reference.name): bytes differ from Pillow's, by up to \(differences.max() ?? 0)")
            }
            XCTAssertEqual(Self.fnv1a64(output), reference.fnv1a64, "\(reference.name): the output's digest is not Pillow's")
        }
    }

    /// Once the scratch has grown to the largest sizes, further calls leave it as it is.
    func testTheScratchStopsGrowing() {
        let image = Self.testImage(width: 330, height: 330)
        var scratch = ResamplingScratch()
        _ = resize(image, box: CropBox(width: 330, height: 330), width: 224, height: 224, scratch: &scratch)
        _ = resize(image, box: CropBox(top: 10, left: 5, height: 40, width: 300), width: 224, height: 224, scratch: &scratch)
        let grown = scratch.byteCount
        XCTAssertGreaterThan(grown, 0)
        for (box, width, height) in [
            (CropBox(width: 330, height: 330), 224, 224), (CropBox(top: 3, left: 7, height: 100, width: 90), 224, 224),
            (CropBox(top: 0, left: 0, height: 200, width: 330), 100, 64),
        ] {
            _ = resize(image, box: box, width: width, height: height, scratch: &scratch)
            XCTAssertEqual(scratch.byteCount, grown, "\(box) → \(width)×\(height)")
        }
    }

    /// `edges: .box` is the same as resizing a copy of the box with `edges: .image`.
    func testBoxEdgesAreACropThenAResize() {
        let image = Self.testImage(width: 61, height: 47)
        var scratch = ResamplingScratch()
        for box in [CropBox(top: 5, left: 9, height: 30, width: 41), CropBox(top: 0, left: 40, height: 47, width: 21)] {
            var cropped = [UInt8](repeating: 0, count: box.width * box.height * 3)
            cropped.withUnsafeMutableBufferPointer { Resampling.copyCrop(image, box: box, into: $0.baseAddress!) }
            let croppedImage = RGBImage(width: box.width, height: box.height, pixels: cropped)
            for (width, height) in [(13, 11), (80, 9), (41, 30)] {
                XCTAssertEqual(
                    resize(image, box: box, width: width, height: height, edges: .box, scratch: &scratch),
                    resize(
                        croppedImage, box: CropBox(width: box.width, height: box.height), width: width, height: height,
                        scratch: &scratch), "\(box) → \(width)×\(height)")
            }
        }
    }

    /// A box the size of the output is copied untouched, as Pillow's `_resize` crops it.
    func testABoxTheOutputsSizeIsACopy() {
        let image = Self.testImage(width: 20, height: 16)
        var scratch = ResamplingScratch()
        let box = CropBox(top: 3, left: 4, height: 9, width: 11)
        var expected = [UInt8](repeating: 0, count: 11 * 9 * 3)
        expected.withUnsafeMutableBufferPointer { Resampling.copyCrop(image, box: box, into: $0.baseAddress!) }
        XCTAssertEqual(resize(image, box: box, width: 11, height: 9, scratch: &scratch), expected)
    }

    // MARK: Crop-copy

    /// `copyCrop` against its definition, pixel by pixel: boxes inside, across each edge, larger
    /// than the image and wholly outside, plain and flipped.
    func testCopyCropIsTheBoxMirroredIfAskedWithZerosOutside() {
        let (width, height) = (9, 7)
        let image = Self.testImage(width: width, height: height)
        let boxes = [
            CropBox(top: 1, left: 2, height: 4, width: 5), CropBox(top: -2, left: -3, height: 5, width: 6),
            CropBox(top: 4, left: 6, height: 6, width: 7), CropBox(top: -3, left: -4, height: 13, width: 17),
            CropBox(top: 0, left: 0, height: 7, width: 9), CropBox(top: 8, left: 0, height: 2, width: 3),
            CropBox(top: 0, left: -5, height: 2, width: 4), CropBox(top: 0, left: 9, height: 2, width: 4),
        ]
        for box in boxes {
            for flipped in [false, true] {
                var output = [UInt8](repeating: 0xAA, count: box.width * box.height * 3)
                output.withUnsafeMutableBufferPointer {
                    Resampling.copyCrop(image, box: box, flipped: flipped, into: $0.baseAddress!)
                }
                var expected: [UInt8] = []
                for row in 0..<box.height {
                    for column in 0..<box.width {
                        let (y, x) = (box.top + row, box.left + (flipped ? box.width - 1 - column : column))
                        for c in 0..<3 {
                            let inside = (0..<height).contains(y) && (0..<width).contains(x)
                            expected.append(inside ? image.pixels[(y * width + x) * 3 + c] : 0)
                        }
                    }
                }
                XCTAssertEqual(output, expected, "\(box) flipped: \(flipped)")
            }
        }
    }

    // MARK: torchvision's geometry

    func testRandomResizedCropBoxesLieInsideTheImage() {
        var random = RandomGenerator(seed: 11)
        for (width, height) in [(500, 375), (375, 500), (224, 224), (1, 1), (1, 100), (100, 1), (3, 500), (17, 5)] {
            for _ in 0..<2000 {
                let box = RandomResizedCrop.box(width: width, height: height, random: &random)
                XCTAssertTrue(box.isInside(width: width, height: height), "\(box) in \(width)×\(height)")
            }
        }
    }

    /// The draws are those documented, in that order: area, log-ratio, then top and left.
    func testRandomResizedCropDrawsInTheDocumentedOrder() {
        for seed: UInt64 in 0..<50 {
            var random = RandomGenerator(seed: seed)
            let box = RandomResizedCrop.box(width: 640, height: 480, random: &random)
            var replay = RandomGenerator(seed: seed)
            var expected: CropBox?
            for _ in 0..<10 where expected == nil {
                let area = 640.0 * 480.0 * (0.08 + (1 - 0.08) * replay.nextUniformDouble())
                let (logLower, logUpper) = (log(3.0 / 4.0), log(4.0 / 3.0))
                let ratio = exp(logLower + (logUpper - logLower) * replay.nextUniformDouble())
                let w = Int((area * ratio).squareRoot().rounded(.toNearestOrEven))
                let h = Int((area / ratio).squareRoot().rounded(.toNearestOrEven))
                if w > 0 && w <= 640 && h > 0 && h <= 480 {
                    let top = replay.nextIndex(below: 480 - h + 1)
                    expected = CropBox(top: top, left: replay.nextIndex(below: 640 - w + 1), height: h, width: w)
                }
            }
            XCTAssertEqual(box, expected ?? RandomResizedCrop.fallbackBox(width: 640, height: 480), "seed \(seed)")
            XCTAssertEqual(random, replay, "seed \(seed): a different number of draws")
        }
    }

    func testTheSameSeedGivesTheSameBoxes() {
        func boxes(seed: UInt64) -> [CropBox] {
            var random = RandomGenerator(seed: seed)
            return (0..<100).map { _ in RandomResizedCrop.box(width: 500, height: 333, random: &random) }
        }
        XCTAssertEqual(boxes(seed: 5), boxes(seed: 5))
        XCTAssertNotEqual(boxes(seed: 5), boxes(seed: 6))
    }

    /// Areas are uniform in `scale`: on a square image every area up to 3/4 of it fits at any
    /// ratio, so the accepted fractions are uniform on [0.08, 0.75] (the larger ones are
    /// sometimes redrawn). The ratio's logarithm is uniform too.
    func testAreasAreUniformInScale() {
        var random = RandomGenerator(seed: 3)
        let side = 1000
        let bins = 6
        var areaCounts = [Int](repeating: 0, count: bins)
        var ratioCounts = [Int](repeating: 0, count: 4)
        let draws = 30000
        for _ in 0..<draws {
            let box = RandomResizedCrop.box(width: side, height: side, random: &random)
            let fraction = Double(box.width * box.height) / Double(side * side)
            XCTAssertGreaterThanOrEqual(fraction, 0.079)
            XCTAssertLessThanOrEqual(fraction, 1.0)
            if fraction >= 0.08 && fraction < 0.75 {
                areaCounts[min(bins - 1, Int((fraction - 0.08) / (0.67 / Double(bins))))] += 1
                // Below 3/4 no try is refused, so the ratio is as drawn (up to rounding).
                let logRatio = log(Double(box.width) / Double(box.height))
                let position = (logRatio - log(3.0 / 4.0)) / (log(4.0 / 3.0) - log(3.0 / 4.0))
                ratioCounts[min(3, max(0, Int(position * 4)))] += 1
            }
        }
        let areaMean = Double(areaCounts.reduce(0, +)) / Double(bins)
        XCTAssertGreaterThan(areaMean * Double(bins), Double(draws) * 0.6)
        for count in areaCounts { XCTAssertEqual(Double(count), areaMean, accuracy: areaMean * 0.08, "\(areaCounts)") }
        let ratioMean = Double(ratioCounts.reduce(0, +)) / 4
        for count in ratioCounts { XCTAssertEqual(Double(count), ratioMean, accuracy: ratioMean * 0.08, "\(ratioCounts)") }
    }

    /// When no try fits (here: every area is larger than the image), the centre box, clamped to
    /// the ratio's range.
    func testTheFallbackIsTheCentreBoxOfTheNearestRatio() {
        var random = RandomGenerator(seed: 1)
        let impossible = 1.5...2.0
        // Within the ratio range: the whole image.
        XCTAssertEqual(
            RandomResizedCrop.box(width: 400, height: 350, scale: impossible, random: &random),
            CropBox(top: 0, left: 0, height: 350, width: 400))
        // Too wide: full height, width round(height · 4/3), centred.
        XCTAssertEqual(
            RandomResizedCrop.box(width: 1000, height: 300, scale: impossible, random: &random),
            CropBox(top: 0, left: 300, height: 300, width: 400))
        // Too tall: full width, height round(width / (3/4)), centred (rounded down).
        XCTAssertEqual(
            RandomResizedCrop.box(width: 300, height: 1001, scale: impossible, random: &random),
            CropBox(top: 300, left: 0, height: 400, width: 300))
        // round(3 · 4/3) = 4 and round(7 / 0.75 = 9.33) = 9.
        XCTAssertEqual(RandomResizedCrop.fallbackBox(width: 100, height: 3), CropBox(top: 0, left: 48, height: 3, width: 4))
        XCTAssertEqual(RandomResizedCrop.fallbackBox(width: 7, height: 100), CropBox(top: 45, left: 0, height: 9, width: 7))
        // Each try draws twice: ten failed tries are twenty draws, and nothing else.
        var counted = RandomGenerator(seed: 9)
        _ = RandomResizedCrop.box(width: 50, height: 50, scale: impossible, random: &counted)
        var expected = RandomGenerator(seed: 9)
        for _ in 0..<20 { _ = expected.next() }
        XCTAssertEqual(counted, expected)
    }

    func testResizeGivesTheShorterSideTheSize() {
        XCTAssertTrue(Resize.outputSize(width: 500, height: 375, shorterSide: 256) == (341, 256))  // 341.33
        XCTAssertTrue(Resize.outputSize(width: 375, height: 500, shorterSide: 256) == (256, 341))
        XCTAssertTrue(Resize.outputSize(width: 333, height: 500, shorterSide: 256) == (256, 384))  // 384.38
        XCTAssertTrue(Resize.outputSize(width: 300, height: 300, shorterSide: 256) == (256, 256))
        XCTAssertTrue(Resize.outputSize(width: 100, height: 50, shorterSide: 256) == (512, 256))  // enlarged
        XCTAssertTrue(Resize.outputSize(width: 1, height: 3, shorterSide: 256) == (256, 768))
        XCTAssertTrue(Resize.outputSize(width: 683, height: 256, shorterSide: 256) == (683, 256))  // already there
    }

    func testCenterCropRoundsHalvesToEvenAndPadsSmallImages() {
        // 341 − 224 = 117: left round(58.5) = 58; 256 − 224 = 32: top 16.
        XCTAssertEqual(
            CenterCrop.box(width: 341, height: 256, cropWidth: 224, cropHeight: 224), CropBox(top: 16, left: 58, height: 224, width: 224))
        XCTAssertEqual(
            CenterCrop.box(width: 256, height: 341, cropWidth: 224, cropHeight: 224), CropBox(top: 58, left: 16, height: 224, width: 224))
        // round(16.5) = 16, round(17.5) = 18.
        XCTAssertEqual(CenterCrop.box(width: 257, height: 259, cropWidth: 224, cropHeight: 224).left, 16)
        XCTAssertEqual(CenterCrop.box(width: 257, height: 259, cropWidth: 224, cropHeight: 224).top, 18)
        // Smaller than the crop: padded by (224 − 200) / 2 = 12 on the left, (224 − 101) / 2 = 61 on top.
        XCTAssertEqual(
            CenterCrop.box(width: 200, height: 101, cropWidth: 224, cropHeight: 224), CropBox(top: -61, left: -12, height: 224, width: 224))
        // One side smaller, one larger.
        XCTAssertEqual(
            CenterCrop.box(width: 300, height: 100, cropWidth: 224, cropHeight: 224), CropBox(top: -62, left: 38, height: 224, width: 224))
    }

    /// A centre crop of an image smaller than the crop, copied: torchvision's zero padding, then
    /// its crop of the padded image.
    func testCenterCropOfASmallImageIsTorchvisionsPaddedCrop() {
        let (width, height, crop) = (5, 8, 10)
        let image = Self.testImage(width: width, height: height)
        let box = CenterCrop.box(width: width, height: height, cropWidth: crop, cropHeight: crop)
        var output = [UInt8](repeating: 0xAA, count: crop * crop * 3)
        output.withUnsafeMutableBufferPointer { Resampling.copyCrop(image, box: box, into: $0.baseAddress!) }
        // torchvision: padding_ltrb = [(10 − 5) // 2, (10 − 8) // 2, (10 − 5 + 1) // 2, (10 − 8 + 1) // 2].
        let (padLeft, padTop, padRight, padBottom) = (2, 1, 3, 1)
        let (paddedWidth, paddedHeight) = (padLeft + width + padRight, padTop + height + padBottom)
        XCTAssertEqual(paddedWidth, crop)
        XCTAssertEqual(paddedHeight, crop)
        var expected = [UInt8](repeating: 0, count: crop * crop * 3)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<3 { expected[((y + padTop) * crop + x + padLeft) * 3 + c] = image.pixels[(y * width + x) * 3 + c] }
            }
        }
        XCTAssertEqual(output, expected)
    }

    func testTheFlipDrawIsOneUniform() {
        var random = RandomGenerator(seed: 4)
        var replay = random
        var flips = 0
        for _ in 0..<10000 {
            let flip = RandomHorizontalFlip.draw(random: &random)
            XCTAssertEqual(flip, replay.nextUniform() < 0.5)
            if flip { flips += 1 }
        }
        XCTAssertEqual(Double(flips), 5000, accuracy: 250)
        XCTAssertFalse(RandomHorizontalFlip.draw(probability: 0, random: &random))
    }
}
