import Foundation

/// A value of a recipe file: text (a YAML scalar as written), a list, or a mapping (keys in file order).
public indirect enum RecipeValue: Sendable {
    case text(String)
    case list([RecipeValue])
    case mapping([RecipeEntry])

    /// What an error calls it.
    var kind: String {
        switch self {
        case .text(let text): "the value '\(text.prefix(60))'"
        case .list: "a list"
        case .mapping: "a mapping"
        }
    }
}

/// One key of a recipe mapping and its value.
public struct RecipeEntry: Sendable {
    public var key: String
    public var value: RecipeValue
    public init(_ key: String, _ value: RecipeValue) {
        self.key = key
        self.value = value
    }
}

/// A `pskd train` setting as a flag takes it: its name and its value as text.
public struct FlagSetting: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// An experiment of `launch/experiment.sh`, read from `launch/recipes/NAME.yaml`: a `train:`
/// section, which is a `pskd train --config` file as it stands (settings named like the flags,
/// in the order the runs' command lines give them), and an `experiment:` section with what only
/// the experiment needs: the policies and seeds, settings that differ per policy (`{run:ce}`
/// stands for the same seed's ce run directory), another ECE bin count to evaluate, the data
/// files `--data-dir` must hold, and the data set's sizes for the time estimate.
public struct ExperimentRecipe: Sendable {
    public var name: String
    /// The `train:` section: the settings every run shares, in file order.
    public var train: [FlagSetting]
    public var policies: [String]
    public var seeds: [UInt64]
    /// Settings added to one policy's runs (after `--policy P`), values with `{run:P}` placeholders.
    public var policySettings: [String: [FlagSetting]]
    /// Each finished run is evaluated with this many ECE bins as well (`pskd evaluate --ece-bins`).
    public var alsoECEBins: Int?
    /// The files `--data-dir` must hold (checked before anything starts); empty: pskd's default location.
    public var dataFiles: [String]
    /// A step schedule's milestones are scaled with `--epochs` (fashion-mnist-full: at 50 % and 75 %).
    public var milestonesFollowEpochs: Bool
    /// The data set's training and test images (for the summary and the estimate).
    public var trainingImages: Int
    public var testImages: Int

    /// The keys of the `experiment:` section.
    public static let experimentKeys = [
        "policies", "seeds", "policy-settings", "also-ece-bins", "data-files", "milestones-follow-epochs", "training-images",
        "test-images",
    ]
    /// Train settings an experiment sets per run, so a recipe's `train:` section may not.
    public static let perRunKeys = ["policy", "seed", "out", "resume", "overwrite", "data-dir"]

