import Foundation
import Training
import Yams

/// A `--config` file: YAML or JSON (JSON is YAML) mapping setting names to values, read into
/// (name, value) pairs for `TrainSetting.apply`.
enum ConfigurationFile {
    /// The settings of a YAML or JSON file (JSON is YAML), as a flat mapping.
    static func load(_ path: String) throws -> [(key: String, value: Any)] {
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
            throw ConfigurationError(
                "\(path): expected a mapping of settings such as 'epochs: 10', found \(document.map { "\(type(of: $0))" } ?? "an empty file")"
            )
        }
        try TrainSetting.refuseRepeats(Array(mapping.keys), source: path)
        return mapping.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}
