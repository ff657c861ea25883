#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// This machine's host name, as `gethostname` reports it.
public func hostName() -> String {
    var name = [CChar](repeating: 0, count: 256)
    gethostname(&name, name.count)
    return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
