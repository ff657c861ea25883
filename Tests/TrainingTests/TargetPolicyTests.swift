import Collectives
import DataPipeline
import SelfDistillation
import Tensors
import TestSupport
import Training
import XCTest

/// The policies that train against one target row per sample (ce, ls, pskd), and the registry.
final class TargetPolicyTests: XCTestCase {
    /// A batch of `labels` at `step` of `epoch`, samples `indices`, with blank inputs.
    private func batch(labels: [Int32], indices: [Int], epoch: Int = 1, step: Int = 0) -> Batch {
        Batch(
            epoch: epoch, step: step, inputs: Tensor(zeros: [labels.count, 1]), labels: labels, indices: indices,
            isPadding: labels.map { _ in false })
    }

    func testAlphaGrowsLinearlyToAlphaT() throws {
        let policy = ProgressiveSelfDistillationPolicy(finalAlpha: 0.8, totalEpochs: 4, teacher: TeacherTable(labels: [0], classCount: 2))
        XCTAssertEqual(policy.alpha(epoch: 1), 0.2, accuracy: 1e-7)
        XCTAssertEqual(policy.alpha(epoch: 2), 0.4, accuracy: 1e-7)
        XCTAssertEqual(policy.alpha(epoch: 4), 0.8, accuracy: 1e-7)
        try policy.beginEpoch(3)
        XCTAssertEqual(policy.epochWeight, 0.6, accuracy: 1e-7)
        XCTAssertEqual(CrossEntropyPolicy(classCount: 2).epochWeight, 0)
    }

    /// `--teacher sharded` refuses more samples than its 32-bit orders index, with the
    /// setting and the limit in the message.
    func testShardedTeacherRefusesMoreSamplesThan32BitsIndex() throws {
        let limit = ShardedTeacher.maximumSampleCount
        XCTAssertEqual(limit, 1 << 32)
        XCTAssertNoThrow(try ProgressiveSelfDistillationPolicy.checkShardedTeacherFits(sampleCount: limit))
        XCTAssertThrowsError(try ProgressiveSelfDistillationPolicy.checkShardedTeacherFits(sampleCount: limit + 1)) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.contains("--teacher sharded") && message.contains("at most 4294967296"), message)
        }
    }

    func testPSKDTargetsMixLabelAndTeacher() throws {
        let teacher = TeacherTable(labels: [0, 2], classCount: 3)
        teacher.row(1).update(from: [0.1, 0.6, 0.3] as [Float], count: 3)
        let policy = ProgressiveSelfDistillationPolicy(finalAlpha: 1, totalEpochs: 2, teacher: teacher)
        try policy.beginEpoch(1)  // α_1 = 0.5
        try policy.beginStep(batch(labels: [2], indices: [1]))
        assertClose(try XCTUnwrap(policy.stepTargets).scalars, [0.05, 0.3, 0.5 + 0.15], absolute: 1e-6, relative: 0)
    }

    /// Epoch 1's teacher is the one-hot table, so its PS-KD target is the label.
    func testFirstEpochTargetIsTheLabel() throws {
        let policy = ProgressiveSelfDistillationPolicy(
            finalAlpha: 0.8, totalEpochs: 5, teacher: TeacherTable(labels: [1, 0], classCount: 3))
        try policy.beginEpoch(1)
        try policy.beginStep(batch(labels: [1, 0], indices: [0, 1]))
        assertClose(try XCTUnwrap(policy.stepTargets).scalars, [0, 1, 0, 1, 0, 0], absolute: 1e-7, relative: 0)
    }

    func testLabelSmoothing() throws {
        let policy = LabelSmoothingPolicy(epsilon: 0.1, classCount: 4)
        try policy.beginStep(batch(labels: [3], indices: [0]))
        assertClose(try XCTUnwrap(policy.stepTargets).scalars, [0.025, 0.025, 0.025, 0.925], absolute: 1e-7, relative: 0)
    }

    /// Cross-entropy's loss is −log softmax of the label, its gradient (p − onehot)/b.
    func testCrossEntropyLossOfAMicroBatch() throws {
        let policy = CrossEntropyPolicy(classCount: 3)
        try policy.beginStep(batch(labels: [2, 0, 1, 1], indices: [0, 1, 2, 3]))
        let logits = Tensor(shape: [2, 3], values: [1, 2, 3, 0, 0, 0])
        let loss = try policy.loss(logits: logits, rows: 2..<4, batchRows: 4)  // rows of labels 1, 1
        let first = -(2 - log(exp(1.0) + exp(2.0) + exp(3.0)))
        XCTAssertEqual(loss.loss, (first + log(3.0)) / 2, accuracy: 1e-5)
        XCTAssertEqual(loss.logitGradients[1], (loss.probabilities[1] - 1) / 4, accuracy: 1e-7)
        XCTAssertEqual(loss.logitGradients[3], loss.probabilities[3] / 4, accuracy: 1e-7)
    }

    /// The step's predictions become the teacher's rows, except padding and CutMix batches.
    func testPSKDWritesBackTheStepsPredictions() throws {
        let teacher = TeacherTable(labels: [0, 1, 2], classCount: 3)
        let policy = ProgressiveSelfDistillationPolicy(finalAlpha: 0.8, totalEpochs: 3, teacher: teacher)
        try policy.beginEpoch(1)
        let step = Batch(
            epoch: 1, step: 0, inputs: Tensor(zeros: [2, 1]), labels: [2, 0], indices: [2, 0], isPadding: [false, true])
        try policy.endStep(step, probabilities: Tensor(shape: [2, 3], values: [0.2, 0.3, 0.5, 0.9, 0.05, 0.05]))
        try policy.endEpoch(1)
        XCTAssertEqual(teacher.rows.scalars, [1, 0, 0, 0, 1, 0, 0.2, 0.3, 0.5])
    }

    func testTeacherUpdateWritesRowsByIndexAndSkipsPadding() throws {
        let table = TeacherTable(labels: [0, 1, 2], classCount: 3)
        let probabilities = Tensor(shape: [2, 3], values: [0.2, 0.3, 0.5, 0.9, 0.05, 0.05])
        try table.update(
            indices: [2, 0], probabilities: probabilities, isWritten: [true, false],
            communicator: LocalCommunicator())
        XCTAssertEqual(table.rows.scalars, [1, 0, 0, 0, 1, 0, 0.2, 0.3, 0.5])
    }

    /// Every policy is reachable by its name, names are unique, and `--policy` offers exactly them.
    func testRegistryOffersEveryPolicyByName() throws {
        XCTAssertEqual(Set(TrainingPolicies.names).count, TrainingPolicies.all.count)
        for type in TrainingPolicies.all { XCTAssertTrue(TrainingPolicies.named(type.name) == type) }
        XCTAssertNil(TrainingPolicies.named("kd"))
        XCTAssertEqual(try XCTUnwrap(TrainSetting.named("policy")).range, "one of " + TrainingPolicies.names.joined(separator: ", "))
        for type in TrainingPolicies.all {
            for setting in type.settingNames {
                XCTAssertNotNil(TrainSetting.named(setting), "\(type.name) reads unknown setting \(setting)")
            }
        }
        var config = TrainConfig()
        config.alphaT = 0.5
        XCTAssertEqual(ProgressiveSelfDistillationPolicy.label(config), "pskd (α_T = 0.5)")
    }
}
