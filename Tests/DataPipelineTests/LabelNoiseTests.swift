import DataPipeline
import Tensors
import XCTest

/// Symmetric label noise: the flip rate, the new classes, and that the noisy label of a sample
/// depends on (seed, sample index) alone.
final class LabelNoiseTests: XCTestCase {
    /// 60 000 one-pixel samples of 10 classes, labels 0, 1, …, 9, 0, 1, ….
    private func synthetic(count: Int = 60_000, classes: Int = 10) -> Dataset {
        Dataset(
            name: "synthetic", split: .train, height: 1, width: 1, channels: 1, classCount: classes,
            pixels: [UInt8](repeating: 7, count: count), labels: (0..<count).map { Int32($0 % classes) }, mean: [0.5], std: [0.5])
    }

    /// At rate 0.4 on N = 60 000 the flip count is Binomial(60 000, 0.4): mean 24 000, σ = 120;
    /// a flipped label is never its class, and the new class is uniform over the other nine.
    func testFlipFractionAndNewClassesFollowTheDefinition() {
        let clean = synthetic()
        let (noisy, flipped) = clean.withLabelNoise(LabelNoise(rate: 0.4, seed: 1))
        XCTAssertEqual(noisy.count, clean.count)
        XCTAssertEqual(flipped, zip(noisy.labels, clean.labels).filter { $0 != $1 }.count)
        XCTAssertEqual(Double(flipped), 24_000, accuracy: 5 * 120, "flipped \(flipped) of 60 000 at rate 0.4")
        var offsets = [Int](repeating: 0, count: 10)  // (noisy − clean) mod 10 among the flipped
        var flippedPerClass = [Int](repeating: 0, count: 10)
        for (new, old) in zip(noisy.labels, clean.labels) where new != old {
            offsets[Int((new - old + 10) % 10)] += 1
            flippedPerClass[Int(old)] += 1
        }
        XCTAssertEqual(offsets[0], 0, "a flipped label is never its original class")
        let share = Double(flipped) / 9, shareSigma = (Double(flipped) * (1 / 9) * (8 / 9)).squareRoot()
        for offset in 1..<10 { XCTAssertEqual(Double(offsets[offset]), share, accuracy: 5 * shareSigma, "offset \(offset)") }
        for count in flippedPerClass { XCTAssertEqual(Double(count), 2_400, accuracy: 5 * (6_000 * 0.4 * 0.6).squareRoot()) }
        XCTAssertEqual(noisy.pixels, clean.pixels)
        XCTAssertTrue(noisy.labels.allSatisfy { (0..<10).contains($0) })
    }

    /// The noisy label of sample i is a function of (seed, i): the same for a prefix of the set
    /// (`--max-train-samples`), in any visiting order (any rank's shard, any rank count), and
    /// different for another seed.
    func testNoisyLabelsDependOnSeedAndIndexAlone() {
        let noise = LabelNoise(rate: 0.4, seed: 9)
        let full = synthetic().withLabelNoise(noise).dataset.labels
        XCTAssertEqual(synthetic(count: 1_000).withLabelNoise(noise).dataset.labels, Array(full.prefix(1_000)))
        var generator = RandomGenerator(seed: 3)
        for ranks in 1...3 {
            for rank in 0..<ranks {
                let shard = Array(stride(from: rank, to: 3_000, by: ranks)).shuffled(using: &generator)
                for index in shard {
                    XCTAssertEqual(Int32(LabelNoise(rate: 0.4, seed: 9).label(index % 10, sample: index, classCount: 10)), full[index])
                }
            }
        }
        XCTAssertNotEqual(synthetic(count: 1_000).withLabelNoise(LabelNoise(rate: 0.4, seed: 10)).dataset.labels, Array(full.prefix(1_000)))
    }

    func testRateZeroChangesNothing() {
        let clean = synthetic(count: 500)
        let (noisy, flipped) = clean.withLabelNoise(LabelNoise(rate: 0, seed: 1))
        XCTAssertEqual(flipped, 0)
        XCTAssertEqual(noisy.labels, clean.labels)
        XCTAssertEqual((0..<500).map { LabelNoise(rate: 0, seed: 1).label($0 % 10, sample: $0, classCount: 10) }, (0..<500).map { $0 % 10 })
    }

    func testTwoClassesAlwaysFlipToTheOther() {
        let (noisy, flipped) = synthetic(count: 2_000, classes: 2).withLabelNoise(LabelNoise(rate: 0.25, seed: 4))
        XCTAssertEqual(Double(flipped), 500, accuracy: 5 * (2_000 * 0.25 * 0.75).squareRoot())
        for (index, label) in noisy.labels.enumerated() where label != Int32(index % 2) { XCTAssertEqual(label, Int32(1 - index % 2)) }
    }
}
