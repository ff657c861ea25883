import Collectives
import DataPipeline
import Foundation
import Layers
import Models
import SelfDistillation
import Tensors
import TestSupport
import Training
import XCTest

/// `Trainer` in-process with a `LocalCommunicator`: the records it returns, resuming, and the
/// PS-KD targets it trains against, each checked against an independent recomputation.
final class TrainerTests: XCTestCase {
    /// A two-epoch PS-KD run of the mlp on the first 256 Fashion-MNIST training samples.
    private func smallRun(_ name: String, epochs: Int = 2) -> TrainConfig {
        var config = TrainConfig()
        config.model = "mlp"
        config.maxTrainSamples = 256
        config.maxTestSamples = 200
        config.epochs = epochs
        config.batchSize = 64
        config.threads = 1
        config.prefetch = 0
        config.policy = "pskd"
        config.outputDirectory = temporaryPath(name)
        return config
    }

    private func train(_ config: TrainConfig, observe: ((StepObservation) -> Void)? = nil) throws -> (Trainer, EpochRecord?) {
        let trainer = try Trainer(config: config, communicator: LocalCommunicator())
        trainer.stepObserver = observe
        return (trainer, try trainer.run())
    }

    // MARK: - Records

    func testRecordsEqualAnIndependentEvaluationAndTheStepLosses() throws {
        let config = smallRun("records")
        var stepLosses: [Int: [Double]] = [:]
        let (trainer, last) = try train(config) { stepLosses[$0.epoch, default: []].append($0.loss) }
        let record = try XCTUnwrap(last)
        XCTAssertEqual(record.epoch, 2)
        XCTAssertEqual(record.alpha, Double(Float(0.8)), accuracy: 1e-7, "α_T · t/T at t = T")
        assertClose(
            record.trainLoss, stepLosses[2]!.reduce(0, +) / Double(stepLosses[2]!.count), absolute: 0, relative: 1e-12,
            "the train loss is the mean of the epoch's step losses")
        let expected = try evaluateByHand(trainer.model, testSamples: config.maxTestSamples!, eceBins: config.eceBins)
        XCTAssertEqual(record.testTop1Error, expected.top1Error, accuracy: 1e-9)
        assertClose(record.testNll, expected.nll, absolute: 1e-6, relative: 1e-5, "NLL")
        assertClose(record.testEce, expected.ece, absolute: 1e-3, relative: 0, "ECE (%)")
        XCTAssertGreaterThan(expected.ece, 0)
    }

    /// Top-1 error (%), mean NLL and ECE (%) of `model` on the first `testSamples` test images,
    /// computed the plain way: one sample at a time, softmax in Double, bins (lo, hi].
    private func evaluateByHand(_ model: Model, testSamples: Int, eceBins: Int) throws
        -> (top1Error: Double, nll: Double, ece: Double)
    {
        let test = try Dataset.load(name: "fashion-mnist", split: .test)
        var errors = 0, nllSum = 0.0
        var binCount = [Int](repeating: 0, count: eceBins), binCorrect = binCount
        var binConfidence = [Double](repeating: 0, count: eceBins)
        for sample in 0..<testSamples {
            let image = Tensor(
                shape: [1] + model.sampleShape,
                values: (0..<test.sampleSize).map { i in
                    (Float(test.pixels[sample * test.sampleSize + i]) / 255 - test.mean[0]) / test.std[0]
                })
            let logits = try model.forward(image, mode: .evaluation).scalars.map(Double.init)
            let maximum = logits.max()!
            let exps = logits.map { exp($0 - maximum) }
            let probabilities = exps.map { $0 / exps.reduce(0, +) }
            let label = Int(test.labels[sample])
            let predicted = probabilities.indices.max { probabilities[$0] < probabilities[$1] }!
            let confidence = probabilities[predicted]
            errors += predicted == label ? 0 : 1
            nllSum -= log(probabilities[label])
            let bin = min(max(Int((confidence * Double(eceBins)).rounded(.up)) - 1, 0), eceBins - 1)
            binCount[bin] += 1
            binCorrect[bin] += predicted == label ? 1 : 0
            binConfidence[bin] += confidence
        }
        let n = Double(testSamples)
        var ece = 0.0
        for bin in 0..<eceBins where binCount[bin] > 0 {
            let count = Double(binCount[bin])
            ece += count / n * abs(Double(binCorrect[bin]) / count - binConfidence[bin] / count)
        }
        return (100 * Double(errors) / n, nllSum / n, 100 * ece)
    }

    // MARK: - Resume

