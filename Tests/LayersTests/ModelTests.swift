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
                let x = normalTensor(shape, seed: 6)
                let training = try model.forward(x, mode: .training)
                XCTAssertEqual(training.shape, [2, input.classes])
                XCTAssert(training.scalars.allSatisfy(\.isFinite))
                model.backward(normalTensor([2, input.classes], seed: 7))
                XCTAssert(model.parameters.gradients.scalars.allSatisfy(\.isFinite))
                let evaluation = try model.forward(x, mode: .evaluation)
                XCTAssertEqual(evaluation.shape, [2, input.classes])
                XCTAssert(evaluation.scalars.allSatisfy(\.isFinite))
                XCTAssertEqual(model.batchNormLayers.count, 2 * 4 * 2 + 1, "16 in the blocks, and the stem's or the final one")
            }
        }
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
        XCTAssertThrowsError(try ModelZoo.make("resnet50", generator: RandomGenerator(seed: 1))) { error in
            XCTAssert("\(error)".contains("resnet50") && "\(error)".contains("preact-resnet18"), "\(error)")
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
