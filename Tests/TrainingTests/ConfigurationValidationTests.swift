import TestSupport
import Training
import XCTest

/// Every setting outside its range is refused before a job starts, with a message that names
/// the setting and the value.
final class ConfigurationValidationTests: XCTestCase {
    /// (setting, a change that puts it out of range, the value as the message shows it).
    private let outOfRange: [(setting: String, change: (inout TrainConfig) -> Void, shown: String)] = [
        ("model", { $0.model = "resnet9000" }, "resnet9000"),
        ("width-multiplier", { $0.widthMultiplier = 0 }, "0.0"),
        ("width-multiplier", { $0.widthMultiplier = .nan }, "nan"),
        ("dataset", { $0.dataset = "imagenet22k" }, "imagenet22k"),
        ("synthetic-samples", { $0.syntheticSamples = 0 }, "0"),
        ("synthetic-test-samples", { $0.syntheticTestSamples = 200_000_000 }, "200000000"),
        ("synthetic-classes", { $0.syntheticClasses = 1 }, "1"),
        ("synthetic-features", { $0.syntheticFeatures = 0 }, "0"),
        ("max-train-samples", { $0.maxTrainSamples = 0 }, "0"),
        ("max-test-samples", { $0.maxTestSamples = -5 }, "-5"),
        ("label-noise", { $0.labelNoise = 1 }, "1.0"),
        ("label-noise", { $0.labelNoise = -0.1 }, "-0.1"),
        ("epochs", { $0.epochs = 0 }, "0"),
        ("epochs", { $0.epochs = 1_000_000 }, "1000000"),
        ("batch-size", { $0.batchSize = 1 }, "1"),
        ("accumulate-steps", { $0.accumulateSteps = 0 }, "0"),
        ("lr", { $0.learningRate = .infinity }, "inf"),
        ("lr", { $0.learningRate = -0.1 }, "-0.1"),
        ("milestones", { $0.milestones = [5, 0, -3] }, "[5, 0, -3]"),
        ("milestones", { $0.milestones = [2, 1] }, "[2, 1]"),
        ("milestones", { $0.milestones = [3, 3] }, "[3, 3]"),
        ("warmup-epochs", { $0.warmupEpochs = -1 }, "-1"),
        ("warmup-epochs", { $0.warmupEpochs = 200_000 }, "200000"),
        ("momentum", { $0.momentum = 5 }, "5.0"),
        ("momentum", { $0.momentum = -0.5 }, "-0.5"),
        ("weight-decay", { $0.weightDecay = -1 }, "-1.0"),
        ("policy", { $0.policy = "kd" }, "kd"),
        ("alpha-t", { $0.alphaT = 1.5 }, "1.5"),
        ("label-smoothing", { $0.labelSmoothing = 1 }, "1.0"),
        ("kd-temperature", { $0.kdTemperature = 0 }, "0.0"),
        ("kd-weight", { $0.kdWeight = -1 }, "-1.0"),
        ("kd-multiplier", { $0.kdMultiplier = -5 }, "-5.0"),
        ("crop-padding", { $0.cropPadding = -2 }, "-2"),
        ("image-size", { $0.imageSize = 4 }, "4"),
        ("image-size", { $0.imageSize = 5000 }, "5000"),
        ("eval-resize", { $0.evalResize = 0 }, "0"),
        ("eval-resize", { $0.evalResize = 10_000 }, "10000"),
        ("mean", { $0.mean = [0.5, .nan, 0.5] }, "nan"),
        ("std", { $0.std = [0.2, 0, 0.2] }, "0.0"),
        ("std", { $0.std = [-0.2, 0.2, 0.2] }, "-0.2"),
        ("loader-threads", { $0.loaderThreads = 0 }, "0"),
        ("loader-threads", { $0.loaderThreads = 300 }, "300"),
        ("cutmix", { $0.cutMixProbability = 2 }, "2.0"),
        ("ece-bins", { $0.eceBins = 0 }, "0"),
        ("ece-bins", { $0.eceBins = -1 }, "-1"),
        ("ece-bins", { $0.eceBins = 100_000_000 }, "100000000"),
        ("prefetch", { $0.prefetch = -1 }, "-1"),
        ("threads", { $0.threads = 0 }, "0"),
        ("threads", { $0.threads = -2 }, "-2"),
        ("stop-after", { $0.stopAfterEpochs = 0 }, "0"),
        ("keep-checkpoints", { $0.keepCheckpoints = -1 }, "-1"),
        ("stall-timeout", { $0.stallTimeout = 0.5 }, "0.5"),
        ("stall-timeout", { $0.stallTimeout = -3 }, "-3.0"),
        ("stall-timeout", { $0.stallTimeout = .infinity }, "inf"),
        ("out", { $0.outputDirectory = "" }, "got ''"),
        ("data-dir", { $0.dataDirectory = "" }, "got ''"),
        ("teacher-checkpoint", { $0.teacherCheckpoint = "" }, "got ''"),
    ]

