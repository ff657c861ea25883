import Foundation
import TestSupport
import Training
import XCTest

/// `pskd train` settings from a config file and flags, and its errors, through the real executable.
final class CommandLineTests: XCTestCase {
    private func pskd(_ arguments: [String]) throws -> ExecutableRunner.Outcome {
        try ExecutableRunner.run(ExecutableRunner.executable.path, arguments, timeout: 120)
    }

    /// Flags override the file; the saved config.json uses the same keys and can be passed back.
    func testConfigFileThenFlags() throws {
        let out = temporaryPath("config")
        let yaml = try temporaryFile(
            "run.yaml",
            """
            model: mlp
            epochs: 5
            batch_size: 64
            max-train-samples: 128
            max-test-samples: 40
            milestones: [1, 2]
            lr-schedule: step
            policy: ls
            out: \(out)
            """)
        let first = try pskd(["train", "--config", yaml, "--epochs", "1"])
        XCTAssertEqual(first.status, 0, first.output)
        let saved = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/config.json"))) as? [String: Any])
        XCTAssertEqual(saved["epochs"] as? Int, 1)
        XCTAssertEqual(saved["batch-size"] as? Int, 64)
        XCTAssertEqual(saved["policy"] as? String, "ls")
        XCTAssertEqual(saved["milestones"] as? [Int], [1, 2])
        for key in ["out", "resume", "stop-after", "overwrite"] {
            XCTAssertNil(saved[key], "config.json holds the training's settings, not the job's (\(key))")
        }
        let repeated = temporaryPath("config-repeated")
        let again = try pskd(["train", "--config", out + "/config.json", "--out", repeated])
        XCTAssertEqual(again.status, 0, again.output)
        XCTAssertTrue(again.output.contains("policy ls (ε = 0.1), 1 epochs, global batch 64"), again.output)
        XCTAssertTrue(again.output.contains("run directory \(repeated)"), again.output)
    }

    func testConfigFileErrorsNameTheFileAndTheSetting() throws {
        let unknown = try temporaryFile("unknown.yaml", "epoch: 3\n")
        var outcome = try pskd(["train", "--config", unknown])
        XCTAssertNotEqual(outcome.status, 0)
        XCTAssertTrue(outcome.output.contains("\(unknown): unknown setting 'epoch'; did you mean 'epochs'?"), outcome.output)
        let wrongType = try temporaryFile("type.yaml", "epochs: three\n")
        outcome = try pskd(["train", "--config", wrongType])
        XCTAssertTrue(outcome.output.contains("setting 'epochs' must be a whole number, found 'three'"), outcome.output)
        outcome = try pskd(["train", "--config", "/nonexistent/run.yaml"])
        XCTAssertTrue(outcome.output.contains("/nonexistent/run.yaml: cannot read the config file"), outcome.output)
        let twice = try temporaryFile("twice.yaml", "batch_size: 64\nbatch-size: 32\n")
        outcome = try pskd(["train", "--config", twice])
        XCTAssertNotEqual(outcome.status, 0)
        XCTAssertTrue(
            outcome.output.contains("\(twice): setting 'batch-size' is given 2 times (batch-size, batch_size): keep one"), outcome.output)
        let binary = try temporaryFile("binary.yaml", Data([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 0xff]))
        outcome = try pskd(["train", "--config", binary])
        XCTAssertTrue(outcome.output.contains("\(binary): not a text file"), outcome.output)
    }

