import Collectives
import DataPipeline
import Models

/// The training and test sets of a run with this rank's loaders.
struct TrainingData {
    /// The training set, its labels with `--label-noise` applied.
    let train: Dataset
    /// How many training labels the label noise changed (0 without it).
    let flippedLabels: Int
    let test: Dataset
    /// Which samples this rank trains at each step of each epoch.
    let sampler: ShardedSampler
    /// This rank's shard of every global training batch, augmented.
    let loader: BatchLoader
    /// The augmentation of the training batches.
    let augmentation: AugmentationConfig
    /// This rank's blocks of the test set (fixed by sample index, see `EvaluationSharder`).
    let testLoader: BatchLoader

    init(config: TrainConfig, communicator: any Communicator) throws {
        let spec = try config.datasetSpec()
        let clean = try config.load(.train)
        (train, flippedLabels) = clean.withLabelNoise(LabelNoise(rate: config.labelNoise ?? 0, seed: config.seed))
        test = try config.load(.test)
        guard config.batchSize <= train.count else {
            throw ConfigurationError(
                "batch-size \(config.batchSize) is larger than the \(train.count) training samples: choose a batch of at most \(train.count)"
            )
        }
        sampler = try ShardedSampler(
            sampleCount: train.count, globalBatchSize: config.batchSize,
            rank: communicator.rank, worldSize: communicator.size,
            seed: config.seed, dropLast: config.dropLast)
        var augmentation = spec.standardAugmentation(for: train)
        if let padding = config.cropPadding {
            guard !augmentation.randomResizedCrop || padding == 0 else {
                throw ConfigurationError(
                    "crop-padding \(padding) applies to images of one fixed size, but \(config.dataset)'s images are cropped and "
                        + "resized (RandomResizedCrop to --image-size): drop --crop-padding")
            }
            augmentation.cropPadding = padding
        }
        if let flip = config.horizontalFlip { augmentation.horizontalFlip = flip }
        augmentation.cutMixProbability = config.cutMixProbability
        self.augmentation = augmentation
        loader = BatchLoader(
            dataset: train, schedule: sampler, augmentation: augmentation,
            seed: config.seed, prefetch: config.prefetch, loaderThreads: config.loaderThreads ?? 1)
        let sharder = try EvaluationSharder(sampleCount: test.count, rank: communicator.rank, worldSize: communicator.size)
        testLoader = BatchLoader(
            dataset: test, schedule: sharder, augmentation: .none, seed: config.seed,
            prefetch: config.prefetch, loaderThreads: config.loaderThreads ?? 1)
    }

    /// For streamed images, where they come from and how they become inputs: "images streamed from
    /// DIR/train (10 classes; 2 other files skipped) and DIR/test, 32×32 inputs (crop (padding 4) +
    /// flip), 1 loader thread(s)"; nil for data held in memory.
    func streamingSummary(loaderThreads: Int) -> String? {
        guard case .streamed(let training) = train.images, case .streamed(let evaluation) = test.images else { return nil }
        let skipped = training.store.skippedEntryCount + evaluation.store.skippedEntryCount
        return "images streamed from \(training.store.summary) and \(evaluation.store.summary)"
            + (skipped > 0 ? " (\(skipped) other files skipped)" : "")
            + ", \(train.width)×\(train.height) inputs (\(augmentation.summary)), \(loaderThreads) loader thread(s) per rank"
    }

    /// "label noise 0.40: 23 987 of 60 000 training labels flipped", or nil without label noise.
    func labelNoiseSummary(rate: Double?) -> String? {
        guard let rate, rate > 0 else { return nil }
        return String(format: "label noise %.2f: ", rate) + "\(flippedLabels.spacedThousands) of \(train.count.spacedThousands) "
            + "training labels flipped (the test set stays clean)"
    }

}

extension TrainConfig {
    /// The split of the configured data set, with the image settings, limited to
    /// `--max-train-samples` / `--max-test-samples` (`Dataset.limited(to:seed:)`).
    func load(_ split: DatasetSplit) throws -> Dataset {
        let dataset = try datasetSpec().load(split, directory: dataDirectory, images: imageOptions)
        return try dataset.limited(to: split == .train ? maxTrainSamples : maxTestSamples, seed: seed)
    }
}

extension Dataset {
    /// What a model for this data set is built for.
    var modelInput: ModelZoo.Input {
        ModelZoo.Input(height: height, width: width, channels: channels, classes: classCount)
    }
}

extension Int {
    /// The number with a space between groups of three digits: 60 000.
    var spacedThousands: String {
        let digits = String(magnitude)
        var grouped = ""
        for (position, digit) in digits.enumerated() {
            if position > 0 && (digits.count - position) % 3 == 0 { grouped.append(" ") }
            grouped.append(digit)
        }
        return (self < 0 ? "-" : "") + grouped
    }
}
