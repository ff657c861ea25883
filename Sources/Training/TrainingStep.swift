import Collectives
import Layers
import Models
import Optimizers
import Tensors

/// One data-parallel optimisation step, the heart of every training loop:
/// forward → softmax cross-entropy against soft targets → backward into the flat gradient
/// buffer → average gradients across ranks → optimiser update on the flat parameter buffer.
public final class TrainingStep {
    public let model: Model
    public let optimizer: any Optimizer
    public let communicator: any Communicator
    private let loss = SoftmaxCrossEntropy()

    public init(model: Model, optimizer: any Optimizer, communicator: any Communicator) {
        self.model = model
        self.optimizer = optimizer
        self.communicator = communicator
    }

    /// Trains on one batch. `targets` holds one probability row per sample. Returns this
    /// rank's mean loss and the model's softmax rows (owned by the loss; valid until the next call).
    public func callAsFunction(inputs: Tensor, targets: Tensor, learningRate: Float) throws -> SoftmaxCrossEntropy.Result {
        let logits = try model.forward(inputs, mode: .training)
        let result = try loss(logits: logits, targets: targets)
        model.backward(result.logitGradients)
        let parameters = model.parameters
        try communicator.allReduceMean(parameters.gradients.buffer)
        optimizer.step(parameters: parameters.values, gradients: parameters.gradients, learningRate: learningRate)
        return result
    }
}
