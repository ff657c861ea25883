import DataPipeline
import Foundation
import Models

/// One setting of `pskd train`, declared once: its name (the flag `--name`, the key of
/// `--config` files and of `config.json`), what it means and its default, its valid range, and
/// how it reads and writes a `TrainConfig`. The command line, config files, range validation,
/// `--help` and the table-driven tests all take the settings from `TrainSetting.all`.
public struct TrainSetting: Sendable {
    /// How a value is written on the command line and in config files.
    public enum Kind: Sendable {
        /// A whole number, a number, text, `true`/`false`, or a comma-separated list of whole
        /// numbers or of numbers.
        case integer, number, text, boolean, integerList, numberList
        /// A command-line switch (`--drop-last`), `true`/`false` in files.
        case toggle
    }

    public let name: String
    public let kind: Kind
    /// What it means and its default, for `--help`.
    public let help: String
    /// The valid values in words ("1...100000", "[0, 1)"), shown in `--help` and in refusals;
    /// nil when every value of the kind is valid.
    public let range: String?
    /// The values a choice setting takes (`--policy`'s policy names), nil for the others: listed
    /// by `--help` and completed by the shell.
    public let choices: [String]?
    /// Whether the value is a path (completed as one by the shell).
    public let isPath: Bool
    /// Writes a value of the kind (a config file's or the command line's); false when the value
    /// is not of the kind.
    let write: @Sendable (inout TrainConfig, Any) -> Bool
    /// Whether the current value is in range.
    let isValid: @Sendable (TrainConfig) -> Bool
    /// The current value as text, for refusals.
    public let read: @Sendable (TrainConfig) -> String

    /// What a value must be, in words, for refusals: "a whole number", ….
    public let expected: String

    init(
        name: String, kind: Kind, help: String, range: String?, expected: String? = nil, choices: [String]? = nil,
        isPath: Bool = false, write: @escaping @Sendable (inout TrainConfig, Any) -> Bool,
        isValid: @escaping @Sendable (TrainConfig) -> Bool,
        read: @escaping @Sendable (TrainConfig) -> String
    ) {
        (self.name, self.kind, self.help, self.range) = (name, kind, help, range)
        (self.choices, self.isPath) = (choices, isPath)
        (self.write, self.isValid, self.read) = (write, isValid, read)
        self.expected =
            expected
            ?? {
                switch kind {
                case .integer: "a whole number"
                case .number: "a number"
                case .text: "text"
                case .boolean, .toggle: "true or false"
                case .integerList: "a list of whole numbers"
                case .numberList: "a list of numbers"
                }
            }()
    }

    /// The longest text value a setting takes, from any source (4096 characters: Linux's
    /// `PATH_MAX`, so any path fits).
    public static let maxValueCharacters = 4096

    /// `text` for messages: whole and quoted when it is at most `limit` characters, otherwise its
    /// first `limit` characters and its length (`'aaaa…' (50000000 characters)`), so a long value
    /// never floods a message.
    /// (`quoted: false` leaves out the quotes, for JSON text that has its own.)
    public static func excerpt(_ text: String, limit: Int = 60, quoted: Bool = true) -> String {
        var count = 0
        var end = text.startIndex
        while end < text.endIndex, count <= limit {
            end = text.index(after: end)
            count += 1
        }
        let quote = quoted ? "'" : ""
        guard count > limit else { return quote + text + quote }
        return "\(quote)\(text.prefix(limit))…\(quote) (\(text.count) characters)"
    }

    /// The setting named `name` (with `_` read as `-`), or nil.
    public static func named(_ name: String) -> TrainSetting? {
        let key = name.replacingOccurrences(of: "_", with: "-")
        return all.first { $0.name == key }
    }

