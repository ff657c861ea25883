import Tensors

/// F(4×4, 3×3) (Lavin and Gray, 2016), on the interpolation points 0, ±1, ±2 and ∞:
///
///     Bᵀ = [4  0 −5  0  1  0]    G = [ 1/4     0     0  ]    Aᵀ = [1  1  1  1  1  0]
///          [0 −4 −4  1  1  0]        [−1/6  −1/6  −1/6 ]         [0  1 −1  2 −2  0]
///          [0  4 −4 −1  1  0]        [−1/6   1/6  −1/6 ]         [0  1  1  4  4  0]
///          [0 −2 −1  2  1  0]        [ 1/24  1/12  1/6 ]         [0  1 −1  8 −8  1]
///          [0  2 −1 −2  1  0]        [ 1/24 −1/12  1/6 ]
///          [0  4  0 −5  0  1]        [ 0     0     1   ]
///
/// 36 products per 4×4 output tile and channel pair instead of 144 (im2col) or 64 (four
/// F(2×2, 3×3) tiles), but the coefficients up to 8 (and 1/24) make its rounding error several
/// times that of F(2×2, 3×3).
enum WinogradF4: WinogradMatrices {
    typealias Vector = Lanes.Vector

    @inline(__always) static var outputTile: Int { 4 }

    @inline(__always)
    static func inputPoints(_ p: UnsafeMutablePointer<Vector>, _ s: Int) {
        let (d0, d1, d2, d3, d4, d5) = (p[0], p[s], p[2 * s], p[3 * s], p[4 * s], p[5 * s])
        // Shared terms: rows 1 and 2 are d4 − 4·d2 ∓ (4·d1 − d3), rows 3 and 4 d4 − d2 ∓ 2·(d1 − d3).
        let (a, b) = (d4 - 4 * d2, 4 * d1 - d3)
        let (c, d) = (d4 - d2, 2 * (d1 - d3))
        p[0] = 4 * d0 - 5 * d2 + d4
        p[s] = a - b
        p[2 * s] = a + b
        p[3 * s] = c - d
        p[4 * s] = c + d
        p[5 * s] = 4 * d1 - 5 * d3 + d5
    }

    @inline(__always)
    static func outputPoints(_ p: UnsafeMutablePointer<Vector>, _ s: Int) {
        let (m0, m1, m2, m3, m4, m5) = (p[0], p[s], p[2 * s], p[3 * s], p[4 * s], p[5 * s])
        let (plus12, minus12, plus34, minus34) = (m1 + m2, m1 - m2, m3 + m4, m3 - m4)
        p[0] = m0 + plus12 + plus34
        p[s] = minus12 + 2 * minus34
        p[2 * s] = plus12 + 4 * plus34
        p[3 * s] = minus12 + 8 * minus34 + m5
    }

    @inline(__always)
    static func gradientPoints(_ p: UnsafeMutablePointer<Vector>, _ s: Int) {
        let (g0, g1, g2, g3) = (p[0], p[s], p[2 * s], p[3 * s])
        // Even and odd parts: points ±1 are g0 + g2 ± (g1 + g3), points ±2 g0 + 4·g2 ± 2·(g1 + 4·g3).
        let (even1, odd1) = (g0 + g2, g1 + g3)
        let (even2, odd2) = (g0 + 4 * g2, 2 * (g1 + 4 * g3))
        p[0] = g0
        p[s] = even1 + odd1
        p[2 * s] = even1 - odd1
        p[3 * s] = even2 + odd2
        p[4 * s] = even2 - odd2
        p[5 * s] = g3
    }

    @inline(__always)
    static func filterPoints(_ p: UnsafeMutablePointer<Vector>, _ s: Int) {
        let (g0, g1, g2) = (p[0], p[s], p[2 * s])
        let (even1, even2, odd) = (g0 + g2, g0 / 4 + g2, g1 / 2)
        p[0] = g0 / 4
        p[s] = -(even1 + g1) / 6
        p[2 * s] = -(even1 - g1) / 6
        p[3 * s] = (even2 + odd) / 6
        p[4 * s] = (even2 - odd) / 6
        p[5 * s] = g2
    }

    @inline(__always)
    static func filterGradientPoints(_ p: UnsafeMutablePointer<Vector>, _ s: Int) {
        let (u0, u1, u2, u3, u4, u5) = (p[0], p[s], p[2 * s], p[3 * s], p[4 * s], p[5 * s])
        // The columns of G: sums and differences of the ±1 and ±2 points.
        let (plus1, minus1, plus2, minus2) = (u1 + u2, u2 - u1, u3 + u4, u3 - u4)
        p[0] = u0 / 4 - plus1 / 6 + plus2 / 24
        p[s] = minus1 / 6 + minus2 / 12
        p[2 * s] = (plus2 - plus1) / 6 + u5
    }
}
