#if canImport(Glibc)
import Glibc
private let systemWrite = Glibc.write
#else
import Darwin
private let systemWrite = Darwin.write
#endif

/// The few POSIX calls the image stores make, with `EINTR` retried and `errno` turned into words.
///
/// `pread` takes its offset as an argument and leaves the descriptor's position alone, so one
/// descriptor serves every loader thread at once.
enum POSIXFile {
    /// Opens `path` (NUL-terminated bytes) for reading, or returns `errno`.
    static func openForReading(_ path: UnsafePointer<CChar>) -> Result<Int32, POSIXFailure> {
        while true {
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            if descriptor >= 0 { return .success(descriptor) }
            if errno != EINTR { return .failure(POSIXFailure(errno)) }
        }
    }

    /// Opens `path` for reading, or returns `errno`.
    static func openForReading(_ path: String) -> Result<Int32, POSIXFailure> {
        path.withCString { openForReading($0) }
    }

    /// Reads up to `count` bytes at `offset` into `destination`, looping over short reads until
    /// `count` bytes or the end of the file; returns how many bytes were read.
    static func read(
        _ descriptor: Int32, into destination: UnsafeMutableRawPointer, count: Int, at offset: Int
    ) -> Result<Int, POSIXFailure> {
        var done = 0
        while done < count {
            let got = pread(descriptor, destination + done, count - done, off_t(offset + done))
            if got > 0 {
                done += got
            } else if got == 0 {
                break
            } else if errno != EINTR {
                return .failure(POSIXFailure(errno))
            }
        }
        return .success(done)
    }

    /// `read` into `buffer[0..<count]`, which must hold `count` bytes.
    static func read(_ descriptor: Int32, into buffer: inout [UInt8], count: Int, at offset: Int) -> Result<Int, POSIXFailure> {
        precondition(buffer.count >= count)
        return buffer.withUnsafeMutableBytes { read(descriptor, into: $0.baseAddress!, count: count, at: offset) }
    }

    /// The size and type of an open file.
    static func status(_ descriptor: Int32) -> Result<(size: Int, isRegular: Bool), POSIXFailure> {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return .failure(POSIXFailure(errno)) }
        return .success((Int(info.st_size), (info.st_mode & S_IFMT) == S_IFREG))
    }

    /// Writes all of `bytes` to `descriptor` at its position.
    static func write(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) -> Result<Void, POSIXFailure> {
        var done = 0
        while done < bytes.count {
            let wrote = systemWrite(descriptor, bytes.baseAddress! + done, bytes.count - done)
            if wrote > 0 {
                done += wrote
            } else if wrote < 0 && errno != EINTR {
                return .failure(POSIXFailure(errno))
            }
        }
        return .success(())
    }
}

/// A failed POSIX call's `errno`, described in words: `No such file or directory (ENOENT)`.
struct POSIXFailure: Error, CustomStringConvertible {
    let code: Int32

    init(_ code: Int32) { self.code = code }

    var description: String {
        let name: String =
            switch code {
            case ENOENT: " (ENOENT)"
            case EACCES: " (EACCES)"
            case EISDIR: " (EISDIR)"
            case ENOTDIR: " (ENOTDIR)"
            case ELOOP: " (ELOOP)"
            case EMFILE: " (EMFILE)"
            case EIO: " (EIO)"
            default: " (errno \(code))"
            }
        return String(cString: strerror(code)) + name
    }
}
