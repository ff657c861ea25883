import ArgumentParser
import Collectives
import Foundation
import Models
import Platform
import Training
import Watchdog

/// `pskd train`: data-parallel training, one replica per MPI rank.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model with PS-KD (or cross-entropy / label smoothing), data-parallel over MPI ranks.",
        discussion: """
            Run under mpirun (or launch/local.sh) for several ranks. --batch-size is the global batch: \
            each of R ranks trains on batch-size / R samples per step, so the learning rate and the loss \
            mean the same for any number of ranks. Settings come from the defaults, then --config FILE \
            (YAML or JSON, keys named like the flags), then the flags given; every value is checked \
            against its range before anything starts. A policy's setting given to a policy that does not \
            read it is refused.
            """)

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("A YAML or JSON file of settings named like the flags (e.g. 'batch-size: 256').", valueName: "file"),
        completion: .file(extensions: ["yaml", "yml", "json"]))
    var config: String?
    @OptionGroup var settings: TrainOptions

    func run() throws {
        let config = try resolvedConfiguration()
        try config.validate()
        var interruption: TrainingInterrupted?
        try withCommunicator("train", settings: try config.canonicalSettings()) { communicator in
            let watchdog = try StallWatchdog.start(
                communicator: communicator, timeout: config.stallTimeout,
                runDirectory: config.outputDirectory,
                resumeCommand: "`pskd train --resume --out \(shellQuoted(config.outputDirectory))`")
            if let watchdog, communicator.isRoot { print(watchdog.summary) }
            defer {
                // The count of forged and replayed heartbeats: rank 0's always, the watcher's when any.
                if let rejected = watchdog?.stop(), communicator.isRoot || rejected.total > 0 {
                    print("pskd: stall watchdog on rank \(communicator.rank): \(rejected)")
                }
            }
            do {
                try Trainer(config: config, communicator: MonitoredCommunicator(communicator)).run()
            } catch let stopped as TrainingInterrupted {
                interruption = stopped  // every rank stopped at the same step: finish MPI cleanly
            }
        }
        if let interruption { throw ExitCode(interruption.exitStatus) }
    }

    /// Defaults, then the config file, then the flags. With `--resume`, the run's own
    /// `config.json` comes first (instead of the defaults), and the result may differ from it
    /// only in `TrainConfig.changeableOnResume`.
    /// A setting of the config file or the flags that the chosen policy does not read is
    /// refused (`TrainSetting.refuseUnread`).
    func resolvedConfiguration() throws -> TrainConfig {
        let resolved = try configuration(over: TrainConfig())
        let savedPath = URL(fileURLWithPath: resolved.outputDirectory).appendingPathComponent("config.json").path
        guard resolved.resume, FileManager.default.fileExists(atPath: savedPath) else {
            try TrainSetting.refuseUnread(try givenSettings(), by: resolved)
            return resolved
        }
        let saved = try TrainConfig.decode(settingsJSON: Data(try ConfigurationFile.readText(savedPath).utf8), source: savedPath)
        let resuming = try configuration(over: saved)
        try TrainSetting.refuseUnread(try givenSettings(), by: resuming)
        try resuming.checkResumable(from: saved, runDirectory: resolved.outputDirectory)
        return resuming
    }

    /// `base`, then the config file (which may not set `resume` or `overwrite`), then the flags.
    private func configuration(over base: TrainConfig) throws -> TrainConfig {
        var resolved = base
        if let config { resolved = try ConfigurationFile.decode(config, over: resolved).config }
        try TrainSetting.apply(settings.given, to: &resolved, source: "command line")
        return resolved
    }

    /// The settings this command gives (the config file's and the flags'), each with where it
    /// was given last: "command line" or the file.
    private func givenSettings() throws -> [String: String] {
        var given: [String: String] = [:]
        if let config {
            for key in try ConfigurationFile.decode(config, over: TrainConfig()).keys { given[key] = config }
        }
        for (key, _) in settings.given { given[key] = "command line" }
        return given
    }
}

