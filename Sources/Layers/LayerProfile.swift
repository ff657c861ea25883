import Tensors

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// The wall-clock time of every layer's forward and backward passes, recorded while a profile
/// is on (`pskd bench --profile`); off everywhere else, where a composite layer pays one nil
/// check per child call.
///
/// Composite layers (`Sequential`, `PreActBlock`) and `Model` call their children through
/// `timedForward`/`timedBackward`, so each layer's time includes its children's; `rows(of:)`
/// turns that into each layer's own time (a residual block's own time is its add).
///
/// ```swift
/// let profile = LayerProfile()
/// LayerProfile.recording = profile
/// try step()                       // forward and backward of the model
/// LayerProfile.recording = nil
/// for row in profile.rows(of: model.network) { print(row.name, row.forwardSeconds) }
/// ```
public final class LayerProfile {
    /// The profile being recorded, or nil. Set and read on the training thread only.
    nonisolated(unsafe) public static var recording: LayerProfile?

    /// One layer's own time (its children's excluded), summed over the recorded passes.
    public struct Row: Sendable, Equatable {
        /// The dotted PyTorch-style name (`layer1.0.conv1`), or the type for the root.
        public let name: String
        /// The layer's type (`Conv2d`, `BatchNorm`, …).
        public let type: String
        public let forwardSeconds: Double
        public let backwardSeconds: Double
    }

    private var forward: [ObjectIdentifier: Double] = [:]
    private var backward: [ObjectIdentifier: Double] = [:]

    public init() {}

    /// Adds `seconds` of `layer`'s forward (or backward) pass, children included.
    func add(_ layer: any Layer, backward isBackward: Bool, seconds: Double) {
        let key = ObjectIdentifier(layer)
        if isBackward { backward[key, default: 0] += seconds } else { forward[key, default: 0] += seconds }
    }

    /// Every layer of `root`'s tree that took time, depth first, with its own time.
    public func rows(of root: any Layer) -> [Row] {
        var rows: [Row] = []
        collect(root, name: "", into: &rows)
        return rows
    }

    private func collect(_ layer: any Layer, name: String, into rows: inout [Row]) {
        let key = ObjectIdentifier(layer)
        let children = layer.children
        let ownForward = (forward[key] ?? 0) - children.reduce(0) { $0 + (forward[ObjectIdentifier($1.layer)] ?? 0) }
        let ownBackward = (backward[key] ?? 0) - children.reduce(0) { $0 + (backward[ObjectIdentifier($1.layer)] ?? 0) }
        let type = String(describing: Swift.type(of: layer))
        // A container's own time is only the calls to its children: not worth a row.
        let isContainer = layer is Sequential
        if !isContainer && (forward[key] != nil || backward[key] != nil) {
            rows.append(Row(name: name.isEmpty ? type : name, type: type, forwardSeconds: ownForward, backwardSeconds: ownBackward))
        }
        let dot = name.isEmpty ? "" : name + "."
        for child in children { collect(child.layer, name: dot + child.name, into: &rows) }
    }

    /// Seconds on the monotonic clock.
    static var now: Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }
}

extension Layer {
    /// `forward`, timed into `LayerProfile.recording` when a profile is on.
    @inlinable
    public func timedForward(_ input: Tensor, mode: Mode) throws(ShapeError) -> Tensor {
        guard let profile = LayerProfile.recording else { return try forward(input, mode: mode) }
        return try profile.time(self, backward: false) { () throws(ShapeError) in try forward(input, mode: mode) }
    }

    /// `backward`, timed into `LayerProfile.recording` when a profile is on.
    @inlinable
    public func timedBackward(_ outputGradient: Tensor) -> Tensor {
        guard let profile = LayerProfile.recording else { return backward(outputGradient) }
        return profile.time(self, backward: true) { backward(outputGradient) }
    }
}

extension LayerProfile {
    /// Runs `body` and adds its duration to `layer`'s pass.
    @usableFromInline
    func time<Result, Failure: Error>(_ layer: any Layer, backward: Bool, _ body: () throws(Failure) -> Result) throws(Failure) -> Result {
        let start = Self.now
        defer { add(layer, backward: backward, seconds: Self.now - start) }
        return try body()
    }
}
