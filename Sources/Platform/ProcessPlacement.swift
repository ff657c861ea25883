/// Where this process runs: its CPU binding and how many ranks share its node, from which
/// the number of BLAS threads per rank follows.
public enum ProcessPlacement {
    /// The CPUs this process may run on, as the kernel lists them (`0-1`, `3`), or nil.
    public static var allowedCPUList: String? {
        guard let status = readText("/proc/self/status") else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("Cpus_allowed_list:") {
            return line.dropFirst("Cpus_allowed_list:".count).trimmingSpaces()
        }
        return nil
    }

    /// The number of CPUs this process may run on.
    public static var allowedCPUCount: Int {
        guard let list = allowedCPUList else { return onlineCPUCount }
        let count = list.split(separator: ",").reduce(0) { total, range in
            let bounds = range.split(separator: "-").compactMap { Int($0) }
            return total + (bounds.count == 2 ? bounds[1] - bounds[0] + 1 : 1)
        }
        return max(1, count)
    }

    /// The number of CPUs online on this node.
    public static var onlineCPUCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// The number of ranks of this job on this node (1 outside MPI).
    public static var ranksOnNode: Int {
        guard let text = getenv("OMPI_COMM_WORLD_LOCAL_SIZE"), let count = Int(String(cString: text)) else { return 1 }
        return max(1, count)
    }

    /// BLAS threads for this rank: `requested` if given, else `OPENBLAS_NUM_THREADS`, else the
    /// CPUs this rank is bound to, shared fairly when it is not bound (all CPUs allowed).
    public static func blasThreads(requested: Int?) -> Int {
        if let requested { return max(1, requested) }
        if let text = getenv("OPENBLAS_NUM_THREADS"), let count = Int(String(cString: text)), count > 0 { return count }
        let allowed = allowedCPUCount
        if allowed >= onlineCPUCount { return max(1, allowed / ranksOnNode) }
        return allowed
    }

    private static func readText(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
