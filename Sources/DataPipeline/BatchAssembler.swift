import Tensors

/// Builds one batch from its (epoch, step): slots from the schedule, labels, augmented images
/// (streamed ones on the loader pool's threads), then CutMix. The result depends only on
/// (epoch, step), never on the threads or on what was built before, so prefetching, synchronous
/// loading and any number of loader threads give bit-identical batches.
struct BatchAssembler: Sendable {
    let augmenter: Augmenter
    let schedule: any BatchSchedule
    /// The threads that decode streamed images; unused for data held in memory.
    let pool: LoaderPool

    var dataset: Dataset { augmenter.dataset }

    /// Fills `buffers` with step `step` of `epoch`, whose order is `order`.
    ///
    /// - Throws: `DataError` when a streamed image cannot be read or decoded.
    func assemble(epoch: Int, step: Int, order: [Int], into buffers: BatchBuffers) throws(DataError) {
        buffers.epoch = epoch
        buffers.step = step
        fillSlotsAndLabels(step: step, order: order, buffers: buffers)
        let (key, sampleSize, inputs) = (augmenter.epochKey(epoch), dataset.sampleSize, buffers.inputs.pointer)
        let indices = buffers.indices
        try pool.run(rows: indices.count) { (row, scratch) throws(DataError) in
            try augmenter.augmentSample(indices[row], epochKey: key, into: inputs + row * sampleSize, scratch: scratch)
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