/// Every setting of `pskd train` (`TrainSetting.all`), one flag each, in the table's order; each
/// takes its name, help, value name and choices from the table.
struct TrainOptions: ParsableArguments {
    @Option(name: .setting("model"), parsing: .unconditional, help: .setting("model")) var model: SettingValue<ModelNames>?
    @Option(name: .setting("width-multiplier"), parsing: .unconditional, help: .setting("width-multiplier")) var widthMultiplier: Setting?
    @Option(name: .setting("dataset"), parsing: .unconditional, help: .setting("dataset")) var dataset: SettingValue<DatasetNames>?
    @Option(name: .setting("synthetic-samples"), parsing: .unconditional, help: .setting("synthetic-samples"))
    var syntheticSamples: Setting?
    @Option(name: .setting("synthetic-test-samples"), parsing: .unconditional, help: .setting("synthetic-test-samples"))
    var syntheticTestSamples: Setting?
    @Option(name: .setting("synthetic-classes"), parsing: .unconditional, help: .setting("synthetic-classes"))
    var syntheticClasses: Setting?
    @Option(name: .setting("synthetic-features"), parsing: .unconditional, help: .setting("synthetic-features"))
    var syntheticFeatures: Setting?
    @Option(name: .setting("data-dir"), parsing: .unconditional, help: .setting("data-dir"), completion: .directory) var dataDir: Setting?
    @Option(name: .setting("max-train-samples"), parsing: .unconditional, help: .setting("max-train-samples"))
    var maxTrainSamples: Setting?
    @OptionGroup var evaluation: EvaluationOptions
    @Option(name: .setting("label-noise"), parsing: .unconditional, help: .setting("label-noise")) var labelNoise: Setting?
    @Option(name: .setting("epochs"), parsing: .unconditional, help: .setting("epochs")) var epochs: Setting?
    @Option(name: .setting("batch-size"), parsing: .unconditional, help: .setting("batch-size")) var batchSize: Setting?
    @Flag(name: .setting("drop-last"), inversion: .prefixedNo, help: .setting("drop-last")) var dropLast: Bool?
    @Option(name: .setting("accumulate-steps"), parsing: .unconditional, help: .setting("accumulate-steps")) var accumulateSteps: Setting?
    @Option(name: .setting("lr"), parsing: .unconditional, help: .setting("lr")) var lr: Setting?
    @Option(name: .setting("lr-schedule"), parsing: .unconditional, help: .setting("lr-schedule")) var lrSchedule:
        SettingValue<ScheduleNames>?
    @Option(name: .setting("milestones"), parsing: .unconditional, help: .setting("milestones")) var milestones: Setting?
    @Option(name: .setting("warmup-epochs"), parsing: .unconditional, help: .setting("warmup-epochs")) var warmupEpochs: Setting?
    @Option(name: .setting("optimizer"), parsing: .unconditional, help: .setting("optimizer")) var optimizer: SettingValue<OptimizerNames>?
    @Option(name: .setting("momentum"), parsing: .unconditional, help: .setting("momentum")) var momentum: Setting?
    @Option(name: .setting("nesterov"), parsing: .unconditional, help: .setting("nesterov")) var nesterov: Setting?
    @Option(name: .setting("weight-decay"), parsing: .unconditional, help: .setting("weight-decay")) var weightDecay: Setting?
    @Option(name: .setting("weight-decay-style"), parsing: .unconditional, help: .setting("weight-decay-style"))
    var weightDecayStyle: SettingValue<WeightDecayStyleNames>?
    @Option(name: .setting("policy"), parsing: .unconditional, help: .setting("policy")) var policy: SettingValue<PolicyNames>?
    @Option(name: .setting("teacher"), parsing: .unconditional, help: .setting("teacher")) var teacher: SettingValue<TeacherNames>?
    @Option(name: .setting("alpha-t"), parsing: .unconditional, help: .setting("alpha-t")) var alphaT: Setting?
    @Option(name: .setting("label-smoothing"), parsing: .unconditional, help: .setting("label-smoothing")) var labelSmoothing: Setting?
    @Option(name: .setting("kd-temperature"), parsing: .unconditional, help: .setting("kd-temperature")) var kdTemperature: Setting?
    @Option(name: .setting("kd-weight"), parsing: .unconditional, help: .setting("kd-weight")) var kdWeight: Setting?
    @Option(name: .setting("kd-multiplier"), parsing: .unconditional, help: .setting("kd-multiplier")) var kdMultiplier: Setting?
    @Option(name: .setting("teacher-checkpoint"), parsing: .unconditional, help: .setting("teacher-checkpoint"), completion: .directory)
    var teacherCheckpoint: Setting?
    @Option(name: .setting("seed"), parsing: .unconditional, help: .setting("seed")) var seed: Setting?
    @Option(name: .setting("crop-padding"), parsing: .unconditional, help: .setting("crop-padding")) var cropPadding: Setting?
    @Option(name: .setting("flip"), parsing: .unconditional, help: .setting("flip")) var flip: Setting?
    @Option(name: .setting("image-size"), parsing: .unconditional, help: .setting("image-size")) var imageSize: Setting?
    @Option(name: .setting("eval-resize"), parsing: .unconditional, help: .setting("eval-resize")) var evalResize: Setting?
    @Option(name: .setting("mean"), parsing: .unconditional, help: .setting("mean")) var mean: Setting?
    @Option(name: .setting("std"), parsing: .unconditional, help: .setting("std")) var std: Setting?
    @Option(name: .setting("cutmix"), parsing: .unconditional, help: .setting("cutmix")) var cutmix: Setting?
    @Option(name: .setting("loader-threads"), parsing: .unconditional, help: .setting("loader-threads")) var loaderThreads: Setting?
    @Option(name: .setting("prefetch"), parsing: .unconditional, help: .setting("prefetch")) var prefetch: Setting?
    @OptionGroup var threads: ThreadsOption
    @Option(name: .setting("out"), parsing: .unconditional, help: .setting("out"), completion: .directory) var out: Setting?
    @Flag(name: .setting("resume"), help: .setting("resume")) var resume = false
    @Flag(name: .setting("overwrite"), help: .setting("overwrite")) var overwrite = false
    @Option(name: .setting("stop-after"), parsing: .unconditional, help: .setting("stop-after")) var stopAfter: Setting?
    @Option(name: .setting("keep-checkpoints"), parsing: .unconditional, help: .setting("keep-checkpoints")) var keepCheckpoints: Setting?
    @Option(name: .setting("stall-timeout"), parsing: .unconditional, help: .setting("stall-timeout")) var stallTimeout: Setting?

