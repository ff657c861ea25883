import DataPipeline
import Foundation
import Models
import Optimizers
import SelfDistillation

/// Everything that determines a training run: a plain value, filled from the command line and
/// config files (each setting's name, range and help are declared once, in `TrainSetting.swift`),
/// saved as the run directory's `config.json` and compared across ranks at start-up. The
/// defaults are `pskd train`'s.
///
/// ```swift
/// var config = TrainConfig()                 // cnn on Fashion-MNIST, PS-KD, 3 epochs
/// config.dataset = "cifar10"
/// config.dataDirectory = "data/cifar-10-batches-bin"
/// config.model = "preact-resnet18"
/// try config.validate(ranks: 2)              // every range, and the batch splits over 2 ranks
/// config.policy = "cs-kd"                   // one of TrainingPolicies.names
/// ```
public struct TrainConfig: Sendable, Codable, Equatable {
    public var model = "cnn"
    public var widthMultiplier = 1.0
    public var dataset = "fashion-mnist"
    public var dataDirectory: String? = nil
    /// `--dataset synthetic`'s training samples, test samples, classes and features; nil =
    /// `SyntheticShape.standard`'s. Optional so that configurations written before the
    /// settings existed still read.
    public var syntheticSamples: Int? = nil
    public var syntheticTestSamples: Int? = nil
    public var syntheticClasses: Int? = nil
    public var syntheticFeatures: Int? = nil
    /// Use only the first K training samples (a quick subset); nil = all.
    public var maxTrainSamples: Int? = nil
    /// Use only the first K test samples; nil = all.
    public var maxTestSamples: Int? = nil
    /// The probability that a training label is replaced by another class (symmetric label
    /// noise, see `LabelNoise`); nil = 0. Optional so that configurations written before the
    /// setting existed still read as clean labels.
    public var labelNoise: Double? = nil
    public var epochs = 3
    /// Samples per step summed over all ranks; each rank trains on batchSize / ranks.
    public var batchSize = 128
    public var dropLast = false
    /// Micro-batches per optimiser step (gradient accumulation): each rank's share of a global
    /// batch is trained in this many equal runs of rows whose gradients add up before the one
    /// all-reduce and update of the step; nil = 1. Optional so that configurations written
    /// before the setting existed still read as 1.
    public var accumulateSteps: Int? = nil
    public var learningRate = 0.1
    /// `step`, `cosine` or `constant`.
    public var learningRateSchedule = LearningRateScheduleKind.cosine
    /// Epochs (completed) after which `step` multiplies the rate by 0.1.
    public var milestones: [Int] = []
    public var warmupEpochs = 0
    public var optimizer = OptimizerKind.sgd
    public var momentum = 0.9
    public var nesterov = true
    public var weightDecay = 5e-4
    /// `l2` (PyTorch SGD) or `decoupled` (AdamW).
    public var weightDecayStyle = WeightDecayStyle.l2
    /// The training policy's name, one of `TrainingPolicies.names`.
    public var policy = "pskd"
    /// How PS-KD's teacher table is kept: `replicated` (whole on every rank) or `sharded`
    /// (each rank keeps the rows it reads next); nil = replicated. Both train the same, bit for bit.
    public var teacher: TeacherLayout? = nil
    /// α_T, PS-KD's final weight of the teacher.
    public var alphaT = 0.8
    /// ε of label smoothing.
    public var labelSmoothing = 0.1
    /// The distillation temperature T of cs-kd, tf-kd-self and tf-kd-reg; nil = the policy's
    /// default (4, 6 and 20, as their authors' code).
    public var kdTemperature: Double? = nil
    /// The weight of the distillation term: CS-KD's λ, TF-KD's α; nil = the policy's default
    /// (1, 0.95 and 0.1).
    public var kdWeight: Double? = nil
    /// TF-KD's `multiplier` of the KL term (averaged over N·C elements, as PyTorch's
    /// `KLDivLoss()`); nil = the authors' CIFAR-100 value scaled by C/100 (50·C/100 for
    /// tf-kd-self, 100·C/100 for tf-kd-reg).
    public var kdMultiplier: Double? = nil
    /// tf-kd-self's teacher: a run directory (its newest complete checkpoint) or a checkpoint folder.
    public var teacherCheckpoint: String? = nil
    public var seed: UInt64 = 1
    public var cropPadding: Int? = nil
    public var horizontalFlip: Bool? = nil
    public var cutMixProbability = 0.0
    /// Image folders and shards: the square crop's side; nil = the images' own size when small,
    /// else 224 (see `ImageOptions`).
    public var imageSize: Int? = nil
    /// Image folders and shards: evaluation's shorter side before the centre crop; nil = 256 ·
    /// imageSize / 224.
    public var evalResize: Int? = nil
    /// Per-channel normalisation overriding the data set's; nil = the data set's.
    public var mean: [Double]? = nil
    public var std: [Double]? = nil
    /// Threads per rank decoding streamed images; nil = 1.
    public var loaderThreads: Int? = nil
    public var eceBins = 15
    /// Batches the loader prepares ahead on a background thread.
    public var prefetch = 2
    /// Threads per rank (products and elementwise passes); nil = the CPUs the rank is bound to.
    public var threads: Int? = nil
    /// The run directory (metrics, configuration, checkpoints).
    public var outputDirectory = "runs/latest"
    /// Continue from the newest complete checkpoint in the run directory, if there is one.
    public var resume = false
    /// Stop (with a checkpoint) once this many epochs are complete, to continue later with
    /// `resume`; nil = train all `epochs`. The schedule still spans `epochs`.
    public var stopAfterEpochs: Int? = nil
    /// Complete checkpoints kept in the run directory (the newest ones).
    public var keepCheckpoints = 3
    /// Replace the run already in the run directory (only what pskd wrote there).
    public var overwrite = false
    /// Seconds a rank may go without progress before the stall watchdog ends the job; nil
    /// derives it from the step times (at least 60 s), 0 turns the watchdog off.
    public var stallTimeout: Double? = nil