    /// Reads a recipe from its top-level mapping; `source` names the file in errors.
    public init(name: String, document: [RecipeEntry], source: String) throws {
        self.name = name
        func fail(_ message: String) -> ReportError { ReportError("\(source): \(message)") }
        try Self.refuseUnknown(document.map(\.key), known: ["experiment", "train"], in: "the top level", source: source)
        guard case .mapping(let trainSection)? = document.first(where: { $0.key == "train" })?.value else {
            throw fail("no 'train:' mapping of pskd train settings (keys named like the flags, e.g. 'epochs: 30')")
        }
        guard case .mapping(let experiment)? = document.first(where: { $0.key == "experiment" })?.value else {
            throw fail("no 'experiment:' mapping (policies, seeds, …)")
        }
        train = try trainSection.map { entry in
            guard !Self.perRunKeys.contains(entry.key) else {
                throw fail("train: '\(entry.key)' is set by the experiment for each run (or not at all): remove it")
            }
            return FlagSetting(entry.key, try Self.flagText(entry.value, key: "train: \(entry.key)", source: source))
        }
        for required in ["dataset", "model", "epochs", "batch-size"] where !train.contains(where: { $0.name == required }) {
            throw fail("train: '\(required)' is missing (the summary and the estimate need it)")
        }
        try Self.refuseUnknown(experiment.map(\.key), known: Self.experimentKeys, in: "experiment", source: source)
        func value(_ key: String) -> RecipeValue? { experiment.first { $0.key == key }?.value }
        func words(_ key: String) throws -> [String] {
            switch value(key) {
            case nil: return []
            case .text(let text)?: return text.split(separator: " ").map(String.init)
            case .list(let items)?: return try items.map { try Self.flagText($0, key: "experiment: \(key)", source: source) }
            case .mapping?: throw fail("experiment: '\(key)' must be a list, found a mapping")
            }
        }
        func integer(_ key: String, default standard: Int?) throws -> Int? {
            guard let entry = value(key) else { return standard }
            guard case .text(let text) = entry, let number = Int(text), number > 0 else {
                throw fail("experiment: '\(key)' must be a whole number of at least 1, found \(entry.kind)")
            }
            return number
        }
        policies = try words("policies")
        guard !policies.isEmpty else { throw fail("experiment: 'policies' is missing or empty") }
        seeds = try words("seeds").map { word in
            guard let seed = UInt64(word) else { throw fail("experiment: 'seeds' must hold whole numbers, found '\(word)'") }
            return seed
        }
        if seeds.isEmpty { seeds = [1, 2, 3] }
        alsoECEBins = try integer("also-ece-bins", default: nil)
        dataFiles = try words("data-files")
        switch value("milestones-follow-epochs") {
        case nil: milestonesFollowEpochs = false
        case .text("true")?: milestonesFollowEpochs = true
        case .text("false")?: milestonesFollowEpochs = false
        case let other?: throw fail("experiment: 'milestones-follow-epochs' must be true or false, found \(other.kind)")
        }
        trainingImages = try integer("training-images", default: nil) ?? 0
        testImages = try integer("test-images", default: nil) ?? 0
        guard trainingImages > 0, testImages > 0 else {
            throw fail("experiment: 'training-images' and 'test-images' (the data set's sizes) are needed")
        }
        var perPolicy: [String: [FlagSetting]] = [:]
        switch value("policy-settings") {
        case nil: break
        case .mapping(let entries)?:
            for entry in entries {
                guard case .mapping(let settings) = entry.value else {
                    throw fail("experiment: policy-settings: '\(entry.key)' must map settings to values, found \(entry.value.kind)")
                }
                perPolicy[entry.key] = try settings.map {
                    FlagSetting($0.key, try Self.flagText($0.value, key: "policy-settings: \(entry.key): \($0.key)", source: source))
                }
            }
        case let other?: throw fail("experiment: 'policy-settings' must map policies to settings, found \(other.kind)")
        }
        policySettings = perPolicy
    }

    /// A scalar as it is written; a list of scalars joined with commas (`milestones: [150, 225]` → `150,225`).
    static func flagText(_ value: RecipeValue, key: String, source: String) throws -> String {
        switch value {
        case .text(let text): return text
        case .list(let items):
            return try items.map {
                guard case .text(let text) = $0 else { throw ReportError("\(source): \(key): a list of plain values, found \($0.kind)") }
                return text
            }.joined(separator: ",")
        case .mapping: throw ReportError("\(source): \(key) must be a value or a list, found a mapping")
        }
    }

    /// Refuses a key outside `known`, naming the nearest known one.
    static func refuseUnknown(_ keys: [String], known: [String], in part: String, source: String) throws {
        for key in keys where !known.contains(key) {
            let nearest = known.min { editDistance(key, $0) < editDistance(key, $1) } ?? ""
            throw ReportError(
                "\(source): \(part): unknown key '\(key.prefix(60))' (did you mean '\(nearest)'? known: \(known.joined(separator: ", ")))")
        }
    }

    /// Levenshtein distance, for "did you mean".
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in stride(from: 1, through: b.count, by: 1) {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return a.isEmpty ? b.count : previous[b.count]
    }

    /// The value of a train setting, if the recipe sets it.
    public func setting(_ name: String) -> String? { train.last { $0.name == name }?.value }
}

/// What `launch/experiment.sh` changes in a recipe with its own flags.
public struct RecipeOverrides: Sendable {
    public var policies: [String]?
    public var seeds: [UInt64]?
    public var epochs: Int?
    /// nil: the recipe's; `.some(nil)`: all the training images.
    public var trainSamples: Int??
    public var model: String?
    public init(policies: [String]? = nil, seeds: [UInt64]? = nil, epochs: Int? = nil, trainSamples: Int?? = nil, model: String? = nil) {
        self.policies = policies
        self.seeds = seeds
        self.epochs = epochs
        self.trainSamples = trainSamples
        self.model = model
    }
}

/// One run of an experiment: its policy, seed, directory and `pskd train` arguments.
public struct PlannedRun: Sendable, Equatable {
    public var policy: String
    public var seed: UInt64
    public var directory: String
    public var trainArguments: [String]
}

