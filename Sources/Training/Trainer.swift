import Collectives
import DataPipeline
import Foundation
import Layers
import Models
import Optimizers
import Platform
import SelfDistillation
import Tensors

/// Data-parallel PS-KD training: one model replica per rank, each on its shard of every global
/// batch; gradients averaged over all ranks; every rank keeps the same teacher table.
///
/// `init(config:communicator:)` validates the settings, takes the run directory (rank 0), loads
/// the data, builds the model identically on every rank and resumes from the newest checkpoint
/// when asked; `run()` trains the remaining epochs, evaluating, logging and checkpointing after
/// each, and returns the last epoch's record (nil when there was nothing left to train).
/// Every rank of the job makes the same calls; an error on one rank is an error on all.
///
/// ```swift
/// var config = TrainConfig()
/// config.model = "cnn"
/// config.policy = "pskd"
/// config.epochs = 2
/// config.maxTrainSamples = 1_000
/// config.outputDirectory = "runs/quick"
/// let trainer = try Trainer(config: config, communicator: LocalCommunicator())
/// if let last = try trainer.run() { print("top-1 error", last.testTop1Error) }
/// ```
public final class Trainer {
    public let config: TrainConfig
    public let communicator: any Communicator
    public let model: Model
    /// What the model trains against (`--policy`).
    public let policy: any TrainingPolicy
    /// The policy's per-sample state (PS-KD's teacher table, replicated or sharded), or nil.
    public var teacher: (any Teacher)? { policy.teacher }
    private let data: TrainingData
    private let step: TrainingStep
    private let schedule: any LearningRateSchedule
    private let log: RunLog
    /// Rank 0's lock on the run directory, held while the trainer lives.
    private let ownership: RunOwnership?
    private let checkpoints: CheckpointStore
    /// Where this rank is, for the stall watchdog.
    private let beacon = ProgressBeacon.shared
    /// Called after every training step with what it trained on (for tests and diagnostics).
    public var stepObserver: ((StepObservation) -> Void)?
    /// The job's ranks, nodes and threads, recorded in every row of `metrics.jsonl`.
    public let world: WorldLayout
    /// Epochs already completed (by a resumed checkpoint), 0 for a fresh run.
    public private(set) var completedEpochs = 0

    /// Loads the data, builds the model identically on every rank and checks that the ranks agree.
    public init(config: TrainConfig, communicator: any Communicator) throws {
        try config.validate(ranks: communicator.size)
        self.config = config
        self.communicator = communicator
        ownership =
            communicator.isRoot
            ? try RunOwnership(directory: config.outputDirectory, resume: config.resume, overwrite: config.overwrite) : nil
        BLAS.threads = ProcessPlacement.blasThreads(requested: config.threads)
        world = try WorldLayout.gather(threads: BLAS.threads, communicator: communicator)
        data = try TrainingData(config: config, communicator: communicator)
        model = try ModelZoo.make(
            config.model, input: data.train.modelInput, widthMultiplier: config.widthMultiplier,
            generator: RandomGenerator(seed: config.seed).split(RandomStream.initialisation))
        try ReplicaAgreement.checkShapes(model: model, data: data, communicator: communicator)
        policy = try TrainingPolicies.make(
            PolicyContext(
                config: config, model: model, train: data.train, sampler: data.sampler,
                augmentation: data.augmentation, communicator: communicator))
        step = TrainingStep(
            model: model, optimizer: try config.makeOptimizer(parameterCount: model.parameters.parameterCount),
            communicator: communicator, microBatches: config.microBatchesPerStep, seed: config.seed,
            beacon: ProgressBeacon.shared)
        schedule = try config.schedule()
        log = RunLog(directory: config.outputDirectory, isWriter: communicator.isRoot)
        checkpoints = CheckpointStore(runDirectory: config.outputDirectory, keep: config.keepCheckpoints)
        if config.resume { try resumeFromNewestCheckpoint() }
        if completedEpochs == 0 { try log.keepMetrics(throughEpoch: 0) }  // a fresh run starts a fresh metrics.jsonl
        try ReplicaAgreement.establish(model: model, communicator: communicator)
        try log.saveConfiguration(config)
    }

