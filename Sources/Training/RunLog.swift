import Foundation

/// The run directory and what rank 0 tells the user: the resolved configuration
/// (`config.json`), one JSON object per epoch (`metrics.jsonl`) and progress lines.
/// Other ranks write nothing.
final class RunLog {
    let directory: URL
    let isWriter: Bool

    /// The log of a run directory that rank 0 already owns (see `RunOwnership`).
    init(directory: String, isWriter: Bool) {
        self.directory = URL(fileURLWithPath: directory, isDirectory: true)
        self.isWriter = isWriter
    }

    /// Writes the training's settings as `config.json` (without the job's own: see
    /// `TrainConfig.instanceKeys`), so `--config` repeats the training and `--resume` reads it.
    func saveConfiguration(_ config: TrainConfig) throws {
        guard isWriter else { return }
        try write(try config.settingsJSON(), to: "config.json")
    }

    /// A record as its line of `metrics.jsonl` (without the newline).
    static func line(_ record: EpochRecord) throws -> Data {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(record)
    }

    /// Appends one line to `metrics.jsonl`.
    func append(_ record: EpochRecord) throws {
        guard isWriter else { return }
        let line = try Self.line(record) + Data("\n".utf8)
        let url = directory.appendingPathComponent("metrics.jsonl")
        if !FileManager.default.fileExists(atPath: url.path) {
            _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        }
        do {
            let handle = try FileHandle(forWritingTo: url)
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: line)
        } catch {
            throw TrainingError("cannot append to \(url.path): \(error.localizedDescription)")
        }
    }

    /// Keeps the lines of epochs 1...`epoch` in `metrics.jsonl` (a resumed run redoes the later
    /// ones; a fresh run, `epoch` 0, starts an empty file). Nothing is lost silently on resume: a
    /// line that is not a whole record (cut off when a job ended while writing it) is dropped and
    /// named; the record of `epoch` itself, when missing, is restored from the checkpoint's copy
    /// (`checkpointRecord`, the `epoch_record` of `checkpoint`'s metadata); epochs still without a
    /// record are named.
    func keepMetrics(throughEpoch epoch: Int, checkpointRecord: String? = nil, checkpoint: String = "") throws {
        guard isWriter else { return }
        let url = directory.appendingPathComponent("metrics.jsonl")
        let text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        var kept: [String] = [], present = Set<Int>()
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            guard !line.allSatisfy(\.isWhitespace) else { continue }
            guard let record = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let recorded = record["epoch"] as? Int
            else {
                if epoch > 0 {
                    say(
                        "pskd: warning: --resume: line \(number + 1) of \(url.path) is not a whole epoch record "
                            + "(cut off when a job ended while writing it?): dropped: \(line.prefix(60))\(line.count > 60 ? "…" : "")")
                }
                continue
            }
            if recorded <= epoch {
                kept.append(String(line))
                present.insert(recorded)
            }
        }
        if epoch > 0, !present.contains(epoch), let checkpointRecord {
            kept.append(checkpointRecord)
            present.insert(epoch)
            say("pskd: --resume: \(url.path) had no whole record of epoch \(epoch): restored it from \(checkpoint)")
        }
        let missing = epoch > 0 ? (1...epoch).filter { !present.contains($0) } : []
        if !missing.isEmpty {
            say(
                "pskd: warning: --resume: \(url.path) has no record of epoch(s) \(missing.map(String.init).joined(separator: ", ")) "
                    + "and no checkpoint holds one (lost lines, or a checkpoint of an older pskd): "
                    + "they are missing from the run's results (pskd report)")
        }
        try write(Data(kept.map { $0 + "\n" }.joined().utf8), to: "metrics.jsonl")
    }

    /// The records of `metrics.jsonl` so far (rank 0; empty elsewhere or when unreadable).
    func records() -> [EpochRecord] {
        guard isWriter, let text = try? String(contentsOf: directory.appendingPathComponent("metrics.jsonl"), encoding: .utf8) else {
            return []
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return text.split(separator: "\n").compactMap { try? decoder.decode(EpochRecord.self, from: Data($0.utf8)) }
    }

    /// Prints a line (rank 0 only) and flushes.
    func say(_ line: String) {
        guard isWriter else { return }
        print(line)
        fflush(nil)
    }

    private func write(_ data: Data, to name: String) throws {
        let url = directory.appendingPathComponent(name)
        do {
            try data.write(to: url, options: .atomic)
        } catch {
            throw TrainingError("cannot write \(url.path): \(error.localizedDescription)")
        }
    }
}

