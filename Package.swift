// swift-tools-version:6.0
// pskd: distributed data-parallel Progressive Self-Knowledge Distillation on Open MPI and OpenBLAS.
//
// Dependencies point one way, down; each target lists exactly the targets it imports:
//   pskd (CLI)        → Reporting, Training, Watchdog, DataPipeline, Collectives, Models, Layers, Tensors, Platform
//                       (+ ArgumentParser, Yams)
//   Reporting         → Training, DataPipeline
//   Training          → SelfDistillation, Collectives, DataPipeline, Models, Optimizers, Layers, Tensors, Platform
//   SelfDistillation  → Collectives, DataPipeline (the sampler's placement), Tensors
//   Watchdog          → Collectives, Platform (+ Crypto: HMAC-SHA256 of heartbeats)
//   Collectives       → Tensors, Platform, CMPI
//   DataPipeline      → Tensors, Platform, CZlib, CTurboJPEG (JPEG decoding), CSPNG (PNG decoding)
//   Models            → Layers, Tensors
//   Layers            → Tensors
//   Optimizers        → Tensors
//   Tensors           → CBLAS
//   Platform          (the monotonic Stopwatch, printError, ProcessPlacement, hostName; Glibc only)
//
// Tests: one unit-test target per module, run in-process; ExecutableTests and ClusterTests launch
// the built executable and so depend on the pskd target (building them builds pskd).
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
        .package(url: "https://github.com/apple/swift-crypto", from: "4.0.0"),
    ],
    targets: [
        // C libraries: the only place C is seen.
        .systemLibrary(
            name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        .systemLibrary(
            name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(
            name: "CTurboJPEG", path: "Sources/CTurboJPEG", pkgConfig: "libturbojpeg",
            providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(
            name: "CSPNG", path: "Sources/CSPNG", pkgConfig: "spng",
            providers: [.apt(["libspng-dev"])]),

        // The operating system: clock, standard error, CPU placement, host name.
        .target(name: "Platform", swiftSettings: optimized),

        // Numerics.
        .target(name: "Tensors", dependencies: ["CBLAS"], swiftSettings: optimized),
        .target(name: "Layers", dependencies: ["Tensors"], swiftSettings: optimized),
        .target(name: "Optimizers", dependencies: ["Tensors"], swiftSettings: optimized),
        .target(name: "Models", dependencies: ["Layers", "Tensors"], swiftSettings: optimized),

        // Data and distribution.
        .target(
            name: "DataPipeline", dependencies: ["Tensors", "Platform", "CZlib", "CTurboJPEG", "CSPNG"], swiftSettings: optimized),
        .target(name: "Collectives", dependencies: ["Tensors", "Platform", "CMPI"], swiftSettings: optimized),

        // The stall watchdog: heartbeats over UDP beside MPI, a monitor that ends a stalled job.
        // Heartbeats carry an HMAC-SHA256 (swift-crypto) keyed by a secret that only MPI carries.
        .target(
            name: "Watchdog", dependencies: ["Collectives", "Platform", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: optimized),

        // PS-KD: teacher table and target policies.
        .target(name: "SelfDistillation", dependencies: ["Tensors", "Collectives", "DataPipeline"], swiftSettings: optimized),

        // Training: the step, the epoch loop, checkpoints, metrics and benchmarks.
        .target(
            name: "Training",
            dependencies: [
                "Tensors", "Layers", "Optimizers", "Models", "DataPipeline", "Collectives", "SelfDistillation",
                "Platform",
            ],
            swiftSettings: optimized),

        // The HTML report of experiments (reads run directories; no network, inline SVG).
        .target(name: "Reporting", dependencies: ["Training", "DataPipeline"], swiftSettings: optimized),

        // The command line.
        .executableTarget(
            name: "pskd",
            dependencies: [
                "Platform", "Tensors", "Layers", "Models", "DataPipeline", "Collectives", "Watchdog", "Training", "Reporting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: optimized),

        // Tests.
        .target(name: "TestSupport", dependencies: ["Tensors", "Layers"], path: "Sources/TestSupport"),
        // Run directories written by hand, for the report's tests.
        .target(name: "RunFixtures", dependencies: ["Training", "TestSupport"], path: "Sources/RunFixtures"),
        .testTarget(name: "PlatformTests", dependencies: ["Platform"]),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "TestSupport"]),
        .testTarget(name: "LayersTests", dependencies: ["Layers", "Models", "Optimizers", "TestSupport"]),
        .testTarget(name: "OptimizersTests", dependencies: ["Optimizers", "TestSupport"]),
        .testTarget(name: "DataPipelineTests", dependencies: ["DataPipeline", "CZlib", "TestSupport"]),
        .testTarget(name: "CollectivesTests", dependencies: ["Collectives"]),
        .testTarget(name: "WatchdogTests", dependencies: ["Watchdog", "Collectives", "TestSupport"]),
        .testTarget(
            name: "SelfDistillationTests", dependencies: ["SelfDistillation", "Collectives", "DataPipeline", "Tensors", "TestSupport"]),
        .testTarget(
            name: "TrainingTests",
            dependencies: ["Training", "Collectives", "DataPipeline", "Layers", "Models", "SelfDistillation", "Tensors", "TestSupport"]),
        .testTarget(name: "ReportingTests", dependencies: ["Reporting", "Training", "RunFixtures", "TestSupport"]),
        // Tests that launch the built `pskd` executable (ExecutableRunner: alone or under mpirun;
        // ClusterTests across network-namespace nodes and in a Slurm cluster): they declare the
        // dependency on the executable target, so building them builds pskd. The unit-test
        // targets above run without it.
        .testTarget(name: "ExecutableTests", dependencies: ["pskd", "Training", "RunFixtures", "TestSupport"]),
        .testTarget(name: "ClusterTests", dependencies: ["pskd", "TestSupport"]),
    ]
)
