import Foundation
import Training

/// Text for HTML and SVG.
public enum HTML {
    /// `text` with the five characters that matter in element content and in quoted attribute
    /// values replaced by entities.
    public static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}

/// The experiment report as one self-contained HTML page: inline CSS and SVG, no script, no
/// external resource.
public struct HTMLReport {
    public let report: ExperimentReport
    public let title: String
    /// Shown in the header; nil leaves the time out (reproducible output).
    public let generated: Date?

    /// Okabe–Ito colours (distinguishable with colour-vision deficiencies), by policy order.
    static let palette = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000"]

    public init(report: ExperimentReport, title: String = "PS-KD experiment report", generated: Date? = Date()) {
        self.report = report
        self.title = title
        self.generated = generated
    }

    func color(_ index: Int) -> String { Self.palette[index % Self.palette.count] }

    /// The whole page.
    public func render() -> String {
        var html = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(HTML.escape(title))</title>
            <style>\(Self.css)</style>
            </head>
            <body>
            <main>

            """
        html += header()
        html += warnings()
        html += resultsTable()
        html += curves()
        html += reliability()
        html += settingsSection()
        html += report.extraECE.map(\.html).joined()
        html +=
            "<footer id=\"end\">Made by <code>pskd report</code> from the runs’ <code>config.json</code> and <code>metrics.jsonl</code>. "
            + "Self-contained: no script, no network.</footer>\n</main>\n</body>\n</html>\n"
        return html
    }

    // MARK: - Sections

    func header() -> String {
        let groups = report.groups
        let seeds = Set(groups.flatMap(\.seeds)).sorted().map(String.init).joined(separator: ", ")
        let first = report.groups[0].runs[0].configuration
        var line =
            "\(report.runCount) runs of \(first.model) on \(first.dataset): \(groups.count) "
            + (groups.count == 1 ? "policy" : "policies") + " × seeds \(seeds)"
        if let generated {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withFullDate, .withTime, .withColonSeparatorInTime, .withSpaceBetweenDateAndTime]
            line += "; generated \(formatter.string(from: generated)) UTC"
        }
        return "<header><h1>\(HTML.escape(title))</h1><p class=\"subtitle\">\(HTML.escape(line))</p></header>\n"
    }

    func warnings() -> String {
        let notes = report.failureNotes + report.warnings
        guard !notes.isEmpty else { return "" }
        return "<section class=\"warnings\" id=\"warnings\"><h2>Caveats</h2><ul>"
            + notes.map { "<li>\(HTML.escape($0))</li>" }.joined()
            + "</ul></section>\n"
    }

    func resultsTable() -> String {
        var html = "<section id=\"results\">" + metricsTable(at: .final)
        html += differences()
        html += metricsTable(at: .bestTop1)

        html += "<details><summary>Every run</summary><table class=\"metrics runs\"><thead><tr><th>policy</th><th>seed</th><th>epoch</th>"
        html += Metric.allCases.map { "<th>\(HTML.escape($0.title))</th>" }.joined()
        html += "<th>training s / epoch</th><th>run directory</th></tr></thead><tbody>"
        for group in report.groups {
            for run in group.runs {
                guard let last = run.epochs.last else { continue }
                html += "<tr><td>\(HTML.escape(group.label))</td><td>\(run.configuration.seed)</td><td>\(last.epoch)</td>"
                html += Metric.allCases.map { "<td>\(String(format: "%.\($0.digits)f", $0.value(last)))</td>" }.joined()
                let seconds = Summary(run.epochs.map(\.seconds)).mean
                html += "<td>\(String(format: "%.1f", seconds))</td><td><code>\(HTML.escape(run.path))</code></td></tr>"
            }
        }
        html += "</tbody></table></details></section>\n"
        return html
    }

    /// Each policy's final means minus those of ce, coloured by direction.
    /// The mean ± std table of the epochs `choice` picks, the best mean of each column in bold.
    func metricsTable(at choice: EpochChoice) -> String {
        let groups = report.groups
        let epochs = Set(groups.flatMap { $0.records(choice).map(\.epoch) }).sorted().map(String.init).joined(separator: ", ")
        var html: String
        switch choice {
        case .final:
            html =
                "<h2>Test metrics at the final epoch</h2><p>Mean ± sample standard deviation over seeds, at epoch \(HTML.escape(epochs)), on the test set. "
        case .bestTop1:
            html =
                "<h3>At each run’s best top-1 epoch</h3><p>The epoch of lowest test top-1 error of each run (epochs \(HTML.escape(epochs))), "
                + "the checkpoint the official PS-KD code keeps: chosen on the test set, so optimistic. "
        }
        html +=
            "Lower is better for every column; the best mean of each column is in bold. "
            + "ECE with \(HTML.escape(report.settings.first { $0.name == "ECE bins" }?.values.joined(separator: "/") ?? "?")) equal-width bins.</p>"
        html += "<table class=\"metrics\"><thead><tr><th>policy</th><th>seeds</th>"
        html += Metric.allCases.map { "<th>\(HTML.escape($0.title))</th>" }.joined()
        html += "</tr></thead><tbody>"
        let best = Dictionary(
            uniqueKeysWithValues: Metric.allCases.map { metric in
                (metric, groups.map { $0.summary(metric, at: choice).mean }.filter(\.isFinite).min())
            })
        for (index, group) in groups.enumerated() {
            html +=
                "<tr><th scope=\"row\"><span class=\"swatch\" style=\"background:\(color(index))\"></span>\(HTML.escape(group.label))</th>"
            html += "<td>\(group.distinctSeeds)</td>"
            for metric in Metric.allCases {
                let summary = group.summary(metric, at: choice)
                let cell = HTML.escape(ExperimentReport.format(summary, digits: metric.digits))
                let isBest = groups.count > 1 && summary.mean == best[metric].flatMap { $0 }
                html += isBest ? "<td><strong>\(cell)</strong></td>" : "<td>\(cell)</td>"
            }
            html += "</tr>"
        }
        return html + "</tbody></table>"
    }

    func differences() -> String {
        guard let baseline = report.baseline, report.groups.count > 1 else { return "" }
        var html =
            "<h3>Difference to ce</h3><p>Mean of the policy minus mean of ce at the final epoch: negative (green) is better. "
            + "Marked ≈ (grey) when the difference is no larger than the larger of the two standard deviations over seeds.</p>"
        html += "<table class=\"metrics differences\"><thead><tr><th>policy − ce</th>"
        html += Metric.allCases.map { "<th>\(HTML.escape($0.title))</th>" }.joined() + "</tr></thead><tbody>"
        for group in report.groups where group.label != baseline.label {
            html += "<tr><th scope=\"row\">\(HTML.escape(group.label))</th>"
            for entry in report.difference(group, to: baseline) {
                let text = ExperimentReport.signed(entry.delta, digits: entry.metric.digits)
                let kind = entry.withinSpread ? "same" : (entry.delta < 0 ? "better" : "worse")
                html += "<td class=\"\(kind)\">\(HTML.escape(text))\(entry.withinSpread ? " ≈" : "")</td>"
            }
            html += "</tr>"
        }
        return html + "</tbody></table>"
    }

    func curves() -> String {
        var html = "<section id=\"curves\"><h2>Training curves</h2>"
        html +=
            "<p>Training loss and test metrics after each epoch: mean over the seeds that reached the epoch (line) "
            + "and ± one standard deviation where there are several (band).</p><div class=\"figures\">"
        let charts: [(String, String, (EpochRecord) -> Double)] = [
            ("Training loss", "train loss (soft-target cross-entropy)", \.trainLoss),
            ("Test top-1 error", Metric.top1Error.title, Metric.top1Error.value), ("Test ECE", Metric.ece.title, Metric.ece.value),
            ("Test NLL", Metric.nll.title, Metric.nll.value), ("Test AURC", Metric.aurc.title, Metric.aurc.value),
        ]
        for (chartTitle, yLabel, value) in charts {
            let series = report.groups.enumerated().map { index, group in
                let curve = group.curve(value)
                let spread = curve.filter { $0.summary.count > 1 }
                return ChartSeries(
                    name: group.label, color: color(index),
                    points: curve.map { (Double($0.epoch), $0.summary.mean) },
                    band: spread.map {
                        (Double($0.epoch), $0.summary.mean - $0.summary.standardDeviation, $0.summary.mean + $0.summary.standardDeviation)
                    })
            }
            html +=
                "<figure>" + SVGChart.lineChart(title: chartTitle, xLabel: "epoch", yLabel: yLabel, series: series)
                + "</figure>"
        }
        html += "</div></section>\n"
        return html
    }

    func reliability() -> String {
        var html = "<section id=\"reliability\"><h2>Reliability diagrams</h2>"
        html +=
            "<p>Final epoch, test set, bins pooled over the seeds (counts added; accuracy and mean confidence weighted by count). "
            + "Bars: accuracy of the samples whose top-label confidence falls in the bin; shaded: the gap to the bin’s mean confidence "
            + "(below the diagonal = over-confident). The ECE in each panel is that of the pooled bins.</p><div class=\"figures\">"
        for (index, group) in report.groups.enumerated() {
            let bins = group.pooledReliability
            guard !bins.isEmpty else {
                html += "<figure class=\"missing\"><p>\(HTML.escape(group.label)): no reliability bins to pool.</p></figure>"
                continue
            }
            html +=
                "<figure>"
                + SVGChart.reliabilityDiagram(
                    title: group.label, bins: bins, color: color(index), ece: group.pooledECE,
                    id: "gap-\(index)")
                + "</figure>"
        }
        html += "</div></section>\n"
        return html
    }

    func settingsSection() -> String {
        var html =
            "<section id=\"settings\"><h2>Run settings</h2><p>Common to all runs unless marked as varying.</p><table class=\"settings\"><tbody>"
        for setting in report.settings {
            let value = setting.values.map(HTML.escape).joined(separator: " / ")
            html +=
                "<tr><th scope=\"row\">\(HTML.escape(setting.name))</th><td>"
                + (setting.varies ? "<span class=\"varies\">varies: \(value)</span>" : value) + "</td></tr>"
        }
        html += "</tbody></table>"
        html +=
            "<h3>Policies</h3><table class=\"metrics policies\"><thead><tr><th>policy</th><th>training target</th><th>seeds</th><th>training s / epoch</th><th>training images / s</th></tr></thead><tbody>"
        for group in report.groups {
            let timing = group.timing
            html +=
                "<tr><td>\(HTML.escape(group.label))</td><td>\(HTML.escape(Self.target(group.policy)))</td>"
                + "<td>\(group.seeds.map(String.init).joined(separator: ", "))</td>"
                + "<td>\(String(format: "%.1f", timing.secondsPerEpoch))</td><td>\(String(format: "%.0f", timing.samplesPerSecond))</td></tr>"
        }
        html += "</tbody></table></section>\n"
        return html
    }

    /// The training target a policy uses.
    static func target(_ policy: String) -> String {
        TrainingPolicies.named(policy)?.summary ?? "?"
    }

    static let css = """
        :root { color-scheme: light; }
        body { margin: 0; background: #f6f7f9; color: #1d1f23; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
        main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 40px; }
        h1 { font-size: 26px; margin: 0 0 4px; }
        h2 { font-size: 19px; margin: 0 0 8px; }
        .subtitle { color: #555; margin: 0; }
        header, section { background: #fff; border: 1px solid #dfe2e7; border-radius: 8px; padding: 16px 20px; margin: 0 0 18px; }
        section.warnings { background: #fff8e6; border-color: #f0c36d; }
        table { border-collapse: collapse; margin: 8px 0; font-variant-numeric: tabular-nums; }
        th, td { padding: 5px 10px; border-bottom: 1px solid #e6e8eb; text-align: right; white-space: nowrap; }
        th:first-child, td:first-child { text-align: left; }
        thead th { background: #f0f2f5; font-weight: 600; }
        table.settings th { text-align: left; font-weight: 600; color: #444; }
        table.settings td { text-align: left; white-space: normal; }
        table.policies td:nth-child(2) { text-align: left; }
        h3 { font-size: 16px; margin: 14px 0 4px; }
        td.better { color: #0a7a3a; font-weight: 600; }
        td.worse { color: #b3261e; font-weight: 600; }
        td.same { color: #777; }
        .varies { color: #a94400; font-weight: 600; }
        .swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin-right: 7px; vertical-align: -1px; }
        .figures { display: flex; flex-wrap: wrap; gap: 14px; }
        figure { margin: 0; border: 1px solid #eceef1; border-radius: 6px; background: #fff; }
        figure svg { display: block; max-width: 100%; height: auto; }
        figure.missing { padding: 16px; color: #a94400; }
        details { margin-top: 10px; }
        summary { cursor: pointer; color: #2a5db0; }
        code { font: 13px ui-monospace, "DejaVu Sans Mono", monospace; }
        footer { color: #666; font-size: 13px; padding: 4px 2px; }
        """
}
