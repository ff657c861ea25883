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
            against its range before anything starts.

            SETTINGS:
            \(TrainSetting.helpText)
            """)

    @Option(parsing: .unconditional, help: "A YAML or JSON file of settings named like the flags (e.g. 'batch-size: 256').") var config:
        String?
    @Argument(parsing: .allUnrecognized, help: "Settings: --name value (or --name=value, or a switch alone); see SETTINGS below.")
    var settings: [String] = []

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
        var saved = TrainConfig()
        let savedSettings = try ConfigurationFile.load(savedPath).filter { !TrainConfig.instanceKeys.contains($0.key) }
        try TrainSetting.apply(savedSettings, to: &saved, source: savedPath)
        let resuming = try configuration(over: saved)
        try TrainSetting.refuseUnread(try givenSettings(), by: resuming)
        try resuming.checkResumable(from: saved, runDirectory: resolved.outputDirectory)
        return resuming
    }

    /// `base`, then the config file (which may not set `resume` or `overwrite`), then the flags.
    private func configuration(over base: TrainConfig) throws -> TrainConfig {
        var resolved = base
        if let config {
            let fromFile = try ConfigurationFile.load(config)
            try TrainSetting.refuseCommandLineOnly(fromFile.map(\.key), source: config)
            try TrainSetting.apply(fromFile, to: &resolved, source: config)
        }
        try TrainSetting.apply(try TrainSetting.parse(commandLine: settings), to: &resolved, source: "command line")
        return resolved
    }

    /// The settings this command gives (the config file's and the flags'), each with where it
    /// was given last: "command line" or the file.
    private func givenSettings() throws -> [String: String] {
        var given: [String: String] = [:]
        if let config {
            for (key, _) in try ConfigurationFile.load(config) { given[key.replacingOccurrences(of: "_", with: "-")] = config }
        }
        for (key, _) in try TrainSetting.parse(commandLine: settings) { given[key] = "command line" }
        return given
    }
}
