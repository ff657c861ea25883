import Dispatch

// MARK: - The decomposition rule
//
// Results never depend on the machine: not on the number of threads, nor on the number of
// ranks, nor on which OpenBLAS kernel the CPU gets. OpenBLAS rounds an element of a product
// differently depending on the shape of the call it sits in (which blockings and special
// paths it takes differs between its Haswell/Zen, SkylakeX and Prescott kernels), and a sum
// rounds differently in another order. So:
//
//   Every split of work is a function of the problem's shapes alone. A kernel cuts its work
//   into a fixed list of *pieces* (GEMM slabs, Winograd chunks, row blocks of an elementwise
//   pass, units of a partial sum), each always computed by the same calls on the same
//   operands, and partial sums are always added in the same order. Workers only decide *who*
//   runs each piece.
//
// `Parallel` is where kernels split work, and its interface follows the rule: it is given a
// number of pieces (or a block size) chosen from the shapes, and tells a piece only its own
// index, never how many workers there are. A scratch slot number is the one thing a worker
// learns, for memory it alone uses. No threshold tuned to one CPU's kernels can replace this.
// The same rule holds across ranks: evaluation cuts the test set into blocks fixed by sample
// index (see `EvaluationSharder`). `launch/check-kernels.sh` checks it under several kernels.

/// Runs the pieces of a split computation on the rank's threads (see the decomposition rule
/// above): one pool for products, convolutions and elementwise passes, sized by `BLAS.threads`.
public enum Parallel {
    /// Threads that run pieces (1 = every piece on the caller's thread). It decides who runs a
    /// piece, never what a piece is.
    public nonisolated(unsafe) static var workers = 1

    /// Calls `body(piece)` for every piece in `0..<pieces`, on at most `min(workers,
    /// maximumWorkers)` threads, each taking a contiguous run of pieces in increasing order.
    /// Pieces must write disjoint memory.
    public static func forEachPiece(_ pieces: Int, maximumWorkers: Int = .max, _ body: (_ piece: Int) -> Void) {
        forEachPiece(pieces, maximumWorkers: maximumWorkers) { _, piece in body(piece) }
    }

    /// `forEachPiece`, also passing the running thread's scratch slot, in
    /// `0..<scratchSlots(for: pieces)`: memory that a slot's pieces use one after another.
    public static func forEachPiece(
        _ pieces: Int, maximumWorkers: Int = .max,
        _ body: (_ slot: Int, _ piece: Int) -> Void
    ) {
        let threads = runningThreads(pieces, maximumWorkers: maximumWorkers)
        guard threads > 1 else {
            for piece in 0..<pieces { body(0, piece) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: threads) { slot in
                for piece in (pieces * slot / threads)..<(pieces * (slot + 1) / threads) {
                    shared.value(slot, piece)
                }
            }
        }
    }

    /// Calls `body` on the blocks `0..<size`, `size..<2·size`, … of `0..<count` (the last one
    /// shorter), as pieces: a block's bounds depend on `count` and `size` alone.
    public static func forEachBlock(
        of count: Int, size: Int, maximumWorkers: Int = .max,
        _ body: (_ block: Range<Int>) -> Void
    ) {
        precondition(size > 0, "block size must be positive, got \(size)")
        let blocks = (count + size - 1) / size
        forEachPiece(blocks, maximumWorkers: maximumWorkers) { block in
            body((block * size)..<min((block + 1) * size, count))
        }
    }

    /// How many scratch slots `forEachPiece(pieces, maximumWorkers:)` may use at once.
    public static func scratchSlots(for pieces: Int, maximumWorkers: Int = .max) -> Int {
        max(1, runningThreads(pieces, maximumWorkers: maximumWorkers))
    }

    private static func runningThreads(_ pieces: Int, maximumWorkers: Int) -> Int {
        min(workers, maximumWorkers, pieces)
    }
}

/// A value handed to worker threads by a caller that guarantees they use it safely.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
