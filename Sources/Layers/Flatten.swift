import Tensors

/// Flattens channels-last images `[N, H, W, C]` to `[N, C·H·W]` in PyTorch's (C, H, W) order,
/// so the following Linear layer's weight has PyTorch's layout. `[N, F]` passes through.
public final class Flatten: Layer {
    public var computesInputGradient = true
    private var inputShape: [Int] = []
    private var output = Workspace()
    private var inputGradient = Workspace()

    public init() {}

    public func outputShape(for inputShape: [Int]) throws(ShapeError) -> [Int] {
        guard let batch = inputShape.first, inputShape.count >= 2 else {
            throw ShapeError("Flatten expects input [N, …], got \(inputShape)")
        }
        return [batch, inputShape.dropFirst().reduce(1, *)]
    }

    public func forward(_ input: Tensor, mode: Mode) throws(ShapeError) -> Tensor {
        let shape = try outputShape(for: input.shape)
        inputShape = input.shape
        guard input.rank == 4 else { return try input.reshaped(shape) }
        let y = output.tensor(shape)
        transposePixelsAndChannels(from: input.pointer, to: y.pointer, toChannelsFirst: true)
        return y
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        guard inputShape.count == 4 else { return try! outputGradient.reshaped(inputShape) }
        let dx = inputGradient.tensor(inputShape)
        transposePixelsAndChannels(from: outputGradient.pointer, to: dx.pointer, toChannelsFirst: false)
        return dx
    }

    /// Per sample, (H·W, C) ↔ (C, H·W).
    private func transposePixelsAndChannels(
        from source: UnsafeMutablePointer<Float>,
        to destination: UnsafeMutablePointer<Float>, toChannelsFirst: Bool
    ) {
        let pixels = inputShape[1] * inputShape[2], c = inputShape[3]
        for n in 0..<inputShape[0] {
            let s = source + n * pixels * c, d = destination + n * pixels * c
            for p in 0..<pixels {
                for ch in 0..<c {
                    if toChannelsFirst { d[ch * pixels + p] = s[p * c + ch] } else { d[p * c + ch] = s[ch * pixels + p] }
                }
            }
        }
    }
}
