import Tensors

/// Builds one batch from its (epoch, step): slots from the schedule, labels, augmented images,
/// then CutMix. The result depends only on (epoch, step), never on the thread or on what was
/// built before, so prefetching and synchronous loading give bit-identical batches.
struct BatchAssembler: Sendable {
    let augmenter: Augmenter
    let schedule: any BatchSchedule

    var dataset: Dataset { augmenter.dataset }

    /// Fills `buffers` with step `step` of `epoch`, whose order is `order`.
    func assemble(epoch: Int, step: Int, order: [Int], into buffers: BatchBuffers) {
        buffers.epoch = epoch
        buffers.step = step
        fillSlotsAndLabels(step: step, order: order, buffers: buffers)
        buffers.indices.withUnsafeBufferPointer { indices in
            augmenter.augment(indices: indices, epoch: epoch, into: buffers.inputs.pointer)
        }
        var random = CutMix.generator(seed: augmenter.seed, epoch: epoch, step: step, rank: schedule.rank)
        buffers.cutMix = CutMix.apply(
            to: buffers.inputs, probability: augmenter.config.cutMixProbability,
            random: &random, scratch: buffers.cutMixScratch.pointer)
    }

    private func fillSlotsAndLabels(step: Int, order: [Int], buffers: BatchBuffers) {
        buffers.indices.withUnsafeMutableBufferPointer { indices in
            buffers.isPadding.withUnsafeMutableBufferPointer { isPadding in
                schedule.fillSlots(step: step, order: order, indices: indices, isPadding: isPadding)
            }
        }
        dataset.labels.withUnsafeBufferPointer { allLabels in
            for (row, index) in buffers.indices.enumerated() {
                buffers.labels[row] = allLabels[index]
            }
        }
    }
}
