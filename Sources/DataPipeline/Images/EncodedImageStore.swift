/// The encoded (JPEG or PNG) images of one split of an image collection, addressed by global
/// sample index, read one sample at a time: nothing is decoded and no data file is read whole.
///
/// Two stores exist: `ImageFolderStore` (`DIR/SPLIT/CLASS/…` files) and `TarShardStore`
/// (`DIR/SPLIT-*.tar` in the WebDataset convention). Both build their index once, at start-up,
/// from the directory listing or the tar headers alone; the index costs at most 32 bytes per
/// sample (ImageNet's file names included).
///
/// A store is shared by the loader threads of a rank: `readEncodedBytes` may be called from
/// several threads at once.
public protocol EncodedImageStore: Sendable {
    /// The number of samples; indices are `0..<count`.
    var count: Int { get }
    /// The class of each sample, each in `0..<classNames.count`.
    var labels: [Int32] { get }
    /// The class names, in class-index order (an image folder's sorted subfolder names; a
    /// shard set's class numbers as text, unless it names them).
    var classNames: [String] { get }
    /// How many entries the index skipped because they are not images (other file types), for
    /// the start-up line.
    var skippedEntryCount: Int { get }
    /// A short description of where the split lives, for messages: `DIR/train (1 000 class folders)`.
    var summary: String { get }

    /// Reads the encoded bytes of sample `index` into the front of `buffer`, growing it when it
    /// is too small, and returns how many bytes the sample has.
    ///
    /// - Throws: `DataError` naming the file (and, for a shard, the offset and member), the
    ///   sample index and what went wrong: a file removed or unreadable since the index was
    ///   built, a shard cut short.
    func readEncodedBytes(of index: Int, into buffer: inout [UInt8]) throws(DataError) -> Int

    /// Where sample `index` is stored, for messages: a path, or
    /// `DIR/train-0003.tar, member cat/0001.jpg at byte 1 234 560`.
    func location(of index: Int) -> String

    /// The class of sample `index`, `labels[index]`: a view that computes `labels` on demand
    /// (a subset) answers it without building the whole array.
    func label(of index: Int) -> Int32
}

extension EncodedImageStore {
    public func label(of index: Int) -> Int32 { labels[index] }
}
