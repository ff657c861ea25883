import Foundation
import Layers
import Tensors
import TestSupport
import XCTest

final class ConvolutionTests: XCTestCase {
    /// Direct convolution by the definition, from PyTorch-layout weights [out, in, kh, kw],
    /// on channels-last images, in Double.
    private func directConvolution(_ x: Tensor, _ conv: Conv2d) -> Tensor {
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (k, s, p, o) = (conv.kernelSize, conv.stride, conv.padding, conv.outputChannels)
        let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
        let y = Tensor(zeros: [n, oh, ow, o])
        let weight = conv.weight.value
        for b in 0..<n {
            for i in 0..<oh {
                for j in 0..<ow {
                    for out in 0..<o {
                        var sum = Double(conv.bias?.value[out] ?? 0)
                        for input in 0..<c {
                            for di in 0..<k {
                                for dj in 0..<k {
                                    let (ih, iw) = (i * s - p + di, j * s - p + dj)
                                    guard ih >= 0, ih < h, iw >= 0, iw < w else { continue }
                                    sum +=
                                        Double(x[((b * h + ih) * w + iw) * c + input])
                                        * Double(weight[((out * c + input) * k + di) * k + dj])
                                }
                            }
                        }
                        y[((b * oh + i) * ow + j) * o + out] = Float(sum)
                    }
                }
            }
        }
        return y
    }

    /// (in, out, kernel, stride, padding, bias, input [N, H, W]) for the configurations the models use.
    private let configurations: [(Int, Int, Int, Int, Int, Bool, [Int])] = [
        (3, 4, 3, 1, 1, true, [2, 5, 5]),  // 3×3 "same"
        (3, 4, 3, 1, 1, false, [2, 5, 6]),  // no bias, non-square
        (2, 3, 3, 2, 1, false, [2, 6, 6]),  // 3×3 stride 2 (downsampling block)
        (2, 3, 3, 2, 1, true, [1, 7, 5]),  // stride 2 with odd sizes
        (3, 5, 1, 2, 0, false, [2, 5, 5]),  // 1×1 stride 2 projection shortcut
        (3, 5, 1, 1, 0, true, [2, 3, 4]),  // pointwise (no im2col)
        (1, 2, 3, 1, 0, true, [2, 5, 5]),  // no padding, one input channel
        (2, 2, 5, 1, 2, true, [1, 4, 4]),  // kernel larger than half the image
        (3, 4, 7, 2, 3, false, [2, 9, 8]),  // torchvision ResNet stem: 7×7, stride 2, padding 3
        (2, 3, 7, 2, 3, false, [1, 3, 4]),  // the stem on an image smaller than its kernel
    ]

    private func make(_ config: (Int, Int, Int, Int, Int, Bool, [Int]), seed: UInt64) -> (Conv2d, Tensor) {
        let (i, o, k, s, p, bias, nhw) = config
        let conv = Conv2d(i, o, kernelSize: k, stride: s, padding: p, bias: bias)
        bindParameters(conv, seed: seed)
        if let b = conv.bias { for c in 0..<o { b.value[c] = Float(c + 1) * 0.1 } }  // clearly non-zero
        return (conv, normalTensor(nhw + [i], seed: seed + 100))
    }

    func testForwardMatchesDirectConvolution() throws {
        for (index, config) in configurations.enumerated() {
            let (conv, x) = make(config, seed: UInt64(index))
            let expected = directConvolution(x, conv)
            XCTAssertEqual(try conv.outputShape(for: x.shape), expected.shape)
            assertClose(try conv.forward(x, mode: .training), expected, absolute: 1e-5, relative: 1e-5, "\(config)")
        }
    }

    func testOutputShapes() throws {
        XCTAssertEqual(try Conv2d(1, 32, kernelSize: 3, padding: 1).outputShape(for: [8, 28, 28, 1]), [8, 28, 28, 32])
        XCTAssertEqual(try Conv2d(64, 128, kernelSize: 3, stride: 2, padding: 1).outputShape(for: [2, 32, 32, 64]), [2, 16, 16, 128])
        XCTAssertEqual(try Conv2d(64, 128, kernelSize: 1, stride: 2).outputShape(for: [2, 7, 7, 64]), [2, 4, 4, 128])
        XCTAssertEqual(try Conv2d(3, 3, kernelSize: 3).outputShape(for: [1, 3, 3, 3]), [1, 1, 1, 3])
    }

