import Foundation

/// ECE with another bin count than the runs were trained with: the reliability bins of
/// metrics.jsonl cannot be re-binned, so `pskd evaluate --ece-bins N --json` is run on each
/// finished run and its output saved as `RUN/ece-Nbins.json` (launch/experiment.sh does this
/// for a recipe's `also-ece-bins`). The report gives one table per such bin count: per policy,
/// mean ± std over the runs whose evaluation is of their final epoch.
public struct ExtraECE: Sendable {
    /// One `ece-Nbins.json`.
    public struct Evaluation: Sendable, Equatable {
        public var bins: Int
        public var file: String
        /// The checkpoint's epoch and the test ECE (%); nil when the file holds no evaluation.
        public var epoch: Int?
        public var testECE: Double?
        public var problem: String?
    }

    private struct Line: Decodable {
        var eceBins: Int
        var epoch: Int
        var testEce: Double
    }

    /// The bin count of the table.
    public let bins: Int
    /// The bin counts the runs were trained with (the other tables').
    public let trainedBins: [Int]
    /// Per policy group (the report's order): its label and the summary over its runs.
    public let rows: [(label: String, summary: Summary)]

    /// The `ece-Nbins.json` files of a run directory. A file is the output of `pskd evaluate
    /// --json`, possibly with a launcher's lines around it: its last line that is a JSON object counts.
    public static func evaluations(in path: String) -> [Evaluation] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
        return names.compactMap { name -> Evaluation? in
            guard name.hasPrefix("ece-"), name.hasSuffix("bins.json"),
                let bins = Int(name.dropFirst(4).dropLast(9)), bins > 0
            else { return nil }
            let file = (path as NSString).appendingPathComponent(name)
            var evaluation = Evaluation(bins: bins, file: file)
            let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
            guard let json = text.split(separator: "\n").last(where: { $0.hasPrefix("{") }) else {
                evaluation.problem = "\(file) holds no output of pskd evaluate --json"
                return evaluation
            }
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            do {
                let line = try decoder.decode(Line.self, from: Data(json.utf8))
                guard line.eceBins == bins else {
                    evaluation.problem = "\(file) holds an evaluation with \(line.eceBins) bins"
                    return evaluation
                }
                evaluation.epoch = line.epoch
                evaluation.testECE = line.testEce
            } catch {
                evaluation.problem = "\(file) is not the output of pskd evaluate --json: \(RunDirectory.describe(error))"
            }
            return evaluation
        }
    }

    /// One table per bin count that some run was evaluated with, and the warnings: files that
    /// cannot be read, evaluations of another epoch than the run's final one (left out).
    static func tables(of groups: [PolicyGroup]) -> (tables: [ExtraECE], warnings: [String]) {
        var warnings: [String] = []
        let runs = groups.flatMap(\.runs)
        for run in runs {
            for evaluation in run.evaluations {
                if let problem = evaluation.problem {
                    warnings.append(problem + ": left out of the \(evaluation.bins)-bin ECE table.")
                } else if let epoch = evaluation.epoch, let final = run.epochs.last?.epoch, epoch != final {
                    warnings.append(
                        "\(evaluation.file) evaluates epoch \(epoch), not the run's final epoch \(final): left out of the \(evaluation.bins)-bin ECE table."
                    )
                }
            }
        }
        let trained = Set(runs.map(\.configuration.eceBins)).sorted()
        let binCounts = Set(runs.flatMap { $0.evaluations.map(\.bins) }).sorted()
        let tables = binCounts.map { bins in
            let rows = groups.compactMap { group -> (label: String, summary: Summary)? in
                let values = group.runs.compactMap { run -> Double? in
                    guard let evaluation = run.evaluations.first(where: { $0.bins == bins }), let value = evaluation.testECE,
                        evaluation.epoch == run.epochs.last?.epoch
                    else { return nil }
                    return value
                }
                return values.isEmpty ? nil : (group.label, Summary(values))
            }
            return ExtraECE(bins: bins, trainedBins: trained, rows: rows)
        }
        return (tables.filter { !$0.rows.isEmpty }, warnings)
    }

    /// What the table shows, in a sentence.
    public var caption: String {
        "ECE (%) with \(bins) equal-width bins (pskd evaluate --ece-bins \(bins) on each run's final checkpoint; "
            + "the tables above use \(trainedBins.map(String.init).joined(separator: ", "))), mean ± std over seeds:"
    }

    /// `mean ± std`, the std shown (0.00) for one run too.
    func cell(_ summary: Summary) -> String {
        String(format: "%.2f ± %.2f", summary.mean, summary.standardDeviation)
    }

    /// The table as Markdown, after its caption.
    public var markdown: String {
        var lines = [caption, "", "| Policy | ECE (%), \(bins) bins | Runs |", "|---|---|---|"]
        for row in rows { lines.append("| \(row.label) | \(cell(row.summary)) | \(row.summary.count) |") }
        return lines.joined(separator: "\n")
    }

    /// The table as a section of the HTML page.
    public var html: String {
        var html = "<section id=\"ece-\(bins)-bins\"><h2>ECE with \(bins) bins</h2><p>\(HTML.escape(caption))</p>"
        html += "<table class=\"metrics\"><thead><tr><th>policy</th><th>ECE (%), \(bins) bins</th><th>runs</th></tr></thead><tbody>"
        for row in rows {
            html += "<tr><th scope=\"row\">\(HTML.escape(row.label))</th><td>\(cell(row.summary))</td><td>\(row.summary.count)</td></tr>"
        }
        return html + "</tbody></table></section>\n"
    }
}