    /// `config`'s settings by name as JSON values (unset ones absent), except `excluding`, in
    /// `TrainConfig`'s `Codable` coding (config.json's and the checkpoints'): what the start-up
    /// handshake and `--resume` compare. A number that JSON cannot hold is written as text ("nan").
    public static func values(of config: TrainConfig, excluding: Set<String> = []) -> [String: Any] {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        guard let data = try? encoder.encode(config), var values = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { preconditionFailure("TrainConfig encodes as a JSON object") }
        for key in excluding { values[key] = nil }
        return values
    }

    /// Throws a `ConfigurationError` naming the first setting of `config` outside its range.
    static func checkRanges(_ config: TrainConfig) throws {
        for setting in all where !setting.isValid(config) { throw rangeError(setting, config) }
    }

    /// Checks one value of the setting `name` against the table's range, for the other commands
    /// that take the same setting (`pskd info --threads`, `pskd evaluate --ece-bins`, `pskd bench
    /// --model`): throws "threads must be 1...1024, got 0", the words `pskd train` refuses it with.
    public static func check(_ name: String, _ value: Any) throws {
        guard let setting = named(name) else { preconditionFailure("\(name) is not a setting of TrainSetting.all") }
        var config = TrainConfig()
        guard setting.write(&config, value) else {
            throw ConfigurationError("\(name) must be \(setting.expected), got \(excerpt("\(value)"))")
        }
        guard setting.isValid(config) else { throw rangeError(setting, config) }
    }

    /// "epochs must be 1...100000, got 0": how every command refuses a value out of range.
    private static func rangeError(_ setting: TrainSetting, _ config: TrainConfig) -> ConfigurationError {
        ConfigurationError("\(setting.name) must be \(setting.range ?? setting.expected), got \(setting.read(config))")
    }

    /// The setting whose name is nearest to `name` (`_` read as `-`, case ignored) by edit
    /// distance, the first of the table's order on a tie: what a misspelt key most likely meant.
    public static func nearest(to name: String) -> String {
        let key = Array(name.prefix(200).replacingOccurrences(of: "_", with: "-").lowercased())
        let distances = all.map { (name: $0.name, distance: editDistance(key, Array($0.name))) }
        return distances.min { $0.distance < $1.distance }!.name
    }