    func testWeightLayoutIsPyTorchs() throws {
        // One output, two input channels, 2×2 kernel, one tap set: w[0, 1, 0, 1] = 1 picks
        // input channel 1 at offset (0, +1).
        let conv = Conv2d(2, 1, kernelSize: 2, bias: false)
        bindParameters(conv)
        XCTAssertEqual(conv.weight.shape, [1, 2, 2, 2])
        conv.weight.value.fill(0)
        conv.weight.value[(0 * 2 + 1) * 4 + 0 * 2 + 1] = 1
        let x = Tensor(zeros: [1, 2, 3, 2])
        for i in 0..<x.count { x[i] = Float(i) }  // x[0, h, w, c] = (h·3 + w)·2 + c
        let y = try conv.forward(x, mode: .training)
        XCTAssertEqual(y.shape, [1, 1, 2, 1])
        XCTAssertEqual(y.scalars, [3, 5])  // x[0,0,1,1], x[0,0,2,1]
    }

    func testGradientsForEveryConfiguration() throws {
        for (index, config) in configurations.enumerated() {
            let (conv, x) = make(config, seed: UInt64(10 + index))
            assertLayerGradients(conv, input: x, "\(config)")
        }
    }

    func testGradientsWithManyInputChannels() throws {
        let conv = Conv2d(6, 4, kernelSize: 3, stride: 1, padding: 1)
        bindParameters(conv)
        assertLayerGradients(conv, input: normalTensor([2, 4, 4, 6], seed: 1))
    }

    func testBiasGradientIsTheSumOfOutputGradients() throws {
        let conv = Conv2d(2, 3, kernelSize: 3, stride: 2, padding: 1)
        bindParameters(conv)
        let x = normalTensor([2, 5, 5, 2], seed: 3)
        let y = try conv.forward(x, mode: .training)
        let dy = normalTensor(y.shape, seed: 4)
        var sums = [Float](repeating: 0, count: 3)
        for i in 0..<dy.count { sums[i % 3] += dy[i] }
        _ = conv.backward(dy.copy())
        assertClose(conv.bias!.gradient, sums, absolute: 1e-5, relative: 1e-5)
    }

    /// Forward, input gradient and weight gradient of `conv` for `x` and a fixed `dy`.
    private func passes(_ conv: Conv2d, _ x: Tensor) throws -> (Tensor, Tensor, Tensor, Tensor?) {
        let y = try conv.forward(x, mode: .training).copy()
        conv.zeroParameterGradients()
        let dx = conv.backward(normalTensor(y.shape, seed: 77)).copy()
        return (y, dx, conv.weight.gradient.copy(), conv.bias?.gradient.copy())
    }

    /// Asserts that two results of `passes` agree to float rounding.
    private func assertSamePasses(
        _ got: (Tensor, Tensor, Tensor, Tensor?), _ expected: (Tensor, Tensor, Tensor, Tensor?),
        _ label: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        assertClose(got.0, expected.0, absolute: 1e-5, relative: 1e-5, "forward, \(label)", file: file, line: line)
        assertClose(got.1, expected.1, absolute: 1e-5, relative: 1e-5, "input gradient, \(label)", file: file, line: line)
        assertClose(got.2, expected.2, absolute: 1e-4, relative: 1e-5, "weight gradient, \(label)", file: file, line: line)
        if let bias = expected.3 {
            assertClose(got.3!, bias, absolute: 1e-5, relative: 1e-5, "bias gradient, \(label)", file: file, line: line)
        }
    }

