import Foundation

/// Reads and decodes every image of a collection on several threads and lists every one that
/// fails, with the reason: `pskd data check`.
public enum ImageCheck {
    /// One image that could not be read or decoded.
    public struct Failure: Sendable {
        /// The sample's global index in its split.
        public let index: Int
        /// Where the sample is stored.
        public let location: String
        /// Why it failed.
        public let error: DataError
    }

    /// The outcome of checking one split.
    public struct Report: Sendable {
        public let checked: Int
        /// The failures in sample-index order.
        public let failures: [Failure]
        public let seconds: Double
    }

    /// Decodes every sample of `store` on `threads` threads; `progress` is called now and then
    /// (from one thread at a time) with the number of samples done.
    public static func run(_ store: any EncodedImageStore, threads: Int, progress: ((Int) -> Void)? = nil) -> Report {
        let pool = LoaderPool(threadCount: threads)
        let lock = NSLock()
        var failures: [Failure] = []
        var done = 0
        let started = Date()
        let streamed = StreamedImages(store: store, geometry: .fixed(width: 0, height: 0))
        let blockSize = 1024
        for blockStart in stride(from: 0, to: store.count, by: blockSize) {
            let rows = min(blockSize, store.count - blockStart)
            try? pool.run(rows: rows) { (row, scratch) throws(DataError) in
                let index = blockStart + row
                do throws(DataError) {
                    try scratch.decode(sample: index, of: streamed)
                } catch {
                    lock.lock()
                    failures.append(Failure(index: index, location: store.location(of: index), error: error))
                    lock.unlock()
                }
            }
            done += rows
            progress?(done)
        }
        return Report(
            checked: store.count, failures: failures.sorted { $0.index < $1.index }, seconds: Date().timeIntervalSince(started))
    }
}