    /// Every setting with its flag's value (nil when not given), in the table's order.
    private var all: [(key: String, value: String?)] {
        [
            ("model", model?.text), ("width-multiplier", widthMultiplier?.text), ("dataset", dataset?.text),
            ("synthetic-samples", syntheticSamples?.text), ("synthetic-test-samples", syntheticTestSamples?.text),
            ("synthetic-classes", syntheticClasses?.text), ("synthetic-features", syntheticFeatures?.text), ("data-dir", dataDir?.text),
            ("max-train-samples", maxTrainSamples?.text), ("max-test-samples", evaluation.maxTestSamples?.text),
            ("label-noise", labelNoise?.text), ("epochs", epochs?.text), ("batch-size", batchSize?.text),
            ("drop-last", dropLast.map { String($0) }), ("accumulate-steps", accumulateSteps?.text), ("lr", lr?.text),
            ("lr-schedule", lrSchedule?.text), ("milestones", milestones?.text), ("warmup-epochs", warmupEpochs?.text),
            ("optimizer", optimizer?.text), ("momentum", momentum?.text), ("nesterov", nesterov?.text), ("weight-decay", weightDecay?.text),
            ("weight-decay-style", weightDecayStyle?.text), ("policy", policy?.text), ("teacher", teacher?.text), ("alpha-t", alphaT?.text),
            ("label-smoothing", labelSmoothing?.text), ("kd-temperature", kdTemperature?.text), ("kd-weight", kdWeight?.text),
            ("kd-multiplier", kdMultiplier?.text), ("teacher-checkpoint", teacherCheckpoint?.text), ("seed", seed?.text),
            ("crop-padding", cropPadding?.text), ("flip", flip?.text), ("image-size", imageSize?.text), ("eval-resize", evalResize?.text),
            ("mean", mean?.text), ("std", std?.text), ("cutmix", cutmix?.text), ("ece-bins", evaluation.eceBins?.text),
            ("loader-threads", loaderThreads?.text), ("prefetch", prefetch?.text), ("threads", threads.threads?.text), ("out", out?.text),
            ("resume", resume ? "true" : nil),
            ("overwrite", overwrite ? "true" : nil), ("stop-after", stopAfter?.text), ("keep-checkpoints", keepCheckpoints?.text),
            ("stall-timeout", stallTimeout?.text),
        ]
    }

    /// The settings given on the command line, as (name, text) pairs for `TrainSetting.apply`.
    var given: [(key: String, value: Any)] { all.compactMap { pair in pair.value.map { (pair.key, $0) } } }

    /// Every setting of the table has its flag here (checked on every run, so any test that
    /// trains finds a setting added to the table without a flag).
    func validate() throws {
        precondition(all.map(\.key) == TrainSetting.all.map(\.name), "TrainOptions lists every setting of TrainSetting.all, in order")
    }
}
