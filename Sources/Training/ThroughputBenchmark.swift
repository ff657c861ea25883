import Collectives
import Layers
import Models
import Optimizers
import Tensors

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Measures training throughput (forward + backward + update) on synthetic data held in memory,
/// and the machine's `cblas_sgemm` peak for comparison.
public enum ThroughputBenchmark {
    /// What one benchmark run measured.
    public struct Result: Sendable, Codable {
        public var model: String
        public var batchSize: Int
        public var threads: Int
        public var ranks: Int
        public var steps: Int
        /// Median milliseconds per step.
        public var millisecondsPerStep: Double
        /// Samples per second of this rank (batch / median step time).
        public var samplesPerSecond: Double
        /// GEMM floating-point operations per step divided by the median step time.
        public var achievedGFLOPS: Double
        /// The best `cblas_sgemm` rate measured on square matrices with the same threads.
        public var sgemmPeakGFLOPS: Double
        /// Model parameters.
        public var parameters: Int
    }

    /// Runs `warmupSteps` untimed then `steps` timed SGD steps of `modelName` at `batchSize`.
    public static func run(modelName: String, batchSize: Int, threads: Int, steps: Int, warmupSteps: Int = 3,
                           communicator: any Communicator = LocalCommunicator()) throws -> Result {
        BLAS.threads = threads
        var generator = RandomGenerator(seed: 1).split(RandomStream.benchmark, UInt64(communicator.rank))
        let model = try ModelZoo.make(modelName, generator: RandomGenerator(seed: 1))
        let step = TrainingStep(model: model, optimizer: SGD(parameterCount: model.parameters.parameterCount),
                                communicator: communicator)
        let inputs = Tensor(zeros: [batchSize, 28, 28, 1])
        for i in 0..<inputs.count { inputs[i] = generator.nextNormal() }
        let labels = (0..<batchSize).map { _ in generator.nextIndex(below: model.classCount) }
        let targets = SoftmaxCrossEntropy.oneHot(labels, classes: model.classCount)

        for _ in 0..<warmupSteps { _ = try step(inputs: inputs, targets: targets, learningRate: 0.01) }
        var times: [Double] = []
        let flopsBefore = BLAS.floatingPointOperations
        for _ in 0..<steps {
            let start = monotonicSeconds()
            _ = try step(inputs: inputs, targets: targets, learningRate: 0.01)
            times.append(monotonicSeconds() - start)
        }
        let flopsPerStep = Double(BLAS.floatingPointOperations - flopsBefore) / Double(max(steps, 1))
        let median = times.sorted()[times.count / 2]
        return Result(model: modelName, batchSize: batchSize, threads: threads, ranks: communicator.size,
                      steps: steps, millisecondsPerStep: median * 1000,
                      samplesPerSecond: Double(batchSize) / median, achievedGFLOPS: flopsPerStep / median / 1e9,
                      sgemmPeakGFLOPS: sgemmPeak(threads: threads), parameters: model.parameters.parameterCount)
    }

    /// The best of several square `cblas_sgemm` calls (n = 1024), in GFLOP/s.
    public static func sgemmPeak(threads: Int, size n: Int = 1024, repetitions: Int = 7) -> Double {
        BLAS.threads = threads
        let a = Tensor(shape: [n, n], repeating: 0.5), b = Tensor(shape: [n, n], repeating: 0.25)
        let c = Tensor(zeros: [n, n])
        var best = Double.infinity
        for _ in 0..<repetitions {
            let start = monotonicSeconds()
            BLAS.gemm(.none, .none, m: n, n: n, k: n, a: a.pointer, lda: n, b: b.pointer, ldb: n, c: c.pointer, ldc: n)
            best = min(best, monotonicSeconds() - start)
        }
        return 2 * Double(n * n * n) / best / 1e9
    }
}

/// Seconds from a monotonic clock.
public func monotonicSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}
