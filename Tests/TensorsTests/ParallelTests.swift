import TestSupport
import XCTest

@testable import Tensors

/// `Parallel` runs a fixed list of pieces: each exactly once, whatever the worker count, with
/// scratch slots that no two running threads share.
final class ParallelTests: XCTestCase {
    func testEveryPieceRunsOnceForAnyWorkerCount() {
        let runs = withEachWorkerCount([1, 2, 3, 7]) { _ in
            var seen = [Int](repeating: 0, count: 10)
            seen.withUnsafeMutableBufferPointer { seen in
                Parallel.forEachPiece(10) { piece in seen[piece] += 1 }
            }
            return seen
        }
        for seen in runs { XCTAssertEqual(seen, Array(repeating: 1, count: 10)) }
    }

    func testBlocksDependOnTheirSizeAloneNotOnTheWorkers() {
        let runs = withEachWorkerCount([1, 2, 3]) { _ in
            var blocks = [Range<Int>?](repeating: nil, count: 4)
            blocks.withUnsafeMutableBufferPointer { blocks in
                Parallel.forEachBlock(of: 10, size: 3) { block in blocks[block.lowerBound / 3] = block }
            }
            return blocks.compactMap { $0 }
        }
        for blocks in runs { XCTAssertEqual(blocks, [0..<3, 3..<6, 6..<9, 9..<10]) }
    }

    /// A slot's pieces run one after another on one thread, so marking a slot busy while a piece
    /// runs never finds it busy already; slots stay below `scratchSlots`.
    func testScratchSlotsAreNeverSharedByRunningThreads() {
        for (workers, cap) in [(1, Int.max), (3, Int.max), (3, 2), (4, 1)] {
            _ = withEachWorkerCount([workers]) { _ in
                let pieces = 40
                let slots = Parallel.scratchSlots(for: pieces, maximumWorkers: cap)
                XCTAssertEqual(slots, min(workers, cap))
                var busy = [Bool](repeating: false, count: slots)
                var clashes = [Bool](repeating: false, count: pieces)
                busy.withUnsafeMutableBufferPointer { busy in
                    clashes.withUnsafeMutableBufferPointer { clashes in
                        Parallel.forEachPiece(pieces, maximumWorkers: cap) { slot, piece in
                            if busy[slot] { clashes[piece] = true }
                            busy[slot] = true
                            usleep(200)
                            busy[slot] = false
                        }
                    }
                }
                XCTAssertFalse(clashes.contains(true), "\(workers) workers, at most \(cap)")
            }
        }
    }
}
