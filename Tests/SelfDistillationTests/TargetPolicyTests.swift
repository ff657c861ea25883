import Collectives
import SelfDistillation
import Tensors
import TestSupport
import XCTest

final class TargetPolicyTests: XCTestCase {
    func testAlphaGrowsLinearlyToAlphaT() {
        let policy = TargetPolicy.progressiveSelfDistillation(finalAlpha: 0.8)
        XCTAssertEqual(policy.alpha(epoch: 1, totalEpochs: 4), 0.2, accuracy: 1e-7)
        XCTAssertEqual(policy.alpha(epoch: 2, totalEpochs: 4), 0.4, accuracy: 1e-7)
        XCTAssertEqual(policy.alpha(epoch: 4, totalEpochs: 4), 0.8, accuracy: 1e-7)
        XCTAssertEqual(TargetPolicy.crossEntropy.alpha(epoch: 4, totalEpochs: 4), 0)
    }

    func testPSKDTargetsMixLabelAndTeacher() {
        let policy = TargetPolicy.progressiveSelfDistillation(finalAlpha: 0.8)
        let teacher = TeacherTable(labels: [0, 2], classCount: 3)
        let previous: [Float] = [0.1, 0.6, 0.3]
        teacher.row(1).update(from: previous, count: 3)
        let targets = Tensor(zeros: [1, 3])
        policy.makeTargets(labels: [2], alpha: 0.5, teacherRows: teacher.rows(step: 0, indices: [1], isPadding: [false]), into: targets)
        assertClose(targets.scalars, [0.05, 0.3, 0.5 + 0.15], absolute: 1e-6, relative: 0)
    }

    /// Epoch 1's teacher is the one-hot table, so its PS-KD target is the label.
    func testFirstEpochTargetIsTheLabel() {
        let table = TeacherTable(labels: [1, 0], classCount: 3)
        let policy = TargetPolicy.progressiveSelfDistillation(finalAlpha: 0.8)
        let targets = Tensor(zeros: [2, 3])
        policy.makeTargets(
            labels: [1, 0], alpha: policy.alpha(epoch: 1, totalEpochs: 5),
            teacherRows: table.rows(step: 0, indices: [0, 1], isPadding: [false, false]), into: targets)
        assertClose(targets.scalars, [0, 1, 0, 1, 0, 0], absolute: 1e-7, relative: 0)
    }

    func testLabelSmoothing() {
        let targets = Tensor(zeros: [1, 4])
        TargetPolicy.labelSmoothing(epsilon: 0.1).makeTargets(labels: [3], alpha: 0, teacherRows: nil, into: targets)
        assertClose(targets.scalars, [0.025, 0.025, 0.025, 0.925], absolute: 1e-7, relative: 0)
    }

    func testTeacherUpdateWritesRowsByIndexAndSkipsPadding() throws {
        let table = TeacherTable(labels: [0, 1, 2], classCount: 3)
        let probabilities = Tensor(shape: [2, 3], values: [0.2, 0.3, 0.5, 0.9, 0.05, 0.05])
        try table.update(
            indices: [2, 0], probabilities: probabilities, isWritten: [true, false],
            communicator: LocalCommunicator())
        XCTAssertEqual(table.rows.scalars, [1, 0, 0, 0, 1, 0, 0.2, 0.3, 0.5])
    }
}
