/// A seedable, splittable random number generator (xoshiro256**), so every rank and every
/// purpose (initialisation, data order, augmentation, dropout) draws from its own stream and
/// results are reproducible for a fixed seed whatever the order in which streams are used.
///
///     let root = RandomGenerator(seed: 42)
///     var initRNG = root.split(RandomStream.initialisation)
///     var orderRNG = root.split(RandomStream.dataOrder, epoch)
public struct RandomGenerator: RandomNumberGenerator, Sendable, Equatable {
    /// The generator's complete state: saving and restoring it resumes the stream exactly.
    public var state: (UInt64, UInt64, UInt64, UInt64)

    /// A generator whose stream is determined by `seed`.
    public init(seed: UInt64) {
        var mixer = SplitMix64(state: seed)
        state = (mixer.next(), mixer.next(), mixer.next(), mixer.next())
    }

    /// A generator restored from a saved `state` (which must not be all zeros).
    public init(state: (UInt64, UInt64, UInt64, UInt64)) {
        precondition(state != (0, 0, 0, 0), "xoshiro256** state must not be all zeros")
        self.state = state
    }

    /// An independent generator derived from this one's *current* state and `keys`
    /// (for example a purpose, a rank and an epoch). This generator is not advanced.
    public func split(_ keys: UInt64...) -> RandomGenerator {
        var mixer = SplitMix64(state: state.0 ^ 0x9E37_79B9_7F4A_7C15)
        var seed = mixer.next() ^ state.1 ^ (state.2 &* 0xBF58_476D_1CE4_E5B9) ^ state.3
        for key in keys {
            var keyMixer = SplitMix64(state: seed ^ key &* 0x94D0_49BB_1331_11EB)
            seed = keyMixer.next()
        }
        return RandomGenerator(seed: seed)
    }

    /// The next 64 random bits.
    @inlinable public mutating func next() -> UInt64 {
        let result = rotl(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotl(state.3, 45)
        return result
    }

    @inlinable func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// A uniform `Float` in [0, 1) with 24 random bits.
    @inlinable public mutating func nextUniform() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// A uniform `Double` in [0, 1) with 53 random bits.
    @inlinable public mutating func nextUniformDouble() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// A standard normal sample (Box–Muller).
    public mutating func nextNormal() -> Float {
        var u1 = nextUniformDouble()
        while u1 <= 0 { u1 = nextUniformDouble() }
        let u2 = nextUniformDouble()
        return Float((-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2))
    }

    /// A uniform integer in `0..<bound`, without modulo bias.
    public mutating func nextIndex(below bound: Int) -> Int {
        precondition(bound > 0, "nextIndex(below:) needs a positive bound, got \(bound)")
        return Int(next(upperBound: UInt64(bound)))
    }

    public static func == (lhs: RandomGenerator, rhs: RandomGenerator) -> Bool {
        lhs.state == rhs.state
    }
}

/// Well-known stream keys for `RandomGenerator.split`, so purposes never share a stream.
public enum RandomStream {
    public static let initialisation: UInt64 = 1
    public static let dataOrder: UInt64 = 2
    public static let augmentation: UInt64 = 3
    public static let dropout: UInt64 = 4
    public static let benchmark: UInt64 = 5
    public static let labelNoise: UInt64 = 6
    public static let syntheticData: UInt64 = 7
    public static let classWisePartners: UInt64 = 8
    /// The members of a class-proportional subset of an image store (`--max-train-samples` on
    /// an image collection: `classProportionalSubset`); split again by class index.
    public static let trainingSubset: UInt64 = 9
}

/// SplitMix64, used to expand seeds into xoshiro states.
@usableFromInline struct SplitMix64 {
    @usableFromInline var state: UInt64
    @inlinable init(state: UInt64) { self.state = state }
    @inlinable mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

#if canImport(Glibc)
import Glibc
@usableFromInline func _log(_ x: Double) -> Double { Glibc.log(x) }
@usableFromInline func _cos(_ x: Double) -> Double { Glibc.cos(x) }
#else
import Darwin
@usableFromInline func _log(_ x: Double) -> Double { Darwin.log(x) }
@usableFromInline func _cos(_ x: Double) -> Double { Darwin.cos(x) }
#endif