    func testChunkingTheBatchGivesTheSameResults() throws {
        let saved = Conv2d.columnBufferBytes
        defer { Conv2d.columnBufferBytes = saved }
        for config in [(3, 4, 3, 1, 1, true, [5, 6, 6]), (3, 4, 3, 2, 1, false, [5, 7, 7]), (3, 4, 1, 1, 0, true, [5, 3, 3])] {
            let (conv, x) = make(config, seed: 5)
            Conv2d.columnBufferBytes = 1 << 30
            let whole = try passes(conv, x)
            // One sample's columns: Ho·Wo·k·k·in floats; allow two samples per chunk (5 = 2 + 2 + 1),
            // then one per chunk, then less than one (clamped to one).
            let (ho, wo) = (whole.0.shape[1], whole.0.shape[2])
            let sampleBytes = ho * wo * config.2 * config.2 * config.0 * MemoryLayout<Float>.stride
            for budget in [2 * sampleBytes, sampleBytes, sampleBytes / 3] {
                Conv2d.columnBufferBytes = budget
                let chunked = try passes(conv, x)
                assertSamePasses(chunked, whole, "budget \(budget)")
                assertClose(chunked.0, directConvolution(x, conv), absolute: 1e-5, relative: 1e-5)
            }
            Conv2d.columnBufferBytes = sampleBytes
            assertLayerGradients(conv, input: x, "chunked \(config)")
        }
    }

    func testParameterGradientsWithoutInputGradient() throws {
        let im2col = make((2, 3, 3, 2, 1, true, [2, 5, 5]), seed: 9)
        let winograd = makeWinograd((8, 8, 3, 1, 1, true, [2, 6, 4]), seed: 80)
        let winograd4 = makeWinograd((8, 8, 3, 1, 1, true, [2, 6, 5]), seed: 81, (.winograd4, .f4x4))
        for (conv, x) in [im2col, winograd, winograd4] {
            let full = try passes(conv, x)
            conv.computesInputGradient = false
            let partial = try passes(conv, x)
            XCTAssertEqual(partial.2.scalars, full.2.scalars, "winograd: \(conv.usesWinograd)")
            XCTAssertEqual(partial.3!.scalars, full.3!.scalars, "winograd: \(conv.usesWinograd)")
        }
    }

    /// torchvision's ResNet convolutions: `kaiming_normal_(mode="fan_out", nonlinearity="relu")`,
    /// N(0, 2/(out·k·k)); a bias keeps PyTorch's default.
    func testKaimingNormalFanOutInitialisation() {
        let conv = Conv2d(16, 32, kernelSize: 3, bias: true, initialization: .kaimingNormalFanOut)
        bindParameters(conv)
        let values = conv.weight.value.scalars.map(Double.init)
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
        // 4 608 draws: the sample variance is within 5 % of 2/288 at about 2.4 standard errors.
        XCTAssertEqual(variance, 2.0 / 288, accuracy: 0.05 * 2.0 / 288)
        XCTAssertEqual(mean, 0, accuracy: 0.01)
        XCTAssertGreaterThan(values.map(abs).max()!, 1 / Double(144).squareRoot(), "not the default's uniform bound")
        let bound = 1 / Float(144).squareRoot()
        for v in conv.bias!.value.scalars { XCTAssertLessThanOrEqual(abs(v), bound) }
    }

    func testInitialisationBound() {
        let conv = Conv2d(4, 8, kernelSize: 3)
        bindParameters(conv)
        let bound = 1 / Float(36).squareRoot()
        for v in conv.weight.value.scalars + conv.bias!.value.scalars { XCTAssertLessThanOrEqual(abs(v), bound) }
    }

    // MARK: - Winograd F(2×2, 3×3) and F(4×4, 3×3)

    /// Both Winograds, and the variant each must run.
    private let winogradAlgorithms: [(ConvolutionAlgorithm, WinogradVariant)] = [(.winograd, .f2x2), (.winograd4, .f4x4)]