    func testResumingGivesTheSameParametersAndTeacherAsTrainingStraight() throws {
        let straight = try train(smallRun("straight")).0
        var firstHalf = smallRun("halves")
        firstHalf.stopAfterEpochs = 1
        // The trainer holds the run directory while it lives: let it go before resuming.
        XCTAssertEqual(try train(firstHalf).0.completedEpochs, 1)
        var secondHalf = firstHalf
        secondHalf.stopAfterEpochs = nil
        secondHalf.resume = true
        let resumed = try Trainer(config: secondHalf, communicator: LocalCommunicator())
        XCTAssertEqual(resumed.completedEpochs, 1, "resumed from the epoch-1 checkpoint")
        try resumed.run()
        assertBitIdentical(resumed.model.parameters.values, straight.model.parameters.values, "parameters")
        assertBitIdentical(resumed.model.parameters.buffers, straight.model.parameters.buffers, "buffers")
        assertBitIdentical(
            try XCTUnwrap(resumed.teacher as? TeacherTable).rows, try XCTUnwrap(straight.teacher as? TeacherTable).rows, "teacher table")
    }

    /// CS-KD's partners and TF-KD's teacher hold no state of their own: a resumed run draws the
    /// same partners and loads the same teacher, so it ends bit-identical to a straight one.
    func testDistillationPoliciesResumeExactly() throws {
        var teacherRun = smallRun("kd-teacher", epochs: 1)
        teacherRun.policy = "ce"
        _ = try train(teacherRun)
        for policy in ["cs-kd", "tf-kd-self"] {
            var straightRun = smallRun("\(policy)-straight")
            straightRun.policy = policy
            straightRun.teacherCheckpoint = teacherRun.outputDirectory
            let straight = try train(straightRun).0
            var firstHalf = straightRun
            firstHalf.outputDirectory = temporaryPath("\(policy)-halves")
            firstHalf.stopAfterEpochs = 1
            _ = try train(firstHalf)
            var secondHalf = firstHalf
            secondHalf.stopAfterEpochs = nil
            secondHalf.resume = true
            let resumed = try train(secondHalf).0
            XCTAssertEqual(resumed.completedEpochs, 2)
            assertBitIdentical(resumed.model.parameters.values, straight.model.parameters.values, "\(policy) parameters")
            assertBitIdentical(resumed.model.parameters.buffers, straight.model.parameters.buffers, "\(policy) buffers")
        }
    }

    // MARK: - PS-KD targets

    /// Every row the trainer trains on at epoch t is (1 − α_t)·onehot(y) + α_t·P_{t−1}(x), with
    /// P_{t−1}(x) the softmax the model gave that sample in its step of epoch t − 1 (recorded
    /// here from the steps, not read from the teacher table).
    func testTargetsMixTheLabelWithLastEpochsPrediction() throws {
        let config = smallRun("targets", epochs: 3)
        var lastPrediction: [Int: [Float]] = [:]
        var checkedRows = 0, alphas: [Int: Float] = [:]
        _ = try train(config) { step in
            let targets = step.targets!  // PS-KD trains against targets
            let classes = targets.shape[1]
            alphas[step.epoch] = step.alpha
            for (row, index) in step.indices.enumerated() {
                let target = Array(targets.scalars[(row * classes)..<((row + 1) * classes)])
                let teacher = lastPrediction[index] ?? (0..<classes).map { $0 == step.labels[row] ? 1 : 0 }
                let expected = (0..<classes).map { c in
                    (1 - step.alpha) * (c == step.labels[row] ? 1 : 0) + step.alpha * teacher[c]
                }
                assertClose(target, expected, absolute: 1e-6, relative: 1e-6, "epoch \(step.epoch), sample \(index)")
                checkedRows += step.epoch > 1 ? 1 : 0
            }
            for (row, index) in step.indices.enumerated() {
                lastPrediction[index] = Array(step.probabilities.scalars[(row * classes)..<((row + 1) * classes)])
            }
        }
        XCTAssertEqual(checkedRows, 2 * 256, "every sample of epochs 2 and 3 is checked")
        XCTAssertEqual(alphas, [1: 0.8 / 3, 2: 0.8 * 2 / 3, 3: 0.8])
    }

    // MARK: - Gradient accumulation

    /// K = 2 micro-batches of 32 per step train the same as one batch of 64 (the mlp has no
    /// BatchNorm), up to float rounding; the step count, schedule and teacher are unchanged.
    func testAccumulatingMicroBatchesEqualsOneBatch() throws {
        var whole = smallRun("whole")
        whole.policy = "pskd"
        var accumulated = whole
        accumulated.outputDirectory = temporaryPath("accumulated")
        accumulated.accumulateSteps = 2
        var steps = (whole: 0, accumulated: 0)
        let (one, oneRecord) = try train(whole) { _ in steps.whole += 1 }
        let (two, twoRecord) = try train(accumulated) { _ in steps.accumulated += 1 }
        XCTAssertEqual(steps.whole, steps.accumulated, "one optimiser step per global batch either way")
        assertClose(
            two.model.parameters.values.scalars, one.model.parameters.values.scalars, absolute: 2e-6, relative: 1e-4,
            "parameters after two epochs")
        assertClose(
            try XCTUnwrap(two.teacher as? TeacherTable).rows.scalars, try XCTUnwrap(one.teacher as? TeacherTable).rows.scalars,
            absolute: 1e-5, relative: 1e-4)
        assertClose(try XCTUnwrap(twoRecord).trainLoss, try XCTUnwrap(oneRecord).trainLoss, absolute: 1e-6, relative: 1e-5)
        XCTAssertNotEqual(
            two.model.parameters.values.scalars, one.model.parameters.values.scalars,
            "micro-batches round differently, so equal bits would mean the setting was ignored")
    }

