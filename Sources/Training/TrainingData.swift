import Collectives
import DataPipeline
import Models

/// The training and test sets of a run with this rank's loaders.
struct TrainingData {
    let train: Dataset
    let test: Dataset
    /// Which samples this rank trains at each step of each epoch.
    let sampler: ShardedSampler
    /// This rank's shard of every global training batch, augmented.
    let loader: BatchLoader
    /// This rank's blocks of the test set (fixed by sample index, see `EvaluationSharder`).
    let testLoader: BatchLoader

    init(config: TrainConfig, communicator: any Communicator) throws {
        let spec = try config.datasetSpec()
        train = try spec.load(.train, directory: config.dataDirectory).prefix(config.maxTrainSamples)
        test = try spec.load(.test, directory: config.dataDirectory).prefix(config.maxTestSamples)
        guard config.batchSize <= train.count else {
            throw ConfigurationError("batch-size \(config.batchSize) is larger than the \(train.count) training samples: choose a batch of at most \(train.count)")
        }
        sampler = try ShardedSampler(sampleCount: train.count, globalBatchSize: config.batchSize,
                                         rank: communicator.rank, worldSize: communicator.size,
                                         seed: config.seed, dropLast: config.dropLast)
        var augmentation = spec.standardAugmentation
        if let padding = config.cropPadding { augmentation.cropPadding = padding }
        if let flip = config.horizontalFlip { augmentation.horizontalFlip = flip }
        augmentation.cutMixProbability = config.cutMixProbability
        loader = BatchLoader(dataset: train, schedule: sampler, augmentation: augmentation,
                             seed: config.seed, prefetch: config.prefetch)
        let sharder = try EvaluationSharder(sampleCount: test.count, rank: communicator.rank, worldSize: communicator.size)
        testLoader = BatchLoader(dataset: test, schedule: sharder, augmentation: .none, seed: config.seed,
                                 prefetch: config.prefetch)
    }

    /// What the model is built for.
    var modelInput: ModelZoo.Input {
        ModelZoo.Input(height: train.height, width: train.width, channels: train.channels, classes: train.classCount)
    }
}

extension Dataset {
    /// The first `limit` samples (all when `limit` is nil or not smaller).
    func prefix(_ limit: Int?) -> Dataset {
        guard let limit, limit < count else { return self }
        return Dataset(name: name, split: split, height: height, width: width, channels: channels,
                       classCount: classCount, pixels: Array(pixels.prefix(limit * sampleSize)),
                       labels: Array(labels.prefix(limit)), mean: mean, std: std)
    }
}
