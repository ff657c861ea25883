// swift-tools-version:6.0
// pskd: distributed data-parallel Progressive Self-Knowledge Distillation on Open MPI and OpenBLAS.
//
// Dependencies point one way, down (each target imports only targets below it):
//   pskd (CLI)        → Reporting, Training, and the layers below it shown by name
//   Reporting         → Training
//   Training          → SelfDistillation, Collectives, DataPipeline, Models, Optimizers, Layers, Tensors
//   SelfDistillation  → Collectives, Tensors
//   Collectives       → Tensors, CMPI
//   DataPipeline      → Tensors, CZlib
//   Models → Layers → Tensors;  Optimizers → Tensors;  Tensors → CBLAS
import PackageDescription

let optimized: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "pskd",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "pskd", targets: ["pskd"]),
        .library(name: "Tensors", targets: ["Tensors"]),
        .library(name: "Layers", targets: ["Layers"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // C libraries: the only place C is seen.
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),

        // Numerics.
        .target(name: "Tensors", dependencies: ["CBLAS"], swiftSettings: optimized),
        .target(name: "Layers", dependencies: ["Tensors"], swiftSettings: optimized),
        .target(name: "Optimizers", dependencies: ["Tensors"], swiftSettings: optimized),
        .target(name: "Models", dependencies: ["Layers"], swiftSettings: optimized),

        // Data and distribution.
        .target(name: "DataPipeline", dependencies: ["Tensors", "CZlib"], swiftSettings: optimized),
        .target(name: "Collectives", dependencies: ["CMPI", "Tensors"], swiftSettings: optimized),

        // PS-KD: teacher table and target policies.
        .target(name: "SelfDistillation", dependencies: ["Tensors", "Collectives"], swiftSettings: optimized),

        // Training: the step, the epoch loop, checkpoints, metrics and benchmarks.
        .target(name: "Training",
                 dependencies: ["Tensors", "Layers", "Optimizers", "Models", "DataPipeline", "Collectives", "SelfDistillation"],
                 swiftSettings: optimized),

        // The HTML report of experiments (reads run directories; no network, inline SVG).
        .target(name: "Reporting", dependencies: ["Training"], swiftSettings: optimized),

        // The command line.
        .executableTarget(
            name: "pskd",
            dependencies: [
                "Tensors", "Layers", "Models", "DataPipeline", "Collectives", "Training", "Reporting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: optimized),

        // Tests.
        .target(name: "TestSupport", dependencies: ["Tensors", "Layers"], path: "Sources/TestSupport"),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "TestSupport"]),
        .testTarget(name: "LayersTests", dependencies: ["Layers", "Models", "Optimizers", "TestSupport"]),
        .testTarget(name: "OptimizersTests", dependencies: ["Optimizers", "TestSupport"]),
        .testTarget(name: "DataPipelineTests", dependencies: ["DataPipeline", "CZlib", "TestSupport"]),
        .testTarget(name: "CollectivesTests", dependencies: ["Collectives", "TestSupport"]),
        .testTarget(name: "SelfDistillationTests", dependencies: ["SelfDistillation", "Collectives", "Tensors", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Collectives", "DataPipeline", "Layers", "Tensors", "TestSupport"]),
        .testTarget(name: "ReportingTests", dependencies: ["Reporting", "Training", "TestSupport"]),
        .testTarget(name: "ClusterTests", dependencies: ["TestSupport"]),
    ]
)
