import Layers
import Models
import Optimizers
import Tensors
import XCTest

/// Elementwise passes split over threads (`Parallel.workers`) must give exactly the results of
/// one thread: every part writes its own memory and no sum changes order.
final class ParallelTests: XCTestCase {
    override func tearDown() {
        Parallel.workers = 1
        super.tearDown()
    }

    private func trainingStep(model name: String, input shape: [Int], workers: Int) throws -> (Tensor, Tensor, Tensor) {
        Parallel.workers = workers
        let input = ModelZoo.Input(height: shape[1], width: shape[2], channels: shape[3], classes: 10)
        let model = try ModelZoo.make(name, input: input, widthMultiplier: 0.125, generator: RandomGenerator(seed: 5))
        var generator = RandomGenerator(seed: 9)
        let x = Tensor(zeros: shape)
        for i in 0..<x.count { x[i] = generator.nextNormal() }
        let labels = (0..<shape[0]).map { $0 % 10 }
        let result = try SoftmaxCrossEntropy()(logits: model.forward(x, mode: .training),
                                               targets: SoftmaxCrossEntropy.oneHot(labels, classes: 10))
        model.backward(result.logitGradients)
        let optimizer = SGD(parameterCount: model.parameters.parameterCount)
        for _ in 0..<2 { optimizer.step(parameters: model.parameters.values, gradients: model.parameters.gradients, learningRate: 0.1) }
        return (model.parameters.gradients.copy(), model.parameters.values.copy(), model.parameters.buffers.copy())
    }

    func testTwoWorkersGiveExactlyTheResultsOfOne() throws {
        for (name, shape) in [("cnn", [6, 28, 28, 1]), ("preact-resnet18", [3, 32, 32, 3])] {
            let one = try trainingStep(model: name, input: shape, workers: 1)
            let two = try trainingStep(model: name, input: shape, workers: 2)
            XCTAssertEqual(one.0.scalars, two.0.scalars, "\(name) gradients")
            XCTAssertEqual(one.1.scalars, two.1.scalars, "\(name) parameters after SGD")
            XCTAssertEqual(one.2.scalars, two.2.scalars, "\(name) BatchNorm statistics")
        }
    }

    func testPartsCoverEveryIndexOnce() {
        Parallel.workers = 3
        var seen = [Int](repeating: 0, count: 10)
        seen.withUnsafeMutableBufferPointer { seen in
            Parallel.forEachPart(of: 10) { part in for i in part { seen[i] += 1 } }
        }
        XCTAssertEqual(seen, Array(repeating: 1, count: 10))
    }

    func testMaximumPartsCapsTheSplit() {
        Parallel.workers = 3
        for (cap, expected) in [(1, [0..<10]), (2, [0..<5, 5..<10]), (.max, [0..<3, 3..<6, 6..<10])] {
            var parts = [Range<Int>?](repeating: nil, count: 3)
            parts.withUnsafeMutableBufferPointer { parts in
                Parallel.forEachNumberedPart(of: 10, maximumParts: cap) { number, part in parts[number] = part }
            }
            XCTAssertEqual(parts.compactMap { $0 }, expected, "at most \(cap) parts")
        }
    }
}
