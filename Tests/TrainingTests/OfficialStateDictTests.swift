import Foundation
import Models
import Optimizers
import Tensors
import XCTest

@testable import Training

/// pskd's `preact-resnet18` checkpoints load into the official PyTorch class with
/// `load_state_dict(strict=True)`: the same keys, shapes (conv OIHW, linear [out, in]) and dtypes.
final class OfficialStateDictTests: XCTestCase {
    /// The state dict of the official `CIFAR_ResNet18_preActBasic(num_classes=100)`
    /// (lgcnsai/PS-KD-Pytorch, models/preact_resnet.py), written out from its `__init__` in
    /// registration order: stem `conv1`, `bn1`; per `PreActBlock` `bn1`, `conv1`, `bn2`, `conv2`
    /// and, where the stride or width changes, `shortcut.0`; `linear`. Every `nn.BatchNorm2d`
    /// holds weight, bias, running_mean, running_var and a 0-dimensional int64 num_batches_tracked.
    static let official: [(name: String, shape: [Int], dtype: String)] = [
        ("conv1.weight", [64, 3, 3, 3], "F32"),
        ("bn1.weight", [64], "F32"),
        ("bn1.bias", [64], "F32"),
        ("bn1.running_mean", [64], "F32"),
        ("bn1.running_var", [64], "F32"),
        ("bn1.num_batches_tracked", [], "I64"),
        ("layer1.0.bn1.weight", [64], "F32"),
        ("layer1.0.bn1.bias", [64], "F32"),
        ("layer1.0.bn1.running_mean", [64], "F32"),
        ("layer1.0.bn1.running_var", [64], "F32"),
        ("layer1.0.bn1.num_batches_tracked", [], "I64"),
        ("layer1.0.conv1.weight", [64, 64, 3, 3], "F32"),
        ("layer1.0.bn2.weight", [64], "F32"),
        ("layer1.0.bn2.bias", [64], "F32"),
        ("layer1.0.bn2.running_mean", [64], "F32"),
        ("layer1.0.bn2.running_var", [64], "F32"),
        ("layer1.0.bn2.num_batches_tracked", [], "I64"),
        ("layer1.0.conv2.weight", [64, 64, 3, 3], "F32"),
        ("layer1.1.bn1.weight", [64], "F32"),
        ("layer1.1.bn1.bias", [64], "F32"),
        ("layer1.1.bn1.running_mean", [64], "F32"),
        ("layer1.1.bn1.running_var", [64], "F32"),
        ("layer1.1.bn1.num_batches_tracked", [], "I64"),
        ("layer1.1.conv1.weight", [64, 64, 3, 3], "F32"),
        ("layer1.1.bn2.weight", [64], "F32"),
        ("layer1.1.bn2.bias", [64], "F32"),
        ("layer1.1.bn2.running_mean", [64], "F32"),
        ("layer1.1.bn2.running_var", [64], "F32"),
        ("layer1.1.bn2.num_batches_tracked", [], "I64"),
        ("layer1.1.conv2.weight", [64, 64, 3, 3], "F32"),
        ("layer2.0.bn1.weight", [64], "F32"),
        ("layer2.0.bn1.bias", [64], "F32"),
        ("layer2.0.bn1.running_mean", [64], "F32"),
        ("layer2.0.bn1.running_var", [64], "F32"),
        ("layer2.0.bn1.num_batches_tracked", [], "I64"),
        ("layer2.0.conv1.weight", [128, 64, 3, 3], "F32"),
        ("layer2.0.bn2.weight", [128], "F32"),
        ("layer2.0.bn2.bias", [128], "F32"),
        ("layer2.0.bn2.running_mean", [128], "F32"),
        ("layer2.0.bn2.running_var", [128], "F32"),
        ("layer2.0.bn2.num_batches_tracked", [], "I64"),
        ("layer2.0.conv2.weight", [128, 128, 3, 3], "F32"),
        ("layer2.0.shortcut.0.weight", [128, 64, 1, 1], "F32"),
        ("layer2.1.bn1.weight", [128], "F32"),
        ("layer2.1.bn1.bias", [128], "F32"),
        ("layer2.1.bn1.running_mean", [128], "F32"),
        ("layer2.1.bn1.running_var", [128], "F32"),
        ("layer2.1.bn1.num_batches_tracked", [], "I64"),
        ("layer2.1.conv1.weight", [128, 128, 3, 3], "F32"),
        ("layer2.1.bn2.weight", [128], "F32"),
        ("layer2.1.bn2.bias", [128], "F32"),
        ("layer2.1.bn2.running_mean", [128], "F32"),
        ("layer2.1.bn2.running_var", [128], "F32"),
        ("layer2.1.bn2.num_batches_tracked", [], "I64"),
        ("layer2.1.conv2.weight", [128, 128, 3, 3], "F32"),
        ("layer3.0.bn1.weight", [128], "F32"),
        ("layer3.0.bn1.bias", [128], "F32"),
        ("layer3.0.bn1.running_mean", [128], "F32"),
        ("layer3.0.bn1.running_var", [128], "F32"),
        ("layer3.0.bn1.num_batches_tracked", [], "I64"),
        ("layer3.0.conv1.weight", [256, 128, 3, 3], "F32"),
        ("layer3.0.bn2.weight", [256], "F32"),
        ("layer3.0.bn2.bias", [256], "F32"),
        ("layer3.0.bn2.running_mean", [256], "F32"),
        ("layer3.0.bn2.running_var", [256], "F32"),
        ("layer3.0.bn2.num_batches_tracked", [], "I64"),
        ("layer3.0.conv2.weight", [256, 256, 3, 3], "F32"),
        ("layer3.0.shortcut.0.weight", [256, 128, 1, 1], "F32"),
        ("layer3.1.bn1.weight", [256], "F32"),
        ("layer3.1.bn1.bias", [256], "F32"),
        ("layer3.1.bn1.running_mean", [256], "F32"),
        ("layer3.1.bn1.running_var", [256], "F32"),
        ("layer3.1.bn1.num_batches_tracked", [], "I64"),
        ("layer3.1.conv1.weight", [256, 256, 3, 3], "F32"),
        ("layer3.1.bn2.weight", [256], "F32"),
        ("layer3.1.bn2.bias", [256], "F32"),
        ("layer3.1.bn2.running_mean", [256], "F32"),
        ("layer3.1.bn2.running_var", [256], "F32"),
        ("layer3.1.bn2.num_batches_tracked", [], "I64"),
        ("layer3.1.conv2.weight", [256, 256, 3, 3], "F32"),
        ("layer4.0.bn1.weight", [256], "F32"),
        ("layer4.0.bn1.bias", [256], "F32"),
        ("layer4.0.bn1.running_mean", [256], "F32"),
        ("layer4.0.bn1.running_var", [256], "F32"),
        ("layer4.0.bn1.num_batches_tracked", [], "I64"),
        ("layer4.0.conv1.weight", [512, 256, 3, 3], "F32"),
        ("layer4.0.bn2.weight", [512], "F32"),
        ("layer4.0.bn2.bias", [512], "F32"),
        ("layer4.0.bn2.running_mean", [512], "F32"),
        ("layer4.0.bn2.running_var", [512], "F32"),
        ("layer4.0.bn2.num_batches_tracked", [], "I64"),
        ("layer4.0.conv2.weight", [512, 512, 3, 3], "F32"),
        ("layer4.0.shortcut.0.weight", [512, 256, 1, 1], "F32"),
        ("layer4.1.bn1.weight", [512], "F32"),
        ("layer4.1.bn1.bias", [512], "F32"),
        ("layer4.1.bn1.running_mean", [512], "F32"),
        ("layer4.1.bn1.running_var", [512], "F32"),
        ("layer4.1.bn1.num_batches_tracked", [], "I64"),
        ("layer4.1.conv1.weight", [512, 512, 3, 3], "F32"),
        ("layer4.1.bn2.weight", [512], "F32"),
        ("layer4.1.bn2.bias", [512], "F32"),
        ("layer4.1.bn2.running_mean", [512], "F32"),
        ("layer4.1.bn2.running_var", [512], "F32"),
        ("layer4.1.bn2.num_batches_tracked", [], "I64"),
        ("layer4.1.conv2.weight", [512, 512, 3, 3], "F32"),
        ("linear.weight", [100, 512], "F32"),
        ("linear.bias", [100], "F32"),
    ]

