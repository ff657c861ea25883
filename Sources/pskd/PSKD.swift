import ArgumentParser
import Training

/// The `pskd` command: distributed data-parallel Progressive Self-Knowledge Distillation.
@main
struct PSKD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pskd",
        abstract: "Distributed data-parallel training with Progressive Self-Knowledge Distillation (PS-KD).",
        discussion: "Run under mpirun for several ranks; every rank trains a replica on its shard of the data.",
        version: "0.1.0",
        subcommands: [
            TrainCommand.self, EvaluateCommand.self, InfoCommand.self, BenchCommand.self, ReportCommand.self, RecipeCommand.self,
            DataCommand.self, PackCommand.self,
        ])

    static func main() {
        do {
            main(try normalized(Array(CommandLine.arguments.dropFirst())))
        } catch {
            exit(withError: error)
        }
    }

    /// The command line in the forms swift-argument-parser reads, for two forms pskd has always
    /// taken: `--name=` (an empty value, which the parser would read as no value and take the next
    /// argument instead: `--data-dir=` is then refused as an empty path) and a switch written
    /// `--drop-last=true` or `--drop-last=false` (as `--drop-last`, `--no-drop-last`; for
    /// `--resume` and `--overwrite`, `=false` is no switch). Nothing after `--` changes.
    static func normalized(_ arguments: [String]) throws -> [String] {
        let toggles = Set(TrainSetting.all.filter { $0.kind == .toggle }.map(\.name))
        var result: [String] = []
        for (index, argument) in arguments.enumerated() {
            if argument == "--" { return result + arguments[index...] }
            guard argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") else {
                result.append(argument)
                continue
            }
            let name = String(argument[argument.index(argument.startIndex, offsetBy: 2)..<equals])
            let value = String(argument[argument.index(after: equals)...])
            if toggles.contains(name) {
                switch value.lowercased() {
                case "true": result.append("--" + name)
                case "false": if name == "drop-last" { result.append("--no-" + name) }
                default:
                    throw ValidationError(
                        "--\(name) is a switch: give it alone, or --\(name)=true or --\(name)=false, found \(TrainSetting.excerpt(value))")
                }
            } else if value.isEmpty {
                result += ["--" + name, ""]
            } else {
                result.append(argument)
            }
        }
        return result
    }
}
