import Models
import Tensors
import XCTest

@testable import Layers

/// `pskd bench --profile`'s per-layer times: every layer that ran has a row with its dotted
/// name and type, a composite's row holds only its own work, and nothing is recorded while no
/// profile is on.
final class LayerProfileTests: XCTestCase {
    private func model() throws -> Model {
        let network = Sequential([
            Conv2d(1, 4, kernelSize: 3, padding: 1), PreActBlock(4, 8, stride: 2), GlobalAvgPool2d(), Linear(8, 3),
        ])
        return try Model(name: "probe", network: network, sampleShape: [8, 8, 1], classCount: 3, generator: RandomGenerator(seed: 1))
    }

    func testEveryLayerHasARowWithItsOwnTime() throws {
        let model = try model()
        let input = Tensor(shape: [4, 8, 8, 1], repeating: 0.5)
        let profile = LayerProfile()
        LayerProfile.recording = profile
        defer { LayerProfile.recording = nil }
        let start = LayerProfile.now
        let logits = try model.forward(input, mode: .training)
        model.backward(Tensor(shape: logits.shape, repeating: 0.1))
        let elapsed = LayerProfile.now - start
        LayerProfile.recording = nil

        let rows = profile.rows(of: model.network)
        XCTAssertEqual(rows.map(\.name), ["0", "1", "1.bn1", "1.conv1", "1.bn2", "1.conv2", "1.shortcut.0", "2", "3"])
        XCTAssertEqual(
            rows.map(\.type),
            ["Conv2d", "PreActBlock", "BatchNorm", "Conv2d", "BatchNorm", "Conv2d", "Conv2d", "GlobalAvgPool2d", "Linear"])
        for row in rows {
            XCTAssertGreaterThan(row.forwardSeconds, 0, row.name)
            XCTAssertGreaterThan(row.backwardSeconds, 0, row.name)
        }
        let own = rows.reduce(0) { $0 + $1.forwardSeconds + $1.backwardSeconds }
        XCTAssertLessThanOrEqual(own, elapsed, "own times add up to no more than the passes took")
        let block = try XCTUnwrap(rows.first { $0.name == "1" })
        let blockChildren = rows.filter { $0.name.hasPrefix("1.") }.reduce(0) { $0 + $1.forwardSeconds }
        XCTAssertLessThan(block.forwardSeconds, blockChildren, "the block's own forward is its add, less than its layers' work")
    }

    func testNothingIsRecordedWhileNoProfileIsOn() throws {
        let model = try model()
        let profile = LayerProfile()
        let logits = try model.forward(Tensor(shape: [2, 8, 8, 1], repeating: 0.5), mode: .training)
        model.backward(Tensor(shape: logits.shape, repeating: 0.1))
        XCTAssertEqual(profile.rows(of: model.network), [])
    }
}
