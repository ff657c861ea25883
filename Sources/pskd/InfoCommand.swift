import ArgumentParser
import Collectives
import DataPipeline
import Platform
import Tensors
import Training

#if canImport(Glibc)
import Glibc
#endif

/// `pskd info`: versions, threads and placement of every rank.
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Print the Open MPI, OpenBLAS and image-codec versions, BLAS threads, each rank's CPU binding and the build.")

    @OptionGroup var threads: ThreadsOption

    /// The range of `pskd train --threads` (`TrainSetting.all`): 0 used to become 1 silently.
    func validate() throws { _ = try threads.value() }

    func run() throws {
        try withCommunicator("info") { communicator in
            BLAS.threads = ProcessPlacement.blasThreads(requested: try threads.value())
            if communicator.isRoot { print(commonReport(ranks: communicator.size)) }
            for rank in 0..<communicator.size {
                if rank == communicator.rank { print(rankReport(communicator)); flushOutput() }
                try communicator.barrier()
            }
        }
    }

    private func commonReport(ranks: Int) -> String {
        """
        pskd \(PSKD.configuration.version)
        build:      \(BuildInfo.description)
        Open MPI:   \(MPICommunicator.libraryVersion)
        OpenBLAS:   \(BLAS.configuration)\(BLAS.isSequentialBuild ? " (sequential build: products run one at a time)" : "")
        BLAS core:  \(BLAS.coreName)
        images:     \(ImageDecoder.libraryVersions.map { "\($0.name) \($0.version)" }.joined(separator: ", "))
        ranks:      \(ranks)
        """
    }

    private func rankReport(_ communicator: any Communicator) -> String {
        let node = (communicator as? MPICommunicator).flatMap { try? $0.processorName() } ?? hostName()
        return "rank \(communicator.rank)/\(communicator.size): node \(node), pid \(getpid()), "
            + "CPUs \(ProcessPlacement.allowedCPUList ?? "?") (\(ProcessPlacement.allowedCPUCount) of \(ProcessPlacement.onlineCPUCount)), "
            + "threads \(BLAS.threads) (OpenBLAS single-threaded, products split by pskd)"
    }
}
