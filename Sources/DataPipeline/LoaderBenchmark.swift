import Platform

/// The outcome of a `LoaderBenchmark` run.
public struct LoaderBenchmarkResult: Sendable, CustomStringConvertible {
    /// Batches prepared ahead during the run (0 = synchronous).
    public let prefetch: Int
    /// Threads reading and decoding streamed images.
    public let loaderThreads: Int
    public let batchSize: Int
    /// Batches and samples delivered, and the wall-clock time it took.
    public let batches: Int
    public let samples: Int
    public let seconds: Double

    /// Decoded, augmented samples delivered per second.
    public var samplesPerSecond: Double { Double(samples) / max(seconds, 1e-9) }
    /// `samplesPerSecond` per loader thread.
    public var samplesPerSecondPerThread: Double { samplesPerSecond / Double(loaderThreads) }

    public var description: String {
        let rate = Int(samplesPerSecond.rounded())
        return
            "loader: \(rate) samples/s (batch \(batchSize), prefetch \(prefetch), \(loaderThreads) loader thread(s), "
            + "\(batches) batches in \(String(format: "%.3f", seconds)) s)"
    }
}

/// Measures how fast a `BatchLoader` delivers batches to a consumer that does nothing else,
/// the ceiling the trainer's step time must stay above for the loader never to be the bottleneck.
public enum LoaderBenchmark {
    /// Runs `batches` batches of `batchSize` samples of `dataset` (one rank, epochs 1, 2, … as
    /// needed) through a loader with `prefetch` and `augmentation`, after one warm-up batch.
    public static func run(
        dataset: Dataset, batchSize: Int, prefetch: Int, batches: Int,
        augmentation: AugmentationConfig, loaderThreads: Int = 1, seed: UInt64 = 0
    ) throws(DataError) -> LoaderBenchmarkResult {
        let sampler = try ShardedSampler(
            sampleCount: dataset.count, globalBatchSize: batchSize,
            rank: 0, worldSize: 1, seed: seed)
        let loader = BatchLoader(
            dataset: dataset, schedule: sampler, augmentation: augmentation,
            seed: seed, prefetch: prefetch, loaderThreads: loaderThreads)
        var epoch = 1
        loader.start(epoch: epoch)
        _ = try loader.next()
        let stopwatch = Stopwatch()
        var delivered = 0
        while delivered < batches {
            guard try loader.next() != nil else {
                epoch += 1
                loader.start(epoch: epoch)
                continue
            }
            delivered += 1
        }
        let seconds = stopwatch.elapsedSeconds
        loader.stop()
        return LoaderBenchmarkResult(
            prefetch: prefetch, loaderThreads: loaderThreads, batchSize: batchSize, batches: delivered,
            samples: delivered * batchSize, seconds: seconds)
    }
}

extension LoaderBenchmark {
    /// Reads and decodes the first `samples` images of `store` one after another on this thread,
    /// with nothing else done to them: the decoding part of the loader's time per image (after one
    /// warm-up pass over the same images, so the files are in the page cache).
    ///
    /// - Returns: images decoded per second.
    public static func decodeRate(_ store: any EncodedImageStore, samples: Int) throws(DataError) -> Double {
        let scratch = SampleScratch()
        let streamed = StreamedImages(store: store, geometry: .fixed(width: 0, height: 0))
        let count = min(samples, store.count)
        for index in 0..<count { try scratch.decode(sample: index, of: streamed) }
        let stopwatch = Stopwatch()
        for index in 0..<count { try scratch.decode(sample: index, of: streamed) }
        return Double(count) / max(stopwatch.elapsedSeconds, 1e-9)
    }
}
