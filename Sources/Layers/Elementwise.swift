import Tensors

/// The fused elementwise passes shared by layers: each walks its memory once.
enum Elementwise {
    /// `y[r, c] = act(y[r, c] + bias[c])` in one pass (bias optional).
    @inline(__always)
    static func addBiasAndActivate(
        _ y: UnsafeMutablePointer<Float>, rows: Int, columns: Int,
        bias: UnsafeMutablePointer<Float>?, activation: Activation
    ) {
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

    /// Writes `dz = dy · act'(y)` (skipped for identity, where `dz` is `dy`) and adds the column
    /// sums of `dz` to `biasGradient`, in one pass. The sums are formed on their own and added
    /// once, so a second batch adds exactly its own sums (accumulation, see `Layer`).
    @inline(__always)
    static func activationBackwardAndBiasGradient(
        outputGradient dy: UnsafeMutablePointer<Float>, output y: UnsafeMutablePointer<Float>,
        preActivationGradient dz: UnsafeMutablePointer<Float>, rows: Int, columns: Int,
        activation: Activation, biasGradient: UnsafeMutablePointer<Float>?
    ) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: biasGradient == nil ? 0 : columns) { sums in
            let sums = sums.baseAddress
            sums?.update(repeating: 0, count: columns)
            for r in 0..<rows {
                let base = r * columns
                if activation == .relu {
                    for c in 0..<columns { dz[base + c] = y[base + c] > 0 ? dy[base + c] : 0 }
                }
                if let sums {
                    for c in 0..<columns { sums[c] += dz[base + c] }
                }
            }
            if let sums, let biasGradient {
                for c in 0..<columns { biasGradient[c] += sums[c] }
            }
        }
    }
}

/// The two terms a channel reduction sums at one row of a channels-last `[rows, channels]` pass.
protocol ChannelTerms {
    /// The terms of channels `channel..<channel + lanes` of the row starting at flat `offset`;
    /// lanes from `lanes` on are ignored.
    func callAsFunction(at offset: Int, channel: Int, lanes: Int) -> (Lanes.Vector, Lanes.Vector)
}

/// Per-channel sums over the rows of a channels-last pass, split over the rank's threads by the
/// decomposition rule (Parallel.swift): blocks of `blockRows` rows are summed in Float lanes, the
/// block sums of each `unitRows` rows (one piece) are added in Double, and the units' sums are
/// merged in order.
enum ChannelSums {
    /// Rows summed in Float (a relative error of about `blockRows`·2⁻²⁴ at worst).
    static let blockRows = 32
    /// Rows per unit of work, a whole number of blocks.
    static let unitRows = 1024

    /// `(Σ first term, Σ second term)` of `terms` over `rows` rows, per channel.
    static func sums<Terms: ChannelTerms>(_ terms: Terms, rows: Int, channels: Int) -> (first: [Double], second: [Double]) {
        let units = (rows + unitRows - 1) / unitRows
        var partials = [Double](repeating: 0, count: units * 2 * channels)
        partials.withUnsafeMutableBufferPointer { partials in
            let partials = partials.baseAddress!
            Parallel.forEachBlock(of: rows, size: unitRows) { unitRange in
                let unit = unitRange.lowerBound / unitRows
                addSums(terms, rows: unitRange, channels: channels, into: partials + unit * 2 * channels)
            }
        }
        var first = [Double](repeating: 0, count: channels), second = first
        for unit in 0..<units {
            for c in 0..<channels {
                first[c] += partials[unit * 2 * channels + c]
                second[c] += partials[unit * 2 * channels + channels + c]
            }
        }
        return (first, second)
    }

    /// Adds the sums of `rows`, block by block, to `sums` (`channels` first sums, then second).
    /// Rows are read in order (for the prefetcher), each block's sums kept in `lanes`.
    @inline(__always)
    private static func addSums<Terms: ChannelTerms>(
        _ terms: Terms, rows: Range<Int>, channels: Int,
        into sums: UnsafeMutablePointer<Double>
    ) {
        let groups = (channels + Lanes.width - 1) / Lanes.width
        withUnsafeTemporaryAllocation(of: Lanes.Vector.self, capacity: 2 * groups) { lanes in
            let first = lanes.baseAddress!, second = first + groups
            for start in Swift.stride(from: rows.lowerBound, to: rows.upperBound, by: blockRows) {
                first.update(repeating: Lanes.Vector(), count: 2 * groups)
                for r in start..<min(start + blockRows, rows.upperBound) {
                    Lanes.forEachGroup(channels: channels) { channel, count in
                        let (a, b) = terms(at: r * channels + channel, channel: channel, lanes: count)
                        first[channel / Lanes.width] += a
                        second[channel / Lanes.width] += b
                    }
                }
                for channel in 0..<channels {
                    sums[channel] += Double(first[channel / Lanes.width][channel % Lanes.width])
                    sums[channels + channel] += Double(second[channel / Lanes.width][channel % Lanes.width])
                }
            }
        }
    }
}
