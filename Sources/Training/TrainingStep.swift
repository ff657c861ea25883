import Collectives
import DataPipeline
import Layers
import Models
import Optimizers
import Platform
import Tensors

/// One data-parallel optimisation step, the heart of every training loop (`Trainer` and
/// `pskd bench` both run it): the policy prepares the batch's targets → for each micro-batch:
/// forward → the policy's loss and logit gradient → backward, adding into the flat gradient
/// buffer → average gradients across ranks (one all-reduce) → optimiser update on the flat
/// parameter buffer → the policy writes back what the step taught (PS-KD's teacher exchange).
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
    /// The run's seed, from which Dropout draws its masks.
    public let seed: UInt64
    /// Told when the step reaches the policy's write-back (for the stall watchdog), if given.
    private let beacon: ProgressBeacon?
    /// The model's Dropout layers, told each micro-batch's samples.
    private let dropoutLayers: [Dropout]
    private var probabilities = Tensor(zeros: [0])  // (b, C), the whole batch's softmax rows
    /// When set, each step adds where its time went, and waits for the other ranks at a
    /// barrier before the all-reduce so that waiting and transfer are told apart
    /// (`pskd bench --profile`; nil, the default, costs nothing and adds no barrier).
    public var phaseTimes: StepPhaseTimes?

    /// What a step returns.
    public struct Result {
        /// This rank's mean loss over its batch.
        public let loss: Double
        /// The model's softmax rows of the batch, `[b, C]` (owned by the step; valid until the
        /// next call).
        public let probabilities: Tensor
        /// The target rows trained against, when the policy trains against targets (a view of
        /// the policy's buffer, valid until its next step).
        public let targets: Tensor?
    }

    /// A step over `model`'s parameters, its batches trained in `microBatches` micro-batches.
    public init(
        model: Model, optimizer: any Optimizer, communicator: any Communicator, microBatches: Int = 1,
        seed: UInt64, beacon: ProgressBeacon? = nil
    ) {
        precondition(microBatches >= 1, "a step needs at least one micro-batch, got \(microBatches)")
        self.model = model
        self.optimizer = optimizer
        self.communicator = communicator
        self.microBatches = microBatches
        self.seed = seed
        self.beacon = beacon
        dropoutLayers = model.network.descendants().compactMap { $0 as? Dropout }
    }

    /// Trains on one batch with `policy`; the batch's rows must divide into `microBatches`
    /// equal parts.
    public func callAsFunction(_ batch: Batch, policy: any TrainingPolicy, learningRate: Float) throws -> Result {
        let rows = batch.count
        precondition(rows % microBatches == 0, "a batch of \(rows) rows does not divide into \(microBatches) micro-batches")
        let parameters = model.parameters
        parameters.zeroGradients()
        try timed(\.targets) { try policy.beginStep(batch) }
        let batchProbabilities = probabilityRows(rows: rows)
        var lossSum = 0.0
        for part in 0..<microBatches {
            let range = (part * rows / microBatches)..<((part + 1) * rows / microBatches)
            try timed(\.targets) { try policy.beforeForward(rows: range) }
            tellDropout(batch, rows: range)
            let logits = try timed(\.forward) { try model.forward(batch.inputs.rows(range), mode: .training) }
            let loss = try timed(\.loss) { try policy.loss(logits: logits, rows: range, batchRows: rows) }
            timed(\.backward) { model.backward(loss.logitGradients) }
            batchProbabilities.rows(range).assign(loss.probabilities)
            lossSum += loss.loss
        }
        if phaseTimes != nil { try timed(\.waiting) { try communicator.barrier() } }
        try timed(\.allReduce) { try communicator.allReduceMean(parameters.gradients.buffer) }
        timed(\.optimizer) { optimizer.step(parameters: parameters.values, gradients: parameters.gradients, learningRate: learningRate) }
        beacon?.enter(.teacherExchange)
        try timed(\.writeBack) { try policy.endStep(batch, probabilities: batchProbabilities) }
        return Result(loss: lossSum / Double(microBatches), probabilities: batchProbabilities, targets: policy.stepTargets)
    }

    /// Runs `body`, adding its duration to `phase` when `phaseTimes` is set.
    private func timed<Value>(_ phase: WritableKeyPath<StepPhaseTimes, Double>, _ body: () throws -> Value) rethrows -> Value {
        guard phaseTimes != nil else { return try body() }
        let start = Stopwatch.now
        defer { phaseTimes?[keyPath: phase] += Stopwatch.now - start }
        return try body()
    }

    /// Gives the model's Dropout layers the samples of the micro-batch `rows` (nothing to do,
    /// and nothing allocated, for a model without Dropout).
    private func tellDropout(_ batch: Batch, rows: Range<Int>) {
        guard !dropoutLayers.isEmpty else { return }
        let part = BatchSamples(seed: seed, epoch: batch.epoch, indices: Array(batch.indices[rows]))
        for layer in dropoutLayers { layer.samples = part }
    }

    /// The step's `[b, C]` buffer of softmax rows, reallocated only when the shape changes.
    private func probabilityRows(rows: Int) -> Tensor {
        let shape = [rows, model.classCount]
        if probabilities.shape != shape { probabilities = Tensor(zeros: shape) }
        return probabilities
    }
}

/// Where training steps spent their time, summed over the steps (`TrainingStep.phaseTimes`).
public struct StepPhaseTimes: Sendable, Equatable {
    /// The policy's targets for the batch (`beginStep`, `beforeForward`: PS-KD's teacher rows).
    public var targets = 0.0
    /// The model's forward and backward passes (each layer's share is in `LayerProfile`).
    public var forward = 0.0, backward = 0.0
    /// The policy's loss, softmax and logit gradient.
    public var loss = 0.0
    /// Waiting at a barrier for the other ranks to finish their backward pass.
    public var waiting = 0.0
    /// The gradient all-reduce once every rank is there.
    public var allReduce = 0.0
    /// The optimiser's update of the flat parameter buffer.
    public var optimizer = 0.0
    /// The policy's write-back (PS-KD: the teacher exchange).
    public var writeBack = 0.0

    public init() {}

    /// All of it.
    public var total: Double { targets + forward + backward + loss + waiting + allReduce + optimizer + writeBack }
}
