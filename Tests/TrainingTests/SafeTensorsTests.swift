import Foundation
import XCTest

@testable import Training

final class SafeTensorsTests: XCTestCase {
    func testRoundTripAndLayout() throws {
        let values: [Float] = [1, -2, 3.5, 4, 5, 6]
        let entries = [
            values.withUnsafeBufferPointer { SafeTensors.Entry.float32("fc.weight", shape: [2, 3], $0.baseAddress!, count: 6) },
            SafeTensors.Entry.int64Scalar("bn.num_batches_tracked", 7),
        ]
        let data = try SafeTensors.encode(entries, metadata: ["epoch": "3"])
        let headerLength = data.prefix(8).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        XCTAssertEqual(headerLength % 8, 0, "header padded to 8 bytes")
        XCTAssertEqual(data.count, 8 + headerLength + 6 * 4 + 8)
        let header = try XCTUnwrap(JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as? [String: Any])
        let weight = try XCTUnwrap(header["fc.weight"] as? [String: Any])
        XCTAssertEqual(weight["dtype"] as? String, "F32")
        XCTAssertEqual(weight["shape"] as? [Int], [2, 3])
        XCTAssertEqual(weight["data_offsets"] as? [Int], [0, 24])
        let count = try XCTUnwrap(header["bn.num_batches_tracked"] as? [String: Any])
        XCTAssertEqual(count["shape"] as? [Int], [], "0-dimensional, as PyTorch's num_batches_tracked")
        XCTAssertEqual(count["data_offsets"] as? [Int], [24, 32])
        let decoded = try SafeTensors.decode(data, file: "x")
        XCTAssertEqual(decoded.metadata["epoch"], "3")
        XCTAssertEqual(decoded.entries.map(\.name), ["fc.weight", "bn.num_batches_tracked"])
        XCTAssertEqual(decoded.entries[0].floats(), values)
        XCTAssertEqual(decoded.entries[1].int64s(), [7])
    }

    func testMalformedFilesGiveClearErrors() throws {
        let good = try SafeTensors.encode([SafeTensors.Entry.int64("a", [1, 2])])
        for (bytes, expected) in [
            (good.prefix(5), "shorter than"), (good.prefix(good.count - 4), "do not fit"),
            (Data([255, 0, 0, 0, 0, 0, 0, 0]) + Data(count: 8), "exceeds"),
        ] {
            XCTAssertThrowsError(try SafeTensors.decode(Data(bytes), file: "model.safetensors")) { error in
                XCTAssertTrue("\(error)".contains("model.safetensors"), "\(error)")
                XCTAssertTrue("\(error)".contains(expected), "\(error)")
            }
        }
    }
}
