import ArgumentParser
import Foundation
import Training

/// `pskd evaluate`: the paper's test metrics of a checkpoint (also under mpirun).
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Report test top-1/top-5 error, NLL, ECE, AURC and E-AURC of a checkpoint.")

    @Option(help: "A checkpoint folder, or a run directory (its newest complete checkpoint).") var checkpoint: String
    @Option(help: "Write one CSV row per test sample: index, label, then the class probabilities.") var predictions: String?
    @Option(
        name: .setting("data-dir"), parsing: .unconditional,
        help: ArgumentHelp("Directory of the data set's files (default: the run's). Range: a non-empty path.", valueName: "path"),
        completion: .directory)
    var dataDir: String?
    @OptionGroup var evaluation: EvaluationOptions
    @OptionGroup var threads: ThreadsOption
    @Flag(help: "Print one JSON object with the keys of metrics.jsonl (test_top1_error, test_nll, …), the checkpoint and its epoch.")
    var json = false

    /// The ranges of `pskd train`'s settings of the same names, refused in the same words.
    func validate() throws {
        _ = try (evaluation.bins(), evaluation.testSamples(), threads.value())
        if let dataDir { try TrainSetting.check("data-dir", dataDir) }
    }

    func run() throws {
        try withCommunicator("evaluate") { communicator in
            let result = try CheckpointEvaluation.run(
                path: checkpoint, dataDirectory: dataDir, maxTestSamples: try evaluation.testSamples(), eceBins: try evaluation.bins(),
                predictionsPath: predictions, threads: try threads.value(), communicator: communicator)
            guard communicator.isRoot else { return }
            let m = result.metrics
            if json {
                print(try result.jsonLine(ranks: communicator.size))
            } else {
                print(
                    """
                    checkpoint \(result.checkpoint) (epoch \(result.epoch)), \(m.count) test samples, \(communicator.size) rank(s)
                      top-1 error   \(String(format: "%.2f", m.top1Error)) %
                      top-5 error   \(String(format: "%.2f", m.top5Error)) %
                      NLL           \(String(format: "%.4f", m.negativeLogLikelihood))
                      ECE           \(String(format: "%.2f", m.expectedCalibrationError)) % (\(m.eceBins) bins)
                      AURC          \(String(format: "%.2f", m.aurc)) ×1000
                      E-AURC        \(String(format: "%.2f", m.excessAURC)) ×1000
                    """)
                if let predictions { print("  predictions   \(predictions)") }
            }
        }
    }
}
