import CZlib
import Foundation
import XCTest

@testable import DataPipeline

/// `ImageDecoder` against Pillow 13's `Image.open(f).convert("RGB")` (torchvision's default
/// loader) on the fixtures of `Tests/Fixtures/images` (see its README), and its errors.
final class ImageDecoderTests: XCTestCase {
    private static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/images")

    private func fixture(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: Self.fixtures.appendingPathComponent(name)))
    }

    /// Decodes `bytes` into `image` (`withUnsafeBytes` rethrows untyped errors: this keeps DataError).
    private func decode(_ bytes: [UInt8], with decoder: ImageDecoder, into image: inout RGBImage, source: String) throws(DataError) {
        var failure: DataError?
        bytes.withUnsafeBytes { buffer in
            do throws(DataError) {
                try decoder.decode(buffer, into: &image, source: source)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
    }

    private func decode(_ bytes: [UInt8], with decoder: ImageDecoder = ImageDecoder(), source: String) throws(DataError) -> RGBImage {
        var image = RGBImage()
        try decode(bytes, with: decoder, into: &image, source: source)
        return image
    }

    private func size(_ bytes: [UInt8], source: String) throws(DataError) -> (width: Int, height: Int) {
        var result: Result<(width: Int, height: Int), DataError> = .success((0, 0))
        bytes.withUnsafeBytes { buffer in
            do throws(DataError) {
                result = .success(try ImageDecoder.size(of: buffer, source: source))
            } catch {
                result = .failure(error)
            }
        }
        return try result.get()
    }

    /// Decodes `name` and compares with Pillow's pixels (`NAME.rgb`); returns the largest
    /// difference of one sample.
    @discardableResult
    private func assertMatchesPillow(_ name: String, width: Int, height: Int, tolerance: Int = 0, line: UInt = #line) throws -> Int {
        let image = try decode(try fixture(name), source: name)
        let expected = try fixture(String(name.prefix { $0 != "." }) + ".rgb")
        XCTAssertEqual([image.width, image.height], [width, height], name, line: line)
        XCTAssertEqual(expected.count, width * height * 3, name, line: line)
        let actual = image.pixels.prefix(expected.count)
        let difference = zip(actual, expected).map { abs(Int($0) - Int($1)) }.max() ?? 0
        XCTAssertLessThanOrEqual(difference, tolerance, "\(name): max abs difference from Pillow", line: line)
        let (w, h) = try size(try fixture(name), source: name)
        XCTAssertEqual([w, h], [width, height], "size(of:) of \(name)", line: line)
        return difference
    }

    // MARK: Pixels

    func testJPEGsMatchPillow() throws {
        for name in ["rgb444.jpg", "rgb422.jpg", "rgb420.jpg", "progressive.jpg", "restart.jpg", "grey.jpg", "cmyk.jpg", "ycck.jpg"] {
            try assertMatchesPillow(name, width: 37, height: 29)
        }
    }

    /// Stray bytes before the end marker make libjpeg warn; the image is whole and is accepted.
    func testExtraneousBytesBeforeAMarkerAreAccepted() throws {
        try assertMatchesPillow("extraneous.jpg", width: 37, height: 29)
        XCTAssertEqual(try fixture("extraneous.rgb"), try fixture("rgb420.rgb"))
    }

    func testPNGsMatchPillow() throws {
        let names = [
            "grey1", "grey2", "grey4", "grey8", "grey16", "grey16-low", "grey8-trns", "greyalpha8", "greyalpha16", "rgb8", "rgb8-trns",
            "rgb16", "rgba8", "rgba16", "palette1", "palette2", "palette4", "palette8", "palette8-trns", "palette4-short", "rgb8-adam7",
            "grey2-adam7", "palette4-adam7", "rgba16-adam7", "greyalpha16-adam7",
        ]
        for name in names { try assertMatchesPillow(name + ".png", width: 13, height: 11) }
        try assertMatchesPillow("rgb8-adam7-tiny.png", width: 3, height: 2)
    }

    /// Pillow clips 16-bit grey to 255 rather than keeping the high byte: check the fixture shows it.
    func testSixteenBitGreyIsClippedAsPillowDoes() throws {
        let image = try decode(try fixture("grey16-low.png"), source: "grey16-low.png")
        let values = Set(stride(from: 0, to: 13 * 11 * 3, by: 3).map { image.pixels[$0] })
        XCTAssertTrue(values.contains(255) && values.contains { $0 > 0 && $0 < 255 }, "\(values.sorted())")
    }

    /// Storage is reused: a smaller image after a larger one keeps the buffer; the decoder's
    /// handle survives a warning and an error.
    func testStorageIsReusedAndTheDecoderSurvivesErrors() throws {
        let decoder = ImageDecoder()
        var image = RGBImage()
        let large = try fixture("rgb420.jpg")
        let small = try fixture("rgb8.png")
        try decode(large, with: decoder, into: &image, source: "a")
        let storage = image.pixels.withUnsafeBufferPointer { $0.baseAddress }
        XCTAssertEqual(image.pixels.count, 37 * 29 * 3)
        try decode(small, with: decoder, into: &image, source: "b")
        XCTAssertEqual([image.width, image.height, image.pixels.count], [13, 11, 37 * 29 * 3])
        XCTAssertEqual(image.pixels.withUnsafeBufferPointer { $0.baseAddress }, storage)
        XCTAssertEqual(Array(image.pixels.prefix(13 * 11 * 3)), try fixture("rgb8.rgb"))
        _ = try? decode(Array(large.prefix(700)), with: decoder, source: "cut")
        _ = try decode(try fixture("extraneous.jpg"), with: decoder, source: "extraneous")
        XCTAssertEqual(try decode(large, with: decoder, source: "again").pixels, try fixture("rgb420.rgb"))
    }

    func testLibraryVersions() {
        let versions = Dictionary(uniqueKeysWithValues: ImageDecoder.libraryVersions.map { ($0.name, $0.version) })
        XCTAssertEqual(versions.keys.sorted(), ["libjpeg-turbo", "libspng"])
        for version in versions.values { XCTAssertTrue(version.first?.isNumber ?? false && version.contains("."), version) }
    }

    // MARK: Errors

    func testEmptyFile() {
        assertDataError(.truncated, naming: "train/cat/empty.jpg") { try decode([], source: "train/cat/empty.jpg") }
        assertDataError(.truncated, naming: "train/cat/empty.jpg") { try size([], source: "train/cat/empty.jpg") }
    }

    func testTextFileNamedJPEG() {
        let html = Array("<!DOCTYPE html>\n<html><body>404 Not Found</body></html>\n".utf8)
        assertDataError(.badMagic, naming: "train/cat/0001.jpg") { try decode(html, source: "train/cat/0001.jpg") }
        do {
            _ = try decode(html, source: "x.jpg")
        } catch {
            XCTAssertTrue(error.found.contains("text") && error.found.contains("<!DOCTYPE html>"), error.found)
            XCTAssertTrue(error.found.contains("3C 21 44 4F"), error.found)
            XCTAssertTrue(error.expected.contains("FF D8 FF"), error.expected)
        }
        assertDataError(.badMagic, naming: "a.jpg") { try decode(Array("GIF89a\u{1}\u{0}".utf8), source: "a.jpg") }
        assertDataError(.badMagic, naming: "b.jpg") { try decode([0xFF, 0xD8], source: "b.jpg") }
    }

    func testTruncatedJPEG() throws {
        let jpeg = try fixture("rgb420.jpg")
        for length in [jpeg.count / 2, jpeg.count - 2, 700] {
            assertDataError(.truncated, naming: "cut.jpg") { try decode(Array(jpeg.prefix(length)), source: "cut.jpg") }
        }
        // Cut inside the header, before the frame header.
        assertDataError(.truncated, naming: "head.jpg") { try decode(Array(jpeg.prefix(40)), source: "head.jpg") }
        assertDataError(.truncated, naming: "head.jpg") { try size(Array(jpeg.prefix(40)), source: "head.jpg") }
    }

    func testDamagedJPEGData() throws {
        var jpeg = try fixture("rgb444.jpg")
        let scan = try XCTUnwrap((0..<jpeg.count - 1).last { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xDA })
        // A restart marker in the middle of the entropy-coded data of a file without restarts.
        (jpeg[scan + 400], jpeg[scan + 401]) = (0xFF, 0xD3)
        assertDataError(.undecodableImage, naming: "damaged.jpg") { try decode(jpeg, source: "damaged.jpg") }
        do {
            _ = try decode(jpeg, source: "damaged.jpg")
        } catch {
            XCTAssertTrue(error.found.hasPrefix("libjpeg-turbo: Corrupt JPEG data"), error.found)
        }
    }

    func testTruncatedPNG() throws {
        let png = try fixture("rgb16.png")
        for length in [png.count / 2, png.count - 20, 40] {
            assertDataError(.truncated, naming: "cut.png") { try decode(Array(png.prefix(length)), source: "cut.png") }
        }
        assertDataError(.truncated, naming: "head.png") { try decode(Array(png.prefix(20)), source: "head.png") }
        assertDataError(.truncated, naming: "head.png") { try size(Array(png.prefix(20)), source: "head.png") }
    }

    func testPNGWithABadCRC() throws {
        let original = try fixture("rgb8.png")
        // A byte of IHDR's CRC, of IDAT's data, of IDAT's CRC (the last chunk but IEND), of IEND's CRC.
        for offset in [32, 60, original.count - 13, original.count - 1] {
            var png = original
            png[offset] ^= 0x01
            assertDataError(.undecodableImage, naming: "crc.png") { try decode(png, source: "crc.png") }
            do {
                _ = try decode(png, source: "crc.png")
            } catch {
                XCTAssertTrue(error.expected.contains("CRC"), "\(offset): \(error)")
            }
        }
    }

    func testAbsurdSizesAreRefusedBeforeDecoding() throws {
        var jpeg = try fixture("rgb420.jpg")
        let frame = try XCTUnwrap((0..<jpeg.count - 1).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
        (jpeg[frame + 5], jpeg[frame + 6], jpeg[frame + 7], jpeg[frame + 8]) = (0xFD, 0xE8, 0xFD, 0xE8)  // 65 000 × 65 000
        assertDataError(.undecodableImage, naming: "huge.jpg") { try decode(jpeg, source: "huge.jpg") }
        assertDataError(.undecodableImage, naming: "huge.jpg") { try size(jpeg, source: "huge.jpg") }

        var png = try fixture("rgb8.png")
        for (offset, byte) in [0x00, 0x01, 0x86, 0xA0, 0x00, 0x01, 0x86, 0xA0].enumerated() { png[16 + offset] = UInt8(byte) }  // 100 000²
        let crc = UInt32(png[12..<29].withUnsafeBufferPointer { crc32(0, $0.baseAddress, 17) })
        for shift in 0..<4 { png[29 + shift] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * shift)) }
        assertDataError(.undecodableImage, naming: "huge.png") { try decode(png, source: "huge.png") }
        assertDataError(.undecodableImage, naming: "huge.png") { try size(png, source: "huge.png") }
        do {
            _ = try decode(png, source: "huge.png")
        } catch {
            XCTAssertTrue(error.found.contains("100000×100000"), error.found)
        }
        for (offset, byte) in [0, 0, 0, 0].enumerated() { png[16 + offset] = UInt8(byte) }  // zero width
        assertDataError(.undecodableImage, naming: "zero.png") { try size(png, source: "zero.png") }
    }

    /// Whatever the bytes, decoding returns or throws a `DataError`: no crash, no hang. Every
    /// fixture cut at several points and with bytes overwritten at random.
    func testDamagedFilesNeverCrash() throws {
        let decoder = ImageDecoder()
        var random = SystemRandomNumberGenerator()
        var image = RGBImage()
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.fixtures.path).filter {
            $0.hasSuffix(".jpg") || $0.hasSuffix(".png")
        }
        for name in names {
            let original = try fixture(name)
            for trial in 0..<40 {
                var bytes = original
                if trial % 4 == 0 {
                    bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &random)))
                } else {
                    for _ in 0..<(1 + trial % 5) {
                        bytes[Int.random(in: 2..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                    }
                }
                do throws(DataError) {
                    _ = try? size(bytes, source: name)
                    try decode(bytes, with: decoder, into: &image, source: name)
                } catch {
                    XCTAssertTrue(error.description.contains(name), "\(error)")
                }
            }
        }
    }
}
