import Collectives
import Layers
import Tensors

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// What the model did on one test sample: the inputs of every metric.
public struct SampleOutcome: Sendable, Equatable, BitwiseCopyable {
    /// The sample's global index in the test set.
    public var index: Int
    /// Its true class.
    public var label: Int
    /// The largest softmax probability (the top-label confidence).
    public var confidence: Double
    /// −log p(label), from the logits (exact even where p(label) underflows a float).
    public var negativeLogLikelihood: Double
    /// Whether the most probable class is the label.
    public var isCorrect: Bool
    /// Whether the label is among the five most probable classes.
    public var isInTopFive: Bool

    public init(
        index: Int, label: Int, confidence: Double, negativeLogLikelihood: Double,
        isCorrect: Bool, isInTopFive: Bool
    ) {
        (self.index, self.label, self.confidence) = (index, label, confidence)
        (self.negativeLogLikelihood, self.isCorrect, self.isInTopFive) = (negativeLogLikelihood, isCorrect, isInTopFive)
    }
}

/// The paper's test metrics, computed over a whole test set.
public struct ClassificationMetrics: Sendable, Codable, Equatable {
    /// The number of samples counted.
    public var count: Int
    /// Top-1 error, %.
    public var top1Error: Double
    /// Top-5 error, %.
    public var top5Error: Double
    /// Mean negative log-likelihood (natural log).
    public var negativeLogLikelihood: Double
    /// Expected calibration error, %, over `eceBins` equal-width bins (lo, hi] of confidence.
    public var expectedCalibrationError: Double
    /// The number of ECE bins.
    public var eceBins: Int
    /// Area under the risk–coverage curve, ×1000.
    public var aurc: Double
    /// AURC minus the optimal AURC for the same error count, ×1000.
    public var excessAURC: Double
    /// The `eceBins` confidence bins, lowest first: what ECE sums and a reliability diagram draws.
    public var reliability: [ReliabilityBin]

    /// The names `metrics.jsonl` gives these properties (as `EpochRecord` encodes them), for
    /// every output that reports test metrics.
    public static let recordKeys = [
        "count": "count", "top1Error": "test_top1_error", "top5Error": "test_top5_error",
        "negativeLogLikelihood": "test_nll", "expectedCalibrationError": "test_ece", "eceBins": "ece_bins",
        "aurc": "test_aurc", "excessAURC": "test_eaurc", "reliability": "test_reliability",
    ]

    /// The metrics of `outcomes`, which must not count any sample twice. The result depends only
    /// on the set of outcomes, not on their order (AURC breaks confidence ties by index), so it
    /// is identical for any number of ranks.
    public init(outcomes: [SampleOutcome], eceBins: Int) {
        precondition(eceBins > 0, "ECE needs at least one bin")
        let sorted = outcomes.sorted { $0.index < $1.index }
        let n = Double(max(sorted.count, 1))
        count = sorted.count
        self.eceBins = eceBins
        top1Error = 100 * Double(sorted.filter { !$0.isCorrect }.count) / n
        top5Error = 100 * Double(sorted.filter { !$0.isInTopFive }.count) / n
        negativeLogLikelihood = sorted.reduce(0) { $0 + $1.negativeLogLikelihood } / n
        reliability = ReliabilityBin.bins(sorted, count: eceBins)
        let total = Double(max(sorted.count, 1))
        expectedCalibrationError =
            100
            * reliability.reduce(0) { sum, bin in
                sum + Double(bin.count) / total * abs(bin.accuracy - bin.confidence)
            }
        (aurc, excessAURC) = ClassificationMetrics.riskCoverage(sorted)
    }

    /// AURC and E-AURC, ×1000: risk(k) = errors among the k most confident / k, averaged over k.
    static func riskCoverage(_ outcomes: [SampleOutcome]) -> (Double, Double) {
        guard !outcomes.isEmpty else { return (0, 0) }
        let ranked = outcomes.sorted { ($0.confidence, -$0.index) > ($1.confidence, -$1.index) }
        var errors = 0.0, area = 0.0
        for (k, outcome) in ranked.enumerated() {
            errors += outcome.isCorrect ? 0 : 1
            area += errors / Double(k + 1)
        }
        let n = Double(ranked.count)
        let aurc = area / n
        let errorCount = Int(errors)
        var optimal = 0.0
        if errorCount > 0 {
            for i in 1...errorCount { optimal += Double(i) / (n - Double(errorCount) + Double(i)) }
        }
        optimal /= n
        return (1000 * aurc, 1000 * (aurc - optimal))
    }
}

/// One equal-width confidence bin (lower, upper] of a reliability diagram.
public struct ReliabilityBin: Sendable, Codable, Equatable {
    public var lower: Double
    public var upper: Double
    /// Samples whose confidence falls in the bin.
    public var count: Int
    /// Their accuracy (0 when empty).
    public var accuracy: Double
    /// Their mean confidence (0 when empty).
    public var confidence: Double

    /// `count` bins over [0, 1]; confidence c falls in bin ⌈c·B⌉ − 1 (0 goes to the first bin).
    public static func bins(_ outcomes: [SampleOutcome], count: Int) -> [ReliabilityBin] {
        var bins = (0..<count).map {
            ReliabilityBin(
                lower: Double($0) / Double(count), upper: Double($0 + 1) / Double(count),
                count: 0, accuracy: 0, confidence: 0)
        }
        for outcome in outcomes {
            let b = min(max(Int((outcome.confidence * Double(count)).rounded(.up)) - 1, 0), count - 1)
            bins[b].count += 1
            bins[b].accuracy += outcome.isCorrect ? 1 : 0
            bins[b].confidence += outcome.confidence
        }
        for b in bins.indices where bins[b].count > 0 {
            bins[b].accuracy /= Double(bins[b].count)
            bins[b].confidence /= Double(bins[b].count)
        }
        return bins
    }
}

extension SampleOutcome {
    /// The outcomes of a batch's logits `[rows, C]`, skipping padding rows. Everything comes from
    /// log softmax(z) = z − logSumExp(z) (see `SoftmaxCrossEntropy.logSumExp`): the NLL is exact
    /// however small p(label) is, the confidence is exp of the top log-probability, and classes are
    /// ranked by their logits (ties broken towards the lower class).
    public static func outcomes(logits: Tensor, labels: [Int], indices: [Int], isPadding: [Bool]) -> [SampleOutcome] {
        let c = logits.shape[1]
        var result: [SampleOutcome] = []
        result.reserveCapacity(labels.count)
        for row in labels.indices where !isPadding[row] {
            let z = logits.pointer + row * c
            let logNormalizer = SoftmaxCrossEntropy.logSumExp(z, count: c)
            var best = 0
            for k in 1..<c where z[k] > z[best] { best = k }
            let label = labels[row]
            let above = (0..<c).filter { z[$0] > z[label] || (z[$0] == z[label] && $0 < label) }.count
            result.append(
                SampleOutcome(
                    index: indices[row], label: label, confidence: exp(Double(z[best]) - logNormalizer),
                    negativeLogLikelihood: logNormalizer - Double(z[label]),
                    isCorrect: best == label, isInTopFive: above < 5))
        }
        return result
    }
}
