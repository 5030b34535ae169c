#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// What the host-memory test targets share about the process they run in:
/// its mappings, read from `/proc/self/maps` with plain `open` and `read`.
public enum ProcessMaps {
    /// One line of `/proc/self/maps`.
    public struct Mapping: Hashable, Sendable {
        public let start: UInt64
        public let end: UInt64
        public let perms: String
        public let path: String
    }

    /// The whole of a `/proc` file ("" when it cannot be opened).
    public static func read(_ path: String) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, 65536) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The lines of `/proc/self/maps`.
    public static func lines() -> [String] {
        read("/proc/self/maps").split(separator: "\n").map(String.init)
    }

    /// The process's mappings, in address order.
    public static func mappings() -> [Mapping] {
        read("/proc/self/maps").split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count >= 5 else { return nil }
            let range = fields[0].split(separator: "-")
            guard range.count == 2, let s = UInt64(range[0], radix: 16), let e = UInt64(range[1], radix: 16) else {
                return nil
            }
            let path = fields.count > 5 ? String(fields[5]).trimmingCharacters(in: .whitespaces) : ""
            return Mapping(start: s, end: e, perms: String(fields[1]), path: path)
        }
    }

    /// The mapping holding `address`, if any.
    public static func mapping(containing address: UInt64) -> Mapping? {
        mappings().first { $0.start <= address && address < $0.end }
    }

    /// `rw-p` style permissions at `address` ("" when unmapped).
    public static func perms(at address: UInt64) -> String { mapping(containing: address)?.perms ?? "" }
}
