import Foundation

/// The safetensors format (as written by Hugging Face's `safetensors` and read by PyTorch and
/// NumPy): an 8-byte little-endian header length, a JSON header mapping each tensor's name to
/// its dtype, shape and byte range, optional string metadata under `__metadata__`, then the raw
/// little-endian data.
public enum SafeTensors {
    /// One named tensor's bytes.
    public struct Entry: Sendable {
        public var name: String
        /// `F32`, `F64`, `I64` or `U8`.
        public var dtype: String
        public var shape: [Int]
        public var bytes: Data

        public init(name: String, dtype: String, shape: [Int], bytes: Data) {
            (self.name, self.dtype, self.shape, self.bytes) = (name, dtype, shape, bytes)
        }

        /// A float32 tensor from `count` floats at `pointer`.
        public static func float32(_ name: String, shape: [Int], _ pointer: UnsafePointer<Float>, count: Int) -> Entry {
            Entry(name: name, dtype: "F32", shape: shape, bytes: Data(bytes: pointer, count: count * 4))
        }

        /// An int64 tensor.
        public static func int64(_ name: String, _ values: [Int64]) -> Entry {
            Entry(name: name, dtype: "I64", shape: [values.count], bytes: values.withUnsafeBytes { Data($0) })
        }

        /// A 0-dimensional int64 tensor (shape `[]`), as PyTorch stores a BatchNorm's
        /// `num_batches_tracked`.
        public static func int64Scalar(_ name: String, _ value: Int64) -> Entry {
            Entry(name: name, dtype: "I64", shape: [], bytes: withUnsafeBytes(of: value.littleEndian) { Data($0) })
        }

        /// The elements as float32 (the dtype must be `F32`).
        public func floats() -> [Float] {
            bytes.withUnsafeBytes { raw in (0..<(bytes.count / 4)).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
        }

        /// The elements as int64 (the dtype must be `I64`).
        public func int64s() -> [Int64] {
            bytes.withUnsafeBytes { raw in (0..<(bytes.count / 8)).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self) } }
        }
    }

    /// A file that is not valid safetensors; names the file and what is wrong.
    public struct FormatError: Error, CustomStringConvertible {
        public let file: String
        public let problem: String
        public var description: String { "\(file): not a valid safetensors file: \(problem)" }
    }

    static let elementSizes = ["F32": 4, "F64": 8, "I64": 8, "U8": 1]

    /// A tensor as the header describes it: name, dtype, shape, and where its bytes are in
    /// the file (`bytes`, absolute offsets).
    public struct Descriptor: Sendable, Equatable {
        public var name: String
        public var dtype: String
        public var shape: [Int]
        public var bytes: Range<Int>

        public init(name: String, dtype: String, shape: [Int], bytes: Range<Int>) {
            (self.name, self.dtype, self.shape, self.bytes) = (name, dtype, shape, bytes)
        }
    }

    /// The file's bytes for `entries` (in order) and `metadata`.
    public static func encode(_ entries: [Entry], metadata: [String: String] = [:]) throws -> Data {
        var file = try header(entries.map { ($0.name, $0.dtype, $0.shape) }, metadata: metadata)
        for entry in entries { file.append(entry.bytes) }
        return file
    }

    /// The start of a file whose tensors `tensors` follow in order: the 8-byte length and the
    /// JSON header (padded to 8 bytes). The tensors' bytes are written after it by the caller,
    /// so a large tensor can be streamed instead of held.
    public static func header(_ tensors: [(name: String, dtype: String, shape: [Int])], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        var offset = 0
        for tensor in tensors {
            let size = tensor.shape.reduce(elementSizes[tensor.dtype] ?? 1, *)
            header[tensor.name] = ["dtype": tensor.dtype, "shape": tensor.shape, "data_offsets": [offset, offset + size]]
            offset += size
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var file = Data()
        var length = UInt64(json.count).littleEndian
        file.append(Data(bytes: &length, count: 8))
        file.append(json)
        return file
    }

    /// The entries (sorted by data offset) and metadata of a safetensors file's bytes.
    public static func decode(_ data: Data, file: String) throws -> (entries: [Entry], metadata: [String: String]) {
        let (descriptors, metadata) = try readHeader(fileSize: data.count, file: file) { data.subdata(in: $0) }
        return (descriptors.map { Entry(name: $0.name, dtype: $0.dtype, shape: $0.shape, bytes: data.subdata(in: $0.bytes)) }, metadata)
    }

    /// The tensors (sorted by data offset) and metadata of a safetensors file of `fileSize`
    /// bytes, reading only its header through `read` (a byte range of the file).
    public static func readHeader(fileSize: Int, file: String, _ read: (Range<Int>) throws -> Data) throws
        -> (tensors: [Descriptor], metadata: [String: String])
    {
        func fail(_ problem: String) -> FormatError { FormatError(file: file, problem: problem) }
        guard fileSize >= 8 else { throw fail("\(fileSize) bytes, shorter than the 8-byte header length") }
        let headerLength = try read(0..<8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard headerLength <= UInt64(fileSize - 8) else {
            throw fail("header length \(headerLength) exceeds the \(fileSize - 8) bytes after it (truncated?)")
        }
        let headerEnd = 8 + Int(headerLength)
        guard let header = try? JSONSerialization.jsonObject(with: try read(8..<headerEnd)) as? [String: Any] else {
            throw fail("the header is not a JSON object")
        }
        let metadata = header["__metadata__"] as? [String: String] ?? [:]
        var tensors: [Descriptor] = []
        for (name, value) in header where name != "__metadata__" {
            guard let fields = value as? [String: Any], let dtype = fields["dtype"] as? String,
                let size = elementSizes[dtype], let shape = fields["shape"] as? [Int],
                let offsets = fields["data_offsets"] as? [Int], offsets.count == 2
            else {
                throw fail("tensor '\(name)' has no valid dtype (F32, F64, I64, U8), shape and data_offsets")
            }
            let (begin, end) = (headerEnd + offsets[0], headerEnd + offsets[1])
            guard begin <= end, end <= fileSize, end - begin == shape.reduce(size, *) else {
                throw fail("tensor '\(name)' bytes \(offsets) do not fit its shape \(shape) or the file's \(fileSize) bytes")
            }
            tensors.append(Descriptor(name: name, dtype: dtype, shape: shape, bytes: begin..<end))
        }
        return (tensors.sorted { $0.bytes.lowerBound < $1.bytes.lowerBound }, metadata)
    }
}