    /// Rank 0 picks the newest checkpoint that verifies (warning about any it skips); every
    /// rank loads that one. Nothing to resume is not an error: the run starts fresh.
    private func resumeFromNewestCheckpoint() throws {
        var chosen: Int64 = -1
        var skipped = 0
        if communicator.isRoot {
            let (found, warnings) = checkpoints.newestValid()
            warnings.forEach { log.say("pskd: warning: \($0)") }
            skipped = warnings.count
            chosen = found.map { Int64($0.snapshot.epoch) } ?? -1
        }
        try withUnsafeMutableBytes(of: &chosen) { try communicator.broadcast($0, root: 0) }
        guard chosen >= 0 else {
            log.say(
                skipped > 0
                    ? "pskd: --resume: none of the \(skipped) checkpoint(s) in \(checkpoints.directory.path) is usable (see the warnings above): starting from epoch 1"
                    : "pskd: --resume: no checkpoint in \(checkpoints.directory.path): starting from epoch 1")
            return
        }
        let folder = checkpoints.folder(epoch: Int(chosen))
        let snapshot = try checkpoints.load(folder)
        try config.checkMatches(
            checkpoint: try snapshot.configuration(source: folder.path), folder: folder.path, runDirectory: config.outputDirectory)
        try snapshot.restore(into: model, optimizer: step.optimizer, teacher: teacher, source: folder.path)
        guard snapshot.epoch <= config.epochs else {
            throw ConfigurationError(
                "--resume: the run in \(config.outputDirectory) has completed \(snapshot.epoch) epochs, "
                    + "more than --epochs \(config.epochs): give --epochs \(snapshot.epoch) or more to continue it, or another --out for a new run"
            )
        }
        completedEpochs = snapshot.epoch
        try log.keepMetrics(
            throughEpoch: completedEpochs, checkpointRecord: snapshot.metadata[TrainingSnapshot.recordKey], checkpoint: folder.path)
        let hash = try teacher?.tableHash()
        log.say(
            "pskd: resumed from \(folder.path) (epoch \(completedEpochs) of \(config.epochs) done)"
                + (hash.map { ", teacher table hash \(String($0, radix: 16))" } ?? ""))
    }

    /// Trains every epoch, evaluating and logging after each; returns the last epoch's record.
    @discardableResult
    public func run() throws -> EpochRecord? {
        log.say(
            "pskd: training \(config.model) (\(model.parameters.parameterCount) parameters) on \(config.dataset), "
                + "\(data.train.count) samples, policy \(type(of: policy).label(config)), \(config.epochs) epochs, global batch \(config.batchSize) "
                + "over \(communicator.size) rank(s) × \(BLAS.threads) thread(s); run directory \(config.outputDirectory)")
        if let streaming = data.streamingSummary(loaderThreads: config.loaderThreads ?? 1) { log.say("pskd: " + streaming) }
        if let noise = data.labelNoiseSummary(rate: config.labelNoise) { log.say("pskd: " + noise) }
        var last: EpochRecord?
        let lastEpoch = min(config.epochs, config.stopAfterEpochs ?? config.epochs)
        if lastEpoch <= completedEpochs {
            log.say(
                "pskd: \(completedEpochs) of \(config.epochs) epochs are already complete"
                    + (lastEpoch < config.epochs ? " (--stop-after \(lastEpoch))" : "") + ": nothing to train")
        }
        let stopwatch = Stopwatch()
        StopRequest.install()
        do {
            for epoch in (completedEpochs + 1)..<max(lastEpoch + 1, completedEpochs + 1) {
                last = try trainEpoch(epoch)
                beacon.enter(.checkpoint)
                try checkpoints.save(
                    TrainingSnapshot(epoch: epoch, model: model, optimizer: step.optimizer, config: config, record: last),
                    teacher: teacher, communicator: communicator)
                completedEpochs = epoch
            }
        } catch let interruption as TrainingInterrupted {
            sayInterrupted(interruption)
            throw interruption
        }
        if let teacher { try verifyIdenticalTeachers(teacher) }
        try sayPeakMemory()
        sayFinished(startedAt: stopwatch)
        return last
    }

    /// One epoch, as a recipe: for each batch, a data-parallel step with the policy (its
    /// targets, the update, its write-back); then agreeing BatchNorm statistics and evaluating.
    private func trainEpoch(_ epoch: Int) throws -> EpochRecord {
        let progress = Progress(
            epoch: epoch, epochs: config.epochs, steps: data.loader.stepsPerEpoch,
            samplesPerStep: config.batchSize, log: log, isLaunchedRank: communicator.isLaunchedRank)
        var lossSum = 0.0, learningRate = 0.0
        try policy.beginEpoch(epoch)
        try data.loader.forEachBatch(epoch: epoch) { batch in
            beacon.startStep(epoch: epoch, step: batch.step + 1)
            FaultInjection.current.atStepStart(rank: communicator.rank, epoch: epoch, step: batch.step + 1)
            FaultInjection.current.atStepStart(
                rank: communicator.rank, epoch: epoch, step: batch.step + 1, parameters: model.parameters.values)
            learningRate = schedule.learningRate(epoch: epoch - 1, step: batch.step, stepsPerEpoch: data.loader.stepsPerEpoch)
            let result = try step(batch, policy: policy, learningRate: Float(learningRate))
            stepObserver?(
                StepObservation(
                    epoch: epoch, step: batch.step, alpha: policy.epochWeight, indices: batch.indices,
                    labels: batch.labels.map(Int.init), targets: result.targets, probabilities: result.probabilities,
                    loss: result.loss))
            let (globalLoss, stopRequested) = try agreeAfterStep(loss: result.loss)
            guard !stopRequested else { throw TrainingInterrupted(signal: StopRequest.signal, epoch: epoch, step: batch.step + 1) }
            guard globalLoss.isFinite else {
                throw TrainingError("the loss became \(globalLoss) at epoch \(epoch), step \(batch.step + 1): lower --lr or check the data")
            }
            lossSum += globalLoss
            progress.advance(step: batch.step + 1, loss: globalLoss)
            beacon.enter(.data)
        }
        try policy.endEpoch(epoch)
        let trainingThroughput = progress.samplesPerSecond
        let dataWait = try communicator.allGatherV([data.loader.waitingSeconds]).max() ?? 0
        beacon.enter(.evaluation)
        try ReplicaAgreement.averageBatchNormStatistics(model: model, communicator: communicator)
        let (metrics, _) = try Evaluator(model: model, loader: data.testLoader, communicator: communicator).run(eceBins: config.eceBins)
        let record = EpochRecord(
            epoch: epoch, alpha: Double(policy.epochWeight), learningRate: learningRate,
            trainLoss: lossSum / Double(data.loader.stepsPerEpoch), metrics: metrics,
            seconds: progress.elapsed, samplesPerSecond: trainingThroughput, dataWaitSeconds: dataWait,
            flippedLabels: (config.labelNoise ?? 0) > 0 ? data.flippedLabels : nil,
            peakMemoryBytes: try peakMemoryPerRank().max(), world: world)
        try log.append(record)
        log.say(record.summary)
        return record
    }
}