    /// 3×3 stride-1 configurations for Winograd: channel counts below, at and across the
    /// eight-lane blocks, every padding it takes, odd and tiny images, and outputs that are not
    /// multiples of 2 or 4 (the last tiles of F(4×4, 3×3) one, two or three rows and columns
    /// short).
    private let winogradConfigurations: [(Int, Int, Int, Int, Int, Bool, [Int])] = [
        (3, 4, 3, 1, 1, true, [2, 5, 5]),  // odd size: last tile half outside
        (8, 8, 3, 1, 1, false, [2, 6, 4]),  // whole lane blocks
        (12, 9, 3, 1, 1, true, [1, 7, 6]),  // a full block plus a tail, in and out
        (5, 16, 3, 1, 0, true, [2, 6, 7]),  // no padding
        (4, 3, 3, 1, 2, false, [1, 3, 4]),  // padding 2 (input gradient with padding 0)
        (9, 10, 3, 1, 1, true, [3, 1, 1]),  // one-pixel images
        (6, 11, 3, 1, 1, true, [2, 9, 10]),  // 9×10 output: F(4×4) tiles 1 and 2 short
        (10, 7, 3, 1, 0, false, [1, 13, 11]),  // 11×9 output: 3 and 1 short, no padding
        (7, 12, 3, 1, 2, true, [2, 6, 5]),  // 8×7 output: whole tiles down, 1 short across
        (16, 17, 3, 1, 1, false, [2, 8, 8]),  // whole 4×4 tiles
    ]

    private func makeWinograd(
        _ config: (Int, Int, Int, Int, Int, Bool, [Int]), seed: UInt64,
        _ algorithm: (ConvolutionAlgorithm, WinogradVariant) = (.winograd, .f2x2)
    ) -> (Conv2d, Tensor) {
        let (conv, x) = make(config, seed: seed)
        conv.algorithm = algorithm.0
        XCTAssertEqual(conv.winogradVariant(height: config.6[1], width: config.6[2]), algorithm.1, "\(config)")
        return (conv, x)
    }

    func testWinogradForwardMatchesDirectConvolution() throws {
        for algorithm in winogradAlgorithms {
            for (index, config) in winogradConfigurations.enumerated() {
                let (conv, x) = makeWinograd(config, seed: UInt64(40 + index), algorithm)
                assertClose(
                    try conv.forward(x, mode: .training), directConvolution(x, conv),
                    absolute: 1e-5, relative: 1e-5, "\(algorithm.1) \(config)")
            }
        }
    }

    func testWinogradGradientsForEveryConfiguration() throws {
        for algorithm in winogradAlgorithms {
            for (index, config) in winogradConfigurations.enumerated() {
                let (conv, x) = makeWinograd(config, seed: UInt64(50 + index), algorithm)
                assertLayerGradients(conv, input: x, "\(algorithm.1) \(config)")
            }
        }
    }

    func testWinogradAndIm2colGiveTheSameGradients() throws {
        for algorithm in winogradAlgorithms {
            for (index, config) in winogradConfigurations.enumerated() {
                let (conv, x) = makeWinograd(config, seed: UInt64(60 + index), algorithm)
                let winograd = try passes(conv, x)
                conv.algorithm = .im2col
                assertSamePasses(winograd, try passes(conv, x), "\(algorithm.1) \(config)")
            }
        }
    }

    func testWinogradChunkingGivesTheSameResults() throws {
        let (savedBytes, savedTiles) = (Conv2d.columnBufferBytes, Conv2d.winogradMinimumTiles)
        defer { (Conv2d.columnBufferBytes, Conv2d.winogradMinimumTiles) = (savedBytes, savedTiles) }
        Conv2d.winogradMinimumTiles = 1
        for algorithm in winogradAlgorithms {
            let (conv, x) = makeWinograd((12, 9, 3, 1, 1, true, [5, 7, 6]), seed: 70, algorithm)
            Conv2d.columnBufferBytes = 1 << 30
            let whole = try passes(conv, x)
            // One image: α² points × its tiles of the 7×6 output × 12 channels; two, one and
            // "less than one" per chunk.
            let m = algorithm.1.outputTile
            let tiles = ((7 + m - 1) / m) * ((6 + m - 1) / m)
            let sampleBytes = algorithm.1.points * tiles * 12 * MemoryLayout<Float>.stride
            for budget in [2 * sampleBytes, sampleBytes, sampleBytes / 3] {
                Conv2d.columnBufferBytes = budget
                assertSamePasses(try passes(conv, x), whole, "\(algorithm.1), budget \(budget)")
            }
        }
    }

