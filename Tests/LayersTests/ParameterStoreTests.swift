import Layers
import Models
import Tensors
import TestSupport
import XCTest

final class ParameterStoreTests: XCTestCase {
    private let cifar100 = ModelZoo.Input(height: 32, width: 32, channels: 3, classes: 100)

    /// PreAct ResNet-18's trainable scalars derived by hand: a 3×3 stem without bias (with a
    /// BatchNorm in the paper's network); per block two BatchNorms (γ, β), two 3×3 convolutions
    /// without bias and, when the width or stride changes, a 1×1 projection without bias; a final
    /// BatchNorm in He et al.'s variant only; a linear classifier with bias.
    private func preActResNet18Count(channels: Int, classes: Int, widths: [Int], stemBatchNorm: Bool, finalBatchNorm: Bool) -> Int {
        var count = channels * widths[0] * 9 + (stemBatchNorm ? 2 * widths[0] : 0)
        var inputs = widths[0]
        for (stage, width) in widths.enumerated() {
            for block in 0..<2 {
                let from = block == 0 ? inputs : width
                let stride = block == 0 && stage > 0 ? 2 : 1
                count += 2 * from + from * width * 9 + 2 * width + width * width * 9
                if from != width || stride != 1 { count += from * width }
            }
            inputs = width
        }
        if finalBatchNorm { count += 2 * inputs }
        return count + inputs * classes + classes
    }

    func testParameterCountsOfTheZoo() throws {
        let mlp = try ModelZoo.make("mlp", generator: RandomGenerator(seed: 1))
        // 784·1024 + 1024 + 1024·1024 + 1024 + 1024·10 + 10
        XCTAssertEqual(mlp.parameters.parameterCount, 1_863_690)
        let cnn = try ModelZoo.make("cnn", generator: RandomGenerator(seed: 1))
        // convs 320 + 9 248 + 18 496 + 36 928, BatchNorms 2·(32 + 32 + 64 + 64), fc 3136·256 + 256, 256·10 + 10
        XCTAssertEqual(cnn.parameters.parameterCount, 871_018)
        XCTAssertEqual(cnn.parameters.buffers.count, 2 * (32 + 32 + 64 + 64))
    }

    /// The paper's network has the official `CIFAR_ResNet18_preActBasic`'s counts: 11 171 274
    /// for CIFAR-10 and 11 217 444 for CIFAR-100.
    func testPreActResNet18ParameterCounts() throws {
        let widths = [64, 128, 256, 512]
        for (classes, official) in [(10, 11_171_274), (100, 11_217_444)] {
            let input = ModelZoo.Input(height: 32, width: 32, channels: 3, classes: classes)
            let model = try ModelZoo.make("preact-resnet18", input: input, generator: RandomGenerator(seed: 1))
            XCTAssertEqual(model.parameters.parameterCount, official)
            XCTAssertEqual(
                preActResNet18Count(channels: 3, classes: classes, widths: widths, stemBatchNorm: true, finalBatchNorm: false), official)
            XCTAssertEqual(model.network.namedParameters().reduce(0) { $0 + $1.parameter.shape.reduce(1, *) }, official)
        }
        let he = try ModelZoo.make("preact-resnet18-he", input: cifar100, generator: RandomGenerator(seed: 1))
        XCTAssertEqual(he.parameters.parameterCount, 11_218_340)
        XCTAssertEqual(
            preActResNet18Count(channels: 3, classes: 100, widths: widths, stemBatchNorm: false, finalBatchNorm: true), 11_218_340)
        // On Fashion-MNIST the stem takes one channel: 2 · 64 · 9 = 1 152 fewer than for 3 × 32 × 32.
        let fashion = try ModelZoo.make("preact-resnet18", input: .fashionMNIST, generator: RandomGenerator(seed: 1))
        XCTAssertEqual(fashion.parameters.parameterCount, 11_171_274 - 1_152)
    }

    func testPreActResNet18NamesFollowTheOfficialStateDict() throws {
        let model = try ModelZoo.make("preact-resnet18", input: cifar100, widthMultiplier: 0.125, generator: RandomGenerator(seed: 1))
        let names = model.parameters.entries.map(\.name)
        XCTAssertEqual(
            Array(names.prefix(9)),
            [
                "conv1.weight", "bn1.weight", "bn1.bias",
                "layer1.0.bn1.weight", "layer1.0.bn1.bias", "layer1.0.conv1.weight",
                "layer1.0.bn2.weight", "layer1.0.bn2.bias", "layer1.0.conv2.weight",
            ])
        for name in ["layer3.0.conv1.weight", "layer3.0.shortcut.0.weight", "layer2.1.bn2.bias", "layer4.1.conv2.weight"] {
            XCTAssert(names.contains(name), "missing \(name)")
        }
        XCTAssertFalse(names.contains("layer1.0.shortcut.0.weight"), "layer1.0 keeps the identity shortcut")
        XCTAssertFalse(names.contains("layer3.1.shortcut.0.weight"))
        XCTAssertFalse(names.contains("bn.weight"), "no final BatchNorm")
        XCTAssertEqual(Array(names.suffix(2)), ["linear.weight", "linear.bias"])
        XCTAssertEqual(Set(names).count, names.count, "names are unique")
        // Shapes in PyTorch's layout (width 64·0.125 = 8, 128·0.125 = 16, 256·0.125 = 32).
        XCTAssertEqual(model.parameters.value(named: "conv1.weight")?.shape, [8, 3, 3, 3])
        XCTAssertEqual(model.parameters.value(named: "layer3.0.conv1.weight")?.shape, [32, 16, 3, 3])
        XCTAssertEqual(model.parameters.value(named: "layer3.0.shortcut.0.weight")?.shape, [32, 16, 1, 1])
        XCTAssertEqual(model.parameters.value(named: "linear.weight")?.shape, [100, 64])
        let buffers = model.parameters.bufferEntries.map(\.name)
        XCTAssertEqual(
            Array(buffers.prefix(4)), ["bn1.running_mean", "bn1.running_var", "layer1.0.bn1.running_mean", "layer1.0.bn1.running_var"])
        XCTAssertEqual(Array(buffers.suffix(2)), ["layer4.1.bn2.running_mean", "layer4.1.bn2.running_var"])
        XCTAssertNil(model.parameters.value(named: "layer5.0.conv1.weight"))
    }

