import ArgumentParser
import Collectives
import Foundation
import Models
import Training

/// `pskd bench`: training throughput against this machine's GEMM peak.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure forward + backward + update throughput on data held in memory.",
        discussion: "Build in release mode (swift build -c release) before benchmarking. Medians over the timed steps.")

    @Option(help: "Model: \(ModelZoo.names.joined(separator: ", ")).")
    var model = "mlp"

    @Option(name: .customLong("batch-size"), help: "Samples per step on each rank.")
    var batchSize = 128

    @Option(help: "OpenBLAS threads per rank (default: the CPUs the rank is bound to).")
    var threads: Int?

    @Option(help: "Timed steps (default: 30 for mlp, 8 otherwise).")
    var steps: Int?

    @Option(help: "Untimed warm-up steps.")
    var warmup = 3

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    func validate() throws {
        guard ModelZoo.names.contains(model) else {
            throw ValidationError("unknown model '\(model)': choose one of \(ModelZoo.names.joined(separator: ", "))")
        }
        guard batchSize > 1 else { throw ValidationError("--batch-size must be at least 2, got \(batchSize)") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func run() throws {
        try withCommunicator { communicator in
            let result = try ThroughputBenchmark.run(
                modelName: model, batchSize: batchSize, threads: ProcessPlacement.blasThreads(requested: threads),
                steps: steps ?? (model == "mlp" ? 30 : 8), warmupSteps: warmup, communicator: communicator)
            guard communicator.isRoot else { return }
            print(json ? try jsonLine(result) : table(result))
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
        model \(r.model) (\(r.parameters) parameters), batch \(r.batchSize) per rank, \(r.ranks) rank(s) × \(r.threads) thread(s), \(r.steps) timed steps
          samples/s (per rank)   \(fixed(r.samplesPerSecond, 0))
          ms per step (median)   \(fixed(r.millisecondsPerStep, 2))
          achieved GFLOP/s       \(fixed(r.achievedGFLOPS))  (GEMM work only)
          sgemm peak GFLOP/s     \(fixed(r.sgemmPeakGFLOPS))  (\(fixed(100 * r.achievedGFLOPS / r.sgemmPeakGFLOPS, 0)) % of peak)
        """
    }
}
