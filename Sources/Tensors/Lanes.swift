/// Eight-lane vector loads and stores for the channel loops of channels-last layers
/// (unaligned, so any channel offset works).
///
/// Every member is `@inlinable` and `@inline(__always)`: the layers' hot loops live in another
/// module, and a call per vector would cost more than the vector saves.
///
/// ```swift
/// Lanes.forEachGroup(channels: channels) { channel, lanes in
///     let sum = Lanes.load(a + channel, lanes: lanes) + Lanes.load(b + channel, lanes: lanes)
///     Lanes.store(sum, output + channel, lanes: lanes)
/// }
/// ```
public enum Lanes {
    /// Eight floats.
    public typealias Vector = SIMD8<Float>
    /// Eight flat indices (of max-pooling winners).
    public typealias Indices = SIMD8<Int32>

    /// Lanes per vector.
    @inlinable @inline(__always) public static var width: Int { 8 }

    /// The eight floats at `p`.
    @inlinable @inline(__always) public static func load(_ p: UnsafePointer<Float>) -> Vector {
        UnsafeRawPointer(p).loadUnaligned(as: Vector.self)
    }

    /// Writes `v` to the eight floats at `p`.
    @inlinable @inline(__always) public static func store(_ v: Vector, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vector.self)
    }

    /// `to[i] += from[i]` for `count` elements.
    @inlinable @inline(__always)
    public static func add(_ from: UnsafePointer<Float>, into to: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + width <= count {
            store(load(to + i) + load(from + i), to + i)
            i += width
        }
        while i < count { to[i] += from[i]; i += 1 }
    }

    /// `to[i] = from[i]` for `count` elements.
    @inlinable @inline(__always)
    public static func copy(_ from: UnsafePointer<Float>, to: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + width <= count {
            store(load(from + i), to + i)
            i += width
        }
        while i < count { to[i] = from[i]; i += 1 }
    }
}

extension Lanes {
    /// The lane numbers 0, 1, …, 7: `lane &+ Int32(offset)` indexes eight consecutive channels.
    @inlinable @inline(__always) public static var lane: Indices { Indices(0, 1, 2, 3, 4, 5, 6, 7) }

    /// The eight indices at `p`.
    @inlinable @inline(__always) public static func load(_ p: UnsafePointer<Int32>) -> Indices {
        UnsafeRawPointer(p).loadUnaligned(as: Indices.self)
    }

    /// Writes `v` to the eight indices at `p`.
    @inlinable @inline(__always) public static func store(_ v: Indices, _ p: UnsafeMutablePointer<Int32>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: Indices.self)
    }

    /// Lanes `0..<lanes` from `p`, the others zero (a whole vector when `lanes == width`; the
    /// rest is out of line, so that the whole-vector case stays small enough to inline).
    @inlinable @inline(__always) public static func load(_ p: UnsafePointer<Float>, lanes: Int) -> Vector {
        lanes == width ? load(p) : loadPart(p, lanes: lanes)
    }

    /// Stores lanes `0..<lanes` of `v` to `p`.
    @inlinable @inline(__always) public static func store(_ v: Vector, _ p: UnsafeMutablePointer<Float>, lanes: Int) {
        lanes == width ? store(v, p) : storePart(v, p, lanes: lanes)
    }

    @usableFromInline @inline(never) static func loadPart(_ p: UnsafePointer<Float>, lanes: Int) -> Vector {
        var v = Vector()
        for i in 0..<lanes { v[i] = p[i] }
        return v
    }

    @usableFromInline @inline(never) static func storePart(_ v: Vector, _ p: UnsafeMutablePointer<Float>, lanes: Int) {
        for i in 0..<lanes { p[i] = v[i] }
    }

    /// Calls `body(channel, lanes)` for each group of up to eight of `channels` channels: the
    /// whole groups with `lanes` the constant `width` (so inlined loads are whole vectors), then
    /// the remainder.
    @inlinable @inline(__always)
    public static func forEachGroup(channels: Int, _ body: (_ channel: Int, _ lanes: Int) -> Void) {
        var channel = 0
        while channel + width <= channels {
            body(channel, width)
            channel += width
        }
        if channel < channels { body(channel, channels - channel) }
    }
}