/// One epoch's line of `metrics.jsonl`.
public struct EpochRecord: Codable, Sendable {
    public var epoch: Int
    public var alpha: Double
    public var lr: Double
    public var trainLoss: Double
    public var testTop1Error: Double
    public var testTop5Error: Double
    public var testNll: Double
    public var testEce: Double
    public var testAurc: Double
    public var testEaurc: Double
    public var eceBins: Int
    /// The number of test samples evaluated (`test_samples`): `--max-test-samples` may change
    /// when a run resumes, and errors on different test sets are not comparable. Nil in runs
    /// logged before it was recorded.
    public var testSamples: Int?
    /// The reliability diagram of the test set: per confidence bin, count, accuracy, mean confidence.
    public var testReliability: [ReliabilityBin]
    public var seconds: Double
    public var samplesPerSecond: Double
    /// The longest time any rank's training waited for its loader's batches this epoch, in
    /// seconds (`data_wait_seconds`); nil in runs logged before it was recorded.
    public var dataWaitSeconds: Double?
    /// Training labels changed by `--label-noise` (`flipped_labels`; absent without label noise).
    public var flippedLabels: Int?
    /// The largest peak resident memory of any rank so far, in bytes (`VmHWM`); nil in runs
    /// logged before it was recorded.
    public var peakMemoryBytes: UInt64?
    /// The layout of the job that trained this epoch (`WorldLayout`): `ranks`, `nodes`,
    /// `ranks_per_node`, `threads_per_rank`. Nil in runs logged before it was recorded.
    public var ranks: Int?
    public var nodes: Int?
    public var ranksPerNode: Int?
    public var threadsPerRank: Int?

    /// The job's layout, when this row records it.
    public var world: WorldLayout? {
        guard let ranks, let nodes, let ranksPerNode, let threadsPerRank else { return nil }
        return WorldLayout(ranks: ranks, nodes: nodes, ranksPerNode: ranksPerNode, threadsPerRank: threadsPerRank)
    }

    init(
        epoch: Int, alpha: Double, learningRate: Double, trainLoss: Double, metrics: ClassificationMetrics,
        seconds: Double, samplesPerSecond: Double, dataWaitSeconds: Double? = nil, flippedLabels: Int? = nil,
        peakMemoryBytes: UInt64?, world: WorldLayout? = nil
    ) {
        self.dataWaitSeconds = dataWaitSeconds
        ranks = world?.ranks
        nodes = world?.nodes
        ranksPerNode = world?.ranksPerNode
        threadsPerRank = world?.threadsPerRank
        self.flippedLabels = flippedLabels
        self.epoch = epoch
        self.alpha = alpha
        self.lr = learningRate
        self.trainLoss = trainLoss
        testTop1Error = metrics.top1Error
        testTop5Error = metrics.top5Error
        testNll = metrics.negativeLogLikelihood
        testEce = metrics.expectedCalibrationError
        testAurc = metrics.aurc
        testEaurc = metrics.excessAURC
        eceBins = metrics.eceBins
        testSamples = metrics.count
        testReliability = metrics.reliability
        self.seconds = seconds
        self.samplesPerSecond = samplesPerSecond
        self.peakMemoryBytes = peakMemoryBytes
    }

    /// The epoch of lowest test top-1 error (the earliest of equals) among the `records`
    /// evaluated on as many test samples as the last one (`testSamples`; a row that does not
    /// record its count is compared only with others that do not), and the epochs left out
    /// because they were evaluated on another count. Nil for no records.
    public static func bestTop1(of records: [EpochRecord]) -> (best: EpochRecord, leftOut: [EpochRecord])? {
        guard let last = records.last else { return nil }
        let comparable = records.filter { $0.testSamples == last.testSamples }
        guard let best = comparable.min(by: { ($0.testTop1Error, $0.epoch) < ($1.testTop1Error, $1.epoch) }) else { return nil }
        return (best, records.filter { $0.testSamples != last.testSamples })
    }

    /// Why `leftOut` epochs (of `bestTop1`) were not compared with the final one, in words.
    public static func describeLeftOut(_ leftOut: [EpochRecord], final: EpochRecord) -> String {
        let counts = Set(leftOut.map { $0.testSamples.map(String.init) ?? "an unrecorded number of" }).sorted()
        return "epoch(s) \(leftOut.map { String($0.epoch) }.joined(separator: ", ")) were evaluated on "
            + "\(counts.joined(separator: " or ")) test samples, the final epoch on "
            + "\(final.testSamples.map(String.init) ?? "an unrecorded number of") (--max-test-samples changed on resume): "
            + "the best epoch is chosen among the epochs evaluated like the final one"
    }

    /// The epoch and its test metrics, for closing lines.
    var testSummary: String {
        String(
            format: "%d: test top-1 err %.2f %%, top-5 err %.2f %%, NLL %.4f, ECE %.2f %%, AURC %.2f, E-AURC %.2f",
            epoch, testTop1Error, testTop5Error, testNll, testEce, testAurc, testEaurc)
    }

    /// A one-line human summary.
    var summary: String {
        String(
            format:
                "epoch %d: α %.3f, lr %.4f, train loss %.4f, test top-1 err %.2f %%, top-5 err %.2f %%, NLL %.4f, ECE %.2f %%, AURC %.2f, E-AURC %.2f, %.1f s, %.0f samples/s",
            epoch, alpha, lr, trainLoss, testTop1Error, testTop5Error, testNll, testEce, testAurc, testEaurc, seconds, samplesPerSecond)
    }
}
