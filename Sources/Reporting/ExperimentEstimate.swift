import Foundation

/// The time an experiment takes on this machine, from one training step measured with
/// `pskd bench` (the recipe's model, the data set's image shape, batch per rank, the runs' ranks
/// and threads). The model: every epoch trains its steps and evaluates the test images, a test
/// batch assumed to cost 1/3 of a training step (forward only; cnn on Fashion-MNIST measured
/// 0.33); a PS-KD step costs what bench measured for it; a policy that reads another run's
/// model (tf-kd-self's teacher) adds that forward pass to each step; the other policies cost as
/// cross-entropy; an evaluation with other ECE bins is one test pass; 3 s of start-up per run.
/// Flags after `--` are not in it.
public struct ExperimentEstimate: Sendable {
    /// The fields of `pskd bench --json` the estimate reads.
    public struct Bench: Decodable, Sendable {
        public var millisecondsPerStep: Double
        public var pskdMillisecondsPerStep: Double
        public var threads: Int

        /// The last line of `output` that is a JSON object (launchers print other lines too).
        public static func parse(_ output: String) throws -> Bench {
            guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("{") }) else {
                throw ReportError("no JSON line in the output of pskd bench")
            }
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            do {
                return try decoder.decode(Bench.self, from: Data(line.utf8))
            } catch {
                throw ReportError("the output of pskd bench is not its JSON object: \(RunDirectory.describe(error))")
            }
        }
    }

    public let plan: ExperimentPlan
    public let bench: Bench

    public init(plan: ExperimentPlan, bench: Bench) {
        self.plan = plan
        self.bench = bench
    }

    public var batchSize: Int { Int(plan.value("batch-size") ?? "") ?? 128 }
    public var epochs: Int { Int(plan.value("epochs") ?? "") ?? 1 }
    /// The batch per rank bench measures (at least 2).
    public var perRankBatch: Int { Self.perRankBatch(plan) }
    public static func perRankBatch(_ plan: ExperimentPlan) -> Int { max(2, (Int(plan.value("batch-size") ?? "") ?? 128) / plan.ranks) }
    public var stepsPerEpoch: Int { (plan.trainingImages + batchSize - 1) / batchSize }

    /// The `pskd bench` arguments that measure the step (after `--command bench` of launch/local.sh).
    public static func benchArguments(_ plan: ExperimentPlan) -> [String] {
        [
            "--command", "bench", "--model", plan.value("model") ?? "mlp", "--dataset", plan.value("dataset") ?? "fashion-mnist",
            "--batch-size", String(perRankBatch(plan)), "--steps", "3", "--warmup", "1", "--json",
        ]
    }

    /// Milliseconds of one training step of `policy`.
    func step(_ policy: String) -> Double {
        if policy == "pskd" { return bench.pskdMillisecondsPerStep }
        return plan.recipe.reads(policy).isEmpty ? bench.millisecondsPerStep : bench.millisecondsPerStep * 4 / 3
    }

    /// Seconds for every run.
    public var seconds: Double {
        let evaluationStep = bench.millisecondsPerStep / 3
        let testBatches = Double((plan.recipe.testImages + batchSize - 1) / batchSize)
        let evaluations = plan.recipe.alsoECEBins == nil ? 0.0 : 1.0
        return plan.policies.reduce(0) { total, policy in
            let run =
                Double(epochs) * (Double(stepsPerEpoch) * step(policy) + testBatches * evaluationStep)
                + evaluations * testBatches * evaluationStep + 3000
            return total + Double(plan.seeds.count) * run / 1000
        }
    }

    /// `~N minutes`, `~N.N hours` or `~N.N days (N hours)`.
    public static func span(_ seconds: Double) -> String {
        if seconds < 7200 { return String(format: "%.0f minutes", seconds / 60) }
        if seconds < 172_800 { return String(format: "%.1f hours", seconds / 3600) }
        return String(format: "%.1f days (%.0f hours)", seconds / 86400, seconds / 3600)
    }

    /// The estimate's lines; `load` is the load average before the measurement.
    public func text(load: String) -> String {
        let dataset = plan.value("dataset") ?? "?", model = plan.value("model") ?? "?"
        return """
            estimate:   ~\(Self.span(seconds)) for the \(plan.runs.count) runs on THIS machine with \(plan.ranks) rank(s) × \(bench.threads) thread(s), from one
                        measured step (pskd bench, \(model) on \(dataset)-shaped samples, batch \(perRankBatch) per rank): cross-entropy \(String(format: "%.0f", bench.millisecondsPerStep)) ms,
                        PS-KD \(String(format: "%.0f", bench.pskdMillisecondsPerStep)) ms; \(stepsPerEpoch) steps per epoch × \(epochs) epochs per run, plus the \(plan.recipe.testImages) test images every epoch, assumed
                        to cost 1/3 of training as many (forward only); a policy that reads another run's model (tf-kd-self) adds
                        that forward pass for the teacher; other policies cost as cross-entropy. Flags after -- are not in the
                        estimate. Load average before the measurement: \(load) (other jobs slow the step and so raise the estimate).
            """
    }
}