    func testPreActResNet18HeKeepsItsNames() throws {
        let model = try ModelZoo.make("preact-resnet18-he", input: cifar100, widthMultiplier: 0.125, generator: RandomGenerator(seed: 1))
        let names = model.parameters.entries.map(\.name)
        XCTAssertEqual(Array(names.prefix(2)), ["conv1.weight", "layer1.0.bn1.weight"], "no stem BatchNorm")
        XCTAssertEqual(Array(names.suffix(4)), ["bn.weight", "bn.bias", "linear.weight", "linear.bias"])
    }

    func testViewsAreContiguousNonOverlappingAndBound() throws {
        let model = try ModelZoo.make("cnn", generator: RandomGenerator(seed: 2))
        let store = model.parameters
        var offset = 0
        for entry in store.entries {
            XCTAssertEqual(entry.offset, offset, "\(entry.name) must start where the previous tensor ends")
            offset += entry.count
        }
        XCTAssertEqual(offset, store.values.count)
        XCTAssertEqual(store.gradients.count, store.values.count)
        var bufferOffset = 0
        for entry in store.bufferEntries {
            XCTAssertEqual(entry.offset, bufferOffset)
            bufferOffset += entry.count
        }
        XCTAssertEqual(bufferOffset, store.buffers.count)
        // Every layer's Parameter is a view into the flat buffers at its entry's offset.
        let parameters = model.network.namedParameters()
        XCTAssertEqual(parameters.map(\.name), store.entries.map(\.name))
        for (entry, item) in zip(store.entries, parameters) {
            XCTAssertEqual(item.parameter.value.pointer, store.values.pointer + entry.offset, entry.name)
            XCTAssertEqual(item.parameter.gradient.pointer, store.gradients.pointer + entry.offset, entry.name)
            XCTAssertEqual(item.parameter.value.shape, entry.shape)
        }
        for (entry, item) in zip(store.bufferEntries, model.network.namedBuffers()) {
            XCTAssertEqual(item.parameter.value.pointer, store.buffers.pointer + entry.offset, entry.name)
        }
        // Writes through either side are seen by the other.
        let fc2 = store.value(named: "fc2.bias")!
        fc2[3] = 42
        let layer = parameters.first { $0.name == "fc2.bias" }!.parameter
        XCTAssertEqual(layer.value[3], 42)
        layer.gradient[1] = -7
        XCTAssertEqual(store.gradient(named: "fc2.bias")![1], -7)
        XCTAssertEqual(store.gradients[store.entries.last!.offset + 1], -7)
    }

    func testZeroingThenBackwardFillsTheFlatGradientBuffer() throws {
        let model = try ModelZoo.make(
            "cnn", input: .init(height: 8, width: 8, channels: 1, classes: 3),
            generator: RandomGenerator(seed: 3))
        model.parameters.gradients.fill(.nan)
        model.parameters.zeroGradients()
        let logits = try model.forward(normalTensor([4, 8, 8, 1], seed: 4), mode: .training)
        model.backward(normalTensor(logits.shape, seed: 5))
        XCTAssert(model.parameters.gradients.scalars.allSatisfy(\.isFinite), "every gradient is zeroed and then added to")
        for entry in model.parameters.entries {
            let g = model.parameters.gradient(named: entry.name)!.scalars
            XCTAssert(g.contains { $0 != 0 }, "\(entry.name) received no gradient")
        }
    }

    func testInitialisationIsDeterministicAndFollowsPyTorchDefaults() throws {
        let a = try ModelZoo.make("cnn", generator: RandomGenerator(seed: 9))
        let b = try ModelZoo.make("cnn", generator: RandomGenerator(seed: 9))
        let c = try ModelZoo.make("cnn", generator: RandomGenerator(seed: 10))
        XCTAssertEqual(a.parameters.values.scalars, b.parameters.values.scalars)
        XCTAssertNotEqual(a.parameters.values.scalars, c.parameters.values.scalars)
        let store = a.parameters
        let conv3 = store.value(named: "conv3.weight")!.scalars  // fan-in 32·9
        XCTAssertLessThanOrEqual(conv3.map(abs).max()!, 1 / Float(288).squareRoot())
        XCTAssertGreaterThan(conv3.map(abs).max()!, 0.9 / Float(288).squareRoot())
        XCTAssertEqual(abs(conv3.reduce(0, +) / Float(conv3.count)), 0, accuracy: 0.003)
        XCTAssertEqual(store.value(named: "bn2.weight")!.scalars, [Float](repeating: 1, count: 32))
        XCTAssertEqual(store.value(named: "bn2.bias")!.scalars, [Float](repeating: 0, count: 32))
        XCTAssertEqual(store.buffer(named: "bn4.running_var")!.scalars, [Float](repeating: 1, count: 64))
        XCTAssertEqual(store.buffer(named: "bn4.running_mean")!.scalars, [Float](repeating: 0, count: 64))
        XCTAssertNil(store.buffer(named: "bn5.running_var"))
    }
}
