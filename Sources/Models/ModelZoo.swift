import Layers
import Tensors

/// The models pskd builds by name.
public enum ModelZoo {
    /// The registered names, for help texts and validation.
    public static let names = ["mlp", "cnn", "preact-resnet18", "preact-resnet18-he"] + torchvisionResNets.map(\.name)

    /// torchvision's ImageNet ResNets (`torchvision.models.resnetNN()`): the block design and
    /// the number of blocks in each of the four stages.
    static let torchvisionResNets: [(name: String, design: ResidualBlock.Design, blocks: [Int])] = [
        ("resnet18", .basic, [2, 2, 2, 2]),
        ("resnet34", .basic, [3, 4, 6, 3]),
        ("resnet50", .bottleneck, [3, 4, 6, 3]),
        ("resnet101", .bottleneck, [3, 4, 23, 3]),
        ("resnet152", .bottleneck, [3, 8, 36, 3]),
    ]

    /// What a model is built for: one sample's channels-last shape and the class count.
    public struct Input: Sendable, Equatable {
        public var height: Int, width: Int, channels: Int, classes: Int
        public init(height: Int, width: Int, channels: Int, classes: Int) {
            (self.height, self.width, self.channels, self.classes) = (height, width, channels, classes)
        }
        /// Fashion-MNIST and MNIST: 28 × 28 grey, 10 classes.
        public static let fashionMNIST = Input(height: 28, width: 28, channels: 1, classes: 10)
    }

    /// An unknown model name.
    public struct UnknownModel: Error, CustomStringConvertible {
        public let name: String
        public var description: String {
            "unknown model '\(name)': choose one of \(ModelZoo.names.joined(separator: ", "))"
        }
    }

    /// Builds the model `name` for `input`, initialised from `generator`.
    /// `widthMultiplier` scales the channel widths of `preact-resnet18`, `preact-resnet18-he` and
    /// the `resnetNN` models (every stage's planes, the stem's too).
    public static func make(
        _ name: String, input: Input = .fashionMNIST, widthMultiplier: Double = 1,
        generator: RandomGenerator
    ) throws -> Model {
        let image = [input.height, input.width, input.channels]
        switch name {
        case "mlp":
            return try Model(
                name: name, network: mlp(inputs: image.reduce(1, *), classes: input.classes),
                sampleShape: [image.reduce(1, *)], classCount: input.classes, generator: generator)
        case "cnn":
            return try Model(
                name: name, network: cnn(input), sampleShape: image,
                classCount: input.classes, generator: generator)
        case "preact-resnet18":
            return try Model(
                name: name, network: preActResNet18(input, widthMultiplier: widthMultiplier),
                sampleShape: image, classCount: input.classes, generator: generator)
        case "preact-resnet18-he":
            return try Model(
                name: name, network: preActResNet18He(input, widthMultiplier: widthMultiplier),
                sampleShape: image, classCount: input.classes, generator: generator)
        default:
            guard let resNet = torchvisionResNets.first(where: { $0.name == name }) else { throw UnknownModel(name: name) }
            return try Model(
                name: name,
                network: torchvisionResNet(input, design: resNet.design, blocks: resNet.blocks, widthMultiplier: widthMultiplier),
                sampleShape: image, classCount: input.classes, generator: generator)
        }
    }

    /// 784-1024-1024-10 with ReLU.
    static func mlp(inputs: Int, classes: Int) -> Sequential {
        Sequential(named: [
            ("fc1", Linear(inputs, 1024, activation: .relu)),
            ("fc2", Linear(1024, 1024, activation: .relu)),
            ("fc3", Linear(1024, classes)),
        ])
    }

    /// Four 3×3 convolutions with BatchNorm and ReLU, two max-pools, two linear layers.
    static func cnn(_ input: Input) -> Sequential {
        let pooledPixels = (input.height / 4) * (input.width / 4)
        return Sequential(named: [
            ("conv1", Conv2d(input.channels, 32, kernelSize: 3, padding: 1)), ("bn1", BatchNorm(32, activation: .relu)),
            ("conv2", Conv2d(32, 32, kernelSize: 3, padding: 1)), ("bn2", BatchNorm(32, activation: .relu)),
            ("pool1", MaxPool2d(kernelSize: 2)),
            ("conv3", Conv2d(32, 64, kernelSize: 3, padding: 1)), ("bn3", BatchNorm(64, activation: .relu)),
            ("conv4", Conv2d(64, 64, kernelSize: 3, padding: 1)), ("bn4", BatchNorm(64, activation: .relu)),
            ("pool2", MaxPool2d(kernelSize: 2)),
            ("flatten", Flatten()),
            ("fc1", Linear(64 * pooledPixels, 256, activation: .relu)),
            ("fc2", Linear(256, input.classes)),
        ])
    }