extension Trainer {
    /// One all-reduce after each step: the mean loss over the ranks, and whether any rank
    /// received a stop signal (so every rank takes the same branch at the same step).
    private func agreeAfterStep(loss: Double) throws -> (loss: Double, stopRequested: Bool) {
        var values = [loss, StopRequest.signal == 0 ? 0 : 1]
        try values.withUnsafeMutableBufferPointer { try communicator.allReduce($0, .sum) }
        return (values[0] / Double(communicator.size), values[1] > 0)
    }

    /// The closing lines: the final and the best epoch (of all the run's epochs, resumed ones
    /// included) with their test metrics, the time, and where everything is.
    private func sayFinished(startedAt stopwatch: Stopwatch) {
        let records = log.records()
        if let final = records.last, let found = EpochRecord.bestTop1(of: records) {
            let (best, leftOut) = found
            let total = records.reduce(0) { $0 + $1.seconds }
            log.say(
                String(
                    format: "pskd: finished %d of %d epochs (%.1f s in all, %.1f s in this job)", final.epoch, config.epochs,
                    total, stopwatch.elapsedSeconds))
            log.say("pskd: final epoch " + final.testSummary)
            log.say("pskd: best top-1 epoch " + best.testSummary)
            if !leftOut.isEmpty { log.say("pskd: note: " + EpochRecord.describeLeftOut(leftOut, final: final)) }
        }
        log.say(
            "pskd: results in \(config.outputDirectory)/metrics.jsonl, checkpoints in \(checkpoints.directory.path); "
                + "`pskd evaluate --checkpoint \(shellQuoted(config.outputDirectory))` reports the newest again")
    }

    /// Every rank's peak resident memory so far (`PeakMemory`), in rank order, on every rank.
    private func peakMemoryPerRank() throws -> [UInt64] {
        try communicator.allGatherV([PeakMemory.residentBytes])
    }

    /// Rank 0 prints every rank's peak resident memory.
    private func sayPeakMemory() throws {
        let peaks = try peakMemoryPerRank()
        log.say(
            "pskd: peak resident memory per rank: "
                + peaks.enumerated().map { "\($0.offset): \(PeakMemory.megabytes($0.element))" }.joined(separator: ", "))
    }

    /// Says where training stopped and how to continue.
    private func sayInterrupted(_ interruption: TrainingInterrupted) {
        let resume = "`pskd train --resume --out \(shellQuoted(config.outputDirectory))`"
        log.say(
            "pskd: \(interruption); "
                + (completedEpochs > 0
                    ? "the last complete checkpoint is epoch \(completedEpochs) (\(checkpoints.folder(epoch: completedEpochs).path)): continue with \(resume)"
                    : "no epoch was complete, so there is no checkpoint: \(resume) starts again from epoch 1"))
    }

    /// Says the hash of the whole teacher table in index order (the same for both layouts); a
    /// replicated table's copies must all have it (`TeacherTable.tableHash` checks).
    private func verifyIdenticalTeachers(_ teacher: any Teacher) throws {
        let hash = String(try teacher.tableHash(), radix: 16)
        log.say(
            config.shardsTeacher
                ? "pskd: teacher table hash \(hash) (sharded over \(communicator.size) rank(s))"
                : "pskd: teacher table hash \(hash) identical on all \(communicator.size) rank(s)")
    }
}

/// A training run that cannot go on.
public struct TrainingError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
