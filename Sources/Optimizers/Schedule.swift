/// A learning rate as a function of training progress.
public protocol LearningRateSchedule: Sendable {
    /// The rate for step `step` (0-based) of epoch `epoch` (0-based: epochs completed so far),
    /// with `stepsPerEpoch` steps in every epoch.
    func learningRate(epoch: Int, step: Int, stepsPerEpoch: Int) -> Double
}

/// A constant rate.
public struct ConstantSchedule: LearningRateSchedule {
    public let base: Double
    public init(base: Double) { self.base = base }
    public func learningRate(epoch: Int, step: Int, stepsPerEpoch: Int) -> Double { base }
}

/// PyTorch's `MultiStepLR`: `base · gamma^k`, k = the number of milestones ≤ epochs completed.
/// The paper: base 0.1, milestones [150, 225], gamma 0.1.
public struct StepSchedule: LearningRateSchedule {
    public let base: Double, milestones: [Int], gamma: Double
    public init(base: Double, milestones: [Int], gamma: Double = 0.1) {
        (self.base, self.milestones, self.gamma) = (base, milestones.sorted(), gamma)
    }
    public func learningRate(epoch: Int, step: Int, stepsPerEpoch: Int) -> Double {
        var rate = base
        for milestone in milestones where milestone <= epoch { rate *= gamma }
        return rate
    }
}

/// Cosine annealing per step from `base` to `minimum` over `epochs` epochs.
public struct CosineSchedule: LearningRateSchedule {
    public let base: Double, epochs: Int, minimum: Double
    public init(base: Double, epochs: Int, minimum: Double = 0) {
        (self.base, self.epochs, self.minimum) = (base, max(epochs, 1), minimum)
    }
    public func learningRate(epoch: Int, step: Int, stepsPerEpoch: Int) -> Double {
        let progress = (Double(epoch) + Double(step) / Double(max(stepsPerEpoch, 1))) / Double(epochs)
        return minimum + (base - minimum) * (1 + cos(Double.pi * min(progress, 1))) / 2
    }
}

/// A linear warm-up over the first `warmupEpochs` epochs (per step, from base/steps up to the
/// wrapped schedule's rate), then the wrapped schedule.
public struct WarmupSchedule: LearningRateSchedule {
    public let wrapped: any LearningRateSchedule, warmupEpochs: Int
    public init(_ wrapped: any LearningRateSchedule, warmupEpochs: Int) {
        (self.wrapped, self.warmupEpochs) = (wrapped, warmupEpochs)
    }
    public func learningRate(epoch: Int, step: Int, stepsPerEpoch: Int) -> Double {
        let rate = wrapped.learningRate(epoch: epoch, step: step, stepsPerEpoch: stepsPerEpoch)
        let warmupSteps = warmupEpochs * stepsPerEpoch
        let done = epoch * stepsPerEpoch + step + 1
        return done < warmupSteps ? rate * Double(done) / Double(warmupSteps) : rate
    }
}

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
