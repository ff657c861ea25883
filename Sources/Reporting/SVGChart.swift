import Foundation
import Training

/// One line of a line chart: points, and optionally a band (e.g. mean ± std) drawn under it.
public struct ChartSeries: Sendable {
    public var name: String
    /// A CSS colour.
    public var color: String
    public var points: [(x: Double, y: Double)]
    public var band: [(x: Double, low: Double, high: Double)]

    public init(
        name: String, color: String, points: [(x: Double, y: Double)],
        band: [(x: Double, low: Double, high: Double)] = []
    ) {
        self.name = name
        self.color = color
        self.points = points
        self.band = band
    }
}

/// Charts as self-contained SVG strings (no script, no external resource), with axes, ticks
/// and labels. Every text is escaped.
public enum SVGChart {
    /// Fonts for every chart.
    static let font = "font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif\""

    // MARK: - Line chart

    /// Where each legend entry starts (x) and on which row, entries laid out left to right from
    /// `start`, a new row whenever the next would pass `end` (estimated 7 px per character).
    static func legendLayout(_ names: [String], from start: Double, to end: Double) -> [(x: Double, row: Int)] {
        var places: [(x: Double, row: Int)] = []
        var x = start, row = 0
        for name in names {
            let width = 34 + 7 * Double(name.count)
            if x > start && x + width - 11 > end { (x, row) = (start, row + 1) }
            places.append((x, row))
            x += width
        }
        return places
    }

    /// A line chart of `series` over a linear x and y axis; one legend entry per series.
    public static func lineChart(
        title: String, xLabel: String, yLabel: String, series: [ChartSeries],
        width: Double = 530, height: Double = 310
    ) -> String {
        let left = 58.0, right = 14.0, bottom = 44.0
        // The legend under the title wraps onto more rows (16 px each) when the series do not fit
        // on one; the chart grows by the extra rows, so the plot keeps its size.
        let legend = legendLayout(series.map(\.name), from: left, to: width - right)
        let extraRows = Double((legend.map(\.row).max() ?? 0))
        let top = 50.0 + 16 * extraRows
        let height = height + 16 * extraRows
        let plot = Rect(x: left, y: top, width: width - left - right, height: height - top - bottom)
        let xs = series.flatMap { $0.points.map(\.x) + $0.band.map(\.x) }
        let ys = series.flatMap { $0.points.map(\.y) + $0.band.flatMap { [$0.low, $0.high] } }.filter(\.isFinite)
        var xDomain = (xs.min() ?? 0, xs.max() ?? 1)
        if xDomain.0 == xDomain.1 { xDomain = (xDomain.0 - 1, xDomain.1 + 1) }
        var yDomain = (ys.min() ?? 0, ys.max() ?? 1)
        if yDomain.0 == yDomain.1 { yDomain = (yDomain.0 - 1, yDomain.1 + 1) }
        let yTicks = niceTicks(yDomain.0, yDomain.1, count: 5)
        yDomain = (min(yDomain.0, yTicks.first ?? yDomain.0), max(yDomain.1, yTicks.last ?? yDomain.1))
        let xTicks = niceTicks(xDomain.0, xDomain.1, count: 6, integers: true).filter { $0 >= xDomain.0 && $0 <= xDomain.1 }
        let scale = Scale(plot: plot, x: xDomain, y: yDomain)

        var svg = open(width: width, height: height, label: title)
        svg += text(title, x: width / 2, y: 18, anchor: "middle", size: 14, weight: "600")
        svg += axes(
            plot: plot, scale: scale, xTicks: xTicks, yTicks: yTicks, xLabel: xLabel, yLabel: yLabel,
            xFormat: { format($0, step: 1) }, yFormat: { format($0, step: step(of: yTicks)) })

        // Legend, under the title.
        for (item, place) in zip(series, legend) {
            let y = 36 + 16 * Double(place.row)
            svg +=
                "<line x1=\"\(f(place.x))\" y1=\"\(f(y))\" x2=\"\(f(place.x + 18))\" y2=\"\(f(y))\" stroke=\"\(escape(item.color))\" stroke-width=\"2.5\"/>"
            svg += text(item.name, x: place.x + 23, y: y + 4, anchor: "start", size: 12)
        }

        svg += "<g class=\"data\">"
        for item in series {
            if item.band.count > 1 {
                let upper = item.band.map { "\(f(scale.x($0.x))),\(f(scale.y($0.high)))" }
                let lower = item.band.reversed().map { "\(f(scale.x($0.x))),\(f(scale.y($0.low)))" }
                svg +=
                    "<polygon class=\"band\" points=\"\((upper + lower).joined(separator: " "))\" fill=\"\(escape(item.color))\" fill-opacity=\"0.13\" stroke=\"none\"/>"
            }
        }
        for item in series {
            let points = item.points.filter { $0.y.isFinite }
            let coordinates = points.map { "\(f(scale.x($0.x))),\(f(scale.y($0.y)))" }.joined(separator: " ")
            svg +=
                "<polyline class=\"series\" points=\"\(coordinates)\" fill=\"none\" stroke=\"\(escape(item.color))\" stroke-width=\"2\" stroke-linejoin=\"round\"><title>\(escape(item.name))</title></polyline>"
            if points.count <= 60 {
                for point in points {
                    svg += "<circle cx=\"\(f(scale.x(point.x)))\" cy=\"\(f(scale.y(point.y)))\" r=\"2.6\" fill=\"\(escape(item.color))\"/>"
                }
            }
        }
        svg += "</g></svg>"
        return svg
    }

