import Layers
import Tensors
import TestSupport
import XCTest

final class ActivationsTests: XCTestCase {
    /// Normal values pushed at least 0.1 away from the ReLU kink.
    private func awayFromZero(_ shape: [Int], seed: UInt64) -> Tensor {
        let x = normalTensor(shape, seed: seed)
        for i in 0..<x.count { x[i] += x[i] >= 0 ? 0.1 : -0.1 }
        return x
    }

    func testReLUForwardAndBackward() throws {
        let relu = ReLU()
        let x = Tensor(shape: [2, 3], values: [-2, -0.5, 0, 0.5, 2, -1e-3])
        XCTAssertEqual(try relu.forward(x, mode: .training).scalars, [0, 0, 0, 0.5, 2, 0])
        let dx = relu.backward(Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]))
        XCTAssertEqual(dx.scalars, [0, 0, 0, 4, 5, 0])
        XCTAssertEqual(try relu.forward(x, mode: .evaluation).scalars, [0, 0, 0, 0.5, 2, 0])
    }

    func testReLUGradientsForAnyRank() throws {
        for shape in [[4, 5], [2, 3, 3, 2]] {
            assertLayerGradients(ReLU(), input: awayFromZero(shape, seed: 3), "\(shape)")
        }
    }

    func testDropoutEvaluationIsTheIdentity() throws {
        let dropout = Dropout(probability: 0.5)
        let x = normalTensor([3, 4], seed: 1)
        let y = try dropout.forward(x, mode: .evaluation)
        XCTAssertEqual(y.scalars, x.scalars)
        let dy = normalTensor([3, 4], seed: 2)
        XCTAssertEqual(dropout.backward(dy).scalars, dy.scalars)
    }

    func testDropoutTrainingKeepsTheRightFractionAndRescales() throws {
        for p: Float in [0.1, 0.3, 0.5] {
            let dropout = Dropout(probability: p)
            dropout.samples = BatchSamples(seed: 99, epoch: 1, indices: Array(0..<200))
            let x = Tensor(shape: [200, 500], repeating: 1)
            let y = try dropout.forward(x, mode: .training)
            var kept = 0
            for v in y.scalars {
                if v != 0 {
                    kept += 1
                    XCTAssertEqual(v, 1 / (1 - p), accuracy: 1e-6)
                }
            }
            // σ of the kept fraction is √(p(1−p)/n) ≤ 0.0016; allow 4σ.
            XCTAssertEqual(Double(kept) / Double(x.count), Double(1 - p), accuracy: 0.0064, "p = \(p)")
            // The mean is preserved in expectation.
            XCTAssertEqual(y.scalars.reduce(0.0) { $0 + Double($1) } / Double(x.count), 1, accuracy: 0.01)
        }
    }

    func testDropoutGradientUsesTheSameMask() throws {
        let dropout = Dropout(probability: 0.4)
        dropout.samples = BatchSamples(seed: 5, epoch: 1, indices: Array(0..<10))
        let x = awayFromZero([10, 10], seed: 6)
        let y = try dropout.forward(x, mode: .training).copy()
        let dy = normalTensor([10, 10], seed: 7)
        let dx = dropout.backward(dy)
        var dropped = 0
        for i in 0..<x.count {
            if y[i] == 0 {
                dropped += 1
                XCTAssertEqual(dx[i], 0, "element \(i) was dropped in forward")
            } else {
                XCTAssertEqual(y[i], x[i] / 0.6, accuracy: 1e-5)
                XCTAssertEqual(dx[i], dy[i] / 0.6, accuracy: 1e-5, "element \(i) was kept in forward")
            }
        }
        XCTAssert(dropped > 20 && dropped < 60, "\(dropped) of 100 dropped")
    }

    /// A row's mask depends on (seed, layer, epoch, sample index) alone: not on where the sample
    /// sits in its batch, so not on the rank count or micro-batching either.
    func testDropoutMaskOfASampleDoesNotDependOnItsPositionInTheBatch() throws {
        func masks(_ indices: [Int], seed: UInt64 = 3, epoch: Int = 1, streamKey: UInt64 = 0) throws -> [[Float]] {
            let dropout = Dropout(probability: 0.5, streamKey: streamKey)
            dropout.samples = BatchSamples(seed: seed, epoch: epoch, indices: indices)
            let y = try dropout.forward(Tensor(shape: [indices.count, 64], repeating: 1), mode: .training).scalars
            return (0..<indices.count).map { Array(y[($0 * 64)..<(($0 + 1) * 64)]) }
        }
        let whole = try masks([10, 11, 12, 13])  // one rank's batch
        let shard = try masks([12, 10])  // the same samples elsewhere, in another order
        XCTAssertEqual(shard[0], whole[2])
        XCTAssertEqual(shard[1], whole[0])
        XCTAssertNotEqual(whole[0], whole[1], "samples get different masks")
        XCTAssertNotEqual(try masks([10], epoch: 2)[0], whole[0], "a new epoch draws a new mask")
        XCTAssertNotEqual(try masks([10], seed: 4)[0], whole[0], "another seed draws another mask")
        XCTAssertNotEqual(try masks([10], streamKey: 1)[0], whole[0], "another layer draws another mask")
    }

    func testDropoutWithZeroProbabilityIsTheIdentityInTraining() throws {
        let dropout = Dropout(probability: 0)
        let x = normalTensor([4, 4], seed: 8)
        XCTAssertEqual(try dropout.forward(x, mode: .training).scalars, x.scalars)
    }
}
