import Collectives
import DataPipeline
import Layers
import Models
import Tensors
import TestSupport
import Training
import XCTest

/// CS-KD and TF-KD: their partners and teachers, and each loss and gradient against its definition.
final class DistillationPolicyTests: XCTestCase {
    /// 40 tiny 2×2 grey images in 4 classes (label i mod 4), pixels from the index.
    private let dataset = Dataset(
        name: "tiny", split: .train, height: 2, width: 2, channels: 1, classCount: 4,
        pixels: (0..<160).map { UInt8(($0 * 37) % 256) }, labels: (0..<40).map { Int32($0 % 4) }, mean: [0.5], std: [0.25])

    /// A linear model of the tiny images (no BatchNorm, no Dropout: each row's logits depend on that row alone).
    private func linearModel() throws -> Model {
        try Model(
            name: "linear", network: Sequential(named: [("flatten", Flatten()), ("fc", Linear(4, 4))]), sampleShape: [2, 2, 1],
            classCount: 4, generator: RandomGenerator(seed: 3))
    }

    private func batch(_ indices: [Int], epoch: Int = 1) throws -> Batch {
        let inputs = Tensor(zeros: [indices.count, 2, 2, 1])
        let plain = Augmenter(dataset: dataset, config: .none, seed: 0)
        for (row, index) in indices.enumerated() {
            inputs.rows(row..<(row + 1)).pointer.update(from: try plain.augmentedSample(index: index, epoch: epoch), count: 4)
        }
        return Batch(
            epoch: epoch, step: 0, inputs: inputs, labels: indices.map { dataset.labels[$0] }, indices: indices,
            isPadding: indices.map { _ in false })
    }

    // MARK: - CS-KD

    func testPartnersShareTheClassAndDependOnSeedEpochAndIndexOnly() throws {
        let model = try linearModel()
        let policy = ClassWiseSelfDistillationPolicy(model: model, train: dataset, augmentation: .none, seed: 7, temperature: 4, weight: 1)
        let again = ClassWiseSelfDistillationPolicy(model: model, train: dataset, augmentation: .none, seed: 7, temperature: 4, weight: 1)
        var selfPairs = 0, epochChanges = 0, counts = [Int](repeating: 0, count: 40)
        for epoch in 1...50 {
            for index in 0..<40 {
                let partner = policy.partner(of: index, epoch: epoch)
                XCTAssertEqual(dataset.labels[partner], dataset.labels[index], "partner of \(index) in epoch \(epoch)")
                XCTAssertEqual(partner, again.partner(of: index, epoch: epoch))
                if partner == index { selfPairs += 1 }
                if partner != policy.partner(of: index, epoch: epoch + 1) { epochChanges += 1 }
                counts[partner] += 1
            }
        }
        // Each class has 10 members: a sample is its own partner 1 time in 10 (2 000 draws), as `random.choice`.
        XCTAssertEqual(Double(selfPairs), 200, accuracy: 5 * (2000 * 0.1 * 0.9).squareRoot())
        XCTAssertGreaterThan(epochChanges, 1500)
        XCTAssertEqual(Double(counts.min()!), 50, accuracy: 30, "every member is drawn about equally often")
        let otherSeed = ClassWiseSelfDistillationPolicy(
            model: model, train: dataset, augmentation: .none, seed: 8, temperature: 4, weight: 1)
        XCTAssertNotEqual((0..<40).map { policy.partner(of: $0, epoch: 1) }, (0..<40).map { otherSeed.partner(of: $0, epoch: 1) })
    }

    /// loss = CE(z, y) + λ·T²·KL(softmax(z(x′)/T) ‖ softmax(z/T)), the partner's logits computed here by
    /// forwarding its image alone.
    func testCSKDLossIsCrossEntropyPlusTheWeightedPartnerDivergence() throws {
        let model = try linearModel()
        let policy = ClassWiseSelfDistillationPolicy(
            model: model, train: dataset, augmentation: .none, seed: 7, temperature: 4, weight: 0.5)
        let step = try batch([3, 10, 17, 22])
        try policy.beginStep(step)
        try policy.beforeForward(rows: 0..<4)
        let logits = try model.forward(step.inputs, mode: .training).copy()
        let loss = try policy.loss(logits: logits, rows: 0..<4, batchRows: 4)
        var expected = 0.0
        for row in 0..<4 {
            let z = (0..<4).map { Double(logits[row * 4 + $0]) }
            let label = Int(dataset.labels[step.indices[row]])
            let partnerLogits = try model.forward(try batch([policy.partners[row]]).inputs, mode: .training).scalars.map(Double.init)
            expected += -(z[label] - log(z.map(exp).reduce(0, +)))
            let q = softmax(partnerLogits.map { $0 / 4 }), p = softmax(z.map { $0 / 4 })
            expected += 0.5 * 16 * zip(q, p).map { $0 * log($0 / $1) }.reduce(0, +)
        }
        XCTAssertEqual(loss.loss, expected / 4, accuracy: 1e-5)
        try checkGradient(policy, logits: logits, rows: 0..<4, batchRows: 4)
    }

