import ArgumentParser

/// The `pskd` command: distributed data-parallel Progressive Self-Knowledge Distillation.
@main
struct PSKD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pskd",
        abstract: "Distributed data-parallel training with Progressive Self-Knowledge Distillation (PS-KD).",
        discussion: "Run under mpirun for several ranks; every rank trains a replica on its shard of the data.",
        version: "0.1.0",
        subcommands: [TrainCommand.self, EvaluateCommand.self, InfoCommand.self, BenchCommand.self, ReportCommand.self, RecipeCommand.self])
}
