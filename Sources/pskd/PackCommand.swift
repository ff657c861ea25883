import ArgumentParser
import DataPipeline

/// `pskd pack`: an image folder (DIR/train/CLASS/…, DIR/val/CLASS/… or DIR/test/CLASS/…) packed
/// into WebDataset-style tar shards for `TarShardStore`.
struct PackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pack",
        abstract: "Pack an image folder into tar shards (OUT/train-000000.tar, …, OUT/val-000000.tar or test-…, classes.txt).",
        discussion: """
            The folder holds train/CLASS/NAME.jpg (or .jpeg, .png, in any letter case, at any depth inside \
            the class folder) and val/CLASS/… or test/CLASS/…; classes are the train folder's subfolders \
            in byte order. Each sample becomes two members, KEY.EXT with the file's very bytes and KEY.cls \
            with its class number, KEY being its index zero-padded, in index order. No image is decoded. \
            OUT must be a new or empty folder.
            """)

    @Option(help: "The image folder (holding train/ and val/ or test/).") var from: String
    @Option(help: "The folder to write the shards in (new or empty).") var to: String
    @Option(name: .customLong("shard-size"), help: "The largest shard: bytes, or with KB, MB or GB (powers of 1024).")
    var shardSize = "1GB"

    func validate() throws {
        guard !from.isEmpty, !to.isEmpty else { throw ValidationError("--from and --to take a folder each") }
        guard ShardPacker.byteCount(shardSize) != nil else {
            throw ValidationError("--shard-size takes a positive size such as 1GB, 256MB, 64KB or 1048576, not '\(shardSize)'")
        }
    }

    func run() throws {
        let report = try ShardPacker(shardSize: ShardPacker.byteCount(shardSize)!).pack(from: from, to: to)
        print("pskd pack: \(from) → \(to)")
        print(report.description)
    }
}
