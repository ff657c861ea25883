import ArgumentParser
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
        mean the same for any number of ranks.
        """)

    @Option(help: "Model: \(ModelZoo.names.joined(separator: ", ")).") var model = "cnn"
    @Option(name: .customLong("width-multiplier"), help: "Channel width multiplier of preact-resnet18.") var widthMultiplier = 1.0
    @Option(help: "Data set: fashion-mnist, mnist, cifar10, cifar100.") var dataset = "fashion-mnist"
    @Option(name: .customLong("data-dir"), help: "Directory of the data set's files (default: the Debian package's).") var dataDirectory: String?
    @Option(name: .customLong("max-train-samples"), help: "Train on the first K samples only (a quick subset).") var maxTrainSamples: Int?
    @Option(name: .customLong("max-test-samples"), help: "Evaluate on the first K test samples only.") var maxTestSamples: Int?
    @Option(help: "Epochs T.") var epochs = 3
    @Option(name: .customLong("batch-size"), help: "Global batch size, summed over ranks.") var batchSize = 128
    @Flag(name: .customLong("drop-last"), help: "Drop the last partial batch instead of padding it.") var dropLast = false
    @Option(help: "Base learning rate.") var lr = 0.1
    @Option(name: .customLong("lr-schedule"), help: "step, cosine or constant.") var lrSchedule = "cosine"
    @Option(help: "Comma-separated epochs after which the step schedule multiplies the rate by 0.1.") var milestones = ""
    @Option(name: .customLong("warmup-epochs"), help: "Linear warm-up epochs.") var warmupEpochs = 0
    @Option(help: "sgd or adamw.") var optimizer = "sgd"
    @Option(help: "SGD momentum.") var momentum = 0.9
    @Option(name: .customLong("nesterov"), help: "Nesterov momentum (true/false).") var nesterov = true
    @Option(name: .customLong("weight-decay"), help: "Weight decay.") var weightDecay = 5e-4
    @Option(name: .customLong("weight-decay-style"), help: "l2 (PyTorch SGD) or decoupled (AdamW).") var weightDecayStyle = "l2"
    @Option(help: "Target policy: ce, ls or pskd.") var policy = "pskd"
    @Option(name: .customLong("alpha-t"), help: "PS-KD's final teacher weight α_T.") var alphaT = 0.8
    @Option(name: .customLong("label-smoothing"), help: "Label smoothing ε (policy ls).") var labelSmoothing = 0.1
    @Option(help: "Seed of initialisation, data order and augmentation.") var seed: UInt64 = 1
    @Option(name: .customLong("crop-padding"), help: "Random-crop zero padding (default: 4 for CIFAR, 0 otherwise).") var cropPadding: Int?
    @Option(help: "Random horizontal flip (true/false; default: on).") var flip: Bool?
    @Option(help: "CutMix probability per batch (0 = off).") var cutmix = 0.0
    @Option(name: .customLong("ece-bins"), help: "Equal-width confidence bins of ECE.") var eceBins = 15
    @Option(help: "Batches prepared ahead by the loader thread.") var prefetch = 2
    @Option(help: "OpenBLAS threads per rank (default: the CPUs the rank is bound to).") var threads: Int?
    @Option(name: .customLong("out"), help: "Run directory for config.json, metrics.jsonl and checkpoints/.") var outputDirectory = "runs/latest"
    @Flag(help: "Continue from the newest complete checkpoint in the run directory.") var resume = false
    @Option(name: .customLong("stop-after"), help: "Stop after this many epochs are complete (resume later with --resume).") var stopAfter: Int?
    @Option(name: .customLong("keep-checkpoints"), help: "Complete checkpoints to keep.") var keepCheckpoints = 3

    func validate() throws {
        guard ModelZoo.names.contains(model) else {
            throw ValidationError("unknown model '\(model)': choose one of \(ModelZoo.names.joined(separator: ", "))")
        }
        guard (try? parsedMilestones()) != nil else {
            throw ValidationError("--milestones must be comma-separated epoch numbers, got '\(milestones)'")
        }
    }

    func run() throws {
        let config = try resolvedConfiguration()
        try withCommunicator { communicator in
            try Trainer(config: config, communicator: communicator).run()
        }
    }

    private func parsedMilestones() throws -> [Int] {
        try milestones.split(separator: ",").map {
            guard let value = Int($0.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("bad milestone") }
            return value
        }
    }

    /// The flags as a `TrainConfig`.
    func resolvedConfiguration() throws -> TrainConfig {
        var c = TrainConfig()
        c.model = model; c.widthMultiplier = widthMultiplier; c.dataset = dataset; c.dataDirectory = dataDirectory
        c.maxTrainSamples = maxTrainSamples; c.maxTestSamples = maxTestSamples
        c.epochs = epochs; c.batchSize = batchSize; c.dropLast = dropLast
        c.learningRate = lr; c.learningRateSchedule = lrSchedule; c.milestones = try parsedMilestones()
        c.warmupEpochs = warmupEpochs; c.optimizer = optimizer; c.momentum = momentum; c.nesterov = nesterov
        c.weightDecay = weightDecay; c.weightDecayStyle = weightDecayStyle
        c.policy = policy; c.alphaT = alphaT; c.labelSmoothing = labelSmoothing; c.seed = seed
        c.cropPadding = cropPadding; c.horizontalFlip = flip; c.cutMixProbability = cutmix
        c.eceBins = eceBins; c.prefetch = prefetch; c.threads = threads; c.outputDirectory = outputDirectory
        c.resume = resume; c.keepCheckpoints = keepCheckpoints; c.stopAfterEpochs = stopAfter
        return c
    }
}

import Foundation
