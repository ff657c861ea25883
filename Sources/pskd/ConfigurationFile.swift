import Foundation
import Training
import Yams

/// A `--config` file: YAML or JSON (JSON is YAML) mapping setting names to values, decoded into a
/// `TrainConfig` by Yams' `YAMLDecoder` from the checked `Node`.
///
/// A config file cannot make pskd exhaust memory or time: the file is at most `maxBytes`, YAML
/// anchors and aliases (`&name`, `*name`, and so `<<` merges) are refused altogether (a flat
/// mapping of settings has no use for them, and ten levels of nine aliases in 500 bytes expand
/// to 3.5 billion values; `refuseAliases` says how), the document is composed into a `Node` tree (which shares what an
/// alias repeats, so composing costs what the file's events cost) and walked with a budget of
/// `maxNodes` before anything converts it, and each value is at most
/// `TrainSetting.maxValueCharacters`. `checkedDocument(_:source:)` is that check alone; `decode`
/// hands its `Node` to `YAMLDecoder`.
enum ConfigurationFile {
    /// The largest config file read (1 MiB; a file of every setting is under 4 KiB).
    static let maxBytes = 1 << 20
    /// The most nodes (scalars, lists, mappings) a config file may hold.
    static let maxNodes = 10_000

    /// The settings of a YAML or JSON file (JSON is YAML) decoded over `base` with Yams'
    /// `YAMLDecoder` (through `TrainConfig`'s `Codable` coding, as config.json and checkpoints),
    /// and the names of the settings it gives. The file is read and checked first
    /// (`checkedDocument`: size, aliases, values); a key may be spelt `batch_size` or
    /// `batch-size` but not both; `resume` and `overwrite` are refused (command line only); an
    /// unknown key is refused naming the nearest setting; a value of the wrong kind is refused
    /// naming the setting, what it must be and the value.
    static func decode(_ path: String, over base: TrainConfig) throws -> (config: TrainConfig, keys: [String]) {
        let text = try readText(path)
        let root = try checkedDocument(text, source: path)
        guard case .mapping(let mapping)? = root else {
            throw ConfigurationError(
                "\(path): expected a mapping of settings such as 'epochs: 10', found \(root.map { describe($0) } ?? "an empty file")")
        }
        var given: [(key: String, value: Node)] = []
        for (key, value) in mapping {
            guard let name = key.string, key.scalar != nil else {
                throw ConfigurationError("\(path): a setting's name must be text such as 'epochs', found \(describe(key))")
            }
            given.append((name, value))
        }
        try TrainSetting.refuseRepeats(given.map(\.key), source: path)
        try TrainSetting.refuseCommandLineOnly(given.map(\.key), source: path)
        var settings: [(key: String, value: Node)] = []
        for (key, value) in given.sorted(by: { $0.key < $1.key }) {
            guard let setting = TrainSetting.named(key) else {
                throw ConfigurationError(
                    "\(path): unknown setting \(TrainSetting.excerpt(key)); did you mean '\(TrainSetting.nearest(to: key))'? "
                        + "Known settings: \(TrainSetting.all.map(\.name).joined(separator: ", "))")
            }
            if value.null != nil {
                throw ConfigurationError(
                    "\(path): setting '\(setting.name)' has no value: give one (\(setting.range ?? setting.expected)) or remove it")
            }
            settings.append((setting.name, value))
        }
        let document = Node.mapping(
            Node.Mapping(try settings.map { (Node($0.key), try normalized($0.value, of: TrainSetting.named($0.key)!, source: path)) }))
        do {
            let config = try YAMLDecoder().decode(TrainConfig.self, from: document, userInfo: [TrainConfig.base: base])
            return (config, settings.map(\.key))
        } catch let error as ConfigurationError {
            throw ConfigurationError("\(path): \(error)")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context),
            let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty
        {
            let key = context.codingPath[0].stringValue
            let found = settings.first { $0.key == key }.map { describe($0.value, quoted: true) } ?? "another value"
            throw ConfigurationError(
                "\(path): setting '\(key)' must be \(TrainSetting.named(key)?.expected ?? "another value"), found \(found)")
        } catch {
            throw ConfigurationError("\(path): \(TrainSetting.excerpt("\(error)", limit: 300))")
        }
    }

    /// A value as the decoder reads it: a number or `true`/`false` written in quotes (`epochs:
    /// "3"`) unquoted, as config files have always been read, and a list of epochs written as one
    /// text or number (`milestones: 30,60`, `milestones: 30`) as the list.
    private static func normalized(_ value: Node, of setting: TrainSetting, source: String) throws -> Node {
        guard case .scalar(let scalar) = value else { return value }
        let plain = { (text: String) in Node(text.trimmingCharacters(in: .whitespaces), .implicit, .plain) }
        switch setting.kind {
        case .integer, .number, .boolean, .toggle: return plain(scalar.string)
        case .integerList, .numberList: return .sequence(Node.Sequence(scalar.string.split(separator: ",").map { plain(String($0)) }))
        case .text: return value
        }
    }

