import Layers
import Models
import Tensors
import TestSupport
import XCTest

/// A mismatched input stops with a ShapeError whose message names both shapes.
final class ShapeErrorTests: XCTestCase {
    func testLinear() {
        let linear = Linear(4, 3)
        bindParameters(linear)
        assertShapeError(containing: ["[N, 4]", "[2, 5]"]) { () throws(ShapeError) in
            try linear.forward(Tensor(zeros: [2, 5]), mode: .training)
        }
        assertShapeError(containing: ["[N, 4]", "[2, 2, 2]"]) { () throws(ShapeError) in
            try linear.forward(Tensor(zeros: [2, 2, 2]), mode: .training)
        }
    }

    func testConv2d() {
        let conv = Conv2d(3, 4, kernelSize: 3, padding: 1)
        bindParameters(conv)
        assertShapeError(containing: ["[N, H, W, 3]", "[2, 5, 5, 2]"]) { () throws(ShapeError) in
            try conv.forward(Tensor(zeros: [2, 5, 5, 2]), mode: .training)
        }
        assertShapeError(containing: ["[N, H, W, 3]", "[2, 75]"]) { () throws(ShapeError) in
            try conv.forward(Tensor(zeros: [2, 75]), mode: .training)
        }
        // An image smaller than the kernel gives no output.
        assertShapeError(containing: ["[1, 2, 2, 3]"]) { () throws(ShapeError) in
            try Conv2d(3, 4, kernelSize: 3).forward(Tensor(zeros: [1, 2, 2, 3]), mode: .training)
        }
    }

    func testKernelLargerThanThePaddedInputIsAnErrorEvenWithStride() {
        // (H + 2p − k) / s + 1 with a negative numerator truncates towards zero in Swift, so
        // H = 2, k = 3, s = 2 would give a 1×1 output instead of an error (PyTorch raises
        // "Kernel size can't be greater than actual input size").
        assertShapeError(containing: ["[1, 2, 2, 1]"]) { () throws(ShapeError) in
            try Conv2d(1, 1, kernelSize: 3, stride: 2).outputShape(for: [1, 2, 2, 1])
        }
        assertShapeError(containing: ["[1, 2, 2, 1]"]) { () throws(ShapeError) in
            try MaxPool2d(kernelSize: 3, stride: 2).outputShape(for: [1, 2, 2, 1])
        }
        assertShapeError(containing: ["[1, 1, 5, 2]"]) { () throws(ShapeError) in
            try MaxPool2d(kernelSize: 2).forward(Tensor(zeros: [1, 1, 5, 2]), mode: .training)
        }
        // AvgPool2d would read outside the input for such a window: only the shape is asked here.
        assertShapeError(containing: ["[1, 2, 2, 1]"]) { () throws(ShapeError) in
            try AvgPool2d(kernelSize: 3, stride: 2).outputShape(for: [1, 2, 2, 1])
        }
    }

    func testBatchNorm() {
        let bn = BatchNorm(3)
        bindParameters(bn)
        assertShapeError(containing: ["[N, 3]", "[4, 2]"]) { () throws(ShapeError) in
            try bn.forward(Tensor(zeros: [4, 2]), mode: .training)
        }
        assertShapeError(containing: ["[N, H, W, 3]", "[2, 3, 3, 4]"]) { () throws(ShapeError) in
            try bn.forward(Tensor(zeros: [2, 3, 3, 4]), mode: .evaluation)
        }
        assertShapeError(containing: ["[2, 3, 3]"]) { () throws(ShapeError) in
            try bn.forward(Tensor(zeros: [2, 3, 3]), mode: .training)
        }
    }

    func testPoolingAndFlatten() {
        assertShapeError(containing: ["[N, H, W, C]", "[2, 4, 4]"]) { () throws(ShapeError) in
            try MaxPool2d(kernelSize: 2).forward(Tensor(zeros: [2, 4, 4]), mode: .training)
        }
        assertShapeError(containing: ["[N, H, W, C]", "[2, 16]"]) { () throws(ShapeError) in
            try AvgPool2d(kernelSize: 2).forward(Tensor(zeros: [2, 16]), mode: .training)
        }
        assertShapeError(containing: ["[N, H, W, C]", "[2, 16]"]) { () throws(ShapeError) in
            try GlobalAvgPool2d().forward(Tensor(zeros: [2, 16]), mode: .training)
        }
        assertShapeError(containing: ["[5]"]) { () throws(ShapeError) in
            try Flatten().forward(Tensor(zeros: [5]), mode: .training)
        }
    }

    func testPreActBlockAndSequential() {
        let block = PreActBlock(3, 4, stride: 2)
        bindParameters(block)
        assertShapeError(containing: ["[2, 4, 4, 5]"]) { () throws(ShapeError) in
            try block.forward(Tensor(zeros: [2, 4, 4, 5]), mode: .training)
        }
        let network = Sequential([Conv2d(1, 2, kernelSize: 3, padding: 1), Flatten(), Linear(32, 3)])
        bindParameters(network)
        assertShapeError(containing: ["[N, 32]", "[2, 50]"]) { () throws(ShapeError) in
            try network.forward(Tensor(zeros: [2, 5, 5, 1]), mode: .training)
        }
    }

    func testModel() throws {
        let model = try ModelZoo.make("mlp", generator: RandomGenerator(seed: 1))
        assertShapeError(containing: ["[784]", "[2, 783]"]) { () throws(ShapeError) in
            try model.forward(Tensor(zeros: [2, 783]), mode: .training)
        }
        let cnn = try ModelZoo.make("cnn", input: .init(height: 8, width: 8, channels: 1, classes: 2), generator: RandomGenerator(seed: 1))
        assertShapeError(containing: ["[8, 8, 1]", "[2, 8, 8, 3]"]) { () throws(ShapeError) in
            try cnn.forward(Tensor(zeros: [2, 8, 8, 3]), mode: .evaluation)
        }
    }

    func testMatmul() {
        assertShapeError(containing: ["[2, 3]", "[4, 5]"]) { () throws(ShapeError) in
            try BLAS.matmul(Tensor(zeros: [2, 3]), .none, Tensor(zeros: [4, 5]), .none, into: Tensor(zeros: [2, 5]))
        }
        assertShapeError(containing: ["[2, 3]", "[3, 4]"]) { () throws(ShapeError) in
            try BLAS.matmul(Tensor(zeros: [2, 3]), .none, Tensor(zeros: [3, 4]), .transposed, into: Tensor(zeros: [2, 3]))
        }
    }

    func testLoss() {
        let loss = SoftmaxCrossEntropy()
        assertShapeError(containing: ["[2, 3]", "[2, 4]"]) { () throws(ShapeError) in
            try loss(logits: Tensor(zeros: [2, 3]), targets: Tensor(zeros: [2, 4]))
        }
        assertShapeError(containing: ["[6]"]) { () throws(ShapeError) in
            try loss(logits: Tensor(zeros: [6]), targets: Tensor(zeros: [6]))
        }
    }

    func testReshape() {
        assertShapeError(containing: ["[2, 3]", "[4]"]) { () throws(ShapeError) in try Tensor(zeros: [2, 3]).reshaped([4]) }
    }
}
