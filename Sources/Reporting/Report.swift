import DataPipeline
import Foundation
import Training

/// Mean and sample standard deviation of a few values (one per seed).
public struct Summary: Sendable, Equatable {
    public let mean: Double
    /// Sample standard deviation (n − 1 in the denominator); 0 for a single value.
    public let standardDeviation: Double
    public let count: Int

    public init(_ values: [Double]) {
        count = values.count
        guard !values.isEmpty else { mean = .nan; standardDeviation = .nan; return }
        let mean = values.reduce(0, +) / Double(values.count)
        self.mean = mean
        if values.count > 1 {
            let squares = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
            standardDeviation = (squares / Double(values.count - 1)).squareRoot()
        } else {
            standardDeviation = 0
        }
    }
}

/// A test metric of `metrics.jsonl`, as the report shows it. Lower is better for every one.
public enum Metric: String, CaseIterable, Sendable {
    case top1Error, top5Error, nll, ece, aurc, eaurc

    public var title: String {
        switch self {
        case .top1Error: "Top-1 error (%)"
        case .top5Error: "Top-5 error (%)"
        case .nll: "NLL"
        case .ece: "ECE (%)"
        case .aurc: "AURC (×1000)"
        case .eaurc: "E-AURC (×1000)"
        }
    }

    /// Digits after the decimal point.
    public var digits: Int { self == .nll ? 4 : 2 }

    public func value(_ record: EpochRecord) -> Double {
        switch self {
        case .top1Error: record.testTop1Error
        case .top5Error: record.testTop5Error
        case .nll: record.testNll
        case .ece: record.testEce
        case .aurc: record.testAurc
        case .eaurc: record.testEaurc
        }
    }
}

/// A reliability-diagram bin (lo, hi]: how many samples, their accuracy and mean confidence.
public struct CalibrationBin: Sendable, Equatable {
    public var lower: Double
    public var upper: Double
    public var count: Int
    public var accuracy: Double
    public var confidence: Double

    public init(lower: Double, upper: Double, count: Int, accuracy: Double, confidence: Double) {
        self.lower = lower
        self.upper = upper
        self.count = count
        self.accuracy = accuracy
        self.confidence = confidence
    }
}

/// One policy (with its parameter) and the runs of it, one per seed.
public struct PolicyGroup: Sendable {
    /// The config's `policy`: `ce`, `ls`, `pskd` (or anything else a run names).
    public let policy: String
    /// The policy with its parameter, e.g. `pskd (α_T = 0.8)`.
    public let label: String
    /// The runs, ordered by seed.
    public let runs: [RunDirectory]

    public var seeds: [UInt64] { runs.map(\.configuration.seed) }

    /// The last recorded epoch of every run.
    public var finalRecords: [EpochRecord] { runs.compactMap(\.epochs.last) }

    /// Mean ± std over the seeds of `metric` at each run's final epoch.
    public func final(_ metric: Metric) -> Summary { Summary(finalRecords.map(metric.value)) }

    /// Every run's epoch of lowest test top-1 error (the earliest of equals): the checkpoint the
    /// official PS-KD code keeps. Only epochs evaluated on as many test samples as the run's
    /// final one compete (`EpochRecord.bestTop1`; the report warns when others were left out).
    public var bestRecords: [EpochRecord] {
        runs.compactMap { EpochRecord.bestTop1(of: $0.epochs)?.best }
    }

    /// The records `choice` picks, one per run.
    public func records(_ choice: EpochChoice) -> [EpochRecord] { choice == .final ? finalRecords : bestRecords }

    /// Mean ± std over the seeds of `metric` at the epochs `choice` picks.
    public func summary(_ metric: Metric, at choice: EpochChoice) -> Summary { Summary(records(choice).map(metric.value)) }

    /// The number of distinct seeds among the runs (runs sharing a seed count once).
    public var distinctSeeds: Int { Set(seeds).count }

    /// Mean ± std over the seeds of `metric` per epoch.
    public func curve(_ metric: Metric) -> [(epoch: Int, summary: Summary)] { curve(metric.value) }

    /// Mean ± std over the seeds of `value` per epoch, each epoch over the runs that reached it:
    /// runs of different lengths show their whole curves (a summary's `count` says how many).
    public func curve(_ value: (EpochRecord) -> Double) -> [(epoch: Int, summary: Summary)] {
        let epochs = Set(runs.flatMap { $0.epochs.map(\.epoch) }).sorted()
        return epochs.map { epoch in
            (epoch, Summary(runs.compactMap { run in run.epochs.first { $0.epoch == epoch }.map(value) }))
        }
    }