    /// Levenshtein distance: the fewest insertions, deletions and substitutions from `a` to `b`.
    public static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: b.count)
            for (j, y) in b.enumerated() {
                current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }

    /// Throws if a file names a setting twice (`batch_size` and `batch-size`). (On a command
    /// line a later flag overrides an earlier one, as scripts expect.)
    public static func refuseRepeats(_ keys: [String], source: String) throws {
        let spellings = Dictionary(grouping: keys) { $0.replacingOccurrences(of: "_", with: "-") }
        if let (key, both) = spellings.sorted(by: { $0.key < $1.key }).first(where: { $0.value.count > 1 }) {
            throw ConfigurationError(
                "\(source): setting '\(key)' is given \(both.count) times (\(both.sorted().joined(separator: ", "))): keep one")
        }
    }

    /// Settings that only the command line may give: whether this job continues or replaces the
    /// run in `--out` is decided each time a job is started, never by a file that may be reused
    /// for other runs (an `overwrite: true` in a shared file replaced runs silently).
    public static let commandLineOnly: Set<String> = ["resume", "overwrite"]

    /// Throws, naming the first of `keys` (a config file's, read from `source`) that is in
    /// `commandLineOnly`.
    public static func refuseCommandLineOnly(_ keys: [String], source: String) throws {
        for key in keys.sorted() {
            guard let setting = named(key), commandLineOnly.contains(setting.name) else { continue }
            throw ConfigurationError(
                "\(source): setting '\(key)' is a command-line switch only (whether a job continues or replaces a run "
                    + "is decided each time, not by a file): remove it from the file and give --\(setting.name) on the command line")
        }
    }

    /// The settings that some policy reads (the union of `TrainingPolicy.settingNames`): each
    /// of them is given only with a policy that reads it.
    public static var policySettings: Set<String> { Set(TrainingPolicies.all.flatMap { $0.settingNames }) }

    /// Throws when one of `given` (setting name → where it was given: a file, "command line")
    /// is a policy's setting that `config.policy` does not read, and its value differs from the
    /// default (a default, such as a saved config.json's `alpha-t: 0.8`, changes nothing),
    /// naming the setting, the policy and the policies that read it.
    public static func refuseUnread(_ given: [String: String], by config: TrainConfig) throws {
        guard let policy = TrainingPolicies.named(config.policy) else { return }  // the range check names it
        let (values, defaults) = (values(of: config), values(of: TrainConfig()))
        for (key, source) in given.sorted(by: { $0.key < $1.key }) {
            guard let name = named(key)?.name, policySettings.contains(name), !policy.settingNames.contains(name) else { continue }
            let value = values[name].map { "\($0)" }, standard = defaults[name].map { "\($0)" }
            guard value != standard else { continue }
            let readers = TrainingPolicies.all.filter { $0.settingNames.contains(name) }.map { $0.name }
            throw ConfigurationError(
                "\(source): setting '\(name)' is not read by policy \(config.policy), so it would be ignored; "
                    + "\(readers.joined(separator: ", ")) \(readers.count == 1 ? "reads" : "read") it: drop '\(name)', "
                    + "or choose \(readers.count == 1 ? "that policy" : "one of those policies")")
        }
    }

    /// Applies `values` (setting name → a value of its kind) in order; `source` names where they
    /// came from.
    public static func apply(_ values: [(key: String, value: Any)], to config: inout TrainConfig, source: String) throws {
        for (key, value) in values {
            guard let setting = named(key) else {
                throw ConfigurationError(
                    "\(source): unknown setting \(excerpt(key)); did you mean '\(nearest(to: key))'? "
                        + "Known settings: \(all.map(\.name).joined(separator: ", "))")
            }
            if let text = value as? String, text.count > maxValueCharacters {
                throw ConfigurationError(
                    "\(source): setting '\(setting.name)' is \(excerpt(text)), longer than the limit of \(maxValueCharacters) characters: "
                        + "give a shorter value")
            }
            guard setting.write(&config, value) else {
                throw ConfigurationError("\(source): setting '\(key)' must be \(setting.expected), found \(excerpt("\(value)"))")
            }
        }
    }

    /// The name of the setting's value in `--help` (`--epochs <integer>`).
    public var valueName: String {
        if choices != nil { return name }
        if isPath { return "path" }
        switch kind {
        case .integer: return "integer"
        case .number: return "number"
        case .text: return "text"
        case .boolean, .toggle: return "true|false"
        case .integerList: return "integer,…"
        case .numberList: return "number,…"
        }
    }

    /// What `--help` says of the setting: its meaning and default, then its range (a choice
    /// setting's values are listed by the command line's own help).
    public var helpText: String {
        help + (choices == nil ? range.map { " Range: \($0)." } ?? "" : "")
    }
}

// MARK: - The table

