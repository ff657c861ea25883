import Layers
import Models
import Optimizers
import Tensors
import TestSupport
import XCTest

final class ModelTests: XCTestCase {
    /// `count` samples of `shape` with uniform [0, 1) pixels and random labels in 0..<classes.
    private func randomProblem(_ count: Int, _ shape: [Int], classes: Int, seed: UInt64) -> (Tensor, [Int]) {
        let inputs = randomTensor([count] + shape, seed: seed, in: 0...1)
        var generator = RandomGenerator(seed: seed).split(9)
        return (inputs, (0..<count).map { _ in generator.nextIndex(below: classes) })
    }

    /// Full-batch SGD (momentum 0.9, Nesterov) until every sample is classified correctly in
    /// training mode or `maxSteps` is reached. Returns the accuracy of the last step, the
    /// steps taken and the first and last losses.
    private func fit(_ model: Model, _ inputs: Tensor, _ labels: [Int], learningRate: Float, maxSteps: Int)
        throws -> (accuracy: Double, steps: Int, firstLoss: Double, lastLoss: Double)
    {
        let loss = SoftmaxCrossEntropy()
        let optimizer = SGD(parameterCount: model.parameters.parameterCount, momentum: 0.9, nesterov: true, weightDecay: 0)
        let targets = SoftmaxCrossEntropy.oneHot(labels, classes: model.classCount)
        var accuracy = 0.0, firstLoss = Double.nan, lastLoss = Double.nan
        for step in 1...maxSteps {
            let logits = try model.forward(inputs, mode: .training)
            let result = try loss(logits: logits, targets: targets)
            accuracy = self.accuracy(result.probabilities, labels)
            if step == 1 { firstLoss = result.loss }
            lastLoss = result.loss
            XCTAssert(result.loss.isFinite, "loss diverged at step \(step)")
            if accuracy == 1 { return (accuracy, step, firstLoss, lastLoss) }
            model.parameters.zeroGradients()
            model.backward(result.logitGradients)
            optimizer.step(parameters: model.parameters.values, gradients: model.parameters.gradients, learningRate: learningRate)
        }
        return (accuracy, maxSteps, firstLoss, lastLoss)
    }

    private func accuracy(_ scores: Tensor, _ labels: [Int]) -> Double {
        let classes = scores.shape[1]
        var correct = 0
        for (row, label) in labels.enumerated() {
            let values = (0..<classes).map { scores[row * classes + $0] }
            if values.firstIndex(of: values.max()!) == label { correct += 1 }
        }
        return Double(correct) / Double(labels.count)
    }

    func testMLPMemorisesRandomLabels() throws {
        let model = try ModelZoo.make("mlp", generator: RandomGenerator(seed: 1))
        XCTAssertEqual(model.sampleShape, [784])
        // 64 Fashion-MNIST-shaped images with random labels: only memorisation can fit them.
        let (inputs, labels) = randomProblem(64, [28, 28, 1], classes: 10, seed: 2)
        let fit = try fit(model, inputs, labels, learningRate: 0.05, maxSteps: 150)  // 100 % after 21 steps
        XCTAssertGreaterThanOrEqual(fit.accuracy, 0.98, "MLP reached \(fit.accuracy) after \(fit.steps) steps")
        XCTAssertLessThan(fit.lastLoss, fit.firstLoss)
        // The evaluation path (no BatchNorm here) agrees.
        XCTAssertGreaterThanOrEqual(accuracy(try model.forward(inputs, mode: .evaluation), labels), 0.98)
    }

    func testCNNMemorisesRandomLabels() throws {
        let model = try ModelZoo.make("cnn", generator: RandomGenerator(seed: 3))
        XCTAssertEqual(model.sampleShape, [28, 28, 1])
        let (inputs, labels) = randomProblem(32, [28, 28, 1], classes: 10, seed: 4)
        // Reaches 100 % in 8 steps (about 1 s each in a debug build); the bound keeps a failure short.
        let fit = try fit(model, inputs, labels, learningRate: 0.02, maxSteps: 25)
        XCTAssertGreaterThanOrEqual(fit.accuracy, 0.98, "CNN reached \(fit.accuracy) after \(fit.steps) steps")
        XCTAssertLessThan(fit.lastLoss, fit.firstLoss)
    }

    func testPreActResNet18ForwardShapes() throws {
        let inputs = [
            (ModelZoo.Input.fashionMNIST, [2, 28, 28, 1]),
            (ModelZoo.Input(height: 32, width: 32, channels: 3, classes: 100), [2, 32, 32, 3]),
        ]
        for name in ["preact-resnet18", "preact-resnet18-he"] {
            for (input, shape) in inputs {
                let model = try ModelZoo.make(name, input: input, widthMultiplier: 0.125, generator: RandomGenerator(seed: 5))
                try assertTrainsAndEvaluates(model, normalTensor(shape, seed: 6), classes: input.classes)
                XCTAssertEqual(model.batchNormLayers.count, 2 * 4 * 2 + 1, "16 in the blocks, and the stem's or the final one")
            }
        }
    }

    /// A training forward and backward of `x` gives finite logits of `classes` and finite,
    /// not all zero, gradients; an evaluation forward gives finite logits.
    private func assertTrainsAndEvaluates(_ model: Model, _ x: Tensor, classes: Int, line: UInt = #line) throws {
        let training = try model.forward(x, mode: .training)
        XCTAssertEqual(training.shape, [x.shape[0], classes], line: line)
        XCTAssert(training.scalars.allSatisfy(\.isFinite), line: line)
        model.backward(normalTensor([x.shape[0], classes], seed: 7))
        XCTAssert(model.parameters.gradients.scalars.allSatisfy(\.isFinite), line: line)
        XCTAssert(model.parameters.gradients.scalars.contains { $0 != 0 }, line: line)
        let evaluation = try model.forward(x, mode: .evaluation)
        XCTAssertEqual(evaluation.shape, [x.shape[0], classes], line: line)
        XCTAssert(evaluation.scalars.allSatisfy(\.isFinite), line: line)
    }