    public init() {}

    /// The keys of `config.json` and of the checkpoints' copy of the configuration:
    /// `TrainSetting.all`'s names (a test checks that they agree).
    enum CodingKeys: String, CodingKey, CaseIterable {
        case model, widthMultiplier = "width-multiplier", dataset, dataDirectory = "data-dir"
        case syntheticSamples = "synthetic-samples", syntheticTestSamples = "synthetic-test-samples"
        case syntheticClasses = "synthetic-classes", syntheticFeatures = "synthetic-features"
        case maxTrainSamples = "max-train-samples", maxTestSamples = "max-test-samples", labelNoise = "label-noise", epochs
        case batchSize = "batch-size", dropLast = "drop-last", accumulateSteps = "accumulate-steps", learningRate = "lr"
        case learningRateSchedule = "lr-schedule", milestones, warmupEpochs = "warmup-epochs", optimizer, momentum
        case nesterov, weightDecay = "weight-decay", weightDecayStyle = "weight-decay-style", policy, teacher
        case alphaT = "alpha-t", labelSmoothing = "label-smoothing", seed, cropPadding = "crop-padding"
        case kdTemperature = "kd-temperature", kdWeight = "kd-weight", kdMultiplier = "kd-multiplier"
        case teacherCheckpoint = "teacher-checkpoint"
        case horizontalFlip = "flip", imageSize = "image-size", evalResize = "eval-resize", mean, std
        case cutMixProbability = "cutmix", eceBins = "ece-bins", loaderThreads = "loader-threads", prefetch, threads
        case outputDirectory = "out", resume, stopAfterEpochs = "stop-after", keepCheckpoints = "keep-checkpoints"
        case overwrite, stallTimeout = "stall-timeout"
    }

