import Foundation
import Training

/// A finished (or running) training run as its directory holds it: the resolved configuration
/// (`config.json`) and the per-epoch records (`metrics.jsonl`).
public struct RunDirectory: Sendable {
    /// Where the run lives.
    public let path: String
    /// `config.json`, keys named like the `pskd train` flags.
    public let configuration: TrainConfig
    /// One record per completed epoch, in order.
    public let epochs: [EpochRecord]

    /// Reads `path`; a missing or malformed file is an error naming it.
    public init(path: String) throws {
        self.path = path
        let configURL = URL(fileURLWithPath: path).appendingPathComponent("config.json")
        let metricsURL = URL(fileURLWithPath: path).appendingPathComponent("metrics.jsonl")
        guard let configData = try? Data(contentsOf: configURL) else {
            throw ReportError("\(configURL.path) is missing: \(path) is not a pskd run directory")
        }
        do {
            configuration = try JSONDecoder().decode(TrainConfig.self, from: configData)
        } catch {
            throw ReportError("\(configURL.path) is not a pskd configuration: \(error)")
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
                throw ReportError("\(metricsURL.path) line \(number + 1) is not an epoch record: \(error)")
            }
        }
    }
}

/// A report that cannot be made, with the reason.
public struct ReportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