    /// The file's text, refused when it cannot be read, is larger than `maxBytes` (checked before
    /// it is read whole) or is not text.
    static func readText(_ path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ConfigurationError("\(path): cannot read the config file; check the path given to --config")
        }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: maxBytes + 1) ?? Data()
        } catch {
            throw ConfigurationError(
                "\(path): cannot read the config file (\(error.localizedDescription)); check the path given to --config")
        }
        guard data.count <= maxBytes else {
            throw ConfigurationError(
                "\(path): the config file is larger than the limit of \(maxBytes) bytes (1 MiB); "
                    + "a config file holds settings such as 'epochs: 10': give a smaller file")
        }
        guard let text = String(data: data, encoding: .utf8), !text.contains("\0") else {
            throw ConfigurationError("\(path): not a text file; --config takes a YAML or JSON file of settings such as 'epochs: 10'")
        }
        return text
    }

    /// The single document of `text` as a `Node` tree, refused (naming `source`, the limit and
    /// where) when it uses an anchor or alias, holds more than `maxNodes` nodes, or a text value
    /// longer than `TrainSetting.maxValueCharacters`; nil for an empty document.
    static func checkedDocument(_ text: String, source: String) throws -> Node? {
        guard text.utf8.count <= maxBytes else {
            throw ConfigurationError(
                "\(source): the config file is larger than the limit of \(maxBytes) bytes (1 MiB): give a smaller file")
        }
        try refuseAliases(text, source: source)
        let parser: Parser
        let root: Node?
        do {
            parser = try Parser(yaml: text)
            root = try parser.singleRoot()
        } catch {
            throw ConfigurationError("\(source): not valid YAML or JSON: \(TrainSetting.excerpt("\(error)", limit: 600))")
        }
        // The parser owns the anchors its nodes name (weakly): keep it alive while walking.
        return try withExtendedLifetime(parser) {
            guard let root else { return nil }
            var pending = [root]
            var visited = 0
            while let node = pending.popLast() {
                visited += 1
                guard visited <= maxNodes else {
                    throw ConfigurationError(
                        "\(source): the config file holds more than the limit of \(maxNodes) values; "
                            + "a config file holds settings such as 'epochs: 10': give a smaller file")
                }
                if let anchor = node.anchor {
                    throw ConfigurationError(
                        "\(source): line \(node.mark?.line ?? 0): the anchor &\(anchor.rawValue.prefix(60)): YAML anchors (&name) and aliases "
                            + "(*name, << merges) are not accepted in config files: write each value out")
                }
                switch node {
                case .scalar(let scalar):
                    let length = scalar.string.count
                    guard length <= TrainSetting.maxValueCharacters else {
                        throw ConfigurationError(
                            "\(source): line \(node.mark?.line ?? 0): the value \(TrainSetting.excerpt(scalar.string)) is longer than the limit of "
                                + "\(TrainSetting.maxValueCharacters) characters: give a shorter value")
                    }
                case .mapping(let mapping):
                    for (key, value) in mapping { pending += [key, value] }
                case .sequence(let sequence):
                    pending += sequence.map { $0 }
                case .alias:
                    throw ConfigurationError(
                        "\(source): line \(node.mark?.line ?? 0): YAML aliases (*name) are not accepted in config files: write each value out"
                    )
                }
            }
            return root
        }
    }

    /// Refuses, before any parsing, every `*` where YAML could read an alias: at the start of
    /// the file or of a line, or after white space, a non-ASCII character, `[`, `{`, `,` or `:`.
    /// Composing an alias costs nothing, but Yams hashes each mapping key to find repeats, and a
    /// key that is an alias of an alias bomb takes minutes to hash; so aliases are refused here,
    /// before Yams sees them. Quoted text and comments are not told apart (that needs a YAML
    /// scanner, and a mistake would let an alias through): a `*` that begins a word there is
    /// refused too.
    static func refuseAliases(_ text: String, source: String) throws {
        var line = 1
        var column = 0
        var previous: UInt8? = nil
        for byte in text.utf8 {
            column += 1
            if byte == UInt8(ascii: "*") {
                let startsNode =
                    previous.map {
                        $0 >= 0x80
                            || [UInt8(ascii: " "), 9, 10, 13, UInt8(ascii: "["), UInt8(ascii: "{"), UInt8(ascii: ","), UInt8(ascii: ":")]
                                .contains($0)
                    }
                    ?? true
                if startsNode {
                    throw ConfigurationError(
                        "\(source): line \(line), column \(column): '*' begins a YAML alias; aliases (*name) and anchors (&name) "
                            + "are not accepted in config files: write each value out (a '*' that begins a word is refused "
                            + "anywhere in the file, in quoted text and comments too)")
                }
            }
            if byte == 10 {
                line += 1
                column = 0
            }
            previous = byte
        }
    }

    /// A node as an error names it: its kind and, for text, an excerpt (alone when `quoted`).
    private static func describe(_ node: Node, quoted: Bool = false) -> String {
        switch node {
        case .scalar(let scalar): quoted ? TrainSetting.excerpt(scalar.string) : "the value \(TrainSetting.excerpt(scalar.string))"
        case .sequence: "a list"
        case .mapping: "a mapping"
        case .alias: "an alias"
        }
    }
}
