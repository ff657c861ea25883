import ArgumentParser
import Foundation
import Reporting
import Yams

/// `pskd recipe`: what launch/experiment.sh needs from a recipe file, so that the script reads
/// no YAML or JSON itself.
struct RecipeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recipe",
        abstract: "Read an experiment recipe (launch/recipes/NAME.yaml) and print its plan for launch/experiment.sh.",
        discussion: """
            A recipe file has two sections: 'train:', a pskd train --config file as it stands (settings \
            named like the flags; --print train-config prints it), and 'experiment:' (policies, seeds, \
            policy-settings with {run:P} for the same seed's run of policy P, also-ece-bins, data-files, \
            milestones-follow-epochs, training-images, test-images). The options after the file are \
            launch/experiment.sh's; the arguments after -- go to every run.
            """)

    enum Part: String, ExpressibleByArgument, CaseIterable {
        case summary, plan, runs, bench, estimate, checkData = "check-data", trainConfig = "train-config"
    }

    @Argument(help: "The recipe file.") var file: String
    @Option(help: "What to print: \(Part.allCases.map(\.rawValue).joined(separator: ", ")).") var print: Part = .summary
    @Option(help: "Policies, separated by spaces (replaces the recipe's).") var policies: String?
    @Option(help: "Seeds, separated by spaces (replaces the recipe's).") var seeds: String?
    @Option(parsing: .unconditional, help: "Epochs per run.") var epochs: Int?
    @Option(name: .customLong("train-samples"), help: "Training images per run (K or all).") var trainSamples: String?
    @Option(help: "The model.") var model: String?
    @Option(name: .customLong("data-dir"), help: "The data folder of every run.") var dataDir: String?
    @Option(help: "The experiment folder (absolute).") var out = "runs/experiment"
    @Option(parsing: .unconditional, help: "Ranks per run.") var ranks = 2
    @Option(name: .customLong("time-limit"), parsing: .unconditional, help: "Seconds per run.") var timeLimit = 30 * 24 * 3600
    @Option(parsing: .unconditionalSingleValue, help: "A word of the launcher's command (repeatable; default launch/local.sh).")
    var launcher: [String] = []
    @Option(help: "The load average before the measurement (for --print estimate).") var load = "unknown"
    @Argument(parsing: .postTerminator, help: "pskd train flags for every run.") var extra: [String] = []

    func validate() throws {
        guard ranks >= 1, timeLimit >= 1 else { throw ValidationError("--ranks and --time-limit must be at least 1") }
        if let epochs, epochs < 1 { throw ValidationError("--epochs must be at least 1, got \(epochs)") }
        if let trainSamples, trainSamples != "all", (Int(trainSamples) ?? 0) < 1 {
            throw ValidationError("--train-samples takes a whole number of at least 1 or all, not '\(trainSamples)'")
        }
    }

    func run() throws {
        let recipe = try Self.load(file)
        if print == .trainConfig { return Swift.print(Self.yaml(recipe.train)) }
        var seedList: [UInt64]?
        if let seeds {
            seedList = try seeds.split(separator: " ").map { word in
                guard let seed = UInt64(word) else { throw ValidationError("--seeds takes whole numbers, not '\(word)'") }
                return seed
            }
        }
        let overrides = RecipeOverrides(
            policies: policies.map { $0.split(separator: " ").map(String.init) }, seeds: seedList, epochs: epochs,
            trainSamples: trainSamples.map { $0 == "all" ? nil : Int($0) }, model: model)
        let plan = try ExperimentPlan(recipe: recipe, overrides: overrides, out: out, dataDirectory: dataDir, extra: extra, ranks: ranks)
        let launch = (launcher.isEmpty ? ["launch/local.sh"] : launcher) + ["-n", String(ranks), "--time-limit", String(timeLimit)]
        func evaluation(_ run: PlannedRun) -> [String]? {
            recipe.alsoECEBins.map {
                launch + ["--command", "evaluate", "--checkpoint", run.directory, "--ece-bins", String($0), "--json"]
            }
        }
        switch print {
        case .summary: Swift.print(plan.summary)
        case .plan:
            Swift.print("plan (every command, in order):")
            let runs = plan.runs
            for (index, run) in runs.enumerated() {
                Swift.print("  [\(index + 1)/\(runs.count)] \(Shell.quoted(launch + run.trainArguments))")
                if let evaluate = evaluation(run), let file = plan.eceFile(run.directory) {
                    Swift.print("  [\(index + 1)/\(runs.count)] \(Shell.quoted(evaluate)) > \(Shell.quoted([file]))")
                }
            }
            let binary = CommandLine.arguments.first ?? "pskd"
            Swift.print(
                "  then: \(Shell.quoted([binary, "report", out, "--output", (out as NSString).appendingPathComponent("report.html")]))")
        case .runs:
            // One line per command, words separated by tabs: what the script runs, in order.
            Swift.print(try Self.line(["plan", plan.planText]))
            let runs = plan.runs
            for (index, run) in runs.enumerated() {
                let state = Self.completeEpochs(run.directory) >= (Int(plan.value("epochs") ?? "") ?? 1) ? "complete" : "incomplete"
                Swift.print(
                    try Self.line(
                        ["run", "\(index + 1)/\(runs.count)", run.policy, String(run.seed), run.directory, state] + launch
                            + run.trainArguments))
                if let evaluate = evaluation(run), let file = plan.eceFile(run.directory) {
                    let current = ExtraECE.evaluations(in: run.directory).contains {
                        $0.file == file && $0.epoch == Int(plan.value("epochs") ?? "")
                    }
                    Swift.print(try Self.line(["evaluate", run.directory, file, current ? "current" : "missing"] + evaluate))
                }
            }
        case .bench: Swift.print(ExperimentEstimate.benchArguments(plan).joined(separator: "\n"))
        case .estimate:
            let input = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            let bench = try ExperimentEstimate.Bench.parse(input)
            Swift.print(ExperimentEstimate(plan: plan, bench: bench).text(load: load))
        case .checkData:
            if let message = plan.missingDataMessage() { throw ReportError(message) }
        case .trainConfig: break
        }
    }

    /// Words joined by tabs; a word with a tab or a line break is refused (the script splits at them).
    static func line(_ words: [String]) throws -> String {
        for word in words where word.contains("\t") || word.contains("\n") {
            throw ValidationError(
                "an argument holds a tab or a line break, which launch/experiment.sh cannot pass on: \(word.debugDescription)")
        }
        return words.joined(separator: "\t")
    }

    /// The number of non-empty lines of RUN/metrics.jsonl (0 without it): the epochs the run finished.
    static func completeEpochs(_ run: String) -> Int {
        let text = (try? String(contentsOfFile: (run as NSString).appendingPathComponent("metrics.jsonl"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.count
    }

    /// Reads a recipe file with the checks of a config file (size, no anchors or aliases).
    static func load(_ path: String) throws -> ExperimentRecipe {
        guard let data = FileManager.default.contents(atPath: path), data.count <= ConfigurationFile.maxBytes,
            let text = String(data: data, encoding: .utf8)
        else { throw ValidationError("\(path): cannot read the recipe file (or it is larger than 1 MiB, or not text)") }
        guard case .mapping(let root)? = try ConfigurationFile.checkedDocument(text, source: path) else {
            throw ValidationError("\(path): expected a mapping with 'experiment:' and 'train:'")
        }
        let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        return try ExperimentRecipe(name: name, document: try entries(root, source: path), source: path)
    }

    static func entries(_ mapping: Node.Mapping, source: String) throws -> [RecipeEntry] {
        try mapping.map { key, value in
            guard let name = key.scalar?.string else { throw ValidationError("\(source): a key must be text, found \(key)") }
            return RecipeEntry(name, try self.value(value, source: source))
        }
    }

    static func value(_ node: Node, source: String) throws -> RecipeValue {
        switch node {
        case .scalar(let scalar): return .text(scalar.string)
        case .sequence(let sequence): return .list(try sequence.map { try value($0, source: source) })
        case .mapping(let mapping): return .mapping(try entries(mapping, source: source))
        case .alias: throw ValidationError("\(source): YAML aliases are not accepted")
        }
    }

    /// Train settings as a YAML mapping that `pskd train --config` reads (each value quoted).
    static func yaml(_ settings: [FlagSetting]) -> String {
        settings.map { setting in
            let quoted =
                "\"" + setting.value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
            return "\(setting.name): \(quoted)"
        }.joined(separator: "\n")
    }
}
