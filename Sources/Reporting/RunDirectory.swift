import Foundation
import Training

/// A finished (or running) training run as its directory holds it: the resolved configuration
/// (`config.json`) and the per-epoch records (`metrics.jsonl`), which say the rank count and
/// layout each epoch ran on. Log text (`train.log`) is never read.
public struct RunDirectory: Sendable {
    /// Where the run lives.
    public let path: String
    /// `config.json`, keys named like the `pskd train` flags.
    public let configuration: TrainConfig
    /// One record per completed epoch, in order.
    public let epochs: [EpochRecord]
    /// The rank counts the epochs were trained on (`ranks` in `metrics.jsonl`), each once, in
    /// epoch order: one unless the run was resumed on another count; nil stands for epochs
    /// logged by a pskd that did not record it (then the count is unknown: `train.log` text is
    /// not read).
    public var rankCounts: [Int?] {
        epochs.map(\.ranks).reduce(into: []) { if !$0.contains($1) { $0.append($1) } }
    }

    /// The rank count when every epoch records the same one, nil otherwise.
    public var ranks: Int? {
        let counts = rankCounts
        return counts.count == 1 ? counts[0] : nil
    }
    /// The evaluations with other ECE bin counts saved beside the run (`ece-NNbins.json`,
    /// launch/experiment.sh writes them), by bin count; see `ExtraECE`.
    public let evaluations: [ExtraECE.Evaluation]

    /// Reads `path`; a missing or malformed file is an error naming it.
    public init(path: String) throws {
        self.path = path
        let configURL = URL(fileURLWithPath: path).appendingPathComponent("config.json")
        let metricsURL = URL(fileURLWithPath: path).appendingPathComponent("metrics.jsonl")
        guard let configData = try? Data(contentsOf: configURL) else {
            throw ReportError("\(configURL.path) is missing: \(path) is not a pskd run directory")
        }
        do {
            configuration = try JSONDecoder().decode(TrainConfig.self, from: Self.withInstanceSettings(configData, path: path))
        } catch {
            throw ReportError(
                "\(configURL.path) is not a pskd configuration: \(Self.describe(error))"
                    + (Self.isMissingKey(error) ? " (written by an older pskd? train the run again)" : ""))
        }
        guard let text = try? String(contentsOf: metricsURL, encoding: .utf8) else {
            throw ReportError("\(metricsURL.path) is missing: the run has not finished an epoch")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        epochs = try text.split(separator: "\n").enumerated().map { number, line in
            do {
                return try decoder.decode(EpochRecord.self, from: Data(line.utf8))
            } catch {
                throw ReportError(
                    "\(metricsURL.path) line \(number + 1) is not an epoch record: \(Self.describe(error))"
                        + (Self.isMissingKey(error) ? " (written by an older pskd? train the run again)" : ""))
            }
        }
        evaluations = ExtraECE.evaluations(in: path)
    }

    /// config.json holds the training's settings only, not the job's own (`TrainConfig.instanceKeys`,
    /// see `RunLog.saveConfiguration`); they are filled in (`out` is the run directory, the others
    /// take their defaults) so that the whole `TrainConfig` decodes. Data that is not a JSON object
    /// is returned as it is, for the decoder to describe.
    static func withInstanceSettings(_ data: Data, path: String) -> Data {
        guard var settings = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return data }
        var defaults = TrainSetting.values(of: TrainConfig())
        defaults["out"] = path
        for key in TrainConfig.instanceKeys where settings[key] == nil { settings[key] = defaults[key] }
        return (try? JSONSerialization.data(withJSONObject: settings)) ?? data
    }

    /// A decoding error in words: which key is missing or has the wrong type.
    static func describe(_ error: any Error) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? snakeCase($0.stringValue) }.joined(separator: ".")
        }
        switch error as? DecodingError {
        case .keyNotFound(let key, let context)?:
            return "no \"\(path(context.codingPath + [key]))\""
        case .typeMismatch(let type, let context)?, .valueNotFound(let type, let context)?:
            return "\"\(path(context.codingPath))\" is not \(type == String.self ? "text" : "a \(type)")"
        case .dataCorrupted(let context)?:
            return context.codingPath.isEmpty ? "not valid JSON" : "\"\(path(context.codingPath))\" is invalid"
        default:
            return "\(error)"
        }
    }

    static func isMissingKey(_ error: any Error) -> Bool {
        if case .keyNotFound? = error as? DecodingError { return true }
        return false
    }

    /// `testReliability` → `test_reliability` (the names in metrics.jsonl); flag names stay as they are.
    static func snakeCase(_ name: String) -> String {
        var result = ""
        for character in name {
            if character.isUppercase { result += "_" + character.lowercased() } else { result.append(character) }
        }
        return result
    }
}

/// A report that cannot be made, with the reason.
public struct ReportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
