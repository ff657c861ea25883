import Platform

/// The outcome of a `LoaderBenchmark` run.
public struct LoaderBenchmarkResult: Sendable, CustomStringConvertible {
    /// Batches prepared ahead during the run (0 = synchronous).
    public let prefetch: Int
    public let batchSize: Int
    /// Batches and samples delivered, and the wall-clock time it took.
    public let batches: Int
    public let samples: Int
    public let seconds: Double

    /// Decoded, augmented samples delivered per second.
    public var samplesPerSecond: Double { Double(samples) / max(seconds, 1e-9) }

    public var description: String {
        let rate = Int(samplesPerSecond.rounded())
        return
            "loader: \(rate) samples/s (batch \(batchSize), prefetch \(prefetch), \(batches) batches in \(String(format: "%.3f", seconds)) s)"
    }
}

/// Measures how fast a `BatchLoader` delivers batches to a consumer that does nothing else,
/// the ceiling the trainer's step time must stay above for the loader never to be the bottleneck.
public enum LoaderBenchmark {
    /// Runs `batches` batches of `batchSize` samples of `dataset` (one rank, epochs 1, 2, … as
    /// needed) through a loader with `prefetch` and `augmentation`, after one warm-up batch.
    public static func run(
        dataset: Dataset, batchSize: Int, prefetch: Int, batches: Int,
        augmentation: AugmentationConfig, seed: UInt64 = 0
    ) throws(DataError) -> LoaderBenchmarkResult {
        let sampler = try ShardedSampler(
            sampleCount: dataset.count, globalBatchSize: batchSize,
            rank: 0, worldSize: 1, seed: seed)
        let loader = BatchLoader(
            dataset: dataset, schedule: sampler, augmentation: augmentation,
            seed: seed, prefetch: prefetch)
        var epoch = 1
        loader.start(epoch: epoch)
        _ = loader.next()
        let stopwatch = Stopwatch()
        var delivered = 0
        while delivered < batches {
            guard loader.next() != nil else {
                epoch += 1
                loader.start(epoch: epoch)
                continue
            }
            delivered += 1
        }
        let seconds = stopwatch.elapsedSeconds
        loader.stop()
        return LoaderBenchmarkResult(
            prefetch: prefetch, batchSize: batchSize, batches: delivered,
            samples: delivered * batchSize, seconds: seconds)
    }
}
