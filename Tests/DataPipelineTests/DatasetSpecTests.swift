import XCTest

@testable import DataPipeline

final class DatasetSpecTests: XCTestCase {
    func testRegistryListsEveryFormatOnceInHelpOrder() {
        XCTAssertEqual(DatasetSpec.names, ["fashion-mnist", "mnist", "cifar10", "cifar100", "folder", "shards", "synthetic"])
        for spec in DatasetSpec.all {
            XCTAssertEqual(spec.mean.count, spec.channels, spec.name)
            XCTAssertEqual(spec.std.count, spec.channels, spec.name)
        }
    }

    func testLookupIsCaseInsensitiveAndUnknownNamesListTheKnownOnes() throws {
        XCTAssertEqual(try DatasetSpec.named("CIFAR100").classCount, 100)
        XCTAssertEqual(try DatasetSpec.named("Fashion-MNIST").installedCopy?.package, "dataset-fashion-mnist")
        do {
            _ = try DatasetSpec.named("svhn")
            XCTFail("svhn is not registered")
        } catch {
            XCTAssertEqual(error.kind, .unknownDataset)
            XCTAssertEqual(error.expected, "one of fashion-mnist, mnist, cifar10, cifar100, folder, shards, synthetic")
        }
    }

    /// The remedy fits the data set and whether a directory was given.
    func testRemediesNameTheFilesAndTheWayToGetThem() {
        func remedy(_ spec: DatasetSpec, _ directory: String?) -> String { spec.source.remedy(for: spec, directory: directory) }
        XCTAssertTrue(remedy(.fashionMNIST, nil).hasPrefix("reinstall Debian's dataset-fashion-mnist"))
        XCTAssertTrue(remedy(.fashionMNIST, "/data").contains("(plain or .gz) in /data, or drop --data-dir"))
        XCTAssertEqual(
            remedy(.mnist, nil),
            "pass --data-dir with intact MNIST files train-images-idx3-ubyte, "
                + "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (plain or .gz)")
        XCTAssertEqual(remedy(.cifar100, "/data"), "pass --data-dir with the intact CIFAR-100 binary version (train.bin, test.bin)")
    }

    /// A source that generates its samples needs no directory: the shape issue 12's synthetic
    /// set takes.
    func testAGeneratedSourceLoadsWithoutADirectory() throws {
        struct Stripes: SampleSource {
            func samples(
                of spec: DatasetSpec, split: DatasetSplit,
                directory: String?
            ) throws(DataError) -> (pixels: [UInt8], labels: [Int32]) {
                let count = split == .train ? 6 : 2
                let labels = (0..<count).map { Int32($0 % spec.classCount) }
                let pixels = labels.flatMap { [UInt8](repeating: UInt8(40 * $0), count: spec.height * spec.width * spec.channels) }
                return (pixels, labels)
            }
            func remedy(for spec: DatasetSpec, directory: String?) -> String { "none needed" }
        }
        let spec = DatasetSpec(
            name: "stripes", title: "Stripes", height: 2, width: 3, channels: 1, classCount: 3,
            mean: [0.5], std: [0.25], standardAugmentation: .none, source: Stripes())
        let train = try spec.load(.train)
        XCTAssertEqual(train.count, 6)
        XCTAssertEqual(train.labels, [0, 1, 2, 0, 1, 2])
        XCTAssertEqual(Array(train.pixels[6..<12]), [UInt8](repeating: 40, count: 6))
        XCTAssertEqual([train.height, train.width, train.channels, train.classCount], [2, 3, 1, 3])
        XCTAssertEqual(try spec.load(.test).count, 2)
    }
}
