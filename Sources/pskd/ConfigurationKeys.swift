import Foundation
import Training
import Yams

/// The one table of `pskd train` settings: config-file keys are the flag names (`batch-size`,
/// or `batch_size`), and flags given on the command line are applied through the same table
/// after the file, so flags override it.
enum ConfigurationKeys {
    typealias Setter = @Sendable (inout TrainConfig, Any) throws(ConfigurationValueError) -> Void

    /// A value of the wrong type for its key.
    struct ConfigurationValueError: Error {
        let expected: String
    }

    static let setters: [String: Setter] = [
        "model": string { $0.model = $1 },
        "width-multiplier": double { $0.widthMultiplier = $1 },
        "dataset": string { $0.dataset = $1 },
        "data-dir": string { $0.dataDirectory = $1 },
        "max-train-samples": int { $0.maxTrainSamples = $1 },
        "max-test-samples": int { $0.maxTestSamples = $1 },
        "epochs": int { $0.epochs = $1 },
        "batch-size": int { $0.batchSize = $1 },
        "drop-last": bool { $0.dropLast = $1 },
        "lr": double { $0.learningRate = $1 },
        "lr-schedule": string { $0.learningRateSchedule = $1 },
        "milestones": intList { $0.milestones = $1 },
        "warmup-epochs": int { $0.warmupEpochs = $1 },
        "optimizer": string { $0.optimizer = $1 },
        "momentum": double { $0.momentum = $1 },
        "nesterov": bool { $0.nesterov = $1 },
        "weight-decay": double { $0.weightDecay = $1 },
        "weight-decay-style": string { $0.weightDecayStyle = $1 },
        "policy": string { $0.policy = $1 },
        "alpha-t": double { $0.alphaT = $1 },
        "label-smoothing": double { $0.labelSmoothing = $1 },
        "seed": nonNegativeInt { $0.seed = UInt64($1) },
        "crop-padding": int { $0.cropPadding = $1 },
        "flip": bool { $0.horizontalFlip = $1 },
        "cutmix": double { $0.cutMixProbability = $1 },
        "ece-bins": int { $0.eceBins = $1 },
        "prefetch": int { $0.prefetch = $1 },
        "threads": int { $0.threads = $1 },
        "out": string { $0.outputDirectory = $1 },
        "resume": bool { $0.resume = $1 },
        "stop-after": int { $0.stopAfterEpochs = $1 },
        "keep-checkpoints": int { $0.keepCheckpoints = $1 },
        "overwrite": bool { $0.overwrite = $1 },
    ]

    /// Applies `values` (key → value) to `config`; `source` names where they came from.
    static func apply(_ values: [(key: String, value: Any)], to config: inout TrainConfig, source: String) throws {
        let spellings = Dictionary(grouping: values.map(\.key)) { $0.replacingOccurrences(of: "_", with: "-") }
        if let (key, both) = spellings.sorted(by: { $0.key < $1.key }).first(where: { $0.value.count > 1 }) {
            throw ConfigurationError("\(source): setting '\(key)' is given \(both.count) times (\(both.joined(separator: ", "))): keep one")
        }
        for (rawKey, value) in values {
            let key = rawKey.replacingOccurrences(of: "_", with: "-")
            guard let setter = setters[key] else {
                throw ConfigurationError("\(source): unknown setting '\(rawKey)'; known settings: \(setters.keys.sorted().joined(separator: ", "))")
            }
            do {
                try setter(&config, value)
            } catch {
                throw ConfigurationError("\(source): setting '\(rawKey)' must be \(error.expected), found '\(value)'")
            }
        }
    }

    /// The settings of a YAML or JSON file (JSON is YAML), as a flat mapping.
    static func load(file path: String) throws -> [(key: String, value: Any)] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("\(path): cannot read the config file; check the path given to --config")
        }
        guard let text = String(data: data, encoding: .utf8), !text.contains("\0") else {
            throw ConfigurationError("\(path): not a text file; --config takes a YAML or JSON file of settings such as 'epochs: 10'")
        }
        let document: Any?
        do {
            document = try Yams.load(yaml: text)
        } catch {
            throw ConfigurationError("\(path): not valid YAML or JSON: \(error)")
        }
        guard let mapping = document as? [String: Any] else {
            throw ConfigurationError("\(path): expected a mapping of settings such as 'epochs: 10', found \(document.map { "\(type(of: $0))" } ?? "an empty file")")
        }
        return mapping.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    // MARK: - Typed setters

    private static func string(_ set: @escaping @Sendable (inout TrainConfig, String) -> Void) -> Setter {
        { config, value throws(ConfigurationValueError) in
            guard let text = value as? String else { throw ConfigurationValueError(expected: "text") }
            set(&config, text)
        }
    }

    private static func int(_ set: @escaping @Sendable (inout TrainConfig, Int) -> Void) -> Setter {
        { config, value throws(ConfigurationValueError) in
            guard let number = intValue(value) else { throw ConfigurationValueError(expected: "a whole number") }
            set(&config, number)
        }
    }

    private static func nonNegativeInt(_ set: @escaping @Sendable (inout TrainConfig, Int) -> Void) -> Setter {
        { config, value throws(ConfigurationValueError) in
            guard let number = intValue(value), number >= 0 else { throw ConfigurationValueError(expected: "a whole number ≥ 0") }
            set(&config, number)
        }
    }

    private static func double(_ set: @escaping @Sendable (inout TrainConfig, Double) -> Void) -> Setter {
        { config, value throws(ConfigurationValueError) in
            let number = (value as? Double) ?? intValue(value).map(Double.init) ?? (value as? String).flatMap(Double.init)
            guard let number else { throw ConfigurationValueError(expected: "a number") }
            set(&config, number)
        }
    }

    private static func bool(_ set: @escaping @Sendable (inout TrainConfig, Bool) -> Void) -> Setter {
        { config, value throws(ConfigurationValueError) in
            let flag = (value as? Bool) ?? (value as? String).flatMap { ["true": true, "false": false][$0.lowercased()] }
            guard let flag else { throw ConfigurationValueError(expected: "true or false") }
            set(&config, flag)
        }
    }

    private static func intList(_ set: @escaping @Sendable (inout TrainConfig, [Int]) -> Void) -> Setter {
        { config, value throws(ConfigurationValueError) in
            let items: [Any] = (value as? [Any]) ?? (value as? String).map { $0.split(separator: ",").map(String.init) } ?? [value]
            let numbers = items.compactMap(intValue)
            guard numbers.count == items.count else { throw ConfigurationValueError(expected: "a list of whole numbers") }
            set(&config, numbers)
        }
    }

    private static func intValue(_ value: Any) -> Int? {
        if let number = value as? Int { return number }
        if let text = value as? String { return Int(text.trimmingCharacters(in: .whitespaces)) }
        return nil
    }
}
