import ArgumentParser
import Foundation
import Reporting

/// `pskd report`: one self-contained HTML page comparing the runs' policies.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write an HTML report (metrics table, training curves, reliability diagrams) of finished runs.",
        discussion: """
            Runs are grouped by policy (with its ε or α_T); the table shows the final epoch's test metrics \
            as mean ± std over seeds. A directory without config.json that holds run directories \
            (an experiment folder) stands for all of them. The page is self-contained: inline CSS and \
            SVG, no script, no network. The Markdown table is printed as well. A run that cannot be \
            read (or has no epoch yet) is left out and named with the reason, among the warnings and \
            on the page; the exit status is non-zero only when no run can be reported, or when --failed \
            names runs (then 1, after the report is written). A run directory holding ece-Nbins.json \
            (the output of pskd evaluate --ece-bins N --json on it) adds a table of ECE with N bins.
            """)

    @Argument(help: "Run directories (each with config.json and metrics.jsonl), or folders of them.")
    var runDirectories: [String] = []

    @Option(name: .shortAndLong, help: "The HTML file to write.")
    var output = "report.html"

    @Option(help: "The page's title.")
    var title = "PS-KD experiment report"

    @Option(help: "A run of the experiment that failed (repeatable): named in the report and the output, exit status 1.")
    var failed: [String] = []

    func validate() throws {
        guard !runDirectories.isEmpty || !failed.isEmpty else { throw ValidationError("give at least one run directory") }
    }

    func run() throws {
        let paths = try runDirectories.flatMap(Self.expand)
        let report = try ExperimentReport(paths: paths, failed: failed)
        let html = HTMLReport(report: report, title: title).render()
        do {
            try Data(html.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
        } catch {
            throw ReportError("cannot write \(output): \(error.localizedDescription)")
        }
        print("Final epoch:\n\n" + report.markdownTable())
        if let differences = report.markdownDifferences() { print("\n" + differences) }
        print(
            "\nBest top-1 epoch of each run (chosen on the test set, as the official code keeps it):\n\n"
                + report.markdownTable(at: .bestTop1) + "\n")
        for table in report.extraECE { print(table.markdown + "\n") }
        for warning in report.warnings { print("warning: \(warning)") }
        print(
            "pskd report: \(report.runCount) runs, \(report.groups.count) policies → \(output)"
                + (report.unreadable.isEmpty
                    ? ""
                    : "; \(report.unreadable.count) run(s) left out, unreadable: "
                        + report.unreadable.map(\.path).joined(separator: ", ") + " (the reasons are above)"))
        if !failed.isEmpty {
            FileHandle.standardError.write(
                Data(
                    ("pskd report: \(failed.count) of \(failed.count + paths.count) runs failed and are not in the report: "
                        + failed.joined(separator: " ") + "\n  (their logs: RUN/train.log)\n").utf8))
            throw ExitCode(1)
        }
    }

    /// A run directory stands for itself; a folder without config.json for the run directories in it.
    static func expand(_ path: String) throws -> [String] {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ReportError("\(path) does not exist: give a run directory (the --out of pskd train)")
        }
        guard isDirectory.boolValue else {
            throw ReportError("\(path) is a file: give a run directory (the --out of pskd train)")
        }
        if manager.fileExists(atPath: (path as NSString).appendingPathComponent("config.json")) { return [path] }
        let children = ((try? manager.contentsOfDirectory(atPath: path)) ?? []).sorted()
            .map { (path as NSString).appendingPathComponent($0) }
            .filter { manager.fileExists(atPath: ($0 as NSString).appendingPathComponent("config.json")) }
        guard !children.isEmpty else {
            throw ReportError("\(path) has no config.json, nor any run directory inside: it is not a pskd run directory")
        }
        return children
    }
}