    /// F(4×4, 3×3) on the 3×3 convolutions of preact-resnet18 (channels and sizes scaled down
    /// so that the Double reference stays quick): the forward pass, input and weight gradients
    /// within 1e-4 of the largest reference value of a float64 direct convolution — several
    /// times F(2×2, 3×3)'s error, but far below what training notices.
    func testWinograd4ErrorAgainstDoubleConvolution() throws {
        for (index, (channels, size)) in [(32, 16), (64, 8), (96, 4)].enumerated() {
            let conv = Conv2d(channels, channels, kernelSize: 3, padding: 1, bias: false, initialization: .kaimingNormalFanOut)
            bindParameters(conv, seed: UInt64(90 + index))
            conv.algorithm = .winograd4
            let x = normalTensor([2, size, size, channels], seed: UInt64(95 + index))
            let y = try conv.forward(x, mode: .training).copy()
            let dy = normalTensor(y.shape, seed: 99)
            conv.zeroParameterGradients()
            let dx = conv.backward(dy).copy()
            let reference = doubleConvolutionPasses(x, conv, dy)
            let label = "\(channels)ch@\(size)×\(size)"
            assertRelativeError(y.scalars, reference.y, below: 1e-4, "forward, \(label)")
            assertRelativeError(dx.scalars, reference.dx, below: 1e-4, "input gradient, \(label)")
            assertRelativeError(conv.weight.gradient.scalars, reference.dw, below: 1e-4, "weight gradient, \(label)")
        }
    }

    /// Not a check but a measurement tool, skipped unless `PSKD_CONVOLUTION_ERROR_DUMP` names a
    /// directory: for each 3×3 convolution shape of preact-resnet18 on CIFAR (batch 64), writes
    /// the input, weight and output gradient, and each algorithm's output, input gradient and
    /// weight gradient, as raw float32 files `SHAPE-NAME.f32` (channels-last, weights
    /// `[out, in, 3, 3]`), for comparison with a float64 convolution outside the repository.
    func testDumpResNetConvolutionsForErrorMeasurement() throws {
        guard let directory = ProcessInfo.processInfo.environment["PSKD_CONVOLUTION_ERROR_DUMP"] else {
            throw XCTSkip("PSKD_CONVOLUTION_ERROR_DUMP not set")
        }
        func write(_ t: Tensor, _ name: String) throws {
            let data = t.scalars.withUnsafeBufferPointer { Data(buffer: $0) }
            try data.write(to: URL(fileURLWithPath: directory).appendingPathComponent(name + ".f32"))
        }
        for (index, (channels, size)) in [(64, 32), (128, 16), (256, 8), (512, 4)].enumerated() {
            let conv = Conv2d(channels, channels, kernelSize: 3, padding: 1, bias: false, initialization: .kaimingNormalFanOut)
            bindParameters(conv, seed: UInt64(200 + index))
            let x = normalTensor([64, size, size, channels], seed: UInt64(210 + index))
            let dy = normalTensor(x.shape, seed: UInt64(220 + index))
            let shape = "\(channels)x\(size)"
            try write(x, "\(shape)-x")
            try write(conv.weight.value, "\(shape)-w")
            try write(dy, "\(shape)-dy")
            for algorithm in [ConvolutionAlgorithm.im2col, .winograd, .winograd4] {
                conv.algorithm = algorithm
                try write(try conv.forward(x, mode: .training), "\(shape)-\(algorithm)-y")
                conv.zeroParameterGradients()
                try write(conv.backward(dy), "\(shape)-\(algorithm)-dx")
                try write(conv.weight.gradient, "\(shape)-\(algorithm)-dw")
            }
        }
    }