    /// The final epoch's reliability bins pooled over the seeds: counts added, accuracy and
    /// confidence count-weighted. Empty when the runs' bins do not line up.
    public var pooledReliability: [CalibrationBin] {
        let binSets = finalRecords.map(\.testReliability)
        guard let first = binSets.first, !first.isEmpty,
            binSets.allSatisfy({ $0.count == first.count && zip($0, first).allSatisfy { $0.lower == $1.lower && $0.upper == $1.upper } })
        else { return [] }
        return first.indices.map { b in
            let count = binSets.reduce(0) { $0 + $1[b].count }
            let weight = Double(max(count, 1))
            return CalibrationBin(
                lower: first[b].lower, upper: first[b].upper, count: count,
                accuracy: binSets.reduce(0) { $0 + Double($1[b].count) * $1[b].accuracy } / weight,
                confidence: binSets.reduce(0) { $0 + Double($1[b].count) * $1[b].confidence } / weight)
        }
    }

    /// ECE (%) of the pooled bins.
    public var pooledECE: Double {
        let bins = pooledReliability
        let total = Double(max(bins.reduce(0) { $0 + $1.count }, 1))
        return 100 * bins.reduce(0) { $0 + Double($1.count) / total * abs($1.accuracy - $1.confidence) }
    }

    /// Mean seconds per epoch and mean training samples per second over all epochs of all runs.
    public var timing: (secondsPerEpoch: Double, samplesPerSecond: Double) {
        let records = runs.flatMap(\.epochs)
        return (Summary(records.map(\.seconds)).mean, Summary(records.map(\.samplesPerSecond)).mean)
    }
}

/// A run directory the report leaves out, and why (its error names the file and the problem).
public struct UnreadableRun: Sendable, Equatable {
    public let path: String
    public let reason: String
}

/// Which epoch of each run a table reports.
public enum EpochChoice: Sendable {
    /// The last epoch trained.
    case final
    /// The epoch of lowest test top-1 error (chosen on the test set, as the official code does:
    /// optimistic, shown alongside the final epoch).
    case bestTop1
}

/// One setting of the runs: its value when every run agrees, or every distinct value.
public struct Setting: Sendable, Equatable {
    public let name: String
    public let values: [String]
    public var varies: Bool { values.count > 1 }
}

/// What the HTML report shows: runs grouped by policy, final-epoch statistics over seeds, the
/// settings, and warnings about anything that makes the comparison unfair or incomplete.
public struct ExperimentReport: Sendable {
    public let groups: [PolicyGroup]
    public let settings: [Setting]
    public let warnings: [String]
    /// Runs left out of the report because they could not be read or have no epoch yet, each
    /// with the reason.
    public let unreadable: [UnreadableRun]
    /// Runs of the experiment that failed (`pskd report --failed`): left out, named on the page
    /// (`failureNotes`, before the warnings) and by `pskd report` on standard error.
    public let failed: [String]
    public var failureNotes: [String] { failed.map { "\($0) failed and is not in the report (its log: \($0)/train.log)." } }
    /// ECE with other bin counts (`RUN/ece-Nbins.json`), one table per bin count.
    public let extraECE: [ExtraECE]
    public var runCount: Int { groups.reduce(0) { $0 + $1.runs.count } }

    /// Settings that legitimately differ between the runs of one experiment.
    static let perRunKeys: Set<String> = [
        "policy", "seed", "alpha-t", "label-smoothing", "kd-temperature", "kd-weight", "kd-multiplier",
        "teacher-checkpoint", "out", "resume", "stop-after",
        "keep-checkpoints", "prefetch", "threads", "data-dir",
    ]

