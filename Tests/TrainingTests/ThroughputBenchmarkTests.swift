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
}
