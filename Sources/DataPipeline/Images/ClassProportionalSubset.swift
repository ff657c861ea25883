import Tensors

/// A subset of `count` samples of `store` drawn from every class in proportion to its size, for
/// `--max-train-samples` on an image collection (whose samples are stored class by class, so
/// the first `count` would be the first classes only).
///
/// The rule, fixed by the store's labels, `count` and the generator's state alone:
///
/// 1. Class `c`, holding `n_c` of the store's `N` samples, gets `⌊count × n_c / N⌋` places; the
///    places still missing to make exactly `count` go, one each, to the classes with the
///    largest remainders `count × n_c mod N` (largest-remainder rounding; equal remainders in
///    class order). A class gets none only when its share `count × n_c / N` is below 1 and
///    its remainder loses.
/// 2. Class `c`'s members are a uniformly random choice of its places among its samples, drawn
///    with `generator.split(RandomStream.trainingSubset).split(c)` by selection sampling (each
///    sample in turn is kept with probability places left / samples left): the choice of one
///    class does not depend on the other classes.
/// 3. The kept samples keep their order in `store`; the view numbers them `0..<count`.
///
/// The view holds 4 bytes per kept sample (the store's index of each) beside `store`.
///
///     let subset = try classProportionalSubset(of: store, count: 5_000, generator: RandomGenerator(seed: 42))
///
/// - Throws: `DataError.invalidConfiguration` when `count` is not in `1...store.count`, or the
///   store has more than 2³² samples.
public func classProportionalSubset(
    of store: any EncodedImageStore, count: Int, generator: RandomGenerator
) throws(DataError) -> EncodedImageSubset {
    let total = store.count
    guard count >= 1, count <= total else {
        throw DataError(
            .invalidConfiguration, file: nil, expected: "a subset of 1 to \(groupedDigits(total)) samples of \(store.summary)",
            found: "\(count)", remedy: "ask for at most \(groupedDigits(total)) samples")
    }
    guard total <= Int(UInt32.max) else {
        throw DataError(
            .invalidConfiguration, file: nil, expected: "at most 2³² samples to draw a subset from",
            found: "\(groupedDigits(total)) in \(store.summary)", remedy: "split the collection")
    }
    let labels = store.labels
    var sizes = [Int](repeating: 0, count: store.classNames.count)
    for label in labels { sizes[Int(label)] += 1 }

    var places = sizes.map { count * $0 / total }
    let missing = count - places.reduce(0, +)
    let byRemainder = sizes.indices.sorted { left, right in
        let (a, b) = (count * sizes[left] % total, count * sizes[right] % total)
        return a != b ? a > b : left < right
    }
    for c in byRemainder.prefix(missing) { places[c] += 1 }

    let stream = generator.split(RandomStream.trainingSubset)
    var generators = sizes.indices.map { stream.split(UInt64($0)) }
    var left = sizes
    var members: [UInt32] = []
    members.reserveCapacity(count)
    for (index, label) in labels.enumerated() {
        let c = Int(label)
        if places[c] > 0 && (places[c] == left[c] || generators[c].nextIndex(below: left[c]) < places[c]) {
            members.append(UInt32(index))
            places[c] -= 1
        }
        left[c] -= 1
    }
    return EncodedImageSubset(base: store, members: members)
}

/// Some samples of another store, numbered `0..<count` in their order there: what
/// `classProportionalSubset` returns.
public struct EncodedImageSubset: EncodedImageStore {
    /// The store the samples are read from.
    public let base: any EncodedImageStore
    /// The base store's index of each sample, ascending.
    public let members: [UInt32]

    /// A view of `base`'s samples `members` (ascending indices into `base`).
    public init(base: any EncodedImageStore, members: [UInt32]) {
        precondition(zip(members, members.dropFirst()).allSatisfy { $0 < $1 }, "subset members must ascend")
        precondition(members.last.map { Int($0) < base.count } ?? true, "subset member beyond the base store")
        self.base = base
        self.members = members
    }

    public var count: Int { members.count }

    /// The kept samples' labels, made from the base store's on each access (`count` × 4 bytes):
    /// read it once, or use `label(of:)`.
    public var labels: [Int32] { members.map { base.label(of: Int($0)) } }

    public func label(of index: Int) -> Int32 { base.label(of: Int(members[index])) }

    public var classNames: [String] { base.classNames }
    public var skippedEntryCount: Int { base.skippedEntryCount }

    public var summary: String {
        "\(base.summary), a class-proportional subset of \(groupedDigits(count)) of its \(groupedDigits(base.count)) samples"
    }

    /// The bytes this view adds to its base store's index: 4 per kept sample.
    public var indexByteCount: Int { members.capacity * MemoryLayout<UInt32>.size }

    /// The base store's index of sample `index`.
    public func baseIndex(of index: Int) -> Int { Int(members[index]) }

    public func readEncodedBytes(of index: Int, into buffer: inout [UInt8]) throws(DataError) -> Int {
        do {
            return try base.readEncodedBytes(of: Int(members[index]), into: &buffer)
        } catch {
            throw DataError(
                error.kind, file: error.file, expected: "\(error.expected) (sample \(index) of the subset)", found: error.found,
                remedy: error.remedy)
        }
    }

    public func location(of index: Int) -> String {
        "\(base.location(of: Int(members[index]))) (sample \(index) of the subset)"
    }
}