    /// (setting, a value outside its range as a file or the command line gives it): the choices
    /// held as enumerations (`TrainConfig` cannot hold a value outside them) are refused when read.
    private let outOfRangeText: [(setting: String, text: String)] = [
        ("weight-decay-style", "l1"), ("teacher", "mirrored"), ("lr-schedule", "linear"), ("optimizer", "lion"),
    ]

    func testEveryChoiceOutsideItsValuesIsRefusedWhenRead() {
        for (name, text) in outOfRangeText {
            var config = TrainConfig()
            let choices = TrainSetting.named(name)?.choices ?? []
            XCTAssertThrowsError(try TrainSetting.apply([(name, text)], to: &config, source: "run.yaml")) {
                XCTAssertEqual("\($0)", "run.yaml: setting '\(name)' must be one of \(choices.joined(separator: ", ")), found '\(text)'")
            }
            XCTAssertThrowsError(try TrainSetting.check(name, text)) {
                XCTAssertEqual("\($0)", "\(name) must be one of \(choices.joined(separator: ", ")), got '\(text)'")
            }
            XCTAssertThrowsError(try TrainConfig.decode(settingsJSON: Data("{\"\(name)\": \"\(text)\"}".utf8), source: "config.json")) {
                XCTAssertTrue("\($0)".hasPrefix("config.json: setting '\(name)' must be one of "), "\($0)")
            }
        }
    }

