import Collectives
import DataPipeline
import Layers
import Models
import Optimizers
import Platform
import SelfDistillation
import Tensors

/// Measures training throughput (forward + backward + update, with gradients averaged across
/// ranks) on synthetic data held in memory, PS-KD's cost over cross-entropy, communication's
/// share of a step, and the machine's `cblas_sgemm` peak for comparison.
public enum ThroughputBenchmark {
    /// What one benchmark run measured (times are medians over the timed steps, on rank 0).
    public struct Result: Sendable, Codable {
        public var model: String
        /// Samples per step on each rank.
        public var batchSize: Int
        public var threads: Int
        public var ranks: Int
        public var steps: Int
        public var parameters: Int
        /// The convolution algorithm asked for (`automatic`, `im2col`, `winograd` or `winograd4`).
        public var convolution: String
        /// Cross-entropy step: milliseconds, samples/s of one rank and of all ranks.
        public var millisecondsPerStep: Double
        public var samplesPerSecond: Double
        public var totalSamplesPerSecond: Double
        /// GEMM floating-point operations per step divided by the step time.
        public var achievedGFLOPS: Double
        /// The best square `cblas_sgemm` rate measured with the same threads.
        public var sgemmPeakGFLOPS: Double
        /// PS-KD step (teacher reads, step, all-gather and writes of the teacher table).
        public var pskdMillisecondsPerStep: Double
        public var pskdSamplesPerSecond: Double
        /// (PS-KD step − cross-entropy step) / cross-entropy step, in %.
        public var pskdOverheadPercent: Double
        /// The share of a cross-entropy step spent in collectives, in %.
        public var communicationPercent: Double
        /// The PS-KD teacher's layout (`replicated` or `sharded`), the bytes of teacher rows a
        /// rank receives per step, and the share of a PS-KD step spent exchanging them, in %.
        public var teacher: String
        public var teacherBytesPerStep: Double
        public var teacherExchangePercent: Double
        /// Where a PS-KD step's time goes, when asked for (`profileSteps` > 0).
        public var profile: Profile?
    }

    /// Where a PS-KD step's time goes: each layer's own forward and backward time, then the
    /// step's parts outside the layers; means over the profiled steps, shares of the mean step.
    public struct Profile: Sendable, Codable {
        /// One layer's own time (a residual block's is its add; containers have no row).
        public struct Layer: Sendable, Codable {
            public var name: String
            public var type: String
            public var forwardMilliseconds: Double
            public var backwardMilliseconds: Double
            public var percent: Double
        }
        /// A part of the step outside the layers.
        public struct Part: Sendable, Codable {
            public var name: String
            public var milliseconds: Double
            public var percent: Double
        }
        public var steps: Int
        public var millisecondsPerStep: Double
        public var layers: [Layer]
        public var outsideLayers: [Part]

        /// The profile of `steps` steps that took `seconds` in all, from their layer and phase times.
        init(steps: Int, seconds: Double, layers rows: [LayerProfile.Row], phases: StepPhaseTimes) {
            let perStep = 1000 / Double(steps), share = 100 / seconds
            self.steps = steps
            millisecondsPerStep = seconds * perStep
            layers = rows.map {
                Layer(
                    name: $0.name, type: $0.type, forwardMilliseconds: $0.forwardSeconds * perStep,
                    backwardMilliseconds: $0.backwardSeconds * perStep, percent: ($0.forwardSeconds + $0.backwardSeconds) * share)
            }
            let inLayers = rows.reduce(0) { $0 + $1.forwardSeconds + $1.backwardSeconds }
            let parts: [(String, Double)] = [
                ("targets (teacher rows)", phases.targets),
                ("loss, softmax and logit gradient", phases.loss),
                ("model outside its layers", phases.forward + phases.backward - inLayers),
                ("waiting for the other ranks", phases.waiting),
                ("gradient all-reduce", phases.allReduce),
                ("optimiser update", phases.optimizer),
                ("teacher exchange", phases.writeBack),
                ("rest of the step (loss all-reduce, bookkeeping)", seconds - phases.total),
            ]
            outsideLayers = parts.map { Part(name: $0.0, milliseconds: $0.1 * perStep, percent: $0.1 * share) }
        }
    }

    /// The size of the teacher table the PS-KD steps use (Fashion-MNIST's training set).
    static let tableRows = 60_000

