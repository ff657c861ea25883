import CZlib
import Foundation
import RunFixtures
import XCTest

@testable import Reporting

/// Renders a report of fixture runs in headless Chromium (Debian's `chromium`, installed by
/// launch/test.sh): the page must load, its DOM must hold the drawn figures, and a screenshot
/// must show them in the policies' colours.
final class ChromiumRenderingTests: XCTestCase {
    /// Chromium's path: `$PSKD_CHROMIUM`, or the first of the usual names on PATH.
    private func chromium() throws -> String {
        var candidates: [String] = []
        if let path = ProcessInfo.processInfo.environment["PSKD_CHROMIUM"] { candidates.append(path) }
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            candidates += directories.map { "\($0)/\(name)" }
        }
        if let found = candidates.first(where: FileManager.default.isExecutableFile(atPath:)) { return found }
        XCTFail(
            "chromium is not installed: the report rendering test needs Debian's 'chromium' package "
                + "(launch/test.sh installs it: apt-get install chromium), or set PSKD_CHROMIUM to a Chromium executable")
        throw XCTSkip("no chromium")
    }

    /// What a Chromium run left: its exit status, standard output and standard error.
    private struct Run { let status: Int32; let output: Data; let errors: String }

    /// Runs headless Chromium on `page` with `arguments`, a throw-away profile, and a generous
    /// safety timeout (the test does not depend on how long it takes).
    private func runChromium(_ arguments: [String], page: URL, in folder: URL) throws -> Run {
        let profile = folder.appendingPathComponent("profile-\(UUID().uuidString)")
        let stdoutURL = folder.appendingPathComponent("stdout-\(UUID().uuidString)")
        let stderrURL = folder.appendingPathComponent("stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try chromium())
        // --no-sandbox: Chromium refuses to run as root (CI) with its sandbox.
        process.arguments =
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
                "--disable-component-update", "--user-data-dir=\(profile.path)", "--enable-logging=stderr", "--v=0",
            ]
            + arguments + [page.absoluteString]
        let stdout = try FileHandle(forWritingTo: stdoutURL), stderr = try FileHandle(forWritingTo: stderrURL)
        defer { try? stdout.close(); try? stderr.close() }
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        // Chromium keeps its crash database under $HOME/.config whatever the profile: point HOME
        // (and the XDG folders) into the test's folder so nothing is left behind.
        var environment = ProcessInfo.processInfo.environment
        let home = folder.appendingPathComponent("home")
        environment["HOME"] = home.path
        environment["XDG_CONFIG_HOME"] = home.appendingPathComponent(".config").path
        environment["XDG_CACHE_HOME"] = home.appendingPathComponent(".cache").path
        process.environment = environment
        try process.run()
        let deadline = Date().addingTimeInterval(180)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning {
            process.terminate()
            usleep(500_000)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            XCTFail("chromium did not finish within 180 s: \(process.arguments ?? [])")
        }
        process.waitUntilExit()
        return Run(
            status: process.terminationStatus, output: try Data(contentsOf: stdoutURL),
            errors: (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "")
    }

    func testReportRendersInHeadlessChromiumWithEveryFigureDrawn() throws {
        _ = try chromium()
        let fixture = try FixtureRuns(self)
        let paths = try fixture.experiment(seeds: [1, 2], epochs: 5)
        let report = try ExperimentReport(paths: paths)
        let page = fixture.root.appendingPathComponent("report.html")
        try Data(HTMLReport(report: report, title: "Fixture report").render().utf8).write(to: page)

        // The DOM after loading: every figure is there with its drawn elements.
        let dump = try runChromium(["--dump-dom"], page: page, in: fixture.root)
        let dom = String(decoding: dump.output, as: UTF8.self)
        XCTAssertEqual(dump.status, 0, "chromium --dump-dom failed:\n\(dump.errors.suffix(3000))")
        XCTAssertTrue(
            dom.contains("<title>Fixture report</title>"), "the page did not load:\n\(dom.prefix(2000))\n\(dump.errors.suffix(3000))")
        XCTAssertTrue(dom.contains("id=\"end\""), "the page is cut short")
        XCTAssertFalse(dom.contains("This page contains the following errors"))
        let consoleErrors = dump.errors.split(separator: "\n").filter { $0.contains(":CONSOLE") || $0.contains("Uncaught") }
        XCTAssertEqual(consoleErrors, [], "the page logged errors")
        XCTAssertEqual(count("<svg", in: dom), 5 + 3, "5 training-curve charts (loss and 4 test metrics) and 3 reliability diagrams")
        XCTAssertEqual(count("<polyline", in: dom), 5 * 3, "one line per policy in each training-curve chart")
        XCTAssertEqual(count("class=\"band\"", in: dom), 5 * 3, "one ± std band per policy in each chart")
        XCTAssertEqual(count("class=\"accuracy\"", in: dom), 3 * 12, "12 non-empty bins per reliability diagram")
        XCTAssertEqual(count("class=\"gap\"", in: dom), 3 * 12)
        XCTAssertEqual(count("class=\"diagonal\"", in: dom), 3)
        XCTAssertGreaterThanOrEqual(count("<tr>", in: dom), 3 + 6 + 14, "metrics, every run and settings rows")

        // What it looks like: a screenshot with the policies' colours where the figures are.
        let shot = fixture.root.appendingPathComponent("shot.png")
        let screenshot = try runChromium(
            ["--hide-scrollbars", "--window-size=1280,3600", "--screenshot=\(shot.path)"],
            page: page, in: fixture.root)
        XCTAssertEqual(screenshot.status, 0, "chromium --screenshot failed:\n\(screenshot.errors.suffix(3000))")
        let png = try Data(contentsOf: shot)
        XCTAssertGreaterThan(png.count, 50_000, "a screenshot of the charts is not a near-blank page")
        let image = try PNGImage(png)
        XCTAssertEqual(image.width, 1280)
        XCTAssertEqual(image.height, 3600)
        // Reliability bars are the policy colour at 75 % opacity over white; each policy's must cover
        // a real area, and the lines of the curves must be there in the solid colour.
        for (index, hex) in HTMLReport.palette.prefix(3).enumerated() {
            let solid = rgb(hex)
            let bar = solid.map { UInt8((0.75 * Double($0) + 0.25 * 255).rounded()) }
            let barPixels = image.count(near: bar, tolerance: 4)
            let linePixels = image.count(near: solid, tolerance: 4)
            XCTAssertGreaterThan(barPixels, 5_000, "policy \(index) (\(hex)): reliability bars not drawn")
            XCTAssertGreaterThan(linePixels, 300, "policy \(index) (\(hex)): curves not drawn")
        }
        XCTAssertGreaterThan(image.distinctColours(limit: 200), 100, "a drawn page has many colours")
    }

    private func count(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

    private func rgb(_ hex: String) -> [UInt8] {
        let value = UInt32(hex.dropFirst(), radix: 16)!
        return [UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }
}

/// An 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes), decoded to RGB pixels.
struct PNGImage {
    let width: Int, height: Int
    /// Row-major RGB bytes.
    let pixels: [UInt8]

    struct DecodingError: Error, CustomStringConvertible { let description: String }

    init(_ data: Data) throws {
        let bytes = [UInt8](data)
        guard bytes.count > 33, bytes.prefix(8) == [137, 80, 78, 71, 13, 10, 26, 10] else {
            throw DecodingError(description: "not a PNG file")
        }
        func uint32(_ at: Int) -> Int { Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3]) }
        var offset = 8, compressed: [UInt8] = []
        var width = 0, height = 0, channels = 0
        while offset + 8 <= bytes.count {
            let length = uint32(offset)
            let type = String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self)
            let body = (offset + 8)..<(offset + 8 + length)
            guard body.upperBound <= bytes.count else { throw DecodingError(description: "truncated \(type) chunk") }
            switch type {
            case "IHDR":
                width = uint32(body.lowerBound)
                height = uint32(body.lowerBound + 4)
                let depth = bytes[body.lowerBound + 8], colourType = bytes[body.lowerBound + 9], interlace = bytes[body.lowerBound + 12]
                guard depth == 8, colourType == 2 || colourType == 6, interlace == 0 else {
                    throw DecodingError(description: "unsupported PNG: depth \(depth), colour type \(colourType), interlace \(interlace)")
                }
                channels = colourType == 6 ? 4 : 3
            case "IDAT": compressed += bytes[body]
            default: break
            }
            offset = body.upperBound + 4
        }
        guard width > 0, height > 0 else { throw DecodingError(description: "no IHDR chunk") }
        let stride = width * channels
        var raw = [UInt8](repeating: 0, count: height * (stride + 1))
        var rawLength = uLongf(raw.count)
        let status = compressed.withUnsafeBufferPointer { source in
            raw.withUnsafeMutableBufferPointer { destination in
                uncompress(destination.baseAddress, &rawLength, source.baseAddress, uLong(source.count))
            }
        }
        guard status == Z_OK, rawLength == uLongf(raw.count) else { throw DecodingError(description: "zlib error \(status)") }

        // Undo the per-row filters.
        var image = [UInt8](repeating: 0, count: height * stride)
        for row in 0..<height {
            let filter = raw[row * (stride + 1)]
            let input = row * (stride + 1) + 1, output = row * stride
            for i in 0..<stride {
                let a = i >= channels ? Int(image[output + i - channels]) : 0
                let b = row > 0 ? Int(image[output - stride + i]) : 0
                let c = row > 0 && i >= channels ? Int(image[output - stride + i - channels]) : 0
                let predictor: Int
                switch filter {
                case 0: predictor = 0
                case 1: predictor = a
                case 2: predictor = b
                case 3: predictor = (a + b) / 2
                case 4:
                    let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    predictor = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
                default: throw DecodingError(description: "unknown filter \(filter) in row \(row)")
                }
                image[output + i] = UInt8(truncatingIfNeeded: Int(raw[input + i]) + predictor)
            }
        }
        self.width = width
        self.height = height
        var rgb = [UInt8](repeating: 0, count: 3 * width * height)
        for p in 0..<(width * height) {
            rgb[3 * p] = image[channels * p]
            rgb[3 * p + 1] = image[channels * p + 1]
            rgb[3 * p + 2] = image[channels * p + 2]
        }
        pixels = rgb
    }

    /// Pixels within `tolerance` of `colour` (RGB) in every channel.
    func count(near colour: [UInt8], tolerance: Int) -> Int {
        let r = Int(colour[0]), g = Int(colour[1]), b = Int(colour[2])
        var total = 0
        pixels.withUnsafeBufferPointer { pixels in
            for p in 0..<(width * height)
            where abs(Int(pixels[3 * p]) - r) <= tolerance
                && abs(Int(pixels[3 * p + 1]) - g) <= tolerance && abs(Int(pixels[3 * p + 2]) - b) <= tolerance
            {
                total += 1
            }
        }
        return total
    }

    /// The number of distinct colours, counted up to `limit`.
    func distinctColours(limit: Int) -> Int {
        var seen = Set<Int>()
        for p in 0..<(width * height) {
            seen.insert(Int(pixels[3 * p]) << 16 | Int(pixels[3 * p + 1]) << 8 | Int(pixels[3 * p + 2]))
            if seen.count >= limit { break }
        }
        return seen.count
    }
}
