import Models
import Training
import XCTest

final class ThroughputBenchmarkTests: XCTestCase {
    /// On one rank the replicated teacher receives every row with its index (8 + 4·C bytes),
    /// the sharded one every row alone (4·C bytes): what `pskd bench` reports per step.
    func testTeacherTrafficPerStepIsReportedForBothLayouts() throws {
        let batch = 16, classes = 10
        let replicated = try ThroughputBenchmark.run(modelName: "mlp", batchSize: batch, threads: 1, steps: 2, warmupSteps: 1)
        let sharded = try ThroughputBenchmark.run(
            modelName: "mlp", batchSize: batch, threads: 1, steps: 2, warmupSteps: 1,
            shardedTeacher: true)
        XCTAssertEqual(replicated.teacher, "replicated")
        XCTAssertEqual(replicated.teacherBytesPerStep, Double(batch * (8 + 4 * classes)))
        XCTAssertEqual(sharded.teacher, "sharded")
        XCTAssertEqual(sharded.teacherBytesPerStep, Double(batch * 4 * classes))
    }

    /// `input` sets the samples' shape and class count (`pskd bench --dataset cifar100`): the
    /// mlp on 32 × 32 × 3 images with 100 classes, whose teacher rows are 100 floats.
    func testInputShapeAndClassesComeFromTheDataset() throws {
        let batch = 16
        let cifar100 = ModelZoo.Input(height: 32, width: 32, channels: 3, classes: 100)
        let result = try ThroughputBenchmark.run(
            modelName: "mlp", input: cifar100, batchSize: batch, threads: 1, steps: 1, warmupSteps: 1)
        XCTAssertEqual(result.parameters, (3072 * 1024 + 1024) + (1024 * 1024 + 1024) + (1024 * 100 + 100))
        XCTAssertEqual(result.teacherBytesPerStep, Double(batch * (8 + 4 * 100)))
    }

    /// `pskd bench --profile`: a row per layer of the model, the parts outside the layers, and
    /// shares that add up to the whole step.
    func testProfileCoversTheWholeStep() throws {
        let result = try ThroughputBenchmark.run(modelName: "cnn", batchSize: 8, threads: 1, steps: 1, warmupSteps: 1, profileSteps: 2)
        let profile = try XCTUnwrap(result.profile)
        XCTAssertEqual(profile.steps, 2)
        XCTAssertEqual(Array(profile.layers.map(\.name).prefix(3)), ["conv1", "bn1", "conv2"])
        XCTAssertEqual(profile.layers.first?.type, "Conv2d")
        XCTAssertEqual(
            profile.outsideLayers.map(\.name),
            [
                "targets (teacher rows)", "loss, softmax and logit gradient", "model outside its layers", "waiting for the other ranks",
                "gradient all-reduce", "optimiser update", "teacher exchange", "rest of the step (loss all-reduce, bookkeeping)",
            ])
        let shares = profile.layers.reduce(0) { $0 + $1.percent } + profile.outsideLayers.reduce(0) { $0 + $1.percent }
        XCTAssertEqual(shares, 100, accuracy: 1e-6)
        XCTAssertNil(try ThroughputBenchmark.run(modelName: "mlp", batchSize: 8, threads: 1, steps: 1, warmupSteps: 0).profile)
    }
}
