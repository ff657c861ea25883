import Foundation
import RunFixtures
import Training
import XCTest

@testable import Reporting

#if canImport(FoundationXML)
import FoundationXML
#endif

/// The SVG charts and the HTML page: well-formed, complete, escaped.
final class RenderingTests: XCTestCase {
    /// Parses `xml`, failing with the parser's error; returns the element names in order and their attributes.
    private func elements(_ xml: String, file: StaticString = #filePath, line: UInt = #line) -> [(
        name: String, attributes: [String: String]
    )] {
        final class Collector: NSObject, XMLParserDelegate {
            var elements: [(name: String, attributes: [String: String])] = []
            func parser(
                _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]
            ) {
                elements.append((name, attributes))
            }
        }
        let parser = XMLParser(data: Data(xml.utf8))
        let collector = Collector()
        parser.delegate = collector
        XCTAssertTrue(
            parser.parse(), "not well-formed XML: \(String(describing: parser.parserError)) in \(xml.prefix(300))…", file: file, line: line)
        return collector.elements
    }

    func testHTMLEscapeReplacesTheFiveSpecialCharacters() {
        XCTAssertEqual(
            HTML.escape(#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;")
        XCTAssertEqual(HTML.escape("α_T = 0.8, ε ≤ 1"), "α_T = 0.8, ε ≤ 1")
        XCTAssertEqual(HTML.escape(""), "")
    }

    func testNiceTicksAreRoundAndCoverTheRange() {
        XCTAssertEqual(SVGChart.niceTicks(0, 1, count: 5), [0, 0.2, 0.4, 0.6000000000000001, 0.8, 1])
        let ticks = SVGChart.niceTicks(13.2, 31.7, count: 5)
        XCTAssertEqual(ticks.first, 10)
        XCTAssertEqual(ticks.last, 35)
        XCTAssertEqual(ticks[1] - ticks[0], 5)
        XCTAssertEqual(SVGChart.niceTicks(1, 3, count: 6, integers: true), [1, 2, 3])
        XCTAssertEqual(SVGChart.format(0.6000000000000001, step: 0.2), "0.6")
        XCTAssertEqual(SVGChart.format(7.5, step: 2.5), "7.5")
        XCTAssertEqual(SVGChart.format(0.25, step: 0.25), "0.25")
        XCTAssertEqual(SVGChart.format(20, step: 5), "20")
    }

    /// Six policies' names do not fit on one legend row of a 530-px chart: the legend wraps, every
    /// entry stays inside the chart, and the chart grows by the extra rows.
    func testLegendWrapsInsideTheChart() {
        let names = [
            "ce", "ls (ε = 0.1)", "cs-kd (T = 4, λ = 1)", "tf-kd-self (α = 0.95, T = 6, ×50·C/100)",
            "tf-kd-reg (α = 0.1, T = 20, ×100·C/100)", "pskd (α_T = 0.8)",
        ]
        let places = SVGChart.legendLayout(names, from: 58, to: 516)
        XCTAssertEqual(places.first?.row, 0)
        XCTAssertGreaterThan(places.last!.row, 0, "six entries need more than one row")
        for (name, place) in zip(names, places) {
            XCTAssertLessThanOrEqual(place.x + 23 + 7 * Double(name.count), 516 + 1e-9, name)
        }
        let series = names.map { ChartSeries(name: $0, color: "#000", points: [(1, 1), (2, 2)]) }
        let svg = SVGChart.lineChart(title: "t", xLabel: "x", yLabel: "y", series: series)
        let root = elements(svg).first { $0.name == "svg" }
        XCTAssertEqual(root?.attributes["height"], String(Int(310 + 16 * places.last!.row)))
        for name in names { XCTAssertTrue(svg.contains(name.replacingOccurrences(of: "&", with: "&amp;")), name) }
    }

    func testLineChartHasAxesTicksLabelsAndOnePolylinePerSeries() {
        let series = [
            ChartSeries(
                name: "ce", color: "#0072B2", points: [(1, 30), (2, 20), (3, 15)],
                band: [(1, 28, 32), (2, 19, 21), (3, 14, 16)]),
            ChartSeries(name: "pskd <α_T = 0.8>", color: "#009E73", points: [(1, 29), (2, 18), (3, 12)]),
        ]
        let svg = SVGChart.lineChart(title: "Top-1 & friends", xLabel: "epoch", yLabel: "error (%)", series: series)
        let parsed = elements(svg)
        XCTAssertEqual(parsed.first?.name, "svg")
        let polylines = parsed.filter { $0.name == "polyline" }
        XCTAssertEqual(polylines.count, 2)
        XCTAssertEqual(polylines[0].attributes["points"]?.split(separator: " ").count, 3)
        XCTAssertEqual(polylines[0].attributes["stroke"], "#0072B2")
        XCTAssertEqual(parsed.filter { $0.name == "polygon" }.count, 1, "one band, for the series that has one")
        XCTAssertEqual(parsed.filter { $0.name == "circle" }.count, 6)
        XCTAssertGreaterThan(parsed.filter { $0.name == "text" }.count, 10, "title, legend, tick labels and axis titles")
        XCTAssertTrue(svg.contains(">epoch</text>"))
        XCTAssertTrue(svg.contains(">error (%)</text>"))
        XCTAssertTrue(svg.contains("Top-1 &amp; friends"))
        XCTAssertTrue(svg.contains("pskd &lt;α_T = 0.8&gt;"))
        XCTAssertFalse(svg.contains("<α_T"))
        for tick in ["10", "15", "20", "25", "30", "35"] { XCTAssertTrue(svg.contains(">\(tick)</text>"), "y tick \(tick)") }
        for tick in ["1", "2", "3"] { XCTAssertTrue(svg.contains(">\(tick)</text>"), "x tick \(tick)") }
    }

    func testLineChartCopesWithOnePointAndNoSeries() {
        _ = elements(
            SVGChart.lineChart(
                title: "one", xLabel: "x", yLabel: "y",
                series: [ChartSeries(name: "a", color: "red", points: [(1, 5)])]))
        _ = elements(SVGChart.lineChart(title: "none", xLabel: "x", yLabel: "y", series: []))
    }

    func testReliabilityDiagramDrawsBarsGapsDiagonalAndShares() {
        let bins = [
            CalibrationBin(lower: 0, upper: 0.25, count: 0, accuracy: 0, confidence: 0),
            CalibrationBin(lower: 0.25, upper: 0.5, count: 10, accuracy: 0.3, confidence: 0.4),
            CalibrationBin(lower: 0.5, upper: 0.75, count: 30, accuracy: 0.7, confidence: 0.6),
            CalibrationBin(lower: 0.75, upper: 1, count: 60, accuracy: 0.8, confidence: 0.9),
        ]
        let svg = SVGChart.reliabilityDiagram(title: "ls \"ε\" <0.1>", bins: bins, color: "#E69F00", ece: 9.5)
        let parsed = elements(svg)
        let accuracy = parsed.filter { $0.attributes["class"] == "accuracy" }
        let gaps = parsed.filter { $0.attributes["class"] == "gap" }
        XCTAssertEqual(accuracy.count, 3, "one bar per non-empty bin")
        XCTAssertEqual(gaps.count, 3)
        XCTAssertEqual(parsed.filter { $0.attributes["class"] == "share" }.count, 3)
        XCTAssertEqual(parsed.filter { $0.attributes["class"] == "diagonal" }.count, 1)
        // The gap of the over-confident last bin spans accuracy 0.8 to confidence 0.9: a tenth of the axis.
        let axisHeight = (Double(accuracy[0].attributes["height"]!)! / 0.3)
        XCTAssertEqual(Double(gaps[2].attributes["height"]!)!, 0.1 * axisHeight, accuracy: 0.05)
        XCTAssertEqual(Double(accuracy[2].attributes["height"]!)!, 0.8 * axisHeight, accuracy: 0.05)
        XCTAssertTrue(svg.contains("pooled ECE 9.50 %"))
        XCTAssertTrue(svg.contains("ls &quot;ε&quot; &lt;0.1&gt;"))
        for tick in ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"] { XCTAssertTrue(svg.contains(">\(tick)</text>"), "tick \(tick)") }
        XCTAssertTrue(svg.contains(">confidence (max softmax)</text>"))
        XCTAssertTrue(svg.contains(">accuracy</text>"))
    }

    func testPageHasEverySectionAndEscapesRunText() throws {
        let fixture = try FixtureRuns(self)
        var paths = try fixture.experiment(seeds: [1, 2], epochs: 3)
        let epoch = FixtureRuns.Epoch(top1: 10, top5: 1, nll: 0.3, ece: 1, aurc: 1, eaurc: 1)
        paths.append(try fixture.run("evil <b>&amp;</b>", policy: "<script>alert(1)</script>", seed: 1, epochs: [epoch, epoch, epoch]))
        let report = try ExperimentReport(paths: paths)
        let html = HTMLReport(report: report, title: "Fashion-MNIST <test> & \"quotes\"", generated: nil).render()
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertFalse(html.contains("<script"), "no script, and run text escaped")
        XCTAssertTrue(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        XCTAssertTrue(html.contains("evil &lt;b&gt;&amp;amp;&lt;/b&gt;"))
        XCTAssertTrue(html.contains("<title>Fashion-MNIST &lt;test&gt; &amp; &quot;quotes&quot;</title>"))
        let withoutNamespaces = html.replacingOccurrences(of: "xmlns=\"http://www.w3.org/2000/svg\"", with: "")
        for reference in ["http:", "https:", "src=", "href=", "@import"] {
            XCTAssertFalse(withoutNamespaces.contains(reference), "no external resource: found \(reference)")
        }
        XCTAssertEqual(
            html.components(separatedBy: "url(").count, html.components(separatedBy: "url(#").count,
            "url() only for the page's own patterns")
        for id in ["results", "curves", "reliability", "settings", "end"] { XCTAssertTrue(html.contains("id=\"\(id)\""), id) }
        XCTAssertEqual(
            html.components(separatedBy: "<svg ").count - 1, 5 + 4, "5 curves (training loss and 4 test metrics), 4 reliability diagrams")
        XCTAssertTrue(html.contains("Top-1 error (%)"))
        XCTAssertTrue(html.contains("E-AURC (×1000)"))
        XCTAssertTrue(html.contains("ECE with 15 equal-width bins"))
        XCTAssertTrue(html.contains("<strong>"), "the best mean of a column is bold")
        XCTAssertFalse(html.contains("generated"), "no time stamp when none is asked for")
        // Each SVG is well-formed XML on its own.
        var rest = html[...]
        while let start = rest.range(of: "<svg "), let end = rest.range(of: "</svg>", range: start.upperBound..<rest.endIndex) {
            _ = elements(String(rest[start.lowerBound..<end.upperBound]))
            rest = rest[end.upperBound...]
        }
    }
}
