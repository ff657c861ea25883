import Layers
import Tensors
import TestSupport
import XCTest

@testable import Models

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

    /// torchvision's ResNet derived by hand: a 7×7 stem without bias and its BatchNorm; per
    /// block its convolutions without bias (BasicBlock 3×3, 3×3; Bottleneck 1×1, 3×3, 1×1 to
    /// 4 × planes), a BatchNorm (γ, β) after each, and a 1×1 downsample with its BatchNorm where
    /// the stride or width changes; `fc` with bias.
    private func torchvisionResNetCount(bottleneck: Bool, blocks: [Int], classes: Int) -> Int {
        var count = 3 * 64 * 49 + 2 * 64
        var inputs = 64
        for (stage, planes) in [64, 128, 256, 512].enumerated() {
            let outputs = bottleneck ? 4 * planes : planes
            for block in 0..<blocks[stage] {
                let from = block == 0 ? inputs : outputs
                count +=
                    bottleneck
                    ? from * planes + 2 * planes + planes * planes * 9 + 2 * planes + planes * outputs + 2 * outputs
                    : from * planes * 9 + 2 * planes + planes * planes * 9 + 2 * planes
                if block == 0 && (stage > 0 || from != outputs) { count += from * outputs + 2 * outputs }
            }
            inputs = outputs
        }
        return count + inputs * classes + classes
    }

    /// `torchvision.models.resnetNN()`'s parameter counts at 1 000 classes.
    func testTorchvisionResNetParameterCounts() throws {
        let imageNet = ModelZoo.Input(height: 224, width: 224, channels: 3, classes: 1000)
        let official = [
            ("resnet18", false, [2, 2, 2, 2], 11_689_512), ("resnet34", false, [3, 4, 6, 3], 21_797_672),
            ("resnet50", true, [3, 4, 6, 3], 25_557_032), ("resnet101", true, [3, 4, 23, 3], 44_549_160),
            ("resnet152", true, [3, 8, 36, 3], 60_192_808),
        ]
        XCTAssertEqual(official.map(\.0), ModelZoo.torchvisionResNets.map(\.name))
        for ((name, bottleneck, blocks, torchvision), resNet) in zip(official, ModelZoo.torchvisionResNets) {
            XCTAssertEqual(torchvisionResNetCount(bottleneck: bottleneck, blocks: blocks, classes: 1000), torchvision, name)
            XCTAssertEqual(resNet.blocks, blocks, name)
            // The layer tree, unbound (binding ResNet-152's 60 million parameters takes seconds in a debug build).
            let network = ModelZoo.torchvisionResNet(imageNet, design: resNet.design, blocks: resNet.blocks, widthMultiplier: 1)
            XCTAssertEqual(network.namedParameters().reduce(0) { $0 + $1.parameter.shape.reduce(1, *) }, torchvision, name)
        }
        for (name, torchvision) in [("resnet18", 11_689_512), ("resnet50", 25_557_032)] {
            let model = try ModelZoo.make(name, input: imageNet, generator: RandomGenerator(seed: 1))
            XCTAssertEqual(model.parameters.parameterCount, torchvision, name)
        }
        // The width multiplier scales every stage (64 · 0.5 = 32 planes in layer1); the class count sizes `fc`.
        let half = try ModelZoo.make(
            "resnet50", input: .init(height: 32, width: 32, channels: 3, classes: 10), widthMultiplier: 0.5,
            generator: RandomGenerator(seed: 1))
        XCTAssertEqual(half.parameters.value(named: "layer1.0.conv1.weight")?.shape, [32, 32, 1, 1])
        XCTAssertEqual(half.parameters.value(named: "layer4.2.conv3.weight")?.shape, [1024, 256, 1, 1])
        XCTAssertEqual(half.parameters.value(named: "fc.weight")?.shape, [10, 1024])
    }

    /// torchvision initialises every convolution with `kaiming_normal_(mode="fan_out",
    /// nonlinearity="relu")`, BatchNorm with γ = 1, β = 0, and leaves `fc` at PyTorch's default
    /// U(±1/√in).
    func testTorchvisionResNetInitialisation() throws {
        let model = try ModelZoo.make(
            "resnet18", input: .init(height: 32, width: 32, channels: 3, classes: 10), generator: RandomGenerator(seed: 4))
        for (name, fanOut) in [("conv1.weight", 64 * 49), ("layer3.0.conv2.weight", 256 * 9), ("layer4.0.downsample.0.weight", 512)] {
            let values = try XCTUnwrap(model.parameters.value(named: name)).scalars.map(Double.init)
            let variance = values.reduce(0) { $0 + $1 * $1 } / Double(values.count)
            XCTAssertEqual(variance, 2 / Double(fanOut), accuracy: 0.1 * 2 / Double(fanOut), name)
        }
        for bn in model.batchNormLayers {
            XCTAssert(bn.weight.value.scalars.allSatisfy { $0 == 1 } && bn.bias.value.scalars.allSatisfy { $0 == 0 })
        }
        let bound = 1 / Float(512).squareRoot()
        for name in ["fc.weight", "fc.bias"] {
            XCTAssert(try XCTUnwrap(model.parameters.value(named: name)).scalars.allSatisfy { abs($0) <= bound }, name)
        }
        XCTAssertGreaterThan(
            model.parameters.value(named: "fc.weight")!.scalars.map(abs).max()!, 0.99 * bound, "5 120 draws fill the range")
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
