// Tensors: the numeric base of pskd (Tensor, BLAS, Parallel, RandomGenerator). Every kernel
// that splits work follows the decomposition rule stated at the top of Parallel.swift: pieces
// cut by the shapes alone, so results never depend on threads, ranks or the CPU.

/// A dense, contiguous, row-major array of `Float` with a shape.
///
/// `Tensor` has *reference* semantics for its elements, like a pointer in llm.c: copying a
/// `Tensor` value shares the storage, and `reshaped(_:)` and `slice(offset:shape:)` are views.
/// Use `copy()` for a deep copy. Layers own their output tensors and overwrite them on the
/// next call, so callers that keep a result across calls must copy it.
public struct Tensor: @unchecked Sendable {
    /// The extent of each dimension, outermost first: `[N, H, W, C]` for images.
    public private(set) var shape: [Int]
    /// The number of elements, the product of `shape`.
    public let count: Int
    @usableFromInline let storage: TensorStorage
    @usableFromInline let offset: Int

    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        self.init(shape: shape, repeating: 0)
    }

    /// A tensor with every element set to `value`.
    public init(shape: [Int], repeating value: Float) {
        let count = Tensor.elementCount(shape)
        self.shape = shape
        self.count = count
        self.storage = TensorStorage(capacity: count)
        self.offset = 0
        storage.base.initialize(repeating: value, count: count)
    }

    /// A tensor holding `values` in row-major order; `values.count` must match `shape`.
    public init(shape: [Int], values: [Float]) {
        let count = Tensor.elementCount(shape)
        precondition(
            values.count == count,
            "Tensor(shape: \(shape), values:) needs \(count) values, got \(values.count)")
        self.init(zeros: shape)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: count) }
    }

    /// A view of `count(shape)` elements of `storage` starting at `offset`.
    @usableFromInline init(storage: TensorStorage, offset: Int, shape: [Int]) {
        let count = Tensor.elementCount(shape)
        precondition(
            offset >= 0 && offset + count <= storage.capacity,
            "view of \(shape) at offset \(offset) exceeds storage of \(storage.capacity) elements")
        self.storage = storage
        self.offset = offset
        self.shape = shape
        self.count = count
    }

    /// The product of the extents in `shape` (1 for a scalar shape `[]`).
    @inlinable public static func elementCount(_ shape: [Int]) -> Int {
        var count = 1
        for extent in shape {
            precondition(extent >= 0, "negative extent in shape \(shape)")
            count *= extent
        }
        return count
    }

    /// The first element; elements follow contiguously.
    @inlinable public var pointer: UnsafeMutablePointer<Float> { storage.base + offset }

    /// The elements as a buffer.
    @inlinable public var buffer: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: pointer, count: count)
    }

    /// The number of dimensions.
    @inlinable public var rank: Int { shape.count }

    /// Element `index` in row-major order.
    @inlinable public subscript(index: Int) -> Float {
        get { pointer[index] }
        nonmutating set { pointer[index] = newValue }
    }

    /// The elements copied into an array.
    public var scalars: [Float] { Array(buffer) }

    /// A view of the same elements with another shape of equal element count.
    public func reshaped(_ newShape: [Int]) throws(ShapeError) -> Tensor {
        guard Tensor.elementCount(newShape) == count else {
            throw ShapeError("cannot reshape \(shape) (\(count) elements) to \(newShape)")
        }
        return Tensor(storage: storage, offset: offset, shape: newShape)
    }

    /// A view of `shape` starting `elementOffset` elements into this tensor.
    public func slice(offset elementOffset: Int, shape newShape: [Int]) -> Tensor {
        precondition(
            elementOffset + Tensor.elementCount(newShape) <= count,
            "slice of \(newShape) at \(elementOffset) exceeds tensor of shape \(shape)")
        return Tensor(storage: storage, offset: offset + elementOffset, shape: newShape)
    }

    /// The rows `range` of the outermost dimension, as a view.
    public func rows(_ range: Range<Int>) -> Tensor {
        precondition(
            !shape.isEmpty && range.lowerBound >= 0 && range.upperBound <= shape[0],
            "rows \(range) out of bounds for shape \(shape)")
        let rowSize = count / Swift.max(shape[0], 1)
        var newShape = shape
        newShape[0] = range.count
        return Tensor(storage: storage, offset: offset + range.lowerBound * rowSize, shape: newShape)
    }

    /// A deep copy with its own storage.
    public func copy() -> Tensor {
        let result = Tensor(zeros: shape)
        result.pointer.update(from: pointer, count: count)
        return result
    }

    /// Sets every element to `value`.
    public func fill(_ value: Float) {
        pointer.update(repeating: value, count: count)
    }

    /// Copies the elements of `source`, which must have the same element count.
    public func assign(_ source: Tensor) {
        precondition(source.count == count, "assign: source \(source.shape) does not match \(shape)")
        pointer.update(from: source.pointer, count: count)
    }

    /// Whether two tensors view the same first element.
    public func sharesStorage(with other: Tensor) -> Bool {
        storage === other.storage && offset == other.offset
    }
}

/// Owned, aligned, uninitialised-on-allocation storage for `Float` elements.
public final class TensorStorage: @unchecked Sendable {
    @usableFromInline let base: UnsafeMutablePointer<Float>
    @usableFromInline let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: Swift.max(capacity, 1) * MemoryLayout<Float>.stride, alignment: 64)
        self.base = raw.bindMemory(to: Float.self, capacity: Swift.max(capacity, 1))
    }

    deinit { UnsafeMutableRawPointer(base).deallocate() }
}

/// A shape that does not fit where it is used. The message names every shape involved.
public struct ShapeError: Error, CustomStringConvertible, Equatable {
    /// What did not fit, naming both shapes.
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "shape mismatch: \(message)" }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = buffer.prefix(8).map { "\($0)" }.joined(separator: ", ")
        return "Tensor(\(shape): [\(head)\(count > 8 ? ", …" : "")])"
    }
}

extension Tensor {
    /// A 64-bit FNV-1a hash of the elements' bytes: equal tensors have equal hashes, so ranks
    /// compare replicas by exchanging 8 bytes.
    public var contentHash: UInt64 {
        FNV1a.hash(UnsafeRawBufferPointer(start: pointer, count: count * MemoryLayout<Float>.stride))
    }
}

/// The 64-bit FNV-1a hash, for comparing replicas across ranks and checksumming files.
public enum FNV1a {
    /// The hash of no bytes, where every hash starts.
    public static let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325

    /// The hash of `bytes`, or of the bytes hashed into `hash` so far followed by `bytes` (to
    /// hash a file in pieces).
    public static func hash(_ bytes: UnsafeRawBufferPointer, continuing hash: UInt64 = offsetBasis) -> UInt64 {
        var hash = hash
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return hash
    }
}
