import Foundation
import TestSupport
import Training
import XCTest

/// Run directories written by hand (config.json and metrics.jsonl as `pskd train` writes them),
/// in a temporary folder that the test case removes. For the report's tests: `ReportingTests`
/// in-process, `ExecutableTests` through `pskd report`.
public struct FixtureRuns {
    public let root: URL

    /// A fresh folder under the temporary directory, removed at the end of `testCase`.
    public init(_ testCase: XCTestCase, name: String = #function) throws {
        root = URL(
            fileURLWithPath: testCase.temporaryPath("report-\(name.filter { $0.isLetter || $0.isNumber })-\(UUID().uuidString.prefix(8))"),
            isDirectory: true)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    /// One epoch's metrics; the reliability bins are given as (count, accuracy, confidence) per bin.
    public struct Epoch {
        public var top1: Double, top5: Double, nll: Double, ece: Double, aurc: Double, eaurc: Double
        public var bins: [(count: Int, accuracy: Double, confidence: Double)] = []
        public var seconds = 10.0, samplesPerSecond = 500.0
        /// `test_samples`, absent when nil (rows of an older pskd).
        public var testSamples: Int? = nil

        public init(
            top1: Double, top5: Double, nll: Double, ece: Double, aurc: Double, eaurc: Double,
            bins: [(count: Int, accuracy: Double, confidence: Double)] = [], seconds: Double = 10.0, samplesPerSecond: Double = 500.0,
            testSamples: Int? = nil
        ) {
            (self.top1, self.top5, self.nll, self.ece, self.aurc, self.eaurc) = (top1, top5, nll, ece, aurc, eaurc)
            (self.bins, self.seconds, self.samplesPerSecond, self.testSamples) = (bins, seconds, samplesPerSecond, testSamples)
        }
    }

    /// Writes a run directory named `name` and returns its path.
    @discardableResult
    public func run(
        _ name: String, policy: String, seed: UInt64, epochs: [Epoch], configure: (inout TrainConfig) -> Void = { _ in },
        ranks: [Int?] = [], log: String? = nil
    ) throws -> String {
        let directory = root.appendingPathComponent(name, isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var config = TrainConfig()
        config.policy = policy
        config.seed = seed
        config.epochs = epochs.count
        config.maxTrainSamples = 2000
        config.outputDirectory = directory.path
        configure(&config)
        // As `pskd train` writes it (RunLog.saveConfiguration): the settings without the job's own (out, resume…).
        let settings = TrainSetting.values(of: config, excluding: TrainConfig.instanceKeys)
        try JSONSerialization.data(withJSONObject: settings, options: [.prettyPrinted, .sortedKeys])
            .write(to: directory.appendingPathComponent("config.json"))

        var lines = ""
        for (index, epoch) in epochs.enumerated() {
            let binCount = epoch.bins.isEmpty ? config.eceBins : epoch.bins.count
            let bins: [[String: Any]] = (0..<binCount).map { b in
                let bin = epoch.bins.isEmpty ? (count: 0, accuracy: 0.0, confidence: 0.0) : epoch.bins[b]
                return [
                    "lower": Double(b) / Double(binCount), "upper": Double(b + 1) / Double(binCount),
                    "count": bin.count, "accuracy": bin.accuracy, "confidence": bin.confidence,
                ]
            }
            var record: [String: Any] = [
                "epoch": index + 1, "alpha": 0.0, "lr": 0.1, "train_loss": 1.0,
                "test_top1_error": epoch.top1, "test_top5_error": epoch.top5, "test_nll": epoch.nll,
                "test_ece": epoch.ece, "test_aurc": epoch.aurc, "test_eaurc": epoch.eaurc, "ece_bins": binCount,
                "test_reliability": bins, "seconds": epoch.seconds, "samples_per_second": epoch.samplesPerSecond,
            ]
            if let samples = epoch.testSamples { record["test_samples"] = samples }
            // The job's layout, as `pskd train` records it (`WorldLayout`): `ranks[e]` ranks of one thread on one node.
            if index < ranks.count, let count = ranks[index] {
                record.merge(["ranks": count, "nodes": 1, "ranks_per_node": count, "threads_per_rank": 1]) { $1 }
            }
            lines += String(decoding: try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]), as: UTF8.self) + "\n"
        }
        try Data(lines.utf8).write(to: directory.appendingPathComponent("metrics.jsonl"))
        if let log { try Data(log.utf8).write(to: directory.appendingPathComponent("train.log")) }
        return directory.path
    }

    /// A plausible experiment: ce, ls and pskd × `seeds`, `epochs` epochs, 15 bins, errors that
    /// fall with the epochs and differ by policy and seed.
    @discardableResult
    public func experiment(seeds: [UInt64] = [1, 2], epochs: Int = 4) throws -> [String] {
        var paths: [String] = []
        for seed in seeds {
            for (p, policy) in ["ce", "ls", "pskd"].enumerated() {
                let records = (1...epochs).map { e -> Epoch in
                    let base = 30.0 / Double(e) + Double(p) * -0.5 + Double(seed) * 0.3
                    let bins = (0..<15).map { b -> (count: Int, accuracy: Double, confidence: Double) in
                        let centre = (Double(b) + 0.5) / 15
                        let count = b < 3 ? 0 : Int(20 * pow(1.35, Double(b))) + Int(seed)
                        return (count, max(0, min(1, centre - 0.08 + 0.04 * Double(p))), centre)
                    }
                    return Epoch(
                        top1: base, top5: base / 10, nll: base / 40, ece: 8 - 2 * Double(p) + Double(e) * 0.1,
                        aurc: base * 3, eaurc: base, bins: bins)
                }
                paths.append(
                    try run(
                        "\(policy)-seed\(seed)", policy: policy, seed: seed, epochs: records,
                        ranks: Array(repeating: 2, count: epochs)))
            }
        }
        return paths
    }
}
