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
}