    /// Config files decode through `TrainConfig`'s coding (Yams' YAMLDecoder): a misspelt key names
    /// the nearest setting; a value of the wrong kind names the setting, what it must be and the
    /// value; a key without a value is refused; numbers in quotes and a list of epochs written
    /// as text read as they always did.
    func testConfigFilesDecodeThroughTheConfigurationsCoding() throws {
        let cases: [(contents: String, expected: String)] = [
            ("weight_decay_stlye: l2\n", "unknown setting 'weight_decay_stlye'; did you mean 'weight-decay-style'?"),
            ("teacher: mirrored\n", "setting 'teacher' must be one of replicated, sharded, found 'mirrored'"),
            ("nesterov: maybe\n", "setting 'nesterov' must be true or false, found 'maybe'"),
            ("milestones: [1, x]\n", "setting 'milestones' must be a list of whole numbers"),
            ("data-dir:\n", "setting 'data-dir' has no value: give one (a non-empty path) or remove it"),
            ("epochs: \"0\"\n", "epochs must be 1...100000, got 0"),
            ("milestones: \"2,1\"\n", "milestones must be increasing epochs ≥ 1"),
        ]
        for (index, (contents, expected)) in cases.enumerated() {
            let file = try temporaryFile("decode-\(index).yaml", contents)
            let outcome = try pskd(["train", "--config", file, "--out", temporaryPath("decode-\(index)")])
            XCTAssertNotEqual(outcome.status, 0, outcome.output)
            XCTAssertTrue(outcome.output.contains(expected), "\(contents): expected “\(expected)” in \(outcome.output)")
        }
    }

    /// Issue 24 item 5: a config file cannot exhaust memory or time. A 400-byte alias bomb (ten
    /// levels of nine aliases, 9^10 values expanded) used to allocate until the process died;
    /// as a mapping key it hashed for minutes. Anchors, aliases, files over 1 MiB and values over
    /// 4096 characters are refused at once, naming the limit, and a long value is cut in the message.
    func testConfigFilesCannotExhaustMemoryAndLongValuesAreCut() throws {
        let names = "abcdefghij".map(String.init)
        var levels = ["a: &a [" + Array(repeating: "\"lol\"", count: 9).joined(separator: ",") + "]"]
        for level in 1..<10 {
            levels.append(
                "\(names[level]): &\(names[level]) [" + Array(repeating: "*" + names[level - 1], count: 9).joined(separator: ",") + "]")
        }
        let bomb = levels.joined(separator: "\n") + "\n"
        XCTAssertLessThan(bomb.utf8.count, 500)
        let long = String(repeating: "d", count: 5000)
        let cases: [(name: String, contents: String, expected: [String])] = [
            ("alias-bomb", bomb, ["line 2, column 8: '*' begins a YAML alias", "aliases (*name) and anchors (&name) are not accepted"]),
            ("alias-key-bomb", bomb + "? *j\n: 1\n", ["'*' begins a YAML alias"]),
            ("flow-alias", "{\"epochs\":*e}\n", ["line 1, column 11: '*' begins a YAML alias"]),
            ("anchor", "epochs: &e 3\n", ["line 1: the anchor &e: YAML anchors (&name) and aliases (*name, << merges) are not accepted"]),
            (
                "huge-file", "epochs: 3\n" + String(repeating: "# padding\n", count: 110_000),
                ["the config file is larger than the limit of 1048576 bytes (1 MiB)"]
            ),
            (
                "long-value", "data-dir: \(long)\n",
                ["line 1: the value '\(long.prefix(60))…' (5000 characters) is longer than the limit of 4096 characters"]
            ),
        ]
        for (name, contents, expected) in cases {
            let file = try temporaryFile(name + ".yaml", contents)
            let out = temporaryPath(name)
            let outcome = try pskd(["train", "--config", file, "--out", out])
            XCTAssertNotEqual(outcome.status, 0, "\(name): \(outcome.output)")
            for text in expected {
                XCTAssertTrue(
                    outcome.output.contains("\(file): " + text) || outcome.output.contains(text),
                    "\(name): expected “\(text)” in \(outcome.output)")
            }
            XCTAssertTrue(outcome.output.contains(file), "\(name): the message names the file: \(outcome.output)")
            XCTAssertLessThan(outcome.output.utf8.count, 2_000, "\(name): no value is echoed whole: \(outcome.output.prefix(2_000))")
            XCTAssertLessThan(outcome.seconds, 20, "\(name) refused at once")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(name): nothing was created")
        }
        // Quoted text and comments with a '*' inside a word still read.
        let starred = try temporaryFile("starred.yaml", "epochs: 0 # 2*3\nout: \"\(temporaryPath("starred"))/a*b\"\n")
        let refused = try pskd(["train", "--config", starred])
        XCTAssertTrue(refused.output.contains("epochs must be 1...100000, got 0"), refused.output)
        // The same limit on the command line, and a long unknown value is cut too.
        let flag = try pskd(["train", "--data-dir", long])
        XCTAssertTrue(
            flag.output.contains(
                "command line: setting 'data-dir' is '\(long.prefix(60))…' (5000 characters), longer than the limit of 4096 characters"),
            flag.output)
        XCTAssertLessThan(flag.output.utf8.count, 1_000, flag.output)
        let wrongKind = try pskd(["train", "--epochs", String(repeating: "9x", count: 2000)])
        XCTAssertTrue(wrongKind.output.contains("setting 'epochs' must be a whole number, found '9x9x"), wrongKind.output)
        XCTAssertTrue(wrongKind.output.contains("…' (4000 characters)"), wrongKind.output)
        XCTAssertLessThan(wrongKind.output.utf8.count, 1_000, wrongKind.output)
    }