    /// Runs `warmupSteps` untimed steps, then `steps` timed steps of each policy, interleaved in
    /// rounds so that both see the same machine conditions, on random samples of `input`'s shape.
    public static func run(
        modelName: String, input: ModelZoo.Input = .fashionMNIST, batchSize: Int, threads: Int, steps: Int, warmupSteps: Int = 3,
        convolution: ConvolutionAlgorithm = .automatic, shardedTeacher: Bool = false,
        communicator base: any Communicator = LocalCommunicator(),
        beacon: ProgressBeacon? = nil, profileSteps: Int = 0
    ) throws -> Result {
        BLAS.threads = threads
        let communicator = TimedCommunicator(base)
        let model = try ModelZoo.make(modelName, input: input, generator: RandomGenerator(seed: 1))
        for case let conv as Conv2d in model.network.descendants() { conv.algorithm = convolution }
        let bench = try BenchmarkSteps(
            model: model, batchSize: batchSize, communicator: communicator, beacon: beacon,
            shardedTeacher: shardedTeacher)
        for _ in 0..<warmupSteps {
            try bench.step(pskd: false)
            try bench.step(pskd: true)
        }
        var crossEntropyTimes: [Double] = [], pskdTimes: [Double] = [], communicationTimes: [Double] = [], exchangeTimes: [Double] = []
        var flops = 0
        let rounds = max(1, min(5, steps))
        for round in 0..<rounds {
            let count = steps / rounds + (round < steps % rounds ? 1 : 0)
            for _ in 0..<count {
                communicator.reset()
                let before = BLAS.floatingPointOperations
                crossEntropyTimes.append(try bench.timedStep(pskd: false))
                flops = BLAS.floatingPointOperations - before
                communicationTimes.append(communicator.totalSeconds)
            }
            for _ in 0..<count {
                communicator.reset()
                pskdTimes.append(try bench.timedStep(pskd: true))
                exchangeTimes.append(communicator.allGatherSeconds + communicator.allToAllSeconds)
            }
        }
        let profile = profileSteps > 0 ? try bench.profile(steps: profileSteps) : nil
        let ce = median(crossEntropyTimes), pskd = median(pskdTimes)
        let teacherBytes = Double(bench.teacher.receivedBytes) / Double(max(bench.pskdSteps, 1))
        return Result(
            model: modelName, batchSize: batchSize, threads: threads, ranks: communicator.size, steps: steps,
            parameters: model.parameters.parameterCount, convolution: convolution.rawValue, millisecondsPerStep: ce * 1000,
            samplesPerSecond: Double(batchSize) / ce, totalSamplesPerSecond: Double(batchSize * communicator.size) / ce,
            achievedGFLOPS: Double(flops) / ce / 1e9, sgemmPeakGFLOPS: sgemmPeak(threads: threads),
            pskdMillisecondsPerStep: pskd * 1000, pskdSamplesPerSecond: Double(batchSize) / pskd,
            pskdOverheadPercent: 100 * (pskd - ce) / ce, communicationPercent: 100 * median(communicationTimes) / ce,
            teacher: shardedTeacher ? "sharded" : "replicated", teacherBytesPerStep: teacherBytes,
            teacherExchangePercent: 100 * median(exchangeTimes) / pskd, profile: profile)
    }

    /// The best of several square `cblas_sgemm` calls (n = 1024), in GFLOP/s.
    public static func sgemmPeak(threads: Int, size n: Int = 1024, repetitions: Int = 7) -> Double {
        BLAS.threads = threads
        let a = Tensor(shape: [n, n], repeating: 0.5), b = Tensor(shape: [n, n], repeating: 0.25)
        let c = Tensor(zeros: [n, n])
        var best = Double.infinity
        for _ in 0..<repetitions {
            let stopwatch = Stopwatch()
            BLAS.gemm(.none, .none, m: n, n: n, k: n, a: a.pointer, lda: n, b: b.pointer, ldb: n, c: c.pointer, ldc: n)
            best = min(best, stopwatch.elapsedSeconds)
        }
        return 2 * Double(n * n * n) / best / 1e9
    }

    static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
}

/// The trainer's per-step work on synthetic data: `TrainingStep` with the cross-entropy or the
/// PS-KD policy (its targets from the teacher table, the update, its teacher exchange), then
/// the loss all-reduce.
private final class BenchmarkSteps {
    let model: Model
    let step: TrainingStep
    let communicator: any Communicator
    let teacher: any Teacher
    let crossEntropy: CrossEntropyPolicy
    let pskd: ProgressiveSelfDistillationPolicy
    let sampler: ShardedSampler
    let inputs: Tensor
    let labels: [Int32]
    /// Told of every step, as by `Trainer`, when the stall watchdog runs.
    let beacon: ProgressBeacon?
    var position = 0
    /// PS-KD steps taken (the teacher's exchanges).
    private(set) var pskdSteps = 0

