import Tensors

/// The fused elementwise passes shared by layers: each walks its memory once.
enum Elementwise {
    /// `y[r, c] = act(y[r, c] + bias[c])` in one pass (bias optional).
    @inline(__always)
    static func addBiasAndActivate(_ y: UnsafeMutablePointer<Float>, rows: Int, columns: Int,
                                   bias: UnsafeMutablePointer<Float>?, activation: Activation) {
        switch (bias, activation) {
        case (nil, .identity):
            return
        case (nil, .relu):
            for i in 0..<(rows * columns) { y[i] = max(y[i], 0) }
        case (let b?, .identity):
            for r in 0..<rows {
                let row = y + r * columns
                for c in 0..<columns { row[c] += b[c] }
            }
        case (let b?, .relu):
            for r in 0..<rows {
                let row = y + r * columns
                for c in 0..<columns { row[c] = max(row[c] + b[c], 0) }
            }
        }
    }

    /// Writes `dz = dy · act'(y)` (skipped for identity, where `dz` is `dy`) and the column sums
    /// of `dz` into `biasGradient`, in one pass.
    @inline(__always)
    static func activationBackwardAndBiasGradient(
        outputGradient dy: UnsafeMutablePointer<Float>, output y: UnsafeMutablePointer<Float>,
        preActivationGradient dz: UnsafeMutablePointer<Float>, rows: Int, columns: Int,
        activation: Activation, biasGradient: UnsafeMutablePointer<Float>?
    ) {
        if let db = biasGradient { db.update(repeating: 0, count: columns) }
        for r in 0..<rows {
            let base = r * columns
            if activation == .relu {
                for c in 0..<columns { dz[base + c] = y[base + c] > 0 ? dy[base + c] : 0 }
            }
            if let db = biasGradient {
                for c in 0..<columns { db[c] += dz[base + c] }
            }
        }
    }
}

/// Eight-lane vector loads and stores for the channel loops of channels-last layers
/// (unaligned, so any channel offset works).
enum Lanes {
    typealias Vector = SIMD8<Float>
    static let width = 8

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> Vector {
        UnsafeRawPointer(p).loadUnaligned(as: Vector.self)
    }

    @inline(__always) static func store(_ v: Vector, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vector.self)
    }

    /// `to[i] += from[i]` for `count` elements.
    @inline(__always) static func add(_ from: UnsafePointer<Float>, into to: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + width <= count {
            store(load(to + i) + load(from + i), to + i)
            i += width
        }
        while i < count { to[i] += from[i]; i += 1 }
    }

    /// `to[i] = from[i]` for `count` elements.
    @inline(__always) static func copy(_ from: UnsafePointer<Float>, to: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + width <= count {
            store(load(from + i), to + i)
            i += width
        }
        while i < count { to[i] = from[i]; i += 1 }
    }
}