    /// The paper's PreAct ResNet-18, exactly the official `CIFAR_ResNet18_preActBasic` of
    /// lgcnsai/PS-KD-Pytorch (models/preact_resnet.py), with its state-dict names: a 3×3 stem
    /// convolution `conv1` → `bn1` → ReLU; PreAct blocks [2, 2, 2, 2] (`layer1` … `layer4`) at
    /// widths 64-128-256-512 (times `widthMultiplier`) whose shortcut starts from the
    /// pre-activation; no final BatchNorm; average pooling and a biased `linear`.
    ///
    /// The official code pools with `avg_pool2d(out, 4)`: on CIFAR's 32 × 32 (and on 28 × 28,
    /// which the strides also bring to 4 × 4) the last feature map is 4 × 4, so that is the mean
    /// over all its pixels, which `GlobalAvgPool2d` computes. On other sizes, where the official
    /// network does not run (its `linear` takes exactly 512 features), pskd still pools globally.
    static func preActResNet18(_ input: Input, widthMultiplier: Double) -> Sequential {
        let widths = stageWidths(widthMultiplier)
        return Sequential(
            named: [
                ("conv1", Conv2d(input.channels, widths[0], kernelSize: 3, padding: 1, bias: false)),
                ("bn1", BatchNorm(widths[0], activation: .relu)),
            ] + preActStages(widths, identity: .preActivation) + [
                ("pool", GlobalAvgPool2d()),
                ("linear", Linear(widths[3], input.classes)),
            ])
    }

    /// PreAct ResNet-18 as in He et al. (2016): a 3×3 stem convolution without BatchNorm, PreAct
    /// blocks [2, 2, 2, 2] whose identity shortcut adds the raw input, a final BatchNorm + ReLU
    /// (`bn`), global average pooling and a linear classifier. Works for any input ≥ 8 × 8.
    static func preActResNet18He(_ input: Input, widthMultiplier: Double) -> Sequential {
        let widths = stageWidths(widthMultiplier)
        return Sequential(
            named: [
                ("conv1", Conv2d(input.channels, widths[0], kernelSize: 3, padding: 1, bias: false))
            ] + preActStages(widths, identity: .input) + [
                ("bn", BatchNorm(widths[3], activation: .relu)),
                ("pool", GlobalAvgPool2d()),
                ("linear", Linear(widths[3], input.classes)),
            ])
    }

    /// torchvision's `ResNet(block, layers)` with its state-dict names: stem `conv1` (7×7, stride
    /// 2, padding 3, no bias) → `bn1` → ReLU → `maxpool` (3×3, stride 2, padding 1); stages
    /// `layer1` … `layer4` of `blocks[i]` residual blocks at 64-128-256-512 planes (times
    /// `widthMultiplier`), the first block of stages 2–4 with stride 2 and a `downsample`
    /// wherever the stride or width changes; global average pooling (`AdaptiveAvgPool2d((1, 1))`,
    /// named `avgpool`) and a biased `fc` with PyTorch's default Linear initialisation.
    /// Convolutions are drawn from `kaiming_normal_(mode="fan_out", nonlinearity="relu")`, as
    /// torchvision does. The stem takes `input.channels` (torchvision's takes 3). Any input size
    /// runs: a 224 × 224 image ends at 7 × 7, CIFAR's 32 × 32 at 1 × 1.
    static func torchvisionResNet(_ input: Input, design: ResidualBlock.Design, blocks: [Int], widthMultiplier: Double) -> Sequential {
        let planes = stageWidths(widthMultiplier)
        var channels = planes[0]
        let stages = zip(planes, blocks).enumerated().map { stage, pair -> (name: String, layer: any Layer) in
            let (width, count) = pair
            let layers = (0..<count).map { index -> any Layer in
                let block = ResidualBlock(design, channels, planes: width, stride: stage > 0 && index == 0 ? 2 : 1)
                channels = block.outputChannels
                return block
            }
            return ("layer\(stage + 1)", Sequential(layers))
        }
        return Sequential(
            named: [
                (
                    "conv1",
                    Conv2d(
                        input.channels, planes[0], kernelSize: 7, stride: 2, padding: 3, bias: false, initialization: .kaimingNormalFanOut)
                ),
                ("bn1", BatchNorm(planes[0], activation: .relu)),
                ("maxpool", MaxPool2d(kernelSize: 3, stride: 2, padding: 1)),
            ] + stages + [
                ("avgpool", GlobalAvgPool2d()),
                ("fc", Linear(channels, input.classes)),
            ])
    }

    /// The stage widths 64-128-256-512 times `widthMultiplier` (at least 1 channel each).
    private static func stageWidths(_ widthMultiplier: Double) -> [Int] {
        [64, 128, 256, 512].map { max(1, Int((Double($0) * widthMultiplier).rounded())) }
    }

    /// `layer1` … `layer4`: two PreAct blocks each, the first of stages 2–4 with stride 2.
    private static func preActStages(_ widths: [Int], identity: PreActBlock.IdentityShortcut) -> [(name: String, layer: any Layer)] {
        var channels = widths[0]
        return widths.enumerated().map { stage, width in
            let first = PreActBlock(channels, width, stride: stage == 0 ? 1 : 2, identity: identity)
            channels = width
            return ("layer\(stage + 1)", Sequential([first, PreActBlock(width, width, identity: identity)]))
        }
    }
}