    /// Groups `runs` by policy (and its parameter). A run without any epoch joins `unreadable`
    /// (the runs that could not be read); it is an error only when no run is left to report.
    public init(runs given: [RunDirectory], unreadable: [UnreadableRun] = [], failed: [String] = []) throws {
        let runs = given.filter { !$0.epochs.isEmpty }
        let unreadable =
            unreadable
            + given.filter(\.epochs.isEmpty).map {
                UnreadableRun(path: $0.path, reason: "\($0.path)/metrics.jsonl has no epoch yet: the run has not finished an epoch")
            }
        guard !runs.isEmpty else {
            if !failed.isEmpty && unreadable.isEmpty {
                throw ReportError("every run failed (\(failed.joined(separator: ", "))): no report")
            }
            guard !unreadable.isEmpty else { throw ReportError("no run directories given") }
            throw ReportError(
                (unreadable.count == 1 ? "" : "none of the \(unreadable.count) runs can be reported: ")
                    + unreadable.map(\.reason).joined(separator: "; "))
        }
        self.unreadable = unreadable
        self.failed = failed
        var byLabel: [String: [RunDirectory]] = [:]
        for run in runs { byLabel[Self.label(run.configuration), default: []].append(run) }
        groups = byLabel.map { label, runs in
            PolicyGroup(
                policy: runs[0].configuration.policy, label: label,
                runs: runs.sorted { ($0.configuration.seed, $0.path) < ($1.configuration.seed, $1.path) })
        }.sorted { (Self.policyRank($0.policy), $0.label) < (Self.policyRank($1.policy), $1.label) }
        settings = Self.settings(of: runs)

        var warnings = unreadable.map { "\($0.path) is not in the report: \($0.reason)" }
        for setting in settings where setting.varies && setting.name != "ranks" {
            warnings.append(
                "Runs differ in \(setting.name) (\(setting.values.joined(separator: ", "))): "
                    + "the policies are not compared on the same budget.")
        }
        for group in groups {
            let seeds = group.seeds
            if Set(seeds).count < seeds.count {
                warnings.append("\(group.label): several runs share a seed (\(seeds.map(String.init).joined(separator: ", "))).")
            }
            if group.runs.count < 2 {
                warnings.append("\(group.label): one seed only, so no standard deviation.")
            }
            for run in group.runs where run.epochs.count < run.configuration.epochs {
                warnings.append(
                    "\(run.path) has \(run.epochs.count) of \(run.configuration.epochs) epochs: "
                        + "its last recorded epoch counts as final.")
            }
            for run in group.runs {
                if let final = run.epochs.last, let leftOut = EpochRecord.bestTop1(of: run.epochs)?.leftOut, !leftOut.isEmpty {
                    warnings.append("\(run.path): " + EpochRecord.describeLeftOut(leftOut, final: final) + ".")
                }
            }
            if !group.finalRecords.isEmpty && group.pooledReliability.isEmpty {
                warnings.append("\(group.label): the runs' reliability bins differ, so no pooled diagram.")
            }
        }
        let extra = ExtraECE.tables(of: groups)
        extraECE = extra.tables
        self.warnings = warnings + extra.warnings
    }

    /// Reads every run directory, then groups those that could be read; the others are listed
    /// in `unreadable` with the reason. Throws only when no run can be reported.
    public init(paths: [String], failed: [String] = []) throws {
        var runs: [RunDirectory] = [], unreadable: [UnreadableRun] = []
        for path in paths {
            do {
                runs.append(try RunDirectory(path: path))
            } catch {
                unreadable.append(UnreadableRun(path: path, reason: "\(error)"))
            }
        }
        try self.init(runs: runs, unreadable: unreadable, failed: failed)
    }

    /// The policies in `TrainingPolicies.all`'s order (the baselines before the method), unknown ones after.
    static func policyRank(_ policy: String) -> Int {
        TrainingPolicies.names.firstIndex(of: policy) ?? TrainingPolicies.names.count
    }

    /// The policy and the settings that change it (`TrainingPolicy.label`).
    static func label(_ config: TrainConfig) -> String {
        TrainingPolicies.named(config.policy)?.label(config) ?? config.policy
    }

    /// The shared settings (in a reading order), each with the distinct values the runs have.
    static func settings(of runs: [RunDirectory]) -> [Setting] {
        let dictionaries = runs.map(displayValues)
        var names: [String] = []
        for dictionary in dictionaries {
            for (name, _) in dictionary where !names.contains(name) { names.append(name) }
        }
        var settings = names.map { name in
            var values: [String] = []
            for dictionary in dictionaries {
                let value = dictionary.first { $0.0 == name }?.1 ?? "–"
                if !values.contains(value) { values.append(value) }
            }
            return Setting(name: name, values: values)
        }
        // A run resumed on another rank count shows each ("2, then 4"); rows from before pskd recorded it say so.
        let rankCounts = runs.map { $0.rankCounts.map { $0.map(String.init) ?? "not recorded" }.joined(separator: ", then ") }
        settings.append(Setting(name: "ranks", values: rankCounts.reduce(into: []) { if !$0.contains($1) { $0.append($1) } }))
        return settings
    }