extension TrainSetting {
    /// Every setting of `pskd train`, in the order `--help` lists them.
    public static let all: [TrainSetting] = [
        text("model", \.model, "The network (default cnn).", choices: ModelZoo.names),
        number(
            "width-multiplier", \.widthMultiplier,
            "Channel width multiplier of preact-resnet18, preact-resnet18-he and the resnetNN models (default 1).",
            range: "0.0625...16 (at least 4 channels in the narrowest layer)"
        ) { (0.0625...16).contains($0) },
        text("dataset", \.dataset, "The data set (default fashion-mnist).", choices: DatasetSpec.names),
        optionalInteger(
            "synthetic-samples", \.syntheticSamples, "Training samples N of --dataset synthetic (default 60000).",
            range: "1...100000000"
        ) { (1...100_000_000).contains($0) },
        optionalInteger(
            "synthetic-test-samples", \.syntheticTestSamples, "Test samples of --dataset synthetic (default 10000).",
            range: "1...100000000"
        ) { (1...100_000_000).contains($0) },
        optionalInteger(
            "synthetic-classes", \.syntheticClasses, "Classes C of --dataset synthetic (default 10).",
            range: "2...100000"
        ) { (2...100_000).contains($0) },
        optionalInteger(
            "synthetic-features", \.syntheticFeatures,
            "Features D per sample of --dataset synthetic, stored as one byte each (default 64).",
            range: "1...65536"
        ) { (1...65_536).contains($0) },
        optionalText(
            "data-dir", \.dataDirectory, "Directory of the data set's files (default: Debian's for Fashion-MNIST).", isPath: true),
        optionalInteger(
            "max-train-samples", \.maxTrainSamples, "Train on the first K samples only (default all).",
            range: "at least 1 (and one global batch)"
        ) { $0 >= 1 },
        optionalInteger(
            "max-test-samples", \.maxTestSamples, "Evaluate on the first K test samples only (default all).",
            range: "at least 1"
        ) { $0 >= 1 },
        optionalNumber(
            "label-noise", \.labelNoise,
            "Symmetric label noise: each training label, with this probability, is replaced by a different class "
                + "chosen uniformly, from (seed, sample index) alone, the same on every rank; the test set stays clean (default 0).",
            range: "in [0, 1)"
        ) { (0..<1).contains($0) },
        integer("epochs", \.epochs, "Epochs T (default 3).", range: "1...100000") { (1...100_000).contains($0) },
        integer(
            "batch-size", \.batchSize, "Global batch size summed over ranks: each of R ranks trains on batch-size / R (default 128).",
            range: "at least 2 per rank, a multiple of the rank count, at most the training samples"
        ) { $0 >= 2 },
        toggle("drop-last", \.dropLast, "Drop the last partial batch instead of padding it (default off: pad it)."),
        optionalInteger(
            "accumulate-steps", \.accumulateSteps,
            "Gradient accumulation: each optimiser step trains its global batch in K micro-batches of batch-size / (R·K) "
                + "per rank and all-reduces once; the same update as one batch up to float rounding, but BatchNorm "
                + "normalises each micro-batch by its own statistics (as PyTorch does) (default 1).",
            range: "at least 1, dividing each rank's batch into micro-batches of at least 2"
        ) { $0 >= 1 },
        number("lr", \.learningRate, "Base learning rate (default 0.1).", range: "a positive finite number") { $0 > 0 },
        choice("lr-schedule", \.learningRateSchedule, "Learning-rate schedule (default cosine)."),
        integerList(
            "milestones", \.milestones, "Comma-separated epochs after which the step schedule multiplies the rate by 0.1 (default none).",
            range: "increasing epochs ≥ 1"
        ) { $0.allSatisfy { $0 >= 1 } && zip($0, $0.dropFirst()).allSatisfy { $0 < $1 } },
        integer("warmup-epochs", \.warmupEpochs, "Linear warm-up epochs (default 0 = none).", range: "0...100000") {
            (0...100_000).contains($0)
        },
        choice("optimizer", \.optimizer, "The optimiser (default sgd)."),
        number("momentum", \.momentum, "SGD momentum (default 0.9).", range: "in [0, 1)") { (0..<1).contains($0) },
        boolean("nesterov", \.nesterov, "Nesterov momentum (default true)."),
        number("weight-decay", \.weightDecay, "Weight decay (default 5e-4).", range: "a finite number ≥ 0") { $0 >= 0 },
        choice("weight-decay-style", \.weightDecayStyle, "l2 (PyTorch SGD) or decoupled (AdamW) (default l2)."),
        text(
            "policy", \.policy, "What the model trains against (default pskd): " + TrainingPolicies.helpText + ".",
            choices: TrainingPolicies.names),
        optionalChoice(
            "teacher", \.teacher,
            "How PS-KD's teacher table is kept: replicated (the whole N × C table on every rank) or sharded (each rank "
                + "keeps the rows it reads next, at most 2·N·C·4/R bytes); both train the same, bit for bit (default replicated)."),
        number("alpha-t", \.alphaT, "PS-KD's final teacher weight α_T (default 0.8).", range: "in [0, 1]") { (0...1).contains($0) },
        number("label-smoothing", \.labelSmoothing, "Label smoothing ε for policy ls (default 0.1).", range: "in [0, 1)") {
            (0..<1).contains($0)
        },
        optionalNumber(
            "kd-temperature", \.kdTemperature,
            "Distillation temperature T of cs-kd, tf-kd-self and tf-kd-reg (default 4, 6 and 20, their authors' defaults).",
            range: "0.01...1000"
        ) { (0.01...1000).contains($0) },
        optionalNumber(
            "kd-weight", \.kdWeight,
            "Weight of the distillation term: CS-KD's λ (default 1), TF-KD's α mixing (1 − α)·cross-entropy with α·KL "
                + "(default 0.95 for tf-kd-self, 0.1 for tf-kd-reg).",
            range: "0...1000 (TF-KD: 0...1)"
        ) { (0...1000).contains($0) },
        optionalNumber(
            "kd-multiplier", \.kdMultiplier,
            "TF-KD's multiplier of its KL term, which is averaged over samples and classes as in the authors' code "
                + "(default: the authors' CIFAR-100 values scaled by C/100, 50·C/100 for tf-kd-self and 100·C/100 for tf-kd-reg).",
            range: "0...100000"
        ) { (0...100_000).contains($0) },
        optionalText(
            "teacher-checkpoint", \.teacherCheckpoint,
            "tf-kd-self's teacher, a model trained before (normally the same network with --policy ce): its run "
                + "directory (newest complete checkpoint) or a checkpoint folder (default none).", isPath: true),
        seedSetting,
        optionalInteger(
            "crop-padding", \.cropPadding, "Random-crop zero padding (default 4 for CIFAR, 0 otherwise).",
            range: "0...64 pixels"
        ) { (0...64).contains($0) },
        optionalBoolean("flip", \.horizontalFlip, "Random horizontal flip (default true; false for MNIST)."),
        optionalInteger(
            "image-size", \.imageSize,
            "Image folders and shards: the side of the square training crop (RandomResizedCrop) and of evaluation's "
                + "centre crop (default: the images' own size when both sides are at most 64, with padded crops; else 224).",
            range: "8...4096"
        ) { (8...4096).contains($0) },
        optionalInteger(
            "eval-resize", \.evalResize,
            "Image folders and shards: evaluation resizes the shorter side to this, then centre-crops --image-size "
                + "(default 256 · image-size / 224, so 256 for 224).",
            range: "8...8192"
        ) { (8...8192).contains($0) },
        optionalNumberList(
            "mean", \.mean,
            "Per-channel mean subtracted from pixels in [0, 1], comma-separated (default: the data set's; ImageNet's "
                + "0.485,0.456,0.406 for image folders and shards).",
            range: "one finite number per channel"
        ) { $0.allSatisfy(\.isFinite) },
        optionalNumberList(
            "std", \.std,
            "Per-channel standard deviation dividing pixels in [0, 1], comma-separated (default: the data set's; "
                + "ImageNet's 0.229,0.224,0.225 for image folders and shards).",
            range: "one positive number per channel"
        ) { $0.allSatisfy { $0.isFinite && $0 > 0 } },
        number("cutmix", \.cutMixProbability, "CutMix probability per batch (default 0 = off).", range: "in [0, 1]") {
            (0...1).contains($0)
        },
        integer("ece-bins", \.eceBins, "Equal-width confidence bins of ECE (default 15).", range: "1...1000") { (1...1000).contains($0) },
        optionalInteger(
            "loader-threads", \.loaderThreads,
            "Threads per rank that read, decode and augment streamed images (image folders, shards), the loader "
                + "thread among them; any count gives the same batches (default 1).",
            range: "1...256"
        ) { (1...256).contains($0) },
        integer(
            "prefetch", \.prefetch, "Batches prepared ahead by the loader thread (default 2; 0 = load on the training thread).",
            range: "0...64"
        ) { (0...64).contains($0) },
        optionalInteger(
            "threads", \.threads, "Threads per rank for products and elementwise passes (default: the CPUs the rank is bound to).",
            range: "1...1024"
        ) { (1...1024).contains($0) },
        text(
            "out", \.outputDirectory, "Run directory for config.json, metrics.jsonl and checkpoints/ (default runs/latest).",
            isPath: true),
        toggle(
            "resume", \.resume,
            "Continue the run in the run directory from its newest complete checkpoint, with its config.json's settings "
                + "(default off; command line only)."),
        toggle(
            "overwrite", \.overwrite,
            "Replace the run in the run directory (removes only what pskd wrote there) (default off; command line only)."),
        optionalInteger(
            "stop-after", \.stopAfterEpochs,
            "Stop after this many epochs are complete (continue later with --resume) (default: train all epochs).",
            range: "at least 1"
        ) { $0 >= 1 },
        integer("keep-checkpoints", \.keepCheckpoints, "Complete checkpoints to keep (default 3).", range: "at least 1") { $0 >= 1 },
        optionalNumber(
            "stall-timeout", \.stallTimeout,
            "Seconds a rank may make no progress before the job ends with exit code 75 naming it (default: the larger of "
                + "60 s and 10 median steps; writing a checkpoint gets 5×; 0 = no stall watchdog).",
            range: "0 (off) or 1...86400 seconds"
        ) { $0 == 0 || (1...86_400).contains($0) },
    ]