    func testCSKDRefusesCutMix() throws {
        var config = TrainConfig()
        config.policy = "cs-kd"
        config.cutMixProbability = 0.5
        config.outputDirectory = temporaryPath("cskd-cutmix")
        config.maxTrainSamples = 256
        config.batchSize = 64
        XCTAssertThrowsError(try Trainer(config: config, communicator: LocalCommunicator())) {
            XCTAssertTrue("\($0)".contains("drop --cutmix"), "\($0)")
        }
    }

    // MARK: - TF-KD

    /// The virtual teacher is softmax(u/T) with u = 0.99 on the label, 0.01/(C − 1) elsewhere; the
    /// loss (1 − α)·CE + α·multiplier/C·KL(q ‖ softmax(z)).
    func testTFKDRegularizationLossMatchesTheAuthorsFormula() throws {
        let policy = TeacherFreeRegularizationPolicy(classCount: 4, alpha: 0.1, temperature: 20, multiplier: 100)
        let step = try batch([0, 1, 2])
        try policy.beginStep(step)
        let logits = normalTensor([3, 4], seed: 11, standardDeviation: 2)
        let loss = try policy.loss(logits: logits, rows: 0..<3, batchRows: 3)
        var expected = 0.0
        for row in 0..<3 {
            let z = (0..<4).map { Double(logits[row * 4 + $0]) }
            let label = row  // labels 0, 1, 2
            let u = (0..<4).map { $0 == label ? 0.99 : 0.01 / 3 }
            let q = softmax(u.map { $0 / 20 }), p = softmax(z)
            expected += 0.9 * -log(p[label])
            expected += 0.1 * 100 / 4 * zip(q, p).map { $0 * log($0 / $1) }.reduce(0, +)
        }
        XCTAssertEqual(loss.loss, expected / 3, accuracy: 1e-5)
        try checkGradient(policy, logits: logits, rows: 0..<3, batchRows: 3)
    }

    /// The default multiplier is the authors' CIFAR-100 value scaled by C/100.
    func testTFKDDefaultMultiplierKeepsTheAuthorsPerSampleWeight() {
        var config = TrainConfig()
        config.policy = "tf-kd-reg"
        XCTAssertEqual(TeacherFreeRegularizationPolicy.label(config), "tf-kd-reg (α = 0.1, T = 20, ×100·C/100)")
        config.kdMultiplier = 10
        XCTAssertEqual(TeacherFreeRegularizationPolicy.label(config), "tf-kd-reg (α = 0.1, T = 20, ×10)")
        XCTAssertEqual(TeacherFreeSelfTrainingPolicy.label(TrainConfig()), "tf-kd-self (α = 0.95, T = 6, ×50·C/100)")
    }

    /// tf-kd-self distils the model of a finished run, in evaluation mode:
    /// (1 − α)·CE + α·T²·multiplier/C·KL(softmax(t/T) ‖ softmax(z/T)).
    func testTFKDSelfDistilsTheCheckpointedModel() throws {
        var teacherRun = TrainConfig()
        teacherRun.model = "mlp"
        teacherRun.policy = "ce"
        teacherRun.maxTrainSamples = 256
        teacherRun.maxTestSamples = 100
        teacherRun.epochs = 1
        teacherRun.batchSize = 64
        teacherRun.threads = 1
        teacherRun.outputDirectory = temporaryPath("tfkd-teacher")
        let teacherTrainer = try Trainer(config: teacherRun, communicator: LocalCommunicator())
        try teacherTrainer.run()

        var config = teacherRun
        config.policy = "tf-kd-self"
        config.outputDirectory = temporaryPath("tfkd-student")
        XCTAssertThrowsError(try Trainer(config: config, communicator: LocalCommunicator())) {
            XCTAssertTrue("\($0)".contains("--teacher-checkpoint"), "\($0)")
        }
        config.teacherCheckpoint = teacherRun.outputDirectory
        config.kdWeight = 0.7
        config.kdMultiplier = 3
        let student = try Trainer(config: config, communicator: LocalCommunicator())
        let policy = try XCTUnwrap(student.policy as? TeacherFreeSelfTrainingPolicy)
        XCTAssertEqual(policy.teacherModel.parameters.values.scalars, teacherTrainer.model.parameters.values.scalars)

        let inputs = normalTensor([3] + student.model.sampleShape, seed: 5, standardDeviation: 1)
        let step = Batch(epoch: 1, step: 0, inputs: inputs, labels: [1, 7, 3], indices: [0, 1, 2], isPadding: [false, false, false])
        try policy.beginStep(step)
        try policy.beforeForward(rows: 0..<3)
        let teacherLogits = try teacherTrainer.model.forward(inputs, mode: .evaluation).scalars.map(Double.init)
        let logits = normalTensor([3, 10], seed: 6, standardDeviation: 2)
        let loss = try policy.loss(logits: logits, rows: 0..<3, batchRows: 3)
        var expected = 0.0
        for (row, label) in [1, 7, 3].enumerated() {
            let z = (0..<10).map { Double(logits[row * 10 + $0]) }
            let q = softmax(teacherLogits[(row * 10)..<(row * 10 + 10)].map { $0 / 6 }), p = softmax(z.map { $0 / 6 })
            expected += 0.3 * -log(softmax(z)[label])
            expected += 0.7 * 36 * 3 / 10 * zip(q, p).map { $0 * log($0 / $1) }.reduce(0, +)
        }
        XCTAssertEqual(loss.loss, expected / 3, accuracy: 1e-4)
        try checkGradient(policy, logits: logits, rows: 0..<3, batchRows: 3)

        config.teacherCheckpoint = temporaryPath("no-such-run")
        config.outputDirectory = temporaryPath("tfkd-student-2")  // the student above still holds its directory
        XCTAssertThrowsError(try Trainer(config: config, communicator: LocalCommunicator())) {
            XCTAssertTrue("\($0)".hasPrefix("--teacher-checkpoint: "), "\($0)")
        }
    }