/// The runs of a recipe with the flags of `launch/experiment.sh` applied, in order.
public struct ExperimentPlan: Sendable {
    public let recipe: ExperimentRecipe
    /// The shared settings after the overrides, in the recipe's order.
    public let train: [FlagSetting]
    /// The policies in run order: ce first (the baseline), then each policy after the runs its
    /// settings read (`{run:P}`), otherwise as listed; each once.
    public let policies: [String]
    public let seeds: [UInt64]
    public let out: String
    /// `--data-dir DIR` of the experiment (not part of `plan.txt`: a resumed run may read its data elsewhere).
    public let dataArguments: [String]
    /// The flags after `--`, given to every run after the recipe's (so they override them).
    public let extra: [String]
    public let ranks: Int

    public init(
        recipe: ExperimentRecipe, overrides: RecipeOverrides, out: String, dataDirectory: String?, extra: [String], ranks: Int
    ) throws {
        self.recipe = recipe
        self.out = out
        self.extra = extra
        self.ranks = ranks
        var train = recipe.train
        func set(_ name: String, _ value: String?) {
            if let index = train.firstIndex(where: { $0.name == name }) {
                if let value { train[index].value = value } else { train.remove(at: index) }
            } else if let value {
                train.append(FlagSetting(name, value))
            }
        }
        if let epochs = overrides.epochs {
            let old = Int(recipe.setting("epochs") ?? "") ?? epochs
            if recipe.milestonesFollowEpochs, let milestones = recipe.setting("milestones"), old > 0 {
                let scaled = milestones.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
                    .map { String($0 * epochs / old) }
                set("milestones", scaled.joined(separator: ","))
            }
            set("epochs", String(epochs))
        }
        if let samples = overrides.trainSamples { set("max-train-samples", samples.map(String.init)) }
        if let model = overrides.model { set("model", model) }
        self.train = train
        seeds = overrides.seeds ?? recipe.seeds
        guard !seeds.isEmpty else { throw ReportError("no seeds to run (--seeds is empty)") }

        var listed: [String] = []
        for policy in overrides.policies ?? recipe.policies {
            guard policy.range(of: #"^[a-z0-9][a-z0-9-]*$"#, options: .regularExpression) != nil else {
                throw ReportError("'\(policy)' is not a policy name (lower-case letters, digits and -)")
            }
            if !listed.contains(policy) { listed.append(policy) }
        }
        guard !listed.isEmpty else { throw ReportError("no policies to run (--policies is empty)") }
        var ordered: [String] = listed.contains("ce") ? ["ce"] : []
        func place(_ policy: String) throws {
            guard !ordered.contains(policy) else { return }
            for (setting, reads) in recipe.reads(policy) where !ordered.contains(reads) {
                guard listed.contains(reads) else {
                    throw ReportError(
                        "the policy \(policy) reads the same seed's \(reads) run (--\(setting.name) \(setting.value.replacingOccurrences(of: "{run:\(reads)}", with: "OUT/\(reads)-seedS"))), "
                            + "but the policies (\(listed.joined(separator: " "))) do not include \(reads): add \(reads)")
                }
                try place(reads)
            }
            ordered.append(policy)
        }
        for policy in listed { try place(policy) }
        policies = ordered
        if let dataDirectory {
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: dataDirectory, isDirectory: &isDirectory) && isDirectory.boolValue
            dataArguments = ["--data-dir", exists ? URL(fileURLWithPath: dataDirectory).standardizedFileURL.path : dataDirectory]
        } else {
            dataArguments = []
        }
    }

    /// The shared settings as flags.
    public var commonArguments: [String] { train.flatMap { ["--" + $0.name, $0.value] } }

    public func value(_ name: String) -> String? { train.last { $0.name == name }?.value }

    /// The runs, seed by seed, each seed's policies in order.
    public var runs: [PlannedRun] {
        seeds.flatMap { seed in
            policies.map { policy in
                let directory = runDirectory(policy, seed)
                let more = (recipe.policySettings[policy] ?? []).flatMap { setting -> [String] in
                    var value = setting.value
                    for (_, other) in recipe.reads(policy) {
                        value = value.replacingOccurrences(of: "{run:\(other)}", with: runDirectory(other, seed))
                    }
                    return ["--" + setting.name, value]
                }
                return PlannedRun(
                    policy: policy, seed: seed, directory: directory,
                    trainArguments: commonArguments + dataArguments + extra + ["--policy", policy] + more
                        + ["--seed", String(seed), "--out", directory, "--resume"])
            }
        }
    }

    public func runDirectory(_ policy: String, _ seed: UInt64) -> String {
        (out as NSString).appendingPathComponent("\(policy)-seed\(seed)")
    }

    /// `RUN/ece-NNbins.json`, where the evaluation with the recipe's other bin count goes.
    public func eceFile(_ run: String) -> String? {
        recipe.alsoECEBins.map { (run as NSString).appendingPathComponent("ece-\($0)bins.json") }
    }

    /// The text of `plan.txt`: a folder continued with other settings is refused. Spelt as the
    /// bash script of before spelt it, so existing experiment folders stay valid.
    public var planText: String {
        "pskd train \(commonArguments.joined(separator: " ")) \(extra.joined(separator: " ")) --policy P --seed S; ranks \(ranks)"
    }

    /// The number of training images a run reads.
    public var trainingImages: Int {
        value("max-train-samples").flatMap { Int($0) }.map { min($0, recipe.trainingImages) } ?? recipe.trainingImages
    }

    /// The lines that open the experiment's output.
    public var summary: String {
        let model = value("model") ?? "?", dataset = value("dataset") ?? "?", epochs = value("epochs") ?? "?"
        var lines = [
            "experiment: recipe \(recipe.name): \(policies.joined(separator: " ")) × seeds \(seeds.map(String.init).joined(separator: " ")) = "
                + "\(runs.count) runs of \(model) on \(dataset), \(epochs) epochs,",
            "            \(trainingImages) training images (all \(recipe.testImages) test images), \(ranks) ranks each, into \(out)",
            "            every run: pskd train \(Shell.quoted(commonArguments + dataArguments + extra)) --policy P --seed S",
        ]
        if let bins = recipe.alsoECEBins {
            lines.append(
                "            and, on each finished run, pskd evaluate --ece-bins \(bins) (ECE with \(bins) bins as well as \(value("ece-bins") ?? "15"))"
            )
        }
        return lines.joined(separator: "\n")
    }

    /// The data files the recipe needs that are missing, with the message to print; nil when
    /// there is nothing to check or nothing is missing. The folder is the last `--data-dir` of
    /// the flags after `--`, else the experiment's.
    public func missingDataMessage() -> String? {
        guard !recipe.dataFiles.isEmpty else { return nil }
        var folder = dataArguments.last
        for (index, word) in extra.enumerated() {
            if word == "--data-dir" { folder = index + 1 < extra.count ? extra[index + 1] : "" }
            if word.hasPrefix("--data-dir=") { folder = String(word.dropFirst("--data-dir=".count)) }
        }
        let missing = recipe.dataFiles.filter { name in
            guard let folder, !folder.isEmpty else { return true }
            return FileManager.default.isReadableFile(atPath: (folder as NSString).appendingPathComponent(name))
                == false
        }
        guard !missing.isEmpty else { return nil }
        let dataset = value("dataset") ?? "the data set"
        var lines = ["the recipe \(recipe.name) reads \(dataset) from --data-dir DIR with \(recipe.dataFiles.joined(separator: " and "));"]
        if let folder, !folder.isEmpty {
            lines.append("  missing in \(folder): \(missing.joined(separator: " "))")
        } else {
            lines.append("  no --data-dir was given")
        }
        if dataset == "cifar100" {
            lines.append("  (cifar-100-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html unpacks to a folder with them)")
        }
        return lines.joined(separator: "\n")
    }
}

extension ExperimentRecipe {
    /// The runs `policy`'s settings read (`{run:P}`), as (setting, P).
    func reads(_ policy: String) -> [(setting: FlagSetting, policy: String)] {
        (policySettings[policy] ?? []).flatMap { setting in
            setting.value.components(separatedBy: "{run:").dropFirst().compactMap { rest in
                rest.firstIndex(of: "}").map { (setting, String(rest[..<$0])) }
            }
        }
    }
}

/// Command lines as a shell reads them back.
public enum Shell {
    /// Words joined by spaces, those with characters a shell would read quoted in single quotes.
    public static func quoted(_ words: [String]) -> String {
        words.map { word in
            word.range(of: #"^[A-Za-z0-9_./:=,+@%-]+$"#, options: .regularExpression) != nil
                ? word : "'" + word.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
        }.joined(separator: " ")
    }
}
