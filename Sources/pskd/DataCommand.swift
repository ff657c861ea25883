import ArgumentParser
import DataPipeline
import Foundation
import Platform
import Training

/// `pskd data`: look at a data set before training on it.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Check a data set's images, or preview a training batch as the model sees it.",
        subcommands: [DataCheckCommand.self, DataPreviewCommand.self])
}

/// The data set options `pskd data` shares with `pskd train`.
struct DataSetOptions: ParsableArguments {
    @Option(name: .setting("dataset"), parsing: .unconditional, help: .setting("dataset")) var dataset: SettingValue<DatasetNames>?
    @Option(name: .setting("data-dir"), parsing: .unconditional, help: .setting("data-dir"), completion: .directory) var dataDir: Setting?
    @Option(name: .setting("image-size"), parsing: .unconditional, help: .setting("image-size")) var imageSize: Setting?
    @Option(name: .setting("eval-resize"), parsing: .unconditional, help: .setting("eval-resize")) var evalResize: Setting?

    /// The data set named, with its image settings, as `pskd train` would load it.
    func spec() throws -> DatasetSpec {
        let name = dataset?.text ?? DatasetSpec.fashionMNIST.name
        try TrainSetting.check("dataset", name.lowercased())
        return try DatasetSpec.named(name)
    }

    var directory: String? { dataDir?.text }

    func imageOptions() throws -> ImageOptions {
        ImageOptions(imageSize: try imageSize?.integer("image-size"), evalResize: try evalResize?.integer("eval-resize"))
    }

    func validate() throws {
        if let dataDir { try TrainSetting.check("data-dir", dataDir.text) }
    }
}

/// `pskd data check`: decodes every image of both splits in parallel and lists every file that
/// fails, with the reason; exits 1 if any did.
struct DataCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Decode every image of an image folder or shard set and list every file that fails (exit 1 if any).")

    @OptionGroup var data: DataSetOptions
    @OptionGroup var threads: ThreadsOption

    func run() throws {
        let spec = try data.spec()
        guard spec.streamsImages else {
            print("pskd: data check: \(spec.title) is read whole and checked at every load; nothing to decode")
            return
        }
        let threadCount = ProcessPlacement.blasThreads(requested: try threads.value())
        var failed = 0
        for split in DatasetSplit.allCases {
            let dataset = try spec.load(split, directory: data.directory, images: try data.imageOptions())
            guard case .streamed(let streamed) = dataset.images else { continue }
            let report = ImageCheck.run(streamed.store, threads: threadCount)
            for failure in report.failures { printError("pskd: data check: \(failure.error)") }
            print(
                String(
                    format: "pskd: data check: %@: %d images decoded in %.1f s on %d thread(s), %d failed, %d other files skipped",
                    streamed.store.summary, report.checked, report.seconds, threadCount, report.failures.count,
                    streamed.store.skippedEntryCount))
            failed += report.failures.count
        }
        if failed > 0 { throw ExitCode(1) }
    }
}

/// `pskd data preview`: a contact sheet (PNG) of one training batch after augmentation, each
/// image captioned with its class.
struct DataPreviewCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preview",
        abstract: "Write a PNG contact sheet of a training batch after augmentation, with labels: what the model sees.")

    @OptionGroup var data: DataSetOptions
    @Option(help: ArgumentHelp("The PNG file to write.", valueName: "path"), completion: .file()) var out = "preview.png"
    @Option(name: .customLong("batch-size"), help: "Images on the sheet, 1...256.") var batchSize = 32
    @Option(help: "The epoch whose augmentation is shown (each epoch draws anew).") var epoch = 1
    @Option(help: "The seed of the data order and augmentation, as pskd train's --seed.") var seed: UInt64 = 1
    @Flag(help: "Show the test split as evaluation sees it (no augmentation) instead of a training batch.") var test = false

    func validate() throws {
        guard (1...256).contains(batchSize) else { throw ValidationError("--batch-size must be 1...256, got \(batchSize)") }
        guard epoch >= 1 else { throw ValidationError("--epoch must be at least 1, got \(epoch)") }
    }

    func run() throws {
        let spec = try data.spec()
        let split: DatasetSplit = test ? .test : .train
        let dataset = try spec.load(split, directory: data.directory, images: try data.imageOptions())
        let sampler = try ShardedSampler(
            sampleCount: dataset.count, globalBatchSize: min(batchSize, dataset.count), rank: 0, worldSize: 1, seed: seed)
        let augmentation = test ? AugmentationConfig.none : spec.standardAugmentation(for: dataset)
        let loader = BatchLoader(dataset: dataset, schedule: sampler, augmentation: augmentation, seed: seed, prefetch: 0)
        loader.start(epoch: epoch)
        guard let batch = try loader.next() else { throw ValidationError("\(spec.title) has no samples") }
        let sheet = ContactSheet.render(batch, classNames: dataset.classNames, mean: dataset.mean, std: dataset.std)
        try PNGEncoder.write(sheet, to: out)
        print(
            "pskd: data preview: \(batch.count) \(split.rawValue) images of \(dataset.width)×\(dataset.height) "
                + "(\(augmentation.summary)), epoch \(epoch), seed \(seed) → \(out) (\(sheet.width)×\(sheet.height))")
    }
}