    private let cifar100 = ModelZoo.Input(height: 32, width: 32, channels: 3, classes: 100)

    /// The entries of `model.safetensors` for a fresh `preact-resnet18`, as written and read back.
    private func writtenModelFile(_ model: Model) throws -> [SafeTensors.Entry] {
        let snapshot = try TrainingSnapshot(
            epoch: 1, model: model, optimizer: SGD(parameterCount: model.parameters.parameterCount),
            config: TrainConfig())
        return try SafeTensors.decode(try SafeTensors.encode(snapshot.model), file: "model.safetensors").entries
    }

    func testTheModelFileHasTheOfficialKeysShapesAndDtypes() throws {
        XCTAssertEqual(Self.official.count, 107)
        let model = try ModelZoo.make("preact-resnet18", input: cifar100, generator: RandomGenerator(seed: 1))
        let written = try writtenModelFile(model)
        XCTAssertEqual(written.count, Self.official.count, "strict loading needs no missing and no unexpected keys")
        let byName = Dictionary(uniqueKeysWithValues: written.map { ($0.name, $0) })
        for key in Self.official {
            let entry = try XCTUnwrap(byName[key.name], "missing \(key.name)")
            XCTAssertEqual(entry.shape, key.shape, key.name)
            XCTAssertEqual(entry.dtype, key.dtype, key.name)
        }
        let trainable = Self.official.filter { !$0.name.contains("running_") && $0.dtype == "F32" }
        XCTAssertEqual(trainable.reduce(0) { $0 + $1.shape.reduce(1, *) }, 11_217_444, "the official parameter count")
    }

    func testTheModelFileRestoresTheSameModel() throws {
        let model = try ModelZoo.make("preact-resnet18", input: cifar100, widthMultiplier: 0.125, generator: RandomGenerator(seed: 2))
        model.batchNormLayers.enumerated().forEach { $0.element.batchesTracked = 10 + $0.offset }
        let entries = try writtenModelFile(model)
        XCTAssertEqual(entries.first { $0.name == "layer2.0.bn1.num_batches_tracked" }?.int64s(), [15], "the sixth BatchNorm, depth first")
        let restored = try ModelZoo.make("preact-resnet18", input: cifar100, widthMultiplier: 0.125, generator: RandomGenerator(seed: 3))
        try TrainingSnapshot(epoch: 1, model: entries, state: [], metadata: [:], teacherSection: nil).restoreModel(
            into: restored, source: "test")
        XCTAssertEqual(restored.parameters.values.scalars, model.parameters.values.scalars)
        XCTAssertEqual(restored.parameters.buffers.scalars, model.parameters.buffers.scalars)
        XCTAssertEqual(restored.batchNormLayers.map(\.batchesTracked), model.batchNormLayers.map(\.batchesTracked))
    }
}