    /// `seed` is a UInt64 read from a whole number ≥ 0.
    private static let seedSetting = TrainSetting(
        name: "seed", kind: .integer, help: "Seed of initialisation, data order and augmentation (default 1).",
        range: "≥ 0", expected: "a whole number ≥ 0",
        write: { config, value in
            guard let number = Values.integer(value), number >= 0 else { return false }
            config.seed = UInt64(number)
            return true
        },
        isValid: { _ in true }, read: { String($0.seed) })
}

// MARK: - Kinds

extension TrainSetting {
    private static func integer(
        _ name: String, _ path: WritableKeyPath<TrainConfig, Int> & Sendable, _ help: String,
        range: String, valid: @escaping @Sendable (Int) -> Bool
    ) -> TrainSetting {
        TrainSetting(
            name: name, kind: .integer, help: help, range: range,
            write: { config, value in Values.integer(value).map { config[keyPath: path] = $0 } != nil },
            isValid: { valid($0[keyPath: path]) }, read: { String($0[keyPath: path]) })
    }

    private static func optionalInteger(
        _ name: String, _ path: WritableKeyPath<TrainConfig, Int?> & Sendable, _ help: String,
        range: String, valid: @escaping @Sendable (Int) -> Bool
    ) -> TrainSetting {
        TrainSetting(
            name: name, kind: .integer, help: help, range: range,
            write: { config, value in Values.integer(value).map { config[keyPath: path] = $0 } != nil },
            isValid: { $0[keyPath: path].map(valid) ?? true }, read: { $0[keyPath: path].map(String.init) ?? "unset" })
    }