    // MARK: - Label noise

    /// With --label-noise 0.4 every step trains on the noisy label of its samples (keyed by
    /// (seed, index)), PS-KD's first-epoch targets are one-hot of that noisy label (the teacher
    /// table starts from the labels it is given), metrics.jsonl counts the flips, and the test
    /// set stays clean (the record equals an evaluation on the clean test labels).
    func testNoisyLabelsAreTrainedOnAndTheTestSetStaysClean() throws {
        var config = smallRun("noisy", epochs: 1)
        config.labelNoise = 0.4
        let clean = try Dataset.load(name: "fashion-mnist", split: .train).labels.prefix(256).map(Int.init)
        let noise = LabelNoise(rate: 0.4, seed: config.seed)
        let noisy = clean.indices.map { noise.label(clean[$0], sample: $0, classCount: 10) }
        var seen: [Int: Int] = [:]
        let (trainer, last) = try train(config) { step in
            for (row, index) in step.indices.enumerated() {
                seen[index] = step.labels[row]
                XCTAssertEqual(step.targets![row * 10 + noisy[index]], 1, accuracy: 1e-6, "epoch-1 target of sample \(index)")
            }
        }
        XCTAssertEqual(seen.count, 256)
        XCTAssertEqual(seen, Dictionary(uniqueKeysWithValues: noisy.enumerated().map { ($0.offset, $0.element) }))
        let flipped = zip(noisy, clean).filter { $0 != $1 }.count
        XCTAssertEqual(Double(flipped), 0.4 * 256, accuracy: 5 * (256 * 0.4 * 0.6).squareRoot())
        let record = try XCTUnwrap(last)
        XCTAssertEqual(record.flippedLabels, flipped)
        let metrics = try String(contentsOfFile: config.outputDirectory + "/metrics.jsonl", encoding: .utf8)
        XCTAssertTrue(metrics.contains("\"flipped_labels\":\(flipped)"), metrics)
        // The job's layout, in every row (a one-process job of one thread on this host).
        XCTAssertEqual(trainer.world, WorldLayout(ranks: 1, nodes: 1, ranksPerNode: 1, threadsPerRank: 1))
        XCTAssertEqual(record.world, trainer.world)
        for key in ["\"ranks\":1", "\"nodes\":1", "\"ranks_per_node\":1", "\"threads_per_rank\":1"] {
            XCTAssertTrue(metrics.contains(key), "\(key) in \(metrics)")
        }
        let expected = try evaluateByHand(trainer.model, testSamples: config.maxTestSamples!, eceBins: config.eceBins)
        XCTAssertEqual(record.testTop1Error, expected.top1Error, accuracy: 1e-9, "evaluated against the clean test labels")
    }

    /// The layout counts distinct host names, the most ranks on one and the most threads of a rank.
    func testWorldLayoutOfRanksAndHosts() {
        XCTAssertEqual(
            WorldLayout(hosts: ["a", "b", "a"], threads: [1, 1, 2]), WorldLayout(ranks: 3, nodes: 2, ranksPerNode: 2, threadsPerRank: 2))
        XCTAssertEqual(WorldLayout(hosts: ["n1"], threads: [4]), WorldLayout(ranks: 1, nodes: 1, ranksPerNode: 1, threadsPerRank: 4))
    }

    /// --label-noise 0 trains exactly as a run without the flag: the same model file, byte for byte.
    func testLabelNoiseZeroChangesNothing() throws {
        let plain = smallRun("plain", epochs: 1)
        var zero = smallRun("zero-noise", epochs: 1)
        zero.labelNoise = 0
        let (_, plainRecord) = try train(plain)
        let (_, zeroRecord) = try train(zero)
        XCTAssertNil(try XCTUnwrap(zeroRecord).flippedLabels)
        XCTAssertEqual(try XCTUnwrap(zeroRecord).trainLoss, try XCTUnwrap(plainRecord).trainLoss)
        let model = "/checkpoints/epoch-0001/model.safetensors"
        let (a, b) = (
            try Data(contentsOf: URL(fileURLWithPath: plain.outputDirectory + model)),
            try Data(contentsOf: URL(fileURLWithPath: zero.outputDirectory + model))
        )
        XCTAssertEqual(a, b)
    }
}
