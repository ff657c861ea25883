import Dispatch

/// Splits the elementwise passes of layers and optimisers over the rank's threads, as OpenBLAS
/// splits its products: `BLAS.threads` sets both.
public enum Parallel {
    /// Threads an elementwise pass may use (1 = run on the caller's thread).
    public nonisolated(unsafe) static var workers = 1

    /// Calls `body` on contiguous parts of `0..<count` (at most `workers` of them, each at least
    /// `minimumPart` long), concurrently when there is more than one part. Parts must write
    /// disjoint memory.
    /// At most `maximumParts` parts.
    public static func forEachPart(of count: Int, minimumPart: Int = 1, maximumParts: Int = .max,
                                   _ body: (Range<Int>) -> Void) {
        forEachNumberedPart(of: count, minimumPart: minimumPart, maximumParts: maximumParts) { _, part in body(part) }
    }

    /// `forEachPart`, also passing each part's number (`0..<workers`), for parts that need
    /// scratch memory of their own.
    public static func forEachNumberedPart(of count: Int, minimumPart: Int = 1, maximumParts: Int = .max,
                                           _ body: (Int, Range<Int>) -> Void) {
        let parts = max(1, min(workers, maximumParts, count / max(minimumPart, 1)))
        guard parts > 1 else {
            body(0, 0..<count)
            return
        }
        withoutActuallyEscaping(body) { body in
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                shared.value(part, (count * part / parts)..<(count * (part + 1) / parts))
            }
        }
    }
}

/// A value handed to worker threads by a caller that guarantees they use it safely.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
