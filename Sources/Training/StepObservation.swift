import Tensors

/// What one training step of `Trainer` trained on and produced, handed to
/// `Trainer.stepObserver` right after the step's update (before the teacher update): the seam
/// through which tests check the targets the trainer really used.
public struct StepObservation {
    /// The epoch, 1-based.
    public let epoch: Int
    /// The step within the epoch, 0-based.
    public let step: Int
    /// The policy's weight of the epoch (PS-KD's α_t; 0 for other policies).
    public let alpha: Float
    /// The global sample index of each of this rank's rows.
    public let indices: [Int]
    /// The label of each row.
    public let labels: [Int]
    /// The target rows the step trained against, `[b, C]` (after CutMix's mixing), for
    /// policies that train against targets; nil for the others. Valid only during the call.
    public let targets: Tensor?
    /// The model's softmax rows from the step's forward pass, `[b, C]`; valid only during the call.
    public let probabilities: Tensor
    /// This rank's mean loss of the step.
    public let loss: Double
}
