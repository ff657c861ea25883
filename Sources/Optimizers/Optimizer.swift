import Tensors

/// An update rule over one flat parameter buffer and its gradient buffer. Its state is flat too,
/// so a checkpoint saves it as named tensors.
public protocol Optimizer: AnyObject {
    /// Applies one update with learning rate `learningRate`.
    func step(parameters: Tensor, gradients: Tensor, learningRate: Float)
    /// The optimiser's state (momentum, moments) with names, for checkpoints.
    var stateTensors: [(name: String, tensor: Tensor)] { get }
    /// Updates taken so far.
    var stepCount: Int { get set }
}

/// How weight decay enters the update.
public enum WeightDecayStyle: String, Sendable, CaseIterable, Codable {
    /// Added to the gradient as an L2 penalty (PyTorch `SGD`/`Adam` `weight_decay`).
    case l2
    /// Applied to the weights directly, `p ← p·(1 − lr·wd)` (PyTorch `AdamW`, "SGDW").
    case decoupled
}

/// Stochastic gradient descent with momentum and Nesterov momentum, exactly as PyTorch's
/// `torch.optim.SGD` (dampening 0; the first step sets the momentum buffer to the gradient).
/// The whole update is one pass over parameters, gradients and momentum.
public final class SGD: Optimizer {
    public let momentum: Float
    public let nesterov: Bool
    public let weightDecay: Float
    public let weightDecayStyle: WeightDecayStyle
    public var stepCount = 0
    /// The momentum buffer, laid out like the parameters.
    public let velocity: Tensor

    /// An optimiser for `parameterCount` parameters. The paper's recipe:
    /// `SGD(parameterCount: n, momentum: 0.9, nesterov: true, weightDecay: 5e-4)`.
    public init(
        parameterCount: Int, momentum: Float = 0.9, nesterov: Bool = true,
        weightDecay: Float = 5e-4, weightDecayStyle: WeightDecayStyle = .l2
    ) {
        precondition(!nesterov || momentum > 0, "Nesterov momentum needs momentum > 0")
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        self.weightDecayStyle = weightDecayStyle
        velocity = Tensor(zeros: [parameterCount])
    }

    public var stateTensors: [(name: String, tensor: Tensor)] { [("momentum_buffer", velocity)] }

    public func step(parameters: Tensor, gradients: Tensor, learningRate lr: Float) {
        precondition(
            parameters.count == velocity.count && gradients.count == velocity.count,
            "SGD built for \(velocity.count) parameters got \(parameters.count) and \(gradients.count) gradients")
        let p = parameters.pointer, g = gradients.pointer, v = velocity.pointer
        let (m, l2) = (momentum, weightDecayStyle == .l2 ? weightDecay : 0)
        let shrink = weightDecayStyle == .decoupled ? 1 - lr * weightDecay : 1
        let first = stepCount == 0
        let nesterov = nesterov
        Parallel.forEachBlock(of: velocity.count, size: 1 << 16) { part in
            for i in part {
                let d = g[i] + l2 * p[i]
                let buffer = m == 0 ? d : (first ? d : m * v[i] + d)
                v[i] = buffer
                let update = nesterov ? d + m * buffer : buffer
                p[i] = p[i] * shrink - lr * update
            }
        }
        stepCount += 1
    }
}

/// Adam with decoupled weight decay (PyTorch's `torch.optim.AdamW`), or Adam with an L2 penalty.
public final class AdamW: Optimizer {
    public let beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float
    public let weightDecayStyle: WeightDecayStyle
    public var stepCount = 0
    /// First and second moment estimates, laid out like the parameters.
    public let firstMoment: Tensor, secondMoment: Tensor

    public init(
        parameterCount: Int, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
        weightDecay: Float = 1e-2, weightDecayStyle: WeightDecayStyle = .decoupled
    ) {
        (self.beta1, self.beta2, self.epsilon, self.weightDecay) = (beta1, beta2, epsilon, weightDecay)
        self.weightDecayStyle = weightDecayStyle
        firstMoment = Tensor(zeros: [parameterCount])
        secondMoment = Tensor(zeros: [parameterCount])
    }

    public var stateTensors: [(name: String, tensor: Tensor)] {
        [("exp_avg", firstMoment), ("exp_avg_sq", secondMoment)]
    }

    public func step(parameters: Tensor, gradients: Tensor, learningRate lr: Float) {
        precondition(
            parameters.count == firstMoment.count && gradients.count == firstMoment.count,
            "AdamW built for \(firstMoment.count) parameters got \(parameters.count) and \(gradients.count) gradients")
        stepCount += 1
        let p = parameters.pointer, g = gradients.pointer, m = firstMoment.pointer, v = secondMoment.pointer
        let correction1 = 1 - powf(beta1, Float(stepCount)), correction2 = 1 - powf(beta2, Float(stepCount))
        let stepSize = lr / correction1, rootCorrection2 = correction2.squareRoot()
        let l2 = weightDecayStyle == .l2 ? weightDecay : 0
        let shrink = weightDecayStyle == .decoupled ? 1 - lr * weightDecay : 1
        for i in 0..<firstMoment.count {
            let d = g[i] + l2 * p[i]
            m[i] = beta1 * m[i] + (1 - beta1) * d
            v[i] = beta2 * v[i] + (1 - beta2) * d * d
            p[i] = p[i] * shrink - stepSize * m[i] / (v[i].squareRoot() / rootCorrection2 + epsilon)
        }
    }
}

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