    // MARK: - Reliability diagram

    /// Accuracy against confidence per bin: a bar of the bin's accuracy, the gap between that
    /// accuracy and the bin's mean confidence shaded, the diagonal of perfect calibration, and
    /// under it the share of samples in each bin.
    public static func reliabilityDiagram(
        title: String, bins: [CalibrationBin], color: String, ece: Double? = nil,
        width: Double = 350, height: Double = 440, id: String = "gap"
    ) -> String {
        let hatch = "hatch-" + id.filter { $0.isLetter || $0.isNumber || $0 == "-" }
        let left = 52.0, right = 16.0, top = 48.0
        let side = min(width - left - right, height - top - 132)
        let plot = Rect(x: left, y: top, width: side, height: side)
        let histogram = Rect(x: left, y: plot.bottom + 66, width: side, height: 40)
        let scale = Scale(plot: plot, x: (0, 1), y: (0, 1))
        let ticks = stride(from: 0.0, through: 1.0001, by: 0.2).map { $0 }

        var svg = open(width: width, height: height, label: title)
        // The gap's fill: red diagonal hatching over a light red tint, readable over a bar and over white.
        svg +=
            "<defs><pattern id=\"\(hatch)\" patternUnits=\"userSpaceOnUse\" width=\"6\" height=\"6\">"
            + "<rect width=\"6\" height=\"6\" fill=\"#d62728\" fill-opacity=\"0.18\"/>"
            + "<path d=\"M-1,1 l2,-2 M0,6 l6,-6 M5,7 l2,-2\" stroke=\"#d62728\" stroke-width=\"1.3\"/></pattern></defs>"
        svg += text(title, x: width / 2, y: 18, anchor: "middle", size: 14, weight: "600")
        // Legend.
        svg += "<rect x=\"\(f(left))\" y=\"28\" width=\"12\" height=\"10\" fill=\"\(escape(color))\" fill-opacity=\"0.85\"/>"
        svg += text("accuracy", x: left + 16, y: 37, anchor: "start", size: 11)
        svg +=
            "<rect x=\"\(f(left + 80))\" y=\"28\" width=\"12\" height=\"10\" fill=\"url(#\(hatch))\" stroke=\"#d62728\" stroke-width=\"1\"/>"
        svg += text("gap to confidence", x: left + 96, y: 37, anchor: "start", size: 11)

        svg += axes(
            plot: plot, scale: scale, xTicks: ticks, yTicks: ticks, xLabel: "confidence (max softmax)",
            yLabel: "accuracy", xFormat: { format($0, step: 0.2) }, yFormat: { format($0, step: 0.2) })
        for bin in bins where bin.count > 0 {
            let x0 = scale.x(bin.lower), x1 = scale.x(bin.upper)
            let accuracy = scale.y(bin.accuracy), confidence = scale.y(bin.confidence)
            let tip =
                "(\(format(bin.lower, step: 0.001)), \(format(bin.upper, step: 0.001))]: \(bin.count) samples, accuracy \(format(bin.accuracy, step: 0.001)), confidence \(format(bin.confidence, step: 0.001))"
            svg +=
                "<rect class=\"accuracy\" x=\"\(f(x0))\" y=\"\(f(accuracy))\" width=\"\(f(x1 - x0))\" height=\"\(f(plot.bottom - accuracy))\" fill=\"\(escape(color))\" fill-opacity=\"0.75\" stroke=\"#fff\" stroke-width=\"0.8\"><title>\(escape(tip))</title></rect>"
            svg +=
                "<rect class=\"gap\" x=\"\(f(x0))\" y=\"\(f(min(accuracy, confidence)))\" width=\"\(f(x1 - x0))\" height=\"\(f(abs(accuracy - confidence)))\" fill=\"url(#\(hatch))\" stroke=\"#d62728\" stroke-width=\"1\"/>"
        }
        svg +=
            "<line class=\"diagonal\" x1=\"\(f(scale.x(0)))\" y1=\"\(f(scale.y(0)))\" x2=\"\(f(scale.x(1)))\" y2=\"\(f(scale.y(1)))\" stroke=\"#444\" stroke-width=\"1.2\" stroke-dasharray=\"5 4\"/>"
        if let ece {
            svg +=
                "<rect x=\"\(f(plot.x + 6))\" y=\"\(f(plot.y + 6))\" width=\"132\" height=\"20\" fill=\"#fff\" fill-opacity=\"0.9\" stroke=\"#bbb\"/>"
            svg += text("pooled ECE \(String(format: "%.2f", ece)) %", x: plot.x + 12, y: plot.y + 20, anchor: "start", size: 12)
        }

        // Share of samples per bin, on its own axis under the diagram.
        let total = Double(max(bins.reduce(0) { $0 + $1.count }, 1))
        let largest = max(bins.map { Double($0.count) / total }.max() ?? 0, 1e-9)
        svg +=
            "<line x1=\"\(f(histogram.x))\" y1=\"\(f(histogram.bottom))\" x2=\"\(f(histogram.right))\" y2=\"\(f(histogram.bottom))\" stroke=\"#333\"/>"
        for bin in bins where bin.count > 0 {
            let share = Double(bin.count) / total
            let barHeight = histogram.height * share / largest
            let x0 = scale.x(bin.lower), x1 = scale.x(bin.upper)
            svg +=
                "<rect class=\"share\" x=\"\(f(x0))\" y=\"\(f(histogram.bottom - barHeight))\" width=\"\(f(x1 - x0))\" height=\"\(f(barHeight))\" fill=\"#888\" stroke=\"#fff\" stroke-width=\"0.8\"><title>\(escape("\(format(100 * share, step: 0.01)) % of samples"))</title></rect>"
        }
        svg += text(
            "share of samples per bin (largest \(String(format: "%.1f", 100 * largest)) %)", x: histogram.x, y: histogram.y - 6,
            anchor: "start", size: 11, color: "#555")
        svg += "</svg>"
        return svg
    }

