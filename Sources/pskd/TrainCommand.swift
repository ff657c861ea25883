import ArgumentParser
import Foundation
import Models
import Training

/// `pskd train`: data-parallel training, one replica per MPI rank.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model with PS-KD (or cross-entropy / label smoothing), data-parallel over MPI ranks.",
        discussion: """
        Run under mpirun (or launch/local.sh) for several ranks. --batch-size is the global batch: \
        each of R ranks trains on batch-size / R samples per step, so the learning rate and the loss \
        mean the same for any number of ranks. Settings come from the defaults, then --config FILE \
        (YAML or JSON, keys named like the flags), then the flags given.
        """)

    @Option(parsing: .unconditional, help: "A YAML or JSON file of settings named like the flags (e.g. 'batch-size: 256').") var config: String?
    @OptionGroup var settings: TrainSettings

    func run() throws {
        let config = try resolvedConfiguration()
        try config.validate()
        var interruption: TrainingInterrupted?
        try withCommunicator("train", settings: try config.canonicalSettings()) { communicator in
            do {
                try Trainer(config: config, communicator: communicator).run()
            } catch let stopped as TrainingInterrupted {
                interruption = stopped  // every rank stopped at the same step: finish MPI cleanly
            }
        }
        if let interruption { throw ExitCode(interruption.exitStatus) }
    }

    /// Defaults, then the config file, then the flags. With `--resume`, the run's own
    /// `config.json` comes first (instead of the defaults), and the result may differ from it
    /// only in `TrainConfig.changeableOnResume`.
    func resolvedConfiguration() throws -> TrainConfig {
        let resolved = try configuration(over: TrainConfig())
        let savedPath = URL(fileURLWithPath: resolved.outputDirectory).appendingPathComponent("config.json").path
        guard resolved.resume, FileManager.default.fileExists(atPath: savedPath) else { return resolved }
        var saved = TrainConfig()
        let savedSettings = try ConfigurationKeys.load(file: savedPath).filter { !TrainConfig.instanceKeys.contains($0.key) }
        try ConfigurationKeys.apply(savedSettings, to: &saved, source: savedPath)
        let resuming = try configuration(over: saved)
        try resuming.checkResumable(from: saved, runDirectory: resolved.outputDirectory)
        return resuming
    }

    /// `base`, then the config file, then the flags.
    private func configuration(over base: TrainConfig) throws -> TrainConfig {
        var resolved = base
        if let config { try ConfigurationKeys.apply(try ConfigurationKeys.load(file: config), to: &resolved, source: config) }
        try ConfigurationKeys.apply(settings.given, to: &resolved, source: "command line")
        return resolved
    }
}