    /// Forward output, input gradient and weight gradient of a bias-free 3×3 convolution with
    /// padding 1, by the definition in Double (channels-last, weights `[out, in, 3, 3]`).
    private func doubleConvolutionPasses(_ x: Tensor, _ conv: Conv2d, _ dy: Tensor) -> (y: [Double], dx: [Double], dw: [Double]) {
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let o = conv.outputChannels
        let (xs, ws, dys) = (x.scalars.map(Double.init), conv.weight.value.scalars.map(Double.init), dy.scalars.map(Double.init))
        var y = [Double](repeating: 0, count: n * h * w * o), dx = [Double](repeating: 0, count: xs.count)
        var dw = [Double](repeating: 0, count: ws.count)
        for b in 0..<n {
            for i in 0..<h {
                for j in 0..<w {
                    for di in 0..<3 {
                        for dj in 0..<3 {
                            let (ih, iw) = (i - 1 + di, j - 1 + dj)
                            guard ih >= 0, ih < h, iw >= 0, iw < w else { continue }
                            let (input, output) = (((b * h + ih) * w + iw) * c, ((b * h + i) * w + j) * o)
                            for out in 0..<o {
                                for channel in 0..<c {
                                    let tap = ((out * c + channel) * 3 + di) * 3 + dj
                                    y[output + out] += xs[input + channel] * ws[tap]
                                    dx[input + channel] += dys[output + out] * ws[tap]
                                    dw[tap] += dys[output + out] * xs[input + channel]
                                }
                            }
                        }
                    }
                }
            }
        }
        return (y, dx, dw)
    }

    /// Asserts max |got − expected| ≤ `bound` · max |expected|, and that the error is not zero
    /// (float32 cannot match a Double reference exactly, so zero means a broken comparison).
    private func assertRelativeError(
        _ got: [Float], _ expected: [Double], below bound: Double, _ label: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(got.count, expected.count, label, file: file, line: line)
        let scale = expected.map(abs).max() ?? 0
        let error = zip(got, expected).map { abs(Double($0) - $1) }.max() ?? 0
        XCTAssertGreaterThan(scale, 0, label, file: file, line: line)
        XCTAssertGreaterThan(error, 0, label, file: file, line: line)
        XCTAssertLessThanOrEqual(error, bound * scale, "\(label): error \(error), scale \(scale)", file: file, line: line)
    }

    func testAutomaticAlgorithmPicksWinogradWhereItPays() {
        XCTAssertTrue(Conv2d(32, 32, kernelSize: 3, padding: 1).usesWinograd)
        XCTAssertTrue(Conv2d(64, 128, kernelSize: 3, padding: 1).usesWinograd)
        XCTAssertFalse(Conv2d(1, 32, kernelSize: 3, padding: 1).usesWinograd, "one input channel")
        XCTAssertFalse(Conv2d(64, 128, kernelSize: 3, stride: 2, padding: 1).usesWinograd, "stride 2")
        XCTAssertFalse(Conv2d(64, 128, kernelSize: 1).usesWinograd, "1×1")
        XCTAssertFalse(Conv2d(32, 32, kernelSize: 3, padding: 3).usesWinograd, "padding 3")
        let automatic = Conv2d(32, 32, kernelSize: 3, padding: 1)
        XCTAssertEqual(automatic.winogradVariant(height: 32, width: 32), .f4x4)
        XCTAssertEqual(automatic.winogradVariant(height: 8, width: 8), .f4x4)
        XCTAssertEqual(automatic.winogradVariant(height: 8, width: 7), .f2x2, "7-pixel side")
        XCTAssertEqual(automatic.winogradVariant(height: 4, width: 4), .f2x2, "4×4")
        XCTAssertNil(Conv2d(1, 32, kernelSize: 3, padding: 1).winogradVariant(height: 32, width: 32))
        let forced = Conv2d(32, 32, kernelSize: 3, padding: 1)
        forced.algorithm = .winograd
        XCTAssertEqual(forced.winogradVariant(height: 32, width: 32), .f2x2)
        forced.algorithm = .im2col
        XCTAssertFalse(forced.usesWinograd)
    }
}