    // MARK: - Pieces

    struct Rect {
        var x, y, width, height: Double
        var right: Double { x + width }
        var bottom: Double { y + height }
    }

    /// Data coordinates to pixels (y grows upwards in data, downwards on screen).
    struct Scale {
        let plot: Rect
        let x: (Double, Double)
        let y: (Double, Double)
        func x(_ value: Double) -> Double { plot.x + (value - x.0) / (x.1 - x.0) * plot.width }
        func y(_ value: Double) -> Double { plot.bottom - (value - y.0) / (y.1 - y.0) * plot.height }
    }

    static func open(width: Double, height: Double, label: String) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(f(width)) \(f(height))\" width=\"\(f(width))\" height=\"\(f(height))\" role=\"img\" aria-label=\"\(escape(label))\" \(font)><title>\(escape(label))</title>"
            + "<rect x=\"0\" y=\"0\" width=\"\(f(width))\" height=\"\(f(height))\" fill=\"#fff\"/>"
    }

    /// Grid lines, the two axes, tick marks and labels, and the axis titles.
    static func axes(
        plot: Rect, scale: Scale, xTicks: [Double], yTicks: [Double], xLabel: String, yLabel: String,
        xFormat: (Double) -> String, yFormat: (Double) -> String
    ) -> String {
        var svg = "<g class=\"grid\" stroke=\"#e4e4e4\" stroke-width=\"1\">"
        for tick in yTicks {
            svg += "<line x1=\"\(f(plot.x))\" y1=\"\(f(scale.y(tick)))\" x2=\"\(f(plot.right))\" y2=\"\(f(scale.y(tick)))\"/>"
        }
        for tick in xTicks {
            svg += "<line x1=\"\(f(scale.x(tick)))\" y1=\"\(f(plot.y))\" x2=\"\(f(scale.x(tick)))\" y2=\"\(f(plot.bottom))\"/>"
        }
        svg += "</g><g class=\"axes\" stroke=\"#333\" stroke-width=\"1\">"
        svg += "<line x1=\"\(f(plot.x))\" y1=\"\(f(plot.bottom))\" x2=\"\(f(plot.right))\" y2=\"\(f(plot.bottom))\"/>"
        svg += "<line x1=\"\(f(plot.x))\" y1=\"\(f(plot.y))\" x2=\"\(f(plot.x))\" y2=\"\(f(plot.bottom))\"/>"
        for tick in xTicks {
            svg += "<line x1=\"\(f(scale.x(tick)))\" y1=\"\(f(plot.bottom))\" x2=\"\(f(scale.x(tick)))\" y2=\"\(f(plot.bottom + 5))\"/>"
        }
        for tick in yTicks {
            svg += "<line x1=\"\(f(plot.x - 5))\" y1=\"\(f(scale.y(tick)))\" x2=\"\(f(plot.x))\" y2=\"\(f(scale.y(tick)))\"/>"
        }
        svg += "</g>"
        for tick in xTicks { svg += text(xFormat(tick), x: scale.x(tick), y: plot.bottom + 18, anchor: "middle", size: 11) }
        for tick in yTicks { svg += text(yFormat(tick), x: plot.x - 8, y: scale.y(tick) + 4, anchor: "end", size: 11) }
        svg += text(xLabel, x: plot.x + plot.width / 2, y: plot.bottom + 36, anchor: "middle", size: 12)
        let yMiddle = plot.y + plot.height / 2
        svg +=
            "<text x=\"14\" y=\"\(f(yMiddle))\" text-anchor=\"middle\" font-size=\"12\" fill=\"#222\" transform=\"rotate(-90 14 \(f(yMiddle)))\">\(escape(yLabel))</text>"
        return svg
    }

    static func text(
        _ content: String, x: Double, y: Double, anchor: String, size: Double,
        weight: String = "normal", color: String = "#222"
    ) -> String {
        "<text x=\"\(f(x))\" y=\"\(f(y))\" text-anchor=\"\(anchor)\" font-size=\"\(f(size))\" font-weight=\"\(weight)\" fill=\"\(color)\">\(escape(content))</text>"
    }

    /// Up to about `count` round tick values (1, 2, 2.5 or 5 × 10^k apart) covering [low, high].
    public static func niceTicks(_ low: Double, _ high: Double, count: Int, integers: Bool = false) -> [Double] {
        guard low.isFinite, high.isFinite, high > low, count > 0 else { return low.isFinite ? [low] : [] }
        let rough = (high - low) / Double(count)
        let magnitude = pow(10, (log10(rough)).rounded(.down))
        var step = ([1, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= rough }) ?? 10 * magnitude
        if integers { step = max(1, step.rounded(.up)) }
        let first = (low / step).rounded(.down) * step
        let last = (high / step).rounded(.up) * step
        let n = Int(((last - first) / step).rounded())
        return (0...n).map { first + Double($0) * step }
    }

    static func step(of ticks: [Double]) -> Double { ticks.count > 1 ? ticks[1] - ticks[0] : 1 }

    /// A tick label with as many decimals as the tick spacing needs.
    static func format(_ value: Double, step: Double) -> String {
        let decimals =
            (0...6).first { d in
                let scaled = abs(step) * pow(10, Double(d))
                return abs(scaled - scaled.rounded()) < 1e-6 * max(scaled, 1)
            } ?? 6
        let text = String(format: "%.\(decimals)f", value)
        return Double(text) == 0 ? String(format: "%.\(decimals)f", 0.0) : text
    }

    /// A coordinate with two decimals at most.
    static func f(_ value: Double) -> String {
        let rounded = (value * 100).rounded() / 100
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }

    static func escape(_ text: String) -> String { HTML.escape(text) }
}