/// The flags of `pskd train`; each is optional so a config file's value stands unless the flag is given.
struct TrainSettings: ParsableArguments {
    @Option(parsing: .unconditional, help: "Model: \(ModelZoo.names.joined(separator: ", ")) (default cnn).") var model: String?
    @Option(name: .customLong("width-multiplier"), parsing: .unconditional, help: "Channel width multiplier of preact-resnet18, 0.0625...16 (default 1).") var widthMultiplier: Double?
    @Option(parsing: .unconditional, help: "Data set: fashion-mnist, mnist, cifar10, cifar100 (default fashion-mnist).") var dataset: String?
    @Option(name: .customLong("data-dir"), parsing: .unconditional, help: "Directory of the data set's files (default: Debian's for Fashion-MNIST).") var dataDir: String?
    @Option(name: .customLong("max-train-samples"), parsing: .unconditional, help: "Train on the first K samples only (K ≥ the global batch).") var maxTrainSamples: Int?
    @Option(name: .customLong("max-test-samples"), parsing: .unconditional, help: "Evaluate on the first K test samples only (K ≥ 1).") var maxTestSamples: Int?
    @Option(parsing: .unconditional, help: "Epochs T, 1...100000 (default 3).") var epochs: Int?
    @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "Global batch size, summed over ranks: a multiple of the rank count with ≥ 2 per rank, at most the training samples (default 128).") var batchSize: Int?
    @Flag(name: .customLong("drop-last"), help: "Drop the last partial batch instead of padding it.") var dropLast = false
    @Option(parsing: .unconditional, help: "Base learning rate, > 0 (default 0.1).") var lr: Double?
    @Option(name: .customLong("lr-schedule"), parsing: .unconditional, help: "step, cosine or constant (default cosine).") var lrSchedule: String?
    @Option(parsing: .unconditional, help: "Comma-separated increasing epochs ≥ 1 after which the step schedule multiplies the rate by 0.1.") var milestones: String?
    @Option(name: .customLong("warmup-epochs"), parsing: .unconditional, help: "Linear warm-up epochs, 0...100000 (default 0 = none).") var warmupEpochs: Int?
    @Option(parsing: .unconditional, help: "sgd or adamw (default sgd).") var optimizer: String?
    @Option(parsing: .unconditional, help: "SGD momentum, in [0, 1) (default 0.9).") var momentum: Double?
    @Option(parsing: .unconditional, help: "Nesterov momentum, true or false (default true).") var nesterov: Bool?
    @Option(name: .customLong("weight-decay"), parsing: .unconditional, help: "Weight decay, ≥ 0 (default 5e-4).") var weightDecay: Double?
    @Option(name: .customLong("weight-decay-style"), parsing: .unconditional, help: "l2 (PyTorch SGD) or decoupled (AdamW) (default l2).") var weightDecayStyle: String?
    @Option(parsing: .unconditional, help: "Target policy: ce, ls or pskd (default pskd).") var policy: String?
    @Option(name: .customLong("alpha-t"), parsing: .unconditional, help: "PS-KD's final teacher weight α_T, in [0, 1] (default 0.8).") var alphaT: Double?
    @Option(name: .customLong("label-smoothing"), parsing: .unconditional, help: "Label smoothing ε for policy ls, in [0, 1) (default 0.1).") var labelSmoothing: Double?
    @Option(parsing: .unconditional, help: "Seed of initialisation, data order and augmentation, ≥ 0 (default 1).") var seed: Int?
    @Option(name: .customLong("crop-padding"), parsing: .unconditional, help: "Random-crop zero padding, 0...64 pixels (default 4 for CIFAR, 0 otherwise).") var cropPadding: Int?
    @Option(parsing: .unconditional, help: "Random horizontal flip, true or false (default true).") var flip: Bool?
    @Option(parsing: .unconditional, help: "CutMix probability per batch, in [0, 1] (default 0 = off).") var cutmix: Double?
    @Option(name: .customLong("ece-bins"), parsing: .unconditional, help: "Equal-width confidence bins of ECE, 1...1000 (default 15).") var eceBins: Int?
    @Option(parsing: .unconditional, help: "Batches prepared ahead by the loader thread, 0...64 (0 = load on the training thread; default 2).") var prefetch: Int?
    @Option(parsing: .unconditional, help: "Threads per rank for products and elementwise passes, 1...1024 (default: the CPUs the rank is bound to).") var threads: Int?
    @Option(parsing: .unconditional, help: "Run directory for config.json, metrics.jsonl and checkpoints/ (default runs/latest).") var out: String?
    @Flag(help: "Continue the run in the run directory from its newest complete checkpoint, with its config.json's settings.") var resume = false
    @Flag(help: "Replace the run in the run directory (removes only what pskd wrote there).") var overwrite = false
    @Option(name: .customLong("stop-after"), parsing: .unconditional, help: "Stop after this many epochs (≥ 1) are complete (continue later with --resume).") var stopAfter: Int?
    @Option(name: .customLong("keep-checkpoints"), parsing: .unconditional, help: "Complete checkpoints to keep, ≥ 1 (default 3).") var keepCheckpoints: Int?

    /// The flags given, as (setting, value) pairs for `ConfigurationKeys`.
    var given: [(key: String, value: Any)] {
        let all: [(String, Any?)] = [
            ("model", model), ("width-multiplier", widthMultiplier), ("dataset", dataset), ("data-dir", dataDir),
            ("max-train-samples", maxTrainSamples), ("max-test-samples", maxTestSamples), ("epochs", epochs),
            ("batch-size", batchSize), ("drop-last", dropLast ? true : nil), ("lr", lr), ("lr-schedule", lrSchedule),
            ("milestones", milestones), ("warmup-epochs", warmupEpochs), ("optimizer", optimizer),
            ("momentum", momentum), ("nesterov", nesterov), ("weight-decay", weightDecay),
            ("weight-decay-style", weightDecayStyle), ("policy", policy), ("alpha-t", alphaT),
            ("label-smoothing", labelSmoothing), ("seed", seed), ("crop-padding", cropPadding), ("flip", flip),
            ("cutmix", cutmix), ("ece-bins", eceBins), ("prefetch", prefetch), ("threads", threads), ("out", out),
            ("resume", resume ? true : nil), ("stop-after", stopAfter), ("keep-checkpoints", keepCheckpoints),
            ("overwrite", overwrite ? true : nil),
        ]
        return all.compactMap { key, value in value.map { (key, $0) } }
    }
}