    init(model: Model, batchSize: Int, communicator: any Communicator, beacon: ProgressBeacon?, shardedTeacher: Bool) throws {
        self.model = model
        self.communicator = communicator
        self.beacon = beacon
        step = TrainingStep(
            model: model, optimizer: SGD(parameterCount: model.parameters.parameterCount),
            communicator: communicator, seed: 1, beacon: beacon)
        var generator = RandomGenerator(seed: 1).split(RandomStream.benchmark, UInt64(communicator.rank))
        inputs = Tensor(zeros: [batchSize] + model.sampleShape)
        for i in 0..<inputs.count { inputs[i] = generator.nextNormal() }
        labels = (0..<batchSize).map { _ in Int32(generator.nextIndex(below: model.classCount)) }
        let tableLabels = (0..<ThroughputBenchmark.tableRows).map { $0 % model.classCount }
        sampler = try ShardedSampler(
            sampleCount: ThroughputBenchmark.tableRows, globalBatchSize: batchSize * communicator.size,
            rank: communicator.rank, worldSize: communicator.size, seed: 1)
        teacher =
            shardedTeacher
            ? ShardedTeacher(labels: tableLabels, classCount: model.classCount, sampler: sampler, communicator: communicator)
            : TeacherTable(labels: tableLabels, classCount: model.classCount, sampler: sampler, communicator: communicator)
        crossEntropy = CrossEntropyPolicy(classCount: model.classCount)
        // α_t only weighs the rows; a long schedule keeps it below α_T however many epochs the bench runs.
        pskd = ProgressiveSelfDistillationPolicy(finalAlpha: 0.8, totalEpochs: 1_000_000, teacher: teacher)
        try pskd.beginEpoch(1)
    }

    /// One step; returns its wall-clock seconds.
    func timedStep(pskd usesTeacher: Bool) throws -> Double {
        let stopwatch = Stopwatch()
        try step(pskd: usesTeacher)
        return stopwatch.elapsedSeconds
    }

    /// `steps` PS-KD steps with every layer and part of the step timed.
    func profile(steps: Int) throws -> ThroughputBenchmark.Profile {
        let layers = LayerProfile()
        (LayerProfile.recording, step.phaseTimes) = (layers, StepPhaseTimes())
        defer { (LayerProfile.recording, step.phaseTimes) = (nil, nil) }
        var seconds = 0.0
        for _ in 0..<steps { seconds += try timedStep(pskd: true) }
        return ThroughputBenchmark.Profile(
            steps: steps, seconds: seconds, layers: layers.rows(of: model.network), phases: step.phaseTimes ?? StepPhaseTimes())
    }

    /// One step at the next position of the data order: PS-KD's steps go through the epochs in
    /// order (cross-entropy steps only take positions), as in training.
    func step(pskd usesTeacher: Bool) throws {
        let stepIndex = usesTeacher ? teacherStep : position % sampler.stepsPerEpoch
        let slots = sampler.slots(step: stepIndex, order: order)
        position += 1
        beacon?.startStep(epoch: teacherEpoch, step: position)
        let batch = Batch(
            epoch: teacherEpoch, step: stepIndex, inputs: inputs, labels: labels, indices: slots.indices,
            isPadding: slots.isPadding)
        let result = try step(batch, policy: usesTeacher ? pskd : crossEntropy, learningRate: 0.01)
        if usesTeacher { try advanceTeacher() }
        _ = try communicator.sum(result.loss)
    }

    /// Counts a PS-KD step, ending the teacher's epoch after its last step.
    private func advanceTeacher() throws {
        pskdSteps += 1
        teacherStep += 1
        guard teacherStep == sampler.stepsPerEpoch else { return }
        try pskd.endEpoch(teacherEpoch)
        (teacherEpoch, teacherStep) = (teacherEpoch + 1, 0)
        order = sampler.order(epoch: teacherEpoch)
        try pskd.beginEpoch(teacherEpoch)
    }

    private var teacherEpoch = 1, teacherStep = 0
    private lazy var order = sampler.order(epoch: 1)
}
