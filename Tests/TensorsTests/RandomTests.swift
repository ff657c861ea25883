import TestSupport
import XCTest

@testable import Tensors

final class RandomTests: XCTestCase {
    private func draw(_ generator: inout RandomGenerator, _ count: Int) -> [UInt64] {
        (0..<count).map { _ in generator.next() }
    }

    func testSameSeedSameStreamDifferentSeedDifferentStream() {
        var a = RandomGenerator(seed: 42), b = RandomGenerator(seed: 42), c = RandomGenerator(seed: 43)
        let first = draw(&a, 100)
        XCTAssertEqual(first, draw(&b, 100))
        XCTAssertNotEqual(first, draw(&c, 100))
        XCTAssertEqual(Set(first).count, 100)
    }

    func testKnownFirstOutputsPinTheAlgorithm() {
        // xoshiro256** from a state of (1, 2, 3, 4): the reference implementation's first outputs.
        var generator = RandomGenerator(state: (1, 2, 3, 4))
        XCTAssertEqual(draw(&generator, 3), [11520, 0, 1509978240])
    }

    func testSavedStateResumesExactly() {
        var generator = RandomGenerator(seed: 9)
        _ = draw(&generator, 17)
        var resumed = RandomGenerator(state: generator.state)
        XCTAssertEqual(draw(&generator, 50), draw(&resumed, 50))
    }

    func testSplitIsDeterministicAndDoesNotAdvanceTheParent() {
        let root = RandomGenerator(seed: 5)
        var copy = root
        var s1 = root.split(RandomStream.dataOrder, 3)
        var s2 = root.split(RandomStream.dataOrder, 3)
        XCTAssertEqual(root, copy)
        XCTAssertEqual(draw(&s1, 20), draw(&s2, 20))
        // Drawing from a child leaves the parent's stream unchanged.
        var parent = root
        XCTAssertEqual(draw(&parent, 10), draw(&copy, 10))
    }

    func testSplitStreamsAreDistinctPerKeyAndKeyOrderMatters() {
        let root = RandomGenerator(seed: 11)
        var streams: [[UInt64]] = []
        for keys in [[1], [2], [1, 0], [1, 1], [0, 1], [2, 7], [7, 2]] as [[UInt64]] {
            var g = keys.count == 1 ? root.split(keys[0]) : root.split(keys[0], keys[1])
            streams.append(draw(&g, 8))
        }
        XCTAssertEqual(Set(streams).count, streams.count, "every key sequence gives its own stream")
        var parentStream = root
        XCTAssertFalse(streams.contains(draw(&parentStream, 8)))
        // Children of different parent states differ.
        var advanced = root
        _ = advanced.next()
        var a = root.split(1), b = advanced.split(1)
        XCTAssertNotEqual(draw(&a, 8), draw(&b, 8))
    }

    func testSplitStreamsAreUncorrelated() {
        let root = RandomGenerator(seed: 2024)
        var a = root.split(RandomStream.initialisation), b = root.split(RandomStream.dropout)
        let n = 20_000
        var sumA = 0.0, sumB = 0.0, sumAB = 0.0, sumAA = 0.0, sumBB = 0.0
        for _ in 0..<n {
            let x = Double(a.nextUniform()), y = Double(b.nextUniform())
            sumA += x; sumB += y; sumAB += x * y; sumAA += x * x; sumBB += y * y
        }
        let covariance = sumAB / Double(n) - sumA * sumB / Double(n * n)
        let correlation =
            covariance
            / ((sumAA / Double(n) - pow(sumA / Double(n), 2)).squareRoot()
                * (sumBB / Double(n) - pow(sumB / Double(n), 2)).squareRoot())
        XCTAssertLessThan(abs(correlation), 0.03)  // 4 standard errors of 1/√n
    }

    func testUniformFloatIsInTheUnitIntervalWithTheRightMoments() {
        var generator = RandomGenerator(seed: 3)
        let n = 100_000
        var sum = 0.0, sumOfSquares = 0.0, low = Float.infinity, high = -Float.infinity
        var buckets = [Int](repeating: 0, count: 10)
        for _ in 0..<n {
            let u = generator.nextUniform()
            XCTAssert(u >= 0 && u < 1, "uniform \(u) outside [0, 1)")
            low = min(low, u); high = max(high, u)
            sum += Double(u); sumOfSquares += Double(u) * Double(u)
            buckets[Int(u * 10)] += 1
        }
        let mean = sum / Double(n)
        XCTAssertEqual(mean, 0.5, accuracy: 0.005)
        XCTAssertEqual(sumOfSquares / Double(n) - mean * mean, 1.0 / 12, accuracy: 0.002)
        XCTAssertLessThan(low, 0.001)
        XCTAssertGreaterThan(high, 0.999)
        for count in buckets { XCTAssertEqual(Double(count), Double(n) / 10, accuracy: 400) }  // ≈ 4 σ
    }

    func testUniformDoubleIsInTheUnitInterval() {
        var generator = RandomGenerator(seed: 4)
        var sum = 0.0
        for _ in 0..<20_000 {
            let u = generator.nextUniformDouble()
            XCTAssert(u >= 0 && u < 1)
            sum += u
        }
        XCTAssertEqual(sum / 20_000, 0.5, accuracy: 0.01)
    }

    func testNormalHasMeanZeroAndUnitStandardDeviation() {
        var generator = RandomGenerator(seed: 8)
        let n = 100_000
        var sum = 0.0, sumOfSquares = 0.0, beyondTwo = 0
        for _ in 0..<n {
            let z = Double(generator.nextNormal())
            XCTAssert(z.isFinite)
            sum += z; sumOfSquares += z * z
            if abs(z) > 2 { beyondTwo += 1 }
        }
        let mean = sum / Double(n)
        XCTAssertEqual(mean, 0, accuracy: 0.015)
        XCTAssertEqual((sumOfSquares / Double(n) - mean * mean).squareRoot(), 1, accuracy: 0.015)
        XCTAssertEqual(Double(beyondTwo) / Double(n), 0.0455, accuracy: 0.003)  // tails of a normal
    }

    func testNextIndexIsInRangeAndCoversEveryValue() {
        var generator = RandomGenerator(seed: 12)
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<70_000 {
            let i = generator.nextIndex(below: 7)
            XCTAssert((0..<7).contains(i))
            counts[i] += 1
        }
        for count in counts { XCTAssertEqual(Double(count), 10_000, accuracy: 400) }
        XCTAssertEqual(generator.nextIndex(below: 1), 0)
    }
}