    private static func number(
        _ name: String, _ path: WritableKeyPath<TrainConfig, Double> & Sendable, _ help: String,
        range: String, valid: @escaping @Sendable (Double) -> Bool
    ) -> TrainSetting {
        TrainSetting(
            name: name, kind: .number, help: help, range: range,
            write: { config, value in Values.number(value).map { config[keyPath: path] = $0 } != nil },
            isValid: { $0[keyPath: path].isFinite && valid($0[keyPath: path]) }, read: { String($0[keyPath: path]) })
    }

    private static func optionalNumber(
        _ name: String, _ path: WritableKeyPath<TrainConfig, Double?> & Sendable, _ help: String,
        range: String, valid: @escaping @Sendable (Double) -> Bool
    ) -> TrainSetting {
        TrainSetting(
            name: name, kind: .number, help: help, range: range,
            write: { config, value in Values.number(value).map { config[keyPath: path] = $0 } != nil },
            isValid: { $0[keyPath: path].map { $0.isFinite && valid($0) } ?? true },
            read: { $0[keyPath: path].map { String($0) } ?? "unset" })
    }

    /// What a path setting's range says: an empty path names no file (`--out ""` read as the
    /// current directory, and its messages as "Error:  already holds a run").
    private static let pathRange = "a non-empty path"

