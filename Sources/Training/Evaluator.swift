import Collectives
import DataPipeline
import Layers
import Tensors

/// Evaluates a model on the whole test set across ranks: each rank scores its share, the
/// per-sample outcomes are gathered, and every rank computes the same metrics from them.
struct Evaluator {
    let model: Model
    let loader: BatchLoader
    let communicator: any Communicator

    func run(eceBins: Int) throws -> ClassificationMetrics {
        let loss = SoftmaxCrossEntropy()
        var outcomes: [SampleOutcome] = []
        for batch in loader.epoch(0) {
            let labels = batch.labels.map(Int.init)
            let logits = try model.forward(batch.inputs, mode: .evaluation)
            let result = try loss(logits: logits, targets: SoftmaxCrossEntropy.oneHot(labels, classes: model.classCount))
            outcomes += SampleOutcome.outcomes(probabilities: result.probabilities, labels: labels,
                                               indices: batch.indices, isPadding: batch.isPadding)
        }
        return ClassificationMetrics(outcomes: try communicator.allGatherV(outcomes), eceBins: eceBins)
    }
}