    /// Issue 24: `overwrite: true` in a config file replaced an existing run; `overwrite` and
    /// `resume` are command-line switches only, and a file giving one is refused by name.
    func testResumeAndOverwriteAreCommandLineSwitchesOnly() throws {
        for key in ["overwrite", "resume"] {
            let out = temporaryPath("file-\(key)")
            let file = try temporaryFile("\(key).yaml", "epochs: 1\n\(key): true\nout: \(out)\n")
            let outcome = try pskd(["train", "--config", file])
            XCTAssertNotEqual(outcome.status, 0, outcome.output)
            XCTAssertTrue(
                outcome.output.contains(
                    "\(file): setting '\(key)' is a command-line switch only (whether a job continues or replaces a run is decided "
                        + "each time, not by a file): remove it from the file and give --\(key) on the command line"), outcome.output)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "nothing was created")
        }
    }

    /// Issue 24: `--policy ce --teacher-checkpoint X` ignored the flag silently. A setting the
    /// chosen policy does not read is refused, from the command line or a file, naming the
    /// policy and which policies read it; its default value is accepted.
    func testSettingsThePolicyDoesNotReadAreRefused() throws {
        let cases: [([String], String)] = [
            (
                ["train", "--policy", "ce", "--teacher-checkpoint", "runs/ce"],
                "command line: setting 'teacher-checkpoint' is not read by policy ce, so it would be ignored; tf-kd-self reads it: "
                    + "drop 'teacher-checkpoint', or choose that policy"
            ),
            (
                ["train", "--policy", "ls", "--alpha-t", "0.5"],
                "setting 'alpha-t' is not read by policy ls, so it would be ignored; pskd reads it"
            ),
            (
                ["train", "--policy", "ce", "--kd-weight", "2"],
                "setting 'kd-weight' is not read by policy ce, so it would be ignored; cs-kd, tf-kd-self, tf-kd-reg read it: "
                    + "drop 'kd-weight', or choose one of those policies"
            ),
            (["train", "--teacher", "sharded", "--policy", "tf-kd-reg"], "setting 'teacher' is not read by policy tf-kd-reg"),
        ]
        for (arguments, expected) in cases {
            let outcome = try pskd(arguments + ["--out", temporaryPath("unread")])
            XCTAssertNotEqual(outcome.status, 0, "\(arguments): \(outcome.output)")
            XCTAssertTrue(outcome.output.contains(expected), "\(arguments): expected “\(expected)” in \(outcome.output)")
        }
        let file = try temporaryFile("unread.yaml", "label_smoothing: 0.2\n")
        let fromFile = try pskd(["train", "--config", file, "--out", temporaryPath("unread")])
        XCTAssertTrue(fromFile.output.contains("\(file): setting 'label-smoothing' is not read by policy pskd"), fromFile.output)
        // The defaults (as experiment.sh gives every policy) pass on to the next check.
        let defaults = try pskd(["train", "--policy", "ce", "--alpha-t", "0.8", "--label-smoothing", "0.1", "--epochs", "0"])
        XCTAssertTrue(defaults.output.contains("epochs must be 1...100000, got 0"), defaults.output)
    }

    func testMissingDataDirectoryNamesTheFileAndTheFix() throws {
        let outcome = try pskd(["train", "--data-dir", "/nonexistent-data", "--epochs", "1", "--out", temporaryPath("no-data")])
        XCTAssertNotEqual(outcome.status, 0)
        XCTAssertTrue(outcome.output.contains("/nonexistent-data"), outcome.output)
    }

    /// Negative numbers parse as values (not as unknown flags) and are refused by name; bad
    /// values that used to crash, hang or be taken silently are refused before anything starts.
    func testOutOfRangeValuesAreRefusedBeforeAnythingStarts() throws {
        let cases: [([String], String)] = [
            (["train", "--seed", "-7"], "setting 'seed' must be a whole number ≥ 0, found '-7'"),
            (["train", "--batch-size", "-4"], "batch-size must be at least 2"),
            (["train", "--prefetch", "-1"], "prefetch must be 0...64, got -1"),
            (["train", "--threads", "0"], "threads must be 1...1024, got 0"),
            (["train", "--out", ""], "out must be a non-empty path, got ''"),
            (["info", "--threads", "0"], "threads must be 1...1024, got 0"),
            (["info", "--threads", "-3"], "threads must be 1...1024, got -3"),
            (["bench", "--threads", "0"], "threads must be 1...1024, got 0"),
            (["bench", "--threads", "2000"], "threads must be 1...1024, got 2000"),
            (["evaluate", "--checkpoint", "/nonexistent", "--threads", "0"], "threads must be 1...1024, got 0"),
            (["evaluate", "--checkpoint", "/nonexistent", "--data-dir="], "data-dir must be a non-empty path, got ''"),
            (["bench", "--loader", "--data-dir", ""], "data-dir must be a non-empty path, got ''"),
            (["evaluate", "--checkpoint", "/nonexistent", "--max-test-samples", "0"], "max-test-samples must be at least 1, got 0"),
            (["bench", "--model", "resnet9000"], "model must be one of "),
            (["bench", "--teacher", "mirrored"], "teacher must be one of replicated, sharded, got 'mirrored'"),
            (["train", "--policy", "kd"], "policy must be one of "),
            (["bench", "--steps", "0"], "--steps must be 1...100000, got 0"),
            (["bench", "--warmup", "-1"], "--warmup must be 0...100000, got -1"),
            (["bench", "--batch-size", "-4"], "--batch-size must be at least 2, got -4"),
            (["train", "--data-dir=", "--out", temporaryPath("empty-data-dir")], "data-dir must be a non-empty path, got ''"),
            (["train", "--lr", "inf"], "lr must be a positive finite number, got inf"),
            (["train", "--ece-bins", "100000000"], "ece-bins must be 1...1000, got 100000000"),
            (["train", "--milestones", "5,0,-3"], "milestones must be increasing epochs ≥ 1"),
            (["evaluate", "--checkpoint", "/nonexistent", "--ece-bins", "0"], "ece-bins must be 1...1000, got 0"),
            (["evaluate", "--checkpoint", "/nonexistent", "--ece-bins", "-1"], "ece-bins must be 1...1000, got -1"),
            // A later flag overrides an earlier one; --name=value; unknown flags name the nearest.
            (["train", "--prefetch", "3", "--prefetch=-1"], "prefetch must be 0...64, got -1"),
            (["train", "--prefetch=-1", "--prefetch", "3", "--epochs", "0"], "epochs must be 1...100000, got 0"),
            (["train", "--epoch", "3"], "Unknown option '--epoch'"),
            (["train", "--epochs"], "Missing value for '--epochs <integer>'"),
            (["train", "7"], "Unexpected argument '7'"),
            // A switch may still be written --name=true or --name=false.
            (["train", "--drop-last=true", "--resume=false", "--overwrite=false", "--epochs", "0"], "epochs must be 1...100000, got 0"),
            (["train", "--drop-last=maybe"], "--drop-last is a switch: give it alone, or --drop-last=true or --drop-last=false"),
        ]
        let cases2: [([String], String)] = [
            (
                ["train", "--batch-size", "100000", "--max-test-samples", "10", "--out", temporaryPath("huge-batch")],
                "batch-size 100000 is larger than the 60000 training samples"
            ),
            (
                ["train", "--out", "/etc/hostname/run"],
                "cannot create the run directory /etc/hostname/run: /etc/hostname is a file, not a directory; choose another --out"
            ),
        ]
        for (arguments, expected) in cases + cases2 {
            let outcome = try ExecutableRunner.run(ExecutableRunner.executable.path, arguments, timeout: 30)
            XCTAssertNotEqual(outcome.status, 0, "\(arguments): \(outcome.output)")
            XCTAssertTrue(outcome.output.contains(expected), "\(arguments): expected “\(expected)” in \(outcome.output)")
            XCTAssertLessThan(outcome.seconds, 20, "\(arguments) refused at once")
        }
    }

    /// `pskd train --help` lists every setting under OPTIONS with its value's name, default and
    /// range (or choices), as the table declares them.
    func testHelpListsEverySettingWithItsTypeDefaultAndRange() throws {
        let outcome = try pskd(["train", "--help"])
        XCTAssertEqual(outcome.status, 0, outcome.output)
        let help = outcome.output.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for setting in TrainSetting.all {
            let usage =
                setting.kind == .toggle ? "--\(setting.name)" : "--\(setting.name) <\(setting.valueName)>"
            XCTAssertTrue(help.contains(usage), "--help lists \(usage): \(help)")
            XCTAssertTrue(help.contains(setting.helpText.split(whereSeparator: \.isWhitespace).joined(separator: " ")), setting.name)
            if let choices = setting.choices {
                XCTAssertTrue(help.contains("(values: \(choices.joined(separator: ", ")))"), "\(setting.name)'s choices: \(help)")
            }
        }
        XCTAssertTrue(help.contains("--drop-last/--no-drop-last"), help)
    }

    /// `pskd --generate-completion-script bash` completes `pskd train --opt<TAB>` and `--policy <TAB>`.
    func testBashCompletionKnowsTheTrainSettingsAndTheirChoices() throws {
        let script = try pskd(["--generate-completion-script", "bash"])
        XCTAssertEqual(script.status, 0, script.output)
        for setting in TrainSetting.all {
            XCTAssertTrue(script.output.contains("--\(setting.name)"), "the script completes --\(setting.name)")
        }
        for name in TrainingPolicies.names { XCTAssertTrue(script.output.contains("'\(name)'"), "the policy \(name) is completed") }
        let file = try temporaryFile("pskd-completion.bash", script.output)
        // As bash calls it on TAB: the words, the cursor's word, `_pskd COMMAND CURRENT PREVIOUS` (extglob on, as bash-completion has it).
        func complete(_ words: [String]) throws -> [String] {
            let line = words.map { "'\($0)'" }.joined(separator: " ")
            let command = """
                source '\(file)'
                COMP_WORDS=(\(line)); COMP_CWORD=\(words.count - 1); COMP_LINE="\(words.joined(separator: " "))"; COMP_POINT=${#COMP_LINE}
                _pskd pskd '\(words[words.count - 1])' '\(words[words.count - 2])'
                printf '%s\\n' "${COMPREPLY[@]}"
                """
            let outcome = try ExecutableRunner.run("/bin/bash", ["-O", "extglob", "-c", command], timeout: 60)
            return outcome.output.split(separator: "\n").map(String.init)
        }
        XCTAssertEqual(Set(try complete(["pskd", "train", "--opt"])), ["--optimizer"])
        XCTAssertEqual(Set(try complete(["pskd", "train", "--policy", ""])), Set(TrainingPolicies.names))
        XCTAssertEqual(Set(try complete(["pskd", "train", "--weight-decay-style", ""])), ["l2", "decoupled"])
        XCTAssertEqual(Set(try complete(["pskd", "bench", "--teacher", ""])), ["replicated", "sharded"])
        // zsh and fish scripts are generated from the same declarations.
        for shell in ["zsh", "fish"] {
            let other = try pskd(["--generate-completion-script", shell])
            XCTAssertEqual(other.status, 0, other.output)
            XCTAssertTrue(other.output.contains("optimizer") && other.output.contains("alpha-t"), "\(shell): \(other.output.prefix(500))")
            for name in TrainingPolicies.names { XCTAssertTrue(other.output.contains(name), "\(shell) completes the policy \(name)") }
        }
    }
}