    private static func text(
        _ name: String, _ path: WritableKeyPath<TrainConfig, String> & Sendable, _ help: String,
        choices: [String]? = nil, isPath: Bool = false
    ) -> TrainSetting {
        TrainSetting(
            name: name, kind: .text, help: help, range: isPath ? pathRange : choices.map { "one of " + $0.joined(separator: ", ") },
            choices: choices, isPath: isPath, write: { config, value in (value as? String).map { config[keyPath: path] = $0 } != nil },
            isValid: { config in
                isPath ? !config[keyPath: path].isEmpty : choices.map { $0.contains(config[keyPath: path]) } ?? true
            },
            read: { excerpt($0[keyPath: path]) })
    }

    private static func optionalText(
        _ name: String, _ path: WritableKeyPath<TrainConfig, String?> & Sendable, _ help: String,
        choices: [String]? = nil, isPath: Bool = false
    ) -> TrainSetting {
        TrainSetting(
            name: name, kind: .text, help: help, range: isPath ? pathRange : choices.map { "one of " + $0.joined(separator: ", ") },
            choices: choices, isPath: isPath, write: { config, value in (value as? String).map { config[keyPath: path] = $0 } != nil },
            isValid: { config in
                config[keyPath: path].map { value in isPath ? !value.isEmpty : choices?.contains(value) ?? true } ?? true
            },
            read: { $0[keyPath: path].map { excerpt($0) } ?? "unset" })
    }

    /// A setting whose values are an enumeration's cases, written as their raw text; a value that
    /// names no case is refused when written ("must be one of l2, decoupled").
    private static func choice<Value: RawRepresentable & CaseIterable & Sendable>(
        _ name: String, _ path: WritableKeyPath<TrainConfig, Value> & Sendable, _ help: String
    ) -> TrainSetting where Value.RawValue == String {
        choice(name, of: Value.self, at: path, help, read: { excerpt($0.rawValue) })
    }

    /// A choice that may be unset (`--teacher`: the policy's default).
    private static func optionalChoice<Value: RawRepresentable & CaseIterable & Sendable>(
        _ name: String, _ path: WritableKeyPath<TrainConfig, Value?> & Sendable, _ help: String
    ) -> TrainSetting where Value.RawValue == String {
        choice(name, of: Value.self, at: path, help, read: { $0.map { excerpt($0.rawValue) } ?? "unset" })
    }

    /// A setting at `path` of type `Stored` (`Value` or `Value?`) whose values are `Value`'s cases.
    private static func choice<Value: RawRepresentable & CaseIterable & Sendable, Stored>(
        _ name: String, of _: Value.Type, at path: WritableKeyPath<TrainConfig, Stored> & Sendable, _ help: String,
        read: @escaping @Sendable (Stored) -> String
    ) -> TrainSetting where Value.RawValue == String {
        let choices = Value.allCases.map(\.rawValue)
        return TrainSetting(
            name: name, kind: .text, help: help, range: "one of " + choices.joined(separator: ", "),
            expected: "one of " + choices.joined(separator: ", "), choices: choices,
            write: { config, value in
                guard let chosen = (value as? String).flatMap(Value.init(rawValue:)), let stored = chosen as? Stored else { return false }
                config[keyPath: path] = stored
                return true
            },
            isValid: { _ in true }, read: { read($0[keyPath: path]) })
    }

