import Foundation

/// The threads that prepare one rank's streamed samples (`--loader-threads`): for each batch,
/// every thread takes rows from a shared counter and reads, decodes and augments them with its
/// own `SampleScratch`. The thread that asks for a batch is one of them, so one loader thread
/// means no extra thread at all.
///
/// Which thread prepares a row never changes the row's bytes (a sample's augmentation is keyed by
/// its index alone), so any thread count gives the same batches. If rows fail, the error of the
/// lowest failing row is thrown, so the message does not depend on the thread count either.
final class LoaderPool: @unchecked Sendable {
    /// Threads preparing rows, the caller included.
    let threadCount: Int
    private let scratches: [SampleScratch]
    private let condition = NSCondition()
    private var job: Job?
    private var generation = 0
    private var busyHelpers = 0
    private var shuttingDown = false
    private var helpersRunning = 0

    /// One batch's rows being prepared.
    private final class Job {
        let rows: Int
        /// The caller's closure while the job runs; cleared before `run` returns, since the
        /// closure does not escape `run` (helpers may hold the job a moment longer).
        var body: ((Int, SampleScratch) throws(DataError) -> Void)?
        var nextRow = 0
        var failure: (row: Int, error: DataError)?

        init(rows: Int, body: @escaping (Int, SampleScratch) throws(DataError) -> Void) {
            (self.rows, self.body) = (rows, body)
        }
    }

    /// A pool of `threadCount` threads (at least 1), the caller of `run` being the first.
    init(threadCount: Int) {
        precondition(threadCount >= 1, "a loader needs at least one thread, got \(threadCount)")
        self.threadCount = threadCount
        scratches = (0..<threadCount).map { _ in SampleScratch() }
        for helper in 1..<threadCount {
            helpersRunning += 1
            let thread = Thread { [unowned self] in self.helperLoop(scratch: self.scratches[helper]) }
            thread.name = "pskd-loader-\(helper)"
            thread.start()
        }
    }

    deinit { shutDown() }

    /// Calls `body(row, scratch)` for every row in `0..<rows` on the pool's threads and returns
    /// when all are done.
    ///
    /// - Throws: the `DataError` of the lowest row that failed; the other rows still complete.
    func run(rows: Int, _ body: (Int, SampleScratch) throws(DataError) -> Void) throws(DataError) {
        if threadCount == 1 {
            for row in 0..<rows { try body(row, scratches[0]) }
            return
        }
        let failure: (row: Int, error: DataError)? = withoutActuallyEscaping(body) { body in
            let job = Job(rows: rows, body: body)
            condition.lock()
            self.job = job
            generation += 1
            busyHelpers = threadCount - 1
            condition.broadcast()
            condition.unlock()
            work(on: job, scratch: scratches[0])
            condition.lock()
            while busyHelpers > 0 { condition.wait() }
            self.job = nil
            job.body = nil
            condition.unlock()
            return job.failure
        }
        if let failure { throw failure.error }
    }

    /// Takes rows of `job` until none is left.
    private func work(on job: Job, scratch: SampleScratch) {
        while true {
            condition.lock()
            let row = job.nextRow
            job.nextRow += 1
            condition.unlock()
            guard row < job.rows, let body = job.body else { return }
            do throws(DataError) {
                try body(row, scratch)
            } catch {
                condition.lock()
                if job.failure.map({ row < $0.row }) ?? true { job.failure = (row, error) }
                condition.unlock()
            }
        }
    }

    private func helperLoop(scratch: SampleScratch) {
        var seen = 0
        while true {
            condition.lock()
            while generation == seen && !shuttingDown { condition.wait() }
            if shuttingDown {
                helpersRunning -= 1
                condition.broadcast()
                condition.unlock()
                return
            }
            seen = generation
            let job = self.job
            condition.unlock()
            if let job { work(on: job, scratch: scratch) }
            condition.lock()
            busyHelpers -= 1
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Ends the helper threads and waits for them to exit.
    private func shutDown() {
        condition.lock()
        shuttingDown = true
        condition.broadcast()
        while helpersRunning > 0 { condition.wait() }
        condition.unlock()
    }
}
