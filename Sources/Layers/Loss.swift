import Tensors

/// Softmax and cross-entropy against soft targets, fused and numerically stable:
/// for logits `z` `[N, C]` and target rows `t` (each a probability distribution),
/// loss = mean over rows of −Σ_c t_c · log softmax(z)_c, computed with log-sum-exp from the
/// logits (never from the probabilities, which underflow: a one-hot target whose class has
/// p = e^−200 costs 200).
/// Hard labels are the one-hot special case.
public final class SoftmaxCrossEntropy {
    /// The result of one evaluation; the tensors are owned by the loss and reused next call.
    public struct Result {
        /// The mean loss over the rows.
        public let loss: Double
        /// softmax(z), one row per sample (PS-KD stores these as next epoch's teacher).
        public let probabilities: Tensor
        /// ∂loss/∂z = (softmax(z) − t) / N, with N the rows the gradient averages over.
        public let logitGradients: Tensor
    }

    private var probabilities = Workspace()
    private var gradients = Workspace()

    public init() {}

    /// Evaluates the loss of `logits` against `targets` (both `[N, C]`). The gradient averages
    /// over `gradientRows` rows (default the N given): the rows of the whole batch when these
    /// logits are one of its micro-batches, so that the micro-batches' gradients add up to the
    /// whole batch's. `loss` is always the mean over the N rows given.
    public func callAsFunction(logits: Tensor, targets: Tensor, gradientRows: Int? = nil) throws(ShapeError) -> Result {
        guard logits.rank == 2, logits.shape == targets.shape else {
            throw ShapeError("SoftmaxCrossEntropy needs logits and targets of one shape [N, C], got \(logits.shape) and \(targets.shape)")
        }
        let (rows, classes) = (logits.shape[0], logits.shape[1])
        let p = probabilities.tensor(logits.shape), g = gradients.tensor(logits.shape)
        let z = logits.pointer, t = targets.pointer, prob = p.pointer, grad = g.pointer
        let scale = 1 / Float(gradientRows ?? rows)
        var total = 0.0
        for r in 0..<rows {
            let base = r * classes
            let (maximum, sum) = Self.softmaxRow(z + base, count: classes, into: prob + base)
            let logSum = logf(sum)
            var rowLoss: Float = 0
            for c in 0..<classes {
                rowLoss -= t[base + c] * (z[base + c] - maximum - logSum)
                grad[base + c] = (prob[base + c] - t[base + c]) * scale
            }
            total += Double(rowLoss)
        }
        return Result(loss: total / Double(rows), probabilities: p, logitGradients: g)
    }

    /// log Σ_c exp(z_c/τ) of one row of `count` logits (τ = `temperature`, default 1), in Double and shifted by the row's
    /// maximum, so that log softmax(z)_k = z_k − logSumExp is exact even where softmax(z)_k
    /// underflows a float (a confidently wrong prediction's −log p is then its true size, not a cap).
    public static func logSumExp(_ row: UnsafePointer<Float>, count: Int, temperature: Double = 1) -> Double {
        var maximum = -Float.infinity
        for c in 0..<count { maximum = max(maximum, row[c]) }
        let shift = Double(maximum) / temperature
        var sum = 0.0
        for c in 0..<count { sum += exp(Double(row[c]) / temperature - shift) }
        return shift + log(sum)
    }

    /// Writes softmax(z/τ) of one row of `count` logits at `output`; returns the row's maximum
    /// and Σ_c exp((z_c − maximum)/τ), from which log-sum-exp follows.
    @inline(__always)
    public static func softmaxRow(
        _ z: UnsafePointer<Float>, count: Int, temperature: Float = 1, into output: UnsafeMutablePointer<Float>
    ) -> (maximum: Float, sum: Float) {
        var maximum = -Float.infinity
        for c in 0..<count { maximum = max(maximum, z[c]) }
        var sum: Float = 0
        for c in 0..<count {
            let e = expf((z[c] - maximum) / temperature)
            output[c] = e
            sum += e
        }
        let inverse = 1 / sum
        for c in 0..<count { output[c] *= inverse }
        return (maximum, sum)
    }

    /// One-hot rows `[labels.count, classes]` for hard labels.
    public static func oneHot(_ labels: [Int], classes: Int) -> Tensor {
        let t = Tensor(zeros: [labels.count, classes])
        for (row, label) in labels.enumerated() {
            precondition(label >= 0 && label < classes, "label \(label) outside 0..<\(classes)")
            t[row * classes + label] = 1
        }
        return t
    }
}

/// The distillation term of knowledge distillation, for a student's logits `z` and a teacher's
/// distribution `q` (each row a probability distribution): `weight · KL(q ‖ softmax(z/τ))` per
/// row, averaged over the rows, with its gradient `weight/τ · (softmax(z/τ) − q)` per row.
///
/// Hinton et al.'s term `τ²·KL(softmax(t/τ) ‖ softmax(z/τ))` is `weight = τ²` with
/// `q = softmax(t/τ)` (`softenedDistribution`); CS-KD and TF-KD differ only in the weight, the
/// temperature and where `q` comes from.
public final class DistillationDivergence {
    private var softened = Workspace()

    public init() {}

    /// Adds the term's gradient, averaged over `gradientRows` rows (the whole batch when these
    /// logits are one of its micro-batches), into `gradients` (`[N, C]`, like `logits`), and
    /// returns the term's mean over the N rows given.
    public func accumulate(
        logits: Tensor, teacher q: Tensor, temperature: Float, weight: Float, gradientRows: Int,
        into gradients: Tensor
    ) -> Double {
        precondition(
            logits.shape == q.shape && logits.shape == gradients.shape, "logits, teacher and gradients must share one shape [N, C]")
        let (rows, classes) = (logits.shape[0], logits.shape[1])
        let student = softened.tensor(logits.shape)
        Self.softenedDistribution(logits: logits, temperature: temperature, into: student)
        let z = logits.pointer, s = student.pointer, t = q.pointer, g = gradients.pointer
        let scale = weight / temperature / Float(gradientRows)
        var total = 0.0
        for r in 0..<rows {
            let base = r * classes
            let logSum = SoftmaxCrossEntropy.logSumExp(z + base, count: classes, temperature: Double(temperature))
            var divergence = 0.0
            for c in 0..<classes where t[base + c] > 0 {
                let logStudent = Double(z[base + c]) / Double(temperature) - logSum
                divergence += Double(t[base + c]) * (log(Double(t[base + c])) - logStudent)
            }
            total += Double(weight) * divergence
            for c in 0..<classes { g[base + c] += scale * (s[base + c] - t[base + c]) }
        }
        return total / Double(rows)
    }

    /// softmax(z/τ) of each row of `logits` into `output` (same shape), stable for any τ > 0.
    public static func softenedDistribution(logits: Tensor, temperature: Float, into output: Tensor) {
        precondition(logits.shape == output.shape && logits.rank == 2, "softened distribution needs [N, C] in and out")
        let (rows, classes) = (logits.shape[0], logits.shape[1])
        let z = logits.pointer, p = output.pointer
        for r in 0..<rows {
            _ = SoftmaxCrossEntropy.softmaxRow(z + r * classes, count: classes, temperature: temperature, into: p + r * classes)
        }
    }
}

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
