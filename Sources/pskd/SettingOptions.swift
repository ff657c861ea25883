import ArgumentParser
import Training

// The command-line side of `TrainSetting.all`: each setting's flag takes its name, help, value
// name and choices from the table (`.setting("epochs")`), and a setting that several commands
// take (`--threads`, `--ece-bins`, `--max-test-samples`) is declared once here, as an option
// group, and refused in the table's words everywhere ("threads must be 1...1024, got 0").

/// The values a setting's flag is completed from: a choice setting's, from the table.
protocol SettingChoices { static var setting: String? { get } }

/// A setting's value as given on the command line, kept as text: it is checked and converted by
/// `TrainSetting.apply` as a config file's value is, so both refuse a value in the same words and
/// cut a long one in messages. Its choices (`--policy <TAB>`) come from the table.
struct SettingValue<Choices: SettingChoices>: ExpressibleByArgument {
    let text: String
    init(argument: String) { text = argument }

    static var allValueStrings: [String] { Choices.setting.flatMap { TrainSetting.named($0)?.choices } ?? [] }
    static var defaultCompletionKind: CompletionKind { allValueStrings.isEmpty ? .default : .list(allValueStrings) }
}

/// Any value of the setting's kind (no list of choices).
enum Unlisted: SettingChoices { static var setting: String? { nil } }
enum ModelNames: SettingChoices { static var setting: String? { "model" } }
enum DatasetNames: SettingChoices { static var setting: String? { "dataset" } }
enum ScheduleNames: SettingChoices { static var setting: String? { "lr-schedule" } }
enum OptimizerNames: SettingChoices { static var setting: String? { "optimizer" } }
enum WeightDecayStyleNames: SettingChoices { static var setting: String? { "weight-decay-style" } }
enum PolicyNames: SettingChoices { static var setting: String? { "policy" } }
enum TeacherNames: SettingChoices { static var setting: String? { "teacher" } }

/// A setting with text of any kind (`--epochs <integer>`).
typealias Setting = SettingValue<Unlisted>

extension NameSpecification {
    /// `--name` of the setting `name` of `TrainSetting.all`.
    static func setting(_ name: String) -> NameSpecification {
        precondition(TrainSetting.named(name)?.name == name, "\(name) is not a setting of TrainSetting.all")
        return .customLong(name)
    }
}

extension ArgumentHelp {
    /// The table's help of the setting `name` (its meaning, default and range) and its value's name.
    static func setting(_ name: String) -> ArgumentHelp {
        guard let setting = TrainSetting.named(name) else { preconditionFailure("\(name) is not a setting of TrainSetting.all") }
        return ArgumentHelp(setting.helpText, valueName: setting.valueName)
    }
}

extension SettingValue {
    /// The value as a whole number, checked against the range of the setting `name` (throws the
    /// table's refusal otherwise).
    func integer(_ name: String) throws -> Int {
        try TrainSetting.check(name, text)
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else { preconditionFailure("checked as a whole number") }
        return value
    }
}

/// `--threads`, of `pskd train`, `evaluate`, `bench` and `info`.
struct ThreadsOption: ParsableArguments {
    @Option(name: .setting("threads"), parsing: .unconditional, help: .setting("threads")) var threads: Setting?

    /// The threads asked for (nil: the CPUs the rank is bound to), in range.
    func value() throws -> Int? { try threads?.integer("threads") }
}

/// `--ece-bins` and `--max-test-samples`, of `pskd train` and `evaluate`.
struct EvaluationOptions: ParsableArguments {
    @Option(name: .setting("ece-bins"), parsing: .unconditional, help: .setting("ece-bins")) var eceBins: Setting?
    @Option(name: .setting("max-test-samples"), parsing: .unconditional, help: .setting("max-test-samples"))
    var maxTestSamples: Setting?

    /// The ECE bins asked for (the training's default when not given), in range.
    func bins() throws -> Int { try eceBins?.integer("ece-bins") ?? TrainConfig().eceBins }
    /// The test samples asked for (nil: all), in range.
    func testSamples() throws -> Int? { try maxTestSamples?.integer("max-test-samples") }
}
