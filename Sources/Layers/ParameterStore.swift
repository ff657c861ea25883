import Tensors

/// All parameters of a model in one flat buffer and all gradients in another, with named views,
/// so an all-reduce, an optimiser step or a checkpoint is one contiguous operation.
/// Non-trainable state (BatchNorm running statistics) lives in a third flat buffer.
public final class ParameterStore {
    /// A named region of a flat buffer.
    public struct Entry: Sendable {
        /// The dotted PyTorch-style name, such as `layer3.0.conv1.weight`.
        public let name: String
        /// The tensor's shape.
        public let shape: [Int]
        /// The first element's position in the flat buffer.
        public let offset: Int
        /// The number of elements.
        public var count: Int { Tensor.elementCount(shape) }
    }

    /// Every trainable parameter, contiguous, in `entries` order.
    public let values: Tensor
    /// The gradients, laid out exactly like `values`.
    public let gradients: Tensor
    /// The layout of `values` and `gradients`.
    public let entries: [Entry]
    /// Every non-trainable state tensor, contiguous, in `bufferEntries` order.
    public let buffers: Tensor
    /// The layout of `buffers`.
    public let bufferEntries: [Entry]

    /// Gathers the parameters and buffers of `root`, allocates the flat buffers, initialises
    /// every tensor in order from `generator`, and rebinds the layers to views of the buffers.
    public init(root: any Layer, generator: RandomGenerator) {
        let parameters = root.namedParameters()
        let stateTensors = root.namedBuffers()
        (entries, values, gradients) = ParameterStore.layout(parameters, withGradients: true)
        (bufferEntries, buffers, _) = ParameterStore.layout(stateTensors, withGradients: false)
        var generator = generator
        for (entry, item) in zip(entries, parameters) {
            let value = values.slice(offset: entry.offset, shape: entry.shape)
            item.parameter.initializer.fill(value, using: &generator)
            item.parameter.bind(value: value, gradient: gradients.slice(offset: entry.offset, shape: entry.shape))
        }
        for (entry, item) in zip(bufferEntries, stateTensors) {
            let value = buffers.slice(offset: entry.offset, shape: entry.shape)
            item.parameter.initializer.fill(value, using: &generator)
            item.parameter.bind(value: value, gradient: value)
        }
    }

    private static func layout(
        _ items: [(name: String, parameter: Parameter)], withGradients: Bool
    ) -> ([Entry], Tensor, Tensor) {
        var entries: [Entry] = []
        var offset = 0
        for item in items {
            entries.append(Entry(name: item.name, shape: item.parameter.shape, offset: offset))
            offset += Tensor.elementCount(item.parameter.shape)
        }
        let values = Tensor(zeros: [offset])
        return (entries, values, withGradients ? Tensor(zeros: [offset]) : values)
    }

    /// Sets every gradient to zero: once per optimiser step, before its first backward pass
    /// (backward passes add into `gradients`, see `Layer`).
    public func zeroGradients() {
        gradients.fill(0)
    }

    /// The number of trainable scalars.
    public var parameterCount: Int { values.count }

    /// The view of the parameter called `name`, or nil.
    public func value(named name: String) -> Tensor? {
        entries.first { $0.name == name }.map { values.slice(offset: $0.offset, shape: $0.shape) }
    }

    /// The view of the gradient of the parameter called `name`, or nil.
    public func gradient(named name: String) -> Tensor? {
        entries.first { $0.name == name }.map { gradients.slice(offset: $0.offset, shape: $0.shape) }
    }

    /// The view of the buffer called `name`, or nil.
    public func buffer(named name: String) -> Tensor? {
        bufferEntries.first { $0.name == name }.map { buffers.slice(offset: $0.offset, shape: $0.shape) }
    }
}