    func testEverySettingOutsideItsRangeIsRefusedByName() {
        XCTAssertNoThrow(try TrainConfig().validate(), "the defaults are valid")
        for (setting, change, shown) in outOfRange {
            var config = TrainConfig()
            config.epochs = 3
            change(&config)
            XCTAssertThrowsError(try config.validate(), "\(setting) = \(shown) must be refused") { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains(setting), "the message names \(setting): \(message)")
                XCTAssertTrue(message.contains(shown), "the message shows the value \(shown): \(message)")
            }
        }
    }

    /// Every setting that `TrainSetting.all` declares with a range is exercised above, so a new
    /// setting cannot join the table without a test of its range.
    func testEveryRangedSettingOfTheTableIsTested() {
        let tested = Set(outOfRange.map(\.setting) + outOfRangeText.map(\.setting))
        for setting in TrainSetting.all where setting.range != nil && setting.name != "seed" {
            XCTAssertTrue(tested.contains(setting.name), "no out-of-range case for \(setting.name) (\(setting.range!))")
        }
    }

    /// Command-line values reach the configuration as text through the same table as a config
    /// file's (`pskd train`'s flags hand them over unconverted): negative numbers are values the
    /// range check refuses later, lists are comma-separated, a later value overrides an earlier one.
    func testCommandLineTextParsesThroughTheTable() throws {
        var config = TrainConfig()
        let pairs: [(key: String, value: Any)] = [
            ("epochs", "7"), ("lr", "0.2"), ("drop-last", "true"), ("seed", "4"),
            ("milestones", "2,5"), ("nesterov", "false"), ("crop-padding", "-1"),
        ]
        try TrainSetting.apply(pairs, to: &config, source: "command line")
        XCTAssertEqual(config.epochs, 7)
        XCTAssertEqual(config.learningRate, 0.2)
        XCTAssertTrue(config.dropLast)
        XCTAssertEqual(config.seed, 4)
        XCTAssertEqual(config.milestones, [2, 5])
        XCTAssertFalse(config.nesterov)
        XCTAssertEqual(config.cropPadding, -1, "negative numbers are values; the range check refuses them later")
        var overridden = TrainConfig()
        try TrainSetting.apply([("epochs", "2"), ("epochs", "5")], to: &overridden, source: "command line")
        XCTAssertEqual(overridden.epochs, 5, "a later value overrides an earlier one")
        XCTAssertThrowsError(try config.validate()) {
            XCTAssertTrue("\($0)".contains("crop-padding must be 0...64 pixels, got -1"), "\($0)")
        }
        XCTAssertThrowsError(try TrainSetting.apply([("epoch", "3")], to: &config, source: "x")) {
            XCTAssertTrue("\($0)".contains("x: unknown setting 'epoch'; did you mean 'epochs'?"), "\($0)")
        }
        var seeded = TrainConfig()
        XCTAssertThrowsError(try TrainSetting.apply([("seed", "-7")], to: &seeded, source: "x")) {
            XCTAssertTrue("\($0)".contains("setting 'seed' must be a whole number ≥ 0, found '-7'"), "\($0)")
        }
    }

    /// A misspelt key is refused naming the nearest setting by edit distance.
    func testUnknownSettingsNameTheNearestSetting() {
        let cases = [
            ("epoch", "epochs"), ("bach-size", "batch-size"), ("polcy", "policy"),
            ("alpha_T", "alpha-t"), ("weight-decay-styel", "weight-decay-style"), ("treads", "threads"),
        ]
        for (key, nearest) in cases { XCTAssertEqual(TrainSetting.nearest(to: key), nearest, key) }
        XCTAssertEqual(TrainSetting.editDistance(Array("kitten"), Array("sitting")), 3)
        XCTAssertEqual(TrainSetting.nearest(to: String(repeating: "z", count: 5000)).isEmpty, false, "a long key is cut, not slow")
    }

    /// What `--help` says of each setting comes from the table: its default, its range (or its
    /// choices, which the command line lists) and the name of its value.
    func testEverySettingsHelpStatesItsDefaultAndRange() {
        for setting in TrainSetting.all {
            XCTAssertTrue(setting.help.contains("default"), "\(setting.name)'s help states its default: \(setting.help)")
            if let range = setting.range, setting.choices == nil {
                XCTAssertTrue(setting.helpText.contains("Range: \(range)."), "\(setting.name): \(setting.helpText)")
            }
            XCTAssertFalse(setting.valueName.isEmpty)
        }
        XCTAssertEqual(TrainSetting.named("policy")?.choices, TrainingPolicies.names)
        XCTAssertEqual(TrainSetting.named("epochs")?.valueName, "integer")
        XCTAssertEqual(TrainSetting.named("out")?.valueName, "path")
    }

    /// The shared settings of `pskd evaluate`, `bench` and `info` are refused in `pskd train`'s words.
    func testOtherCommandsSettingsAreRefusedInTheTablesWords() {
        XCTAssertThrowsError(try TrainSetting.check("ece-bins", "0")) { XCTAssertEqual("\($0)", "ece-bins must be 1...1000, got 0") }
        XCTAssertThrowsError(try TrainSetting.check("threads", "x")) { XCTAssertEqual("\($0)", "threads must be a whole number, got 'x'") }
        XCTAssertThrowsError(try TrainSetting.check("policy", "kd")) {
            XCTAssertEqual("\($0)", "policy must be one of \(TrainingPolicies.names.joined(separator: ", ")), got 'kd'")
        }
        XCTAssertNoThrow(try TrainSetting.check("threads", "4"))
    }

    /// Issue 24: `--policy ce --teacher-checkpoint X` ignored the flag. Every setting some policy
    /// reads (`TrainingPolicy.settingNames`), given with a value other than its default to a
    /// policy that does not read it, is refused, naming the policy and the policies that read
    /// it; a policy that reads it, or the default value, is accepted.
    func testEveryPolicySettingIsRefusedForAPolicyThatDoesNotReadIt() throws {
        let nonDefault: [String: String] = [
            "alpha-t": "0.5", "teacher": "sharded", "label-smoothing": "0.2", "kd-temperature": "3", "kd-weight": "0.5",
            "kd-multiplier": "7", "teacher-checkpoint": "runs/ce",
        ]
        XCTAssertEqual(Set(nonDefault.keys), TrainSetting.policySettings, "a value for every policy's setting")
        var refusals = 0
        for policy in TrainingPolicies.all {
            for (name, value) in nonDefault {
                var config = TrainConfig()
                config.policy = policy.name
                try TrainSetting.apply([(name, value)], to: &config, source: "x")
                let readers = TrainingPolicies.all.filter { $0.settingNames.contains(name) }.map { $0.name }
                if policy.settingNames.contains(name) {
                    XCTAssertNoThrow(try TrainSetting.refuseUnread([name: "command line"], by: config), "\(policy.name) reads \(name)")
                    continue
                }
                refusals += 1
                XCTAssertThrowsError(try TrainSetting.refuseUnread([name: "run.yaml"], by: config), "\(policy.name), \(name)") {
                    let message = "\($0)"
                    XCTAssertTrue(
                        message.contains(
                            "run.yaml: setting '\(name)' is not read by policy \(policy.name), so it would be ignored; "
                                + readers.joined(separator: ", ")), message)
                    XCTAssertTrue(message.contains("drop '\(name)'"), message)
                }
                var standard = TrainConfig()
                standard.policy = policy.name
                XCTAssertNoThrow(try TrainSetting.refuseUnread([name: "run.yaml"], by: standard), "the default \(name) changes nothing")
            }
        }
        XCTAssertGreaterThan(refusals, 20)
        XCTAssertNoThrow(try TrainSetting.refuseUnread(["epochs": "command line", "lr": "command line"], by: TrainConfig()))
    }

    /// The checkpoints encode `TrainConfig` with its own coding keys: they are the table's names.
    func testCodableKeysAreTheTablesNames() throws {
        var config = TrainConfig()
        (config.maxTrainSamples, config.maxTestSamples, config.dataDirectory, config.threads) = (1, 1, "d", 1)
        (config.cropPadding, config.horizontalFlip, config.stopAfterEpochs) = (1, true, 1)
        (config.stallTimeout, config.accumulateSteps, config.labelNoise) = (30, 1, 0.2)
        (config.syntheticSamples, config.syntheticTestSamples, config.syntheticClasses, config.syntheticFeatures) = (1, 1, 2, 1)
        config.teacher = .sharded
        (config.imageSize, config.evalResize, config.mean, config.std, config.loaderThreads) = (32, 36, [0.5], [0.25], 2)
        (config.kdTemperature, config.kdWeight, config.kdMultiplier, config.teacherCheckpoint) = (4, 1, 10, "runs/ce")
        let encoded = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as? [String: Any])
        XCTAssertEqual(Set(encoded.keys), Set(TrainSetting.all.map(\.name)))
        XCTAssertEqual(Set(TrainSetting.values(of: config).keys), Set(TrainSetting.all.map(\.name)))
    }

    /// Each rank's batch must divide into K micro-batches of at least 2 samples.
    func testAccumulateStepsMustDivideEachRanksBatch() {
        var config = TrainConfig()
        (config.batchSize, config.accumulateSteps) = (24, 3)
        XCTAssertNoThrow(try config.validate(ranks: 2))
        XCTAssertThrowsError(try config.validate(ranks: 3)) {
            XCTAssertTrue("\($0)".contains("must divide each rank's 8 samples"), "\($0)")
        }
        XCTAssertThrowsError(try config.validate(ranks: 8)) { XCTAssertTrue("\($0)".contains("micro-batches of fewer than 2"), "\($0)") }
        config.accumulateSteps = nil
        XCTAssertEqual(config.microBatchesPerStep, 1, "unset means one batch per step")
    }

    /// The synthetic data set's samples are vectors: only `mlp` takes them.
    func testSyntheticDataNeedsTheMLP() {
        var config = TrainConfig()
        (config.dataset, config.model) = ("synthetic", "mlp")
        XCTAssertNoThrow(try config.validate())
        config.model = "cnn"
        XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("use --model mlp"), "\($0)") }
    }

    func testRankCountsMustDivideTheGlobalBatch() {
        var config = TrainConfig()
        config.batchSize = 6
        XCTAssertNoThrow(try config.validate(ranks: 3))
        XCTAssertThrowsError(try config.validate(ranks: 4)) { XCTAssertTrue("\($0)".contains("multiple of the 4 ranks"), "\($0)") }
        XCTAssertThrowsError(try config.validate(ranks: 6)) { XCTAssertTrue("\($0)".contains("fewer than 2 samples per rank"), "\($0)") }
    }
}
