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
