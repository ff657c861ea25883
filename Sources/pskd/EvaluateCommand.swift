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
    @Option(name: .customLong("data-dir"), help: "Directory of the data set's files (default: the run's).") var dataDir: String?
    @Option(name: .customLong("max-test-samples"), parsing: .unconditional, help: "Evaluate on the first K test samples only (K ≥ 1).")
    var maxTestSamples: Int?
    @Option(name: .customLong("ece-bins"), parsing: .unconditional, help: "Equal-width confidence bins of ECE, 1...1000.") var eceBins = 15
    @Option(parsing: .unconditional, help: "Threads per rank, 1...1024 (default: the CPUs the rank is bound to).") var threads: Int?
    @Flag(help: "Print one JSON object with the keys of metrics.jsonl (test_top1_error, test_nll, …), the checkpoint and its epoch.")
    var json = false

    func validate() throws {
        guard (1...1000).contains(eceBins) else { throw ValidationError("--ece-bins must be in 1...1000, got \(eceBins)") }
        if let threads, !(1...1024).contains(threads) { throw ValidationError("--threads must be in 1...1024, got \(threads)") }
        if let maxTestSamples, maxTestSamples < 1 { throw ValidationError("--max-test-samples must be at least 1, got \(maxTestSamples)") }
    }

    func run() throws {
        try withCommunicator("evaluate") { communicator in
            let result = try CheckpointEvaluation.run(
                path: checkpoint, dataDirectory: dataDir, maxTestSamples: maxTestSamples, eceBins: eceBins,
                predictionsPath: predictions, threads: threads, communicator: communicator)
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