    /// Issue 24: tf-kd-self accepted a cnn teacher for an mlp student. A teacher of another
    /// network, or trained on samples of another shape or class count, is refused naming both.
    func testTFKDSelfRefusesATeacherOfAnotherNetworkOrDataShape() throws {
        var teacherRun = TrainConfig()
        (teacherRun.model, teacherRun.policy, teacherRun.dataset) = ("mlp", "ce", "synthetic")
        (teacherRun.syntheticSamples, teacherRun.syntheticTestSamples, teacherRun.syntheticFeatures) = (128, 32, 16)
        (teacherRun.epochs, teacherRun.batchSize, teacherRun.threads) = (1, 64, 1)
        teacherRun.outputDirectory = temporaryPath("tfkd-shape-teacher")
        try Trainer(config: teacherRun, communicator: LocalCommunicator()).run()

        var config = teacherRun
        (config.policy, config.teacherCheckpoint) = ("tf-kd-self", teacherRun.outputDirectory)
        config.outputDirectory = temporaryPath("tfkd-shape-student")
        config.syntheticClasses = 5
        XCTAssertThrowsError(try Trainer(config: config, communicator: LocalCommunicator())) {
            XCTAssertTrue(
                "\($0)".contains(
                    "--teacher-checkpoint \(teacherRun.outputDirectory) was trained on 1 × 16 × 1 samples of 10 classes, "
                        + "this run trains on 1 × 16 × 1 samples of 5 classes"), "\($0)")
        }
        config.syntheticClasses = nil
        config.syntheticFeatures = 20
        config.outputDirectory = temporaryPath("tfkd-shape-student-2")
        XCTAssertThrowsError(try Trainer(config: config, communicator: LocalCommunicator())) {
            XCTAssertTrue("\($0)".contains("samples of 10 classes, this run trains on 1 × 20 × 1 samples of 10 classes"), "\($0)")
        }

        var cnnTeacher = TrainConfig()
        (cnnTeacher.model, cnnTeacher.policy, cnnTeacher.maxTrainSamples, cnnTeacher.maxTestSamples) = ("cnn", "ce", 64, 32)
        (cnnTeacher.epochs, cnnTeacher.batchSize, cnnTeacher.threads) = (1, 32, 1)
        cnnTeacher.outputDirectory = temporaryPath("tfkd-cnn-teacher")
        try Trainer(config: cnnTeacher, communicator: LocalCommunicator()).run()
        var mlpStudent = cnnTeacher
        (mlpStudent.model, mlpStudent.policy, mlpStudent.teacherCheckpoint) = ("mlp", "tf-kd-self", cnnTeacher.outputDirectory)
        mlpStudent.outputDirectory = temporaryPath("tfkd-mlp-student")
        XCTAssertThrowsError(try Trainer(config: mlpStudent, communicator: LocalCommunicator())) {
            XCTAssertTrue(
                "\($0)".contains(
                    "--teacher-checkpoint \(cnnTeacher.outputDirectory) holds a cnn model, this run trains a mlp one: "
                        + "tf-kd-self distils the student's own network; give a run trained with --model mlp --policy ce"), "\($0)")
        }
    }

    // MARK: - Helpers

    private func softmax(_ z: [Double]) -> [Double] {
        let m = z.max()!
        let e = z.map { exp($0 - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    /// The policy's logit gradient against finite differences of its loss (the step's teacher
    /// and partner outputs held fixed).
    private func checkGradient(_ policy: any TrainingPolicy, logits: Tensor, rows: Range<Int>, batchRows: Int) throws {
        let analytic = try policy.loss(logits: logits, rows: rows, batchRows: batchRows).logitGradients.scalars
        let report = try GradientCheck(absoluteTolerance: 1e-4, relativeTolerance: 3e-3)
            .check([GradientCheck.Target(name: "logits", value: logits, analytic: analytic)]) {
                try policy.loss(logits: logits, rows: rows, batchRows: batchRows).loss
            }
        assertGradientsCorrect(report)
    }
}
