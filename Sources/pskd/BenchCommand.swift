import ArgumentParser
import Collectives
import DataPipeline
import Foundation
import Layers
import Models
import Platform
import Training
import Watchdog

/// `pskd bench`: training throughput against this machine's GEMM peak, PS-KD's cost and
/// communication's share (run under mpirun for several ranks); or the data loader's rate.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure training throughput on data held in memory (or, with --loader, the data loader).",
        discussion: """
            Build in release mode first. Each timed step is forward + backward + update with gradients \
            averaged across ranks; cross-entropy and PS-KD steps are interleaved and their medians compared. \
            Under mpirun, --batch-size is per rank.
            """)

    @Option(parsing: .unconditional, help: ArgumentHelp("The network (default mlp).", valueName: "model"))
    var model: SettingValue<ModelNames>?
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "The data set whose image shape and class count the random samples have (no files are read) (default fashion-mnist).",
            valueName: "dataset"))
    var dataset: SettingValue<DatasetNames>?
    @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "Samples per step on each rank.") var batchSize = 128
    @OptionGroup var threads: ThreadsOption
    @Option(parsing: .unconditional, help: "Timed steps per policy, 1...100000 (default: 40 for mlp, 10 otherwise).") var steps: Int?
    @Option(parsing: .unconditional, help: "Untimed warm-up steps, 0...100000.") var warmup = 3
    @Option(
        help:
            "Convolution algorithm: automatic (Winograd for 3×3 stride-1 layers with ≥ 8 channels, F(4×4, 3×3) on outputs ≥ 8×8, else F(2×2, 3×3); im2col elsewhere), im2col, winograd (F(2×2, 3×3)), winograd4 (F(4×4, 3×3))."
    )
    var convolution = ConvolutionAlgorithm.automatic
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "PS-KD's teacher table: replicated (all-gathered every step) or sharded (routed to its next reader) (default replicated).",
            valueName: "teacher"))
    var teacher: SettingValue<TeacherNames>?
    @Flag(
        help:
            "Measure the data loader instead: Fashion-MNIST by default (with and without prefetching), or the images of --dataset folder|shards --data-dir DIR (decoded and augmented images per second per loader thread)."
    )
    var loader = false
    @Option(
        name: .setting("data-dir"), parsing: .unconditional,
        help: ArgumentHelp("The data set's directory for --loader. Range: a non-empty path.", valueName: "path"), completion: .directory)
    var dataDir: String?
    @Option(name: .setting("loader-threads"), parsing: .unconditional, help: .setting("loader-threads")) var loaderThreads: Setting?
    @Option(name: .setting("image-size"), parsing: .unconditional, help: .setting("image-size")) var imageSize: Setting?
    @Option(name: .customLong("loader-samples"), help: "Images --loader reads from a folder or shard set (default 5000).")
    var loaderSamples = 5000
    @Flag(help: "Print one JSON object instead of a table.") var json = false
    @Flag(help: "Run the stall watchdog as `pskd train` does (heartbeats, collectives marked), to measure its cost.")
    var watchdog = false
    @Flag(
        help:
            "Then profile as many PS-KD steps: each layer's forward and backward time and share, and the step's parts outside the layers (loss, optimiser, all-reduce, waiting, teacher exchange)."
    )
    var profile = false

    /// The network, data set and teacher layout given (bench's defaults otherwise).
    private var modelName: String { model?.text ?? "mlp" }
    private var datasetName: String { dataset?.text ?? DatasetSpec.fashionMNIST.name }
    private var teacherLayout: String { teacher?.text ?? "replicated" }

    /// `--model`, `--dataset`, `--teacher` and `--threads` are refused as `pskd train` refuses them.
    func validate() throws {
        try TrainSetting.check("model", modelName)
        try TrainSetting.check("dataset", datasetName.lowercased())
        try TrainSetting.check("teacher", teacherLayout)
        guard batchSize > 1 else { throw ValidationError("--batch-size must be at least 2, got \(batchSize)") }
        _ = try threads.value()
        if let dataDir { try TrainSetting.check("data-dir", dataDir) }
        if let steps, !(1...100_000).contains(steps) { throw ValidationError("--steps must be 1...100000, got \(steps)") }
        guard (0...100_000).contains(warmup) else { throw ValidationError("--warmup must be 0...100000, got \(warmup)") }
    }

    func run() throws {
        if loader { return try runLoader() }
        try withCommunicator("bench") { communicator in
            let stallWatchdog =
                watchdog
                ? try StallWatchdog.start(
                    communicator: communicator, timeout: nil, runDirectory: FileManager.default.temporaryDirectory.path,
                    resumeCommand: "`pskd bench` again")
                : nil
            defer { stallWatchdog?.stop() }
            let spec = try DatasetSpec.named(datasetName)
            let result = try ThroughputBenchmark.run(
                modelName: modelName,
                input: ModelZoo.Input(height: spec.height, width: spec.width, channels: spec.channels, classes: spec.classCount),
                batchSize: batchSize, threads: ProcessPlacement.blasThreads(requested: try threads.value()),
                steps: steps ?? (modelName == "mlp" ? 40 : 10), warmupSteps: warmup, convolution: convolution,
                shardedTeacher: teacherLayout == "sharded",
                communicator: stallWatchdog == nil ? communicator : MonitoredCommunicator(communicator),
                beacon: stallWatchdog == nil ? nil : .shared, profileSteps: profile ? steps ?? (modelName == "mlp" ? 40 : 10) : 0)
            guard communicator.isRoot else { return }
            print(json ? try jsonLine(result) : table(result))
            if !json, let profile = result.profile { print(profileTable(profile)) }
        }
    }

    private func runLoader() throws {
        let spec = try DatasetSpec.named(datasetName)
        if spec.streamsImages { return try runStreamingLoader(spec) }
        let data = try DatasetSpec.fashionMNIST.load(.train, directory: dataDir)
        let augmentation = AugmentationConfig(cropPadding: 2, horizontalFlip: true)
        let results = try [0, 2].map { prefetch in
            try LoaderBenchmark.run(dataset: data, batchSize: batchSize, prefetch: prefetch, batches: 1000, augmentation: augmentation)
        }
        if json {
            print(
                "{\"loader_samples_per_second\": \(Int(results[0].samplesPerSecond)), \"loader_prefetch_samples_per_second\": \(Int(results[1].samplesPerSecond))}"
            )
        } else {
            print("Fashion-MNIST, crop (padding 2) + flip + normalisation, batch \(batchSize):")
            results.forEach { print("  \($0)") }
        }
    }

    /// The loader on an image folder or shard set: decoded and augmented images per second per
    /// loader thread (synchronously, so only the loader threads work), beside decoding alone.
    private func runStreamingLoader(_ spec: DatasetSpec) throws {
        let threadCount = try loaderThreads?.integer("loader-threads") ?? 1
        let data = try spec.load(.train, directory: dataDir, images: ImageOptions(imageSize: try imageSize?.integer("image-size")))
        let augmentation = spec.standardAugmentation(for: data)
        let samples = min(max(loaderSamples, batchSize), data.count)
        let result = try LoaderBenchmark.run(
            dataset: data, batchSize: batchSize, prefetch: 0, batches: max(1, samples / batchSize), augmentation: augmentation,
            loaderThreads: threadCount)
        guard case .streamed(let streamed) = data.images else { return }
        let decodeRate = try LoaderBenchmark.decodeRate(streamed.store, samples: samples)
        if json {
            print(
                "{\"loader_images_per_second\": \(Int(result.samplesPerSecond)), \"loader_images_per_second_per_thread\": "
                    + "\(Int(result.samplesPerSecondPerThread)), \"loader_threads\": \(threadCount), \"decode_images_per_second\": \(Int(decodeRate))}"
            )
        } else {
            print(
                "\(streamed.store.summary): \(data.width)×\(data.height) inputs, \(augmentation.summary) + normalisation, batch \(batchSize):"
            )
            print("  \(result)")
            print(String(format: "  %.0f images/s per loader thread", result.samplesPerSecondPerThread))
            print(String(format: "  read + decode alone, one thread: %.0f images/s (%.3f ms per image)", decodeRate, 1000 / decodeRate))
        }
    }

    private func jsonLine(_ result: ThroughputBenchmark.Result) throws -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(result), as: UTF8.self)
    }

    private func table(_ r: ThroughputBenchmark.Result) -> String {
        func fixed(_ value: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", value) }
        return """
            model \(r.model) on \(datasetName)-shaped samples (\(r.parameters) parameters, \(r.convolution) convolutions), batch \(r.batchSize) per rank, \(r.ranks) rank(s) × \(r.threads) thread(s), \(r.steps) timed steps per policy
              cross-entropy  \(fixed(r.millisecondsPerStep, 2)) ms/step, \(fixed(r.samplesPerSecond, 0)) samples/s per rank, \(fixed(r.totalSamplesPerSecond, 0)) in total
              PS-KD          \(fixed(r.pskdMillisecondsPerStep, 2)) ms/step, \(fixed(r.pskdSamplesPerSecond, 0)) samples/s per rank: \(fixed(r.pskdOverheadPercent, 2)) % over cross-entropy
              communication  \(fixed(r.communicationPercent, 1)) % of a step
              teacher        \(r.teacher): \(fixed(r.teacherBytesPerStep / 1000)) kB received per rank per PS-KD step, \(fixed(r.teacherExchangePercent, 1)) % of the step
              GEMM           \(fixed(r.achievedGFLOPS)) GFLOP/s in products as performed (Winograd F(2×2, 3×3) does 2.25× fewer than direct convolution, F(4×4, 3×3) 4×), sgemm peak \(fixed(r.sgemmPeakGFLOPS)) GFLOP/s (\(fixed(100 * r.achievedGFLOPS / r.sgemmPeakGFLOPS, 0)) %)
            """
    }

    private func profileTable(_ profile: ThroughputBenchmark.Profile) -> String {
        func fixed(_ value: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", value) }
        func column(_ text: String, _ width: Int) -> String { text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0) }
        func right(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
        let width = max(40, (profile.layers.map(\.name.count) + profile.outsideLayers.map(\.name.count)).max() ?? 0) + 2
        var lines = [
            "profile of \(profile.steps) PS-KD steps on rank 0: \(fixed(profile.millisecondsPerStep)) ms per step (mean)",
            "  " + column("layer", width) + column("type", 16) + right("forward ms", 12) + right("backward ms", 13) + right("share", 9),
        ]
        for layer in profile.layers {
            lines.append(
                "  " + column(layer.name, width) + column(layer.type, 16) + right(fixed(layer.forwardMilliseconds, 3), 12)
                    + right(fixed(layer.backwardMilliseconds, 3), 13) + right(fixed(layer.percent, 1) + " %", 9))
        }
        lines.append("  outside the layers")
        for part in profile.outsideLayers {
            lines.append(
                "  " + column(part.name, width + 16) + right(fixed(part.milliseconds, 3), 12) + right("", 13)
                    + right(fixed(part.percent, 1) + " %", 9))
        }
        return lines.joined(separator: "\n")
    }
}

extension ConvolutionAlgorithm: ExpressibleByArgument {}