    /// A run's settings as (name, text), in reading order, defaults spelled out; the per-run
    /// ones (policy, seed, output, …) left out.
    static func displayValues(_ run: RunDirectory) -> [(String, String)] {
        let c = run.configuration
        let augmentation = (try? DatasetSpec.named(c.dataset))?.standardAugmentation ?? .none
        var values: [(String, String)] = [
            (
                "model",
                Self.scalesWidth(c.model) && c.widthMultiplier != 1
                    ? "\(c.model) (width × \(number(c.widthMultiplier)))" : c.model
            ),
            ("dataset", c.dataset),
            ("training samples", c.maxTrainSamples.map { "first \($0)" } ?? "all"),
            ("test samples", c.maxTestSamples.map { "first \($0)" } ?? "all"),
            ("epochs", String(c.epochs)),
            ("global batch size", String(c.batchSize) + (c.dropLast ? " (drop last)" : "")),
            (
                "optimizer",
                c.optimizer == .sgd
                    ? "SGD, momentum \(number(c.momentum))\(c.nesterov ? ", Nesterov" : "")" : c.optimizer.rawValue
            ),
            ("weight decay", "\(number(c.weightDecay)) (\(c.weightDecayStyle))"),
            ("learning rate", number(c.learningRate)),
            (
                "lr schedule",
                c.learningRateSchedule.rawValue
                    + (c.learningRateSchedule == .step
                        ? " (×0.1 after epochs \(c.milestones.map(String.init).joined(separator: ", ")))" : "")
                    + (c.warmupEpochs > 0 ? ", \(c.warmupEpochs) warm-up epochs" : "")
            ),
            ("random crop padding", String(c.cropPadding ?? augmentation.cropPadding)),
            ("horizontal flip", (c.horizontalFlip ?? augmentation.horizontalFlip) ? "on" : "off"),
            ("CutMix probability", number(c.cutMixProbability)),
            ("training label noise", c.labelNoise.map { $0 > 0 ? "\(number($0 * 100)) % symmetric" : "none" } ?? "none"),
            ("ECE bins", String(c.eceBins)),
        ]
        if !Self.scalesWidth(c.model) && c.widthMultiplier != 1 {
            values.append(("width multiplier", number(c.widthMultiplier)))
        }
        return values
    }

    /// Whether `--width-multiplier` scales `model` (the PreAct and torchvision ResNets), so the
    /// multiplier is shown with the model's name rather than as a setting of its own.
    static func scalesWidth(_ model: String) -> Bool {
        model.hasPrefix("preact-resnet18") || model.hasPrefix("resnet")
    }

    /// A compact decimal rendering: 0.1, 5e-04 → 0.0005, 200.
    static func number(_ value: Double) -> String { PolicyLabel.number(value) }

    /// The table of the epochs `choice` picks (default the final one) as Markdown (mean ± std
    /// over seeds), for a README.
    public func markdownTable(at choice: EpochChoice = .final) -> String {
        var lines = [
            "| policy | seeds | " + Metric.allCases.map(\.title).joined(separator: " | ") + " |",
            "|---|---|" + String(repeating: "---|", count: Metric.allCases.count),
        ]
        for group in groups {
            let cells = Metric.allCases.map { Self.format(group.summary($0, at: choice), digits: $0.digits) }
            lines.append("| \(group.label) | \(group.distinctSeeds) | " + cells.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n")
    }

    /// The baseline of the comparisons: the `ce` group, if there is one.
    public var baseline: PolicyGroup? { groups.first { $0.policy == "ce" } }

    /// `group`'s final mean minus the baseline's, per metric (negative: better than the baseline),
    /// and whether that difference is within the seeds' spread (no larger than the larger of the
    /// two standard deviations).
    public func difference(_ group: PolicyGroup, to baseline: PolicyGroup) -> [(metric: Metric, delta: Double, withinSpread: Bool)] {
        Metric.allCases.map { metric in
            let a = group.final(metric), b = baseline.final(metric)
            let delta = a.mean - b.mean
            return (metric, delta, abs(delta) <= max(a.standardDeviation, b.standardDeviation))
        }
    }

    /// The differences to `ce` as Markdown, "≈" marking those within the seeds' spread.
    public func markdownDifferences() -> String? {
        guard let baseline, groups.count > 1 else { return nil }
        var lines = [
            "| policy − ce | " + Metric.allCases.map(\.title).joined(separator: " | ") + " |",
            "|---|" + String(repeating: "---|", count: Metric.allCases.count),
        ]
        for group in groups where group.label != baseline.label {
            let cells = difference(group, to: baseline).map {
                Self.signed($0.delta, digits: $0.metric.digits) + ($0.withinSpread ? " ≈" : "")
            }
            lines.append("| \(group.label) | " + cells.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n")
    }

    /// `+1.23` / `−0.45` (a real minus sign).
    public static func signed(_ value: Double, digits: Int) -> String {
        let text = String(format: "%.\(digits)f", abs(value))
        return (value < 0 && Double(text) != 0 ? "−" : "+") + text
    }

    /// `mean ± std` with `digits` decimals.
    public static func format(_ summary: Summary, digits: Int) -> String {
        let mean = String(format: "%.\(digits)f", summary.mean)
        return summary.count > 1 ? mean + " ± " + String(format: "%.\(digits)f", summary.standardDeviation) : mean
    }
}
