import Collectives
import Layers
import Models
import Optimizers
import Tensors

/// One data-parallel optimisation step, the heart of every training loop:
/// zero the flat gradient buffer → for each micro-batch: forward → softmax cross-entropy
/// against soft targets → backward, adding into the buffer → average gradients across ranks
/// (one all-reduce) → optimiser update on the flat parameter buffer.
///
/// With K micro-batches (gradient accumulation) the rank's batch of b rows is cut into K runs
/// of b/K rows; each run's loss gradient averages over all b rows, so the summed gradient is the
/// whole batch's, up to float rounding. Layers with batch statistics (BatchNorm) see each
/// micro-batch on its own, as in PyTorch: normalisation uses the micro-batch's mean and variance,
/// and the running statistics are updated once per micro-batch.
public final class TrainingStep {
    public let model: Model
    public let optimizer: any Optimizer
    public let communicator: any Communicator
    /// Micro-batches per step, K ≥ 1.
    public let microBatches: Int
    private let loss = SoftmaxCrossEntropy()
    /// The model's Dropout layers, told each micro-batch's samples.
    private let dropoutLayers: [Dropout]
    private var probabilities = Tensor(zeros: [0])  // (b, C), the whole batch's softmax rows

    /// What a step returns.
    public struct Result {
        /// This rank's mean loss over its batch.
        public let loss: Double
        /// The model's softmax rows of the batch, `[b, C]` (owned by the step; valid until the
        /// next call). PS-KD stores them as the next epoch's teacher.
        public let probabilities: Tensor
    }

    /// A step over `model`'s parameters, its batches trained in `microBatches` micro-batches.
    public init(model: Model, optimizer: any Optimizer, communicator: any Communicator, microBatches: Int = 1) {
        precondition(microBatches >= 1, "a step needs at least one micro-batch, got \(microBatches)")
        self.model = model
        self.optimizer = optimizer
        self.communicator = communicator
        self.microBatches = microBatches
        dropoutLayers = model.network.descendants().compactMap { $0 as? Dropout }
    }

    /// Trains on one batch. `targets` holds one probability row per sample; the batch's rows
    /// must divide into `microBatches` equal parts. `samples` names the rows' samples, from
    /// which Dropout draws its masks (required when the model has Dropout).
    public func callAsFunction(
        inputs: Tensor, targets: Tensor, samples: BatchSamples? = nil,
        learningRate: Float
    ) throws -> Result {
        let rows = inputs.shape[0]
        precondition(rows % microBatches == 0, "a batch of \(rows) rows does not divide into \(microBatches) micro-batches")
        let parameters = model.parameters
        parameters.zeroGradients()
        let batchProbabilities = probabilityRows(like: targets)
        var lossSum = 0.0
        for part in 0..<microBatches {
            let range = (part * rows / microBatches)..<((part + 1) * rows / microBatches)
            if let samples { tellDropout(samples, rows: range) }
            lossSum += try accumulateGradients(
                inputs: inputs.rows(range), targets: targets.rows(range),
                batchRows: rows, probabilities: batchProbabilities.rows(range))
        }
        try communicator.allReduceMean(parameters.gradients.buffer)
        optimizer.step(parameters: parameters.values, gradients: parameters.gradients, learningRate: learningRate)
        return Result(loss: lossSum / Double(microBatches), probabilities: batchProbabilities)
    }

    /// Forward and backward over one micro-batch, adding its share of the batch's gradient into
    /// the flat buffer and copying its softmax rows into `probabilities`; returns its mean loss.
    private func accumulateGradients(inputs: Tensor, targets: Tensor, batchRows: Int, probabilities: Tensor) throws -> Double {
        let logits = try model.forward(inputs, mode: .training)
        let result = try loss(logits: logits, targets: targets, gradientRows: batchRows)
        model.backward(result.logitGradients)
        probabilities.assign(result.probabilities)
        return result.loss
    }

    /// Gives the model's Dropout layers the samples of the micro-batch `rows` (nothing to do,
    /// and nothing allocated, for a model without Dropout).
    private func tellDropout(_ samples: BatchSamples, rows: Range<Int>) {
        guard !dropoutLayers.isEmpty else { return }
        let part = BatchSamples(seed: samples.seed, epoch: samples.epoch, indices: Array(samples.indices[rows]))
        for layer in dropoutLayers { layer.samples = part }
    }

    /// The step's `[b, C]` buffer of softmax rows, reallocated only when the shape changes.
    private func probabilityRows(like targets: Tensor) -> Tensor {
        if probabilities.shape != targets.shape { probabilities = Tensor(zeros: targets.shape) }
        return probabilities
    }
}