    /// Decodes over the defaults (or over `userInfo[TrainConfig.base]`): a key that is missing (a setting added after the file was
    /// written, or one a config.json leaves out) keeps its default, so run directories and
    /// checkpoints of earlier releases still read. An unknown key is refused, naming the nearest
    /// setting ("unknown setting 'epoch'; did you mean 'epochs'?").
    public init(from decoder: any Decoder) throws {
        self = decoder.userInfo[Self.base] as? TrainConfig ?? TrainConfig()
        let known = Set(CodingKeys.allCases.map(\.stringValue))
        for key in try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue).sorted() where !known.contains(key) {
            throw ConfigurationError("unknown setting \(TrainSetting.excerpt(key)); did you mean '\(TrainSetting.nearest(to: key))'?")
        }
        let values = try decoder.container(keyedBy: CodingKeys.self)
        func read<Value: Decodable>(_ path: WritableKeyPath<TrainConfig, Value>, _ key: CodingKeys) throws {
            if let value = try values.decodeIfPresent(Value.self, forKey: key) { self[keyPath: path] = value }
        }
        func read<Value: Decodable>(_ path: WritableKeyPath<TrainConfig, Value?>, _ key: CodingKeys) throws {
            if let value = try values.decodeIfPresent(Value.self, forKey: key) { self[keyPath: path] = value }
        }
        try read(\.model, .model)
        try read(\.widthMultiplier, .widthMultiplier)
        try read(\.dataset, .dataset)
        try read(\.dataDirectory, .dataDirectory)
        try read(\.syntheticSamples, .syntheticSamples)
        try read(\.syntheticTestSamples, .syntheticTestSamples)
        try read(\.syntheticClasses, .syntheticClasses)
        try read(\.syntheticFeatures, .syntheticFeatures)
        try read(\.maxTrainSamples, .maxTrainSamples)
        try read(\.maxTestSamples, .maxTestSamples)
        try read(\.labelNoise, .labelNoise)
        try read(\.epochs, .epochs)
        try read(\.batchSize, .batchSize)
        try read(\.dropLast, .dropLast)
        try read(\.accumulateSteps, .accumulateSteps)
        try read(\.learningRate, .learningRate)
        try read(\.learningRateSchedule, .learningRateSchedule)
        try read(\.milestones, .milestones)
        try read(\.warmupEpochs, .warmupEpochs)
        try read(\.optimizer, .optimizer)
        try read(\.momentum, .momentum)
        try read(\.nesterov, .nesterov)
        try read(\.weightDecay, .weightDecay)
        try read(\.weightDecayStyle, .weightDecayStyle)
        try read(\.policy, .policy)
        try read(\.teacher, .teacher)
        try read(\.alphaT, .alphaT)
        try read(\.labelSmoothing, .labelSmoothing)
        try read(\.kdTemperature, .kdTemperature)
        try read(\.kdWeight, .kdWeight)
        try read(\.kdMultiplier, .kdMultiplier)
        try read(\.teacherCheckpoint, .teacherCheckpoint)
        try read(\.seed, .seed)
        try read(\.cropPadding, .cropPadding)
        try read(\.horizontalFlip, .horizontalFlip)
        try read(\.imageSize, .imageSize)
        try read(\.evalResize, .evalResize)
        try read(\.mean, .mean)
        try read(\.std, .std)
        try read(\.cutMixProbability, .cutMixProbability)
        try read(\.eceBins, .eceBins)
        try read(\.loaderThreads, .loaderThreads)
        try read(\.prefetch, .prefetch)
        try read(\.threads, .threads)
        try read(\.outputDirectory, .outputDirectory)
        try read(\.resume, .resume)
        try read(\.stopAfterEpochs, .stopAfterEpochs)
        try read(\.keepCheckpoints, .keepCheckpoints)
        try read(\.overwrite, .overwrite)
        try read(\.stallTimeout, .stallTimeout)
    }

    /// A decoder's `userInfo` key: the configuration to decode over, instead of the defaults (a
    /// `--config` file's settings over a resumed run's).
    public static let base = CodingUserInfoKey(rawValue: "pskd.TrainConfig.base")!

    /// Any key of a container, to find the unknown ones.
    private struct AnyKey: CodingKey {
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    /// The run directory's `config.json`: the training's settings (not the job's own,
    /// `instanceKeys`) in the coding of the checkpoints, keys sorted, one per line.
    public func settingsJSON() throws -> Data {
        var settings = try JSONSerialization.jsonObject(with: JSONEncoder().encode(self)) as? [String: Any] ?? [:]
        for key in Self.instanceKeys { settings[key] = nil }
        return try JSONSerialization.data(withJSONObject: settings, options: [.prettyPrinted, .sortedKeys])
    }

    /// The training's settings of a run directory's `config.json` (`source`, for messages), over
    /// the defaults; the job's own settings (`instanceKeys`), if a file gives them, are not taken.
    public static func decode(settingsJSON data: Data, source: String) throws -> TrainConfig {
        let decoded: TrainConfig
        do {
            decoded = try JSONDecoder().decode(TrainConfig.self, from: data)
        } catch let error as ConfigurationError {
            throw ConfigurationError("\(source): \(error)")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context),
            let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty
        {
            let key = context.codingPath.first?.stringValue ?? "?"
            throw ConfigurationError(
                "\(source): setting '\(key)' must be \(TrainSetting.named(key)?.expected ?? "another value") (\(context.debugDescription))")
        } catch {
            throw ConfigurationError("\(source): not a JSON object of settings: \(TrainSetting.excerpt("\(error)", limit: 300))")
        }
        var config = decoded
        let defaults = TrainConfig()
        (config.outputDirectory, config.resume) = (defaults.outputDirectory, defaults.resume)
        (config.stopAfterEpochs, config.overwrite) = (defaults.stopAfterEpochs, defaults.overwrite)
        return config
    }

    /// Settings of this job rather than of the training (where it writes, whether it continues
    /// or replaces, when it stops): not in `config.json`.
    public static let instanceKeys: Set<String> = ["out", "resume", "stop-after", "overwrite"]

    /// Settings that `--resume` may change, because they do not change the training so far:
    /// more epochs, where the data is, threads, loading, checkpoints kept, evaluation, and the stall watchdog.
    public static let changeableOnResume: Set<String> = [
        "epochs", "data-dir", "threads", "prefetch", "keep-checkpoints",
        "ece-bins", "max-test-samples", "stall-timeout", "teacher",
    ]

    /// Throws, naming them, if settings that `--resume` may not change differ from `saved`
    /// (the run's `config.json`).
    public func checkResumable(from saved: TrainConfig, runDirectory: String) throws {
        let (mine, theirs) = (try canonicalSettings(), try saved.canonicalSettings())
        let fixed = Set(mine.keys).union(theirs.keys).subtracting(Self.instanceKeys).subtracting(Self.changeableOnResume)
        let changed = fixed.sorted().filter { mine[$0] != theirs[$0] }
        guard changed.isEmpty else {
            let listed = changed.map { "\($0) (the run: \(theirs[$0] ?? "unset"), now: \(mine[$0] ?? "unset"))" }
            throw ConfigurationError(
                "--resume: \(runDirectory) was trained with other settings: \(listed.joined(separator: ", ")). "
                    + "Resuming may change only \(Self.changeableOnResume.sorted().joined(separator: ", ")); "
                    + "drop the others to continue the run, or train a new one with another --out")
        }
    }

    /// Throws, naming them with both values, if settings that `--resume` may not change differ
    /// from those the checkpoint `folder` stored when it was written (`trained`): the run's
    /// `config.json` was edited between jobs, and resuming would silently train on with other
    /// settings than the ones that made the checkpoint.
    public func checkMatches(checkpoint trained: TrainConfig, folder: String, runDirectory: String) throws {
        let (mine, theirs) = (try canonicalSettings(), try trained.canonicalSettings())
        let fixed = Set(mine.keys).union(theirs.keys).subtracting(Self.instanceKeys).subtracting(Self.changeableOnResume)
        let changed = fixed.sorted().filter { mine[$0] != theirs[$0] }
        guard changed.isEmpty else {
            let listed = changed.map {
                "\($0) (the checkpoint: \(TrainSetting.excerpt(theirs[$0] ?? "unset", quoted: false)), "
                    + "now: \(TrainSetting.excerpt(mine[$0] ?? "unset", quoted: false)))"
            }
            throw ConfigurationError(
                "--resume: the checkpoint \(folder) was trained with other settings than \(runDirectory)/config.json and this "
                    + "command give: \(listed.joined(separator: ", ")); config.json was changed after the run began. Put the "
                    + "checkpoint's values back in config.json (or give them as flags) to continue the run, or train a new run with another --out"
            )
        }
    }

    /// The shape of `--dataset synthetic`: the `synthetic-*` settings, `SyntheticShape.standard`'s
    /// where unset.
    public var syntheticShape: SyntheticShape {
        let standard = SyntheticShape.standard
        return SyntheticShape(
            trainSamples: syntheticSamples ?? standard.trainSamples,
            testSamples: syntheticTestSamples ?? standard.testSamples,
            classes: syntheticClasses ?? standard.classes, features: syntheticFeatures ?? standard.features)
    }

    /// The data set the configuration names; `synthetic` is generated from the `synthetic-*`
    /// settings and the seed.
    public func datasetSpec() throws -> DatasetSpec {
        dataset == "synthetic" ? .synthetic(syntheticShape, seed: seed) : try DatasetSpec.named(dataset)
    }

    /// The image settings (`--image-size`, `--eval-resize`, `--mean`, `--std`) for `DatasetSpec.load`.
    public var imageOptions: ImageOptions {
        ImageOptions(
            imageSize: imageSize, evalResize: evalResize, mean: mean?.map { Float($0) }, std: std?.map { Float($0) })
    }

    /// Whether the teacher table is sharded across the ranks (`teacher: sharded`).
    public var shardsTeacher: Bool { teacher == .sharded }

    /// The learning-rate schedule the configuration names.
    public func schedule() throws -> any LearningRateSchedule {
        let base: any LearningRateSchedule
        switch learningRateSchedule {
        case .step: base = StepSchedule(base: learningRate, milestones: milestones)
        case .cosine: base = CosineSchedule(base: learningRate, epochs: epochs)
        case .constant: base = ConstantSchedule(base: learningRate)
        }
        return warmupEpochs > 0 ? WarmupSchedule(base, warmupEpochs: warmupEpochs) : base
    }

    /// The optimiser the configuration names, for `parameterCount` parameters.
    public func makeOptimizer(parameterCount: Int) throws -> any Optimizer {
        let style = weightDecayStyle
        switch optimizer {
        case .sgd:
            return SGD(
                parameterCount: parameterCount, momentum: Float(momentum), nesterov: nesterov && momentum > 0,
                weightDecay: Float(weightDecay), weightDecayStyle: style)
        case .adamw:
            return AdamW(parameterCount: parameterCount, weightDecay: Float(weightDecay), weightDecayStyle: style)
        }
    }

    /// Checks every setting's range (as `TrainSetting.all` declares it) and the combinations
    /// that do not depend on the number of ranks; run before the job starts, so a bad value is
    /// refused before anything happens.
    public func validate() throws {
        try TrainSetting.checkRanges(self)
        try require(
            maxTrainSamples.map { $0 >= batchSize } ?? true,
            "max-train-samples \(maxTrainSamples ?? 0) is smaller than one global batch (\(batchSize))")
        try require(
            dataset != "synthetic" || model == "mlp",
            "model \(model) needs images; the synthetic data set's samples are vectors of \(syntheticShape.features) features: use --model mlp"
        )
    }

    /// `validate()`, and the combinations that depend on the number of ranks.
    public func validate(ranks: Int) throws {
        try validate()
        try require(
            batchSize >= ranks && batchSize % ranks == 0,
            "batch-size \(batchSize) is the global batch: it must be a positive multiple of the \(ranks) ranks")
        try require(batchSize / ranks >= 2, "batch-size \(batchSize) leaves fewer than 2 samples per rank; BatchNorm needs at least 2")
        let rankBatch = batchSize / ranks
        try require(
            rankBatch % microBatchesPerStep == 0,
            "accumulate-steps \(microBatchesPerStep) must divide each rank's \(rankBatch) samples (batch-size \(batchSize) over \(ranks) ranks) into equal micro-batches"
        )
        try require(
            rankBatch / microBatchesPerStep >= 2,
            "accumulate-steps \(microBatchesPerStep) leaves micro-batches of fewer than 2 samples per rank (batch-size \(batchSize) over \(ranks) ranks); BatchNorm needs at least 2"
        )
    }

    /// Micro-batches per optimiser step: `accumulateSteps`, 1 when unset.
    public var microBatchesPerStep: Int { accumulateSteps ?? 1 }

    /// The settings by name (the keys of config.json), each value as JSON text: what the
    /// start-up handshake compares across ranks. Unset optional settings are absent.
    public func canonicalSettings() throws -> [String: String] {
        TrainSetting.values(of: self).mapValues { value in
            (try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys]))
                .map { String(decoding: $0, as: UTF8.self) } ?? "\(value)"
        }
    }

    private func require(_ condition: Bool, _ message: @autoclosure () -> String) throws {
        if !condition { throw ConfigurationError(message()) }
    }
}

/// The optimiser (`--optimizer`).
public enum OptimizerKind: String, Sendable, CaseIterable, Codable {
    /// `torch.optim.SGD`: momentum, Nesterov, L2 or decoupled weight decay.
    case sgd
    /// `torch.optim.AdamW`.
    case adamw
}

/// The learning-rate schedule (`--lr-schedule`), with `--warmup-epochs` before it.
public enum LearningRateScheduleKind: String, Sendable, CaseIterable, Codable {
    /// ×0.1 after each of `--milestones`.
    case step
    /// Cosine annealing to 0 over `--epochs`.
    case cosine
    /// The base rate throughout.
    case constant
}

/// How PS-KD's teacher table is kept across the ranks (`--teacher`); both train the same, bit for bit.
public enum TeacherLayout: String, Sendable, CaseIterable, Codable {
    /// The whole N × C table on every rank, each step's rows all-gathered.
    case replicated
    /// Each rank keeps the rows it reads this epoch and next, routed to them by all-to-all.
    case sharded
}

/// A configuration that cannot be trained, with what to change.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