    private static func boolean(_ name: String, _ path: WritableKeyPath<TrainConfig, Bool> & Sendable, _ help: String) -> TrainSetting {
        TrainSetting(
            name: name, kind: .boolean, help: help, range: nil,
            write: { config, value in Values.boolean(value).map { config[keyPath: path] = $0 } != nil },
            isValid: { _ in true }, read: { String($0[keyPath: path]) })
    }

    private static func optionalBoolean(_ name: String, _ path: WritableKeyPath<TrainConfig, Bool?> & Sendable, _ help: String)
        -> TrainSetting
    {
        TrainSetting(
            name: name, kind: .boolean, help: help, range: nil,
            write: { config, value in Values.boolean(value).map { config[keyPath: path] = $0 } != nil },
            isValid: { _ in true }, read: { $0[keyPath: path].map(String.init) ?? "unset" })
    }

    private static func toggle(_ name: String, _ path: WritableKeyPath<TrainConfig, Bool> & Sendable, _ help: String) -> TrainSetting {
        TrainSetting(
            name: name, kind: .toggle, help: help, range: nil,
            write: { config, value in Values.boolean(value).map { config[keyPath: path] = $0 } != nil },
            isValid: { _ in true }, read: { String($0[keyPath: path]) })
    }

    private static func integerList(
        _ name: String, _ path: WritableKeyPath<TrainConfig, [Int]> & Sendable, _ help: String,
        range: String, valid: @escaping @Sendable ([Int]) -> Bool
    ) -> TrainSetting {
        TrainSetting(
            name: name, kind: .integerList, help: help, range: range,
            write: { config, value in Values.integers(value).map { config[keyPath: path] = $0 } != nil },
            isValid: { valid($0[keyPath: path]) }, read: { "\($0[keyPath: path])" })
    }

    private static func optionalNumberList(
        _ name: String, _ path: WritableKeyPath<TrainConfig, [Double]?> & Sendable, _ help: String,
        range: String, valid: @escaping @Sendable ([Double]) -> Bool
    ) -> TrainSetting {
        TrainSetting(
            name: name, kind: .numberList, help: help, range: range,
            write: { config, value in Values.numbers(value).map { config[keyPath: path] = $0 } != nil },
            isValid: { $0[keyPath: path].map(valid) ?? true },
            read: { $0[keyPath: path].map { $0.map { "\($0)" }.joined(separator: ",") } ?? "unset" })
    }
}

/// Values as config files (YAML/JSON scalars and lists) and the command line (text) give them.
private enum Values {
    static func integer(_ value: Any) -> Int? {
        if let number = value as? Int { return number }
        if let text = value as? String { return Int(text.trimmingCharacters(in: .whitespaces)) }
        return nil
    }

    static func number(_ value: Any) -> Double? {
        (value as? Double) ?? integer(value).map(Double.init)
            ?? (value as? String).flatMap { Double($0.trimmingCharacters(in: .whitespaces)) }
    }

    static func boolean(_ value: Any) -> Bool? {
        (value as? Bool) ?? (value as? String).flatMap { ["true": true, "false": false][$0.lowercased()] }
    }

    static func integers(_ value: Any) -> [Int]? {
        let items: [Any] = (value as? [Any]) ?? (value as? String).map { $0.split(separator: ",").map(String.init) } ?? [value]
        let numbers = items.compactMap(integer)
        return numbers.count == items.count ? numbers : nil
    }

    static func numbers(_ value: Any) -> [Double]? {
        let items: [Any] = (value as? [Any]) ?? (value as? String).map { $0.split(separator: ",").map(String.init) } ?? [value]
        let numbers = items.compactMap(number)
        return numbers.count == items.count && !numbers.isEmpty ? numbers : nil
    }
}