    /// torchvision's ResNets (narrowed to width × 1/16) on ImageNet-sized, CIFAR-sized and
    /// Fashion-MNIST-sized images: the stem's strides leave 56 × 56, 8 × 8 and 7 × 7 for `layer1`.
    func testTorchvisionResNetsForwardShapes() throws {
        let inputs = [
            (ModelZoo.Input(height: 32, width: 32, channels: 3, classes: 100), [2, 32, 32, 3]),
            (ModelZoo.Input.fashionMNIST, [2, 28, 28, 1]),
            (ModelZoo.Input(height: 37, width: 45, channels: 3, classes: 5), [2, 37, 45, 3]),
        ]
        for (name, batchNorms) in [("resnet18", 1 + 8 * 2 + 3), ("resnet50", 1 + 16 * 3 + 4)] {
            for (input, shape) in inputs {
                let model = try ModelZoo.make(name, input: input, widthMultiplier: 0.0625, generator: RandomGenerator(seed: 5))
                try assertTrainsAndEvaluates(model, normalTensor(shape, seed: 6), classes: input.classes)
                XCTAssertEqual(model.batchNormLayers.count, batchNorms, "the stem's, the blocks' and the three or four downsamples'")
            }
        }
        let stem = try ModelZoo.make(
            "resnet18", input: .init(height: 224, width: 224, channels: 3, classes: 1000), widthMultiplier: 0.0625,
            generator: RandomGenerator(seed: 1))
        let layers = Dictionary(uniqueKeysWithValues: stem.network.children.map { ($0.name, $0.layer) })
        var shape = [1, 224, 224, 3]
        for name in ["conv1", "bn1", "maxpool"] { shape = try layers[name]!.outputShape(for: shape) }
        XCTAssertEqual(shape, [1, 56, 56, 4])
        for name in ["layer1", "layer2", "layer3", "layer4"] { shape = try layers[name]!.outputShape(for: shape) }
        XCTAssertEqual(shape, [1, 7, 7, 32])
    }

    /// A ResNet-18 (at width × 1/4, so that a debug build takes seconds, not a minute) takes a
    /// few SGD steps on a tiny random CIFAR-sized batch and its loss falls at every step.
    func testResNet18TrainsAFewSGDSteps() throws {
        let model = try ModelZoo.make(
            "resnet18", input: .init(height: 32, width: 32, channels: 3, classes: 10), widthMultiplier: 0.25,
            generator: RandomGenerator(seed: 11))
        let (inputs, labels) = randomProblem(8, [32, 32, 3], classes: 10, seed: 12)
        let loss = SoftmaxCrossEntropy()
        let optimizer = SGD(parameterCount: model.parameters.parameterCount, momentum: 0.9, nesterov: false, weightDecay: 0)
        let targets = SoftmaxCrossEntropy.oneHot(labels, classes: 10)
        var losses: [Double] = []
        for _ in 0..<5 {
            let result = try loss(logits: try model.forward(inputs, mode: .training), targets: targets)
            losses.append(result.loss)
            model.parameters.zeroGradients()
            model.backward(result.logitGradients)
            optimizer.step(parameters: model.parameters.values, gradients: model.parameters.gradients, learningRate: 0.01)
        }
        XCTAssert(losses.allSatisfy(\.isFinite), "\(losses)")
        XCTAssert(zip(losses, losses.dropFirst()).allSatisfy { $1 < $0 }, "the loss falls at every step: \(losses)")
        XCTAssertLessThan(losses.last!, 0.9 * losses.first!, "\(losses)")
    }

    func testModelAcceptsAnyReshapingOfTheSampleShape() throws {
        let model = try ModelZoo.make(
            "mlp", input: .init(height: 4, width: 4, channels: 1, classes: 3), generator: RandomGenerator(seed: 8))
        let flat = normalTensor([2, 16], seed: 9)
        let a = try model.forward(flat, mode: .evaluation).copy()
        let b = try model.forward(try flat.reshaped([2, 4, 4, 1]), mode: .evaluation)
        XCTAssertEqual(a.scalars, b.scalars)
    }

    func testUnknownModelNameIsAnError() {
        XCTAssertThrowsError(try ModelZoo.make("resnet51", generator: RandomGenerator(seed: 1))) { error in
            XCTAssert(
                "\(error)".contains("resnet51") && "\(error)".contains("preact-resnet18") && "\(error)".contains("resnet152"), "\(error)")
        }
    }

    func testModelChecksItsOutputShapeAtConstruction() {
        XCTAssertThrowsError(
            try Model(
                name: "broken", network: Linear(4, 3), sampleShape: [4], classCount: 5,
                generator: RandomGenerator(seed: 1))
        ) { error in
            XCTAssert("\(error)".contains("[2, 3]") && "\(error)".contains("[2, 5]"), "\(error)")
        }
    }

    func testFirstLayerSkipsTheInputGradient() throws {
        let model = try ModelZoo.make(
            "cnn", input: .init(height: 8, width: 8, channels: 1, classes: 2), generator: RandomGenerator(seed: 1))
        XCTAssertFalse(model.network.children.first!.layer.computesInputGradient)
        XCTAssertTrue(model.network.children[1].layer.computesInputGradient)
    }
}
