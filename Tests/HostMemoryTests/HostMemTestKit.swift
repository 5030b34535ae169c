#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import HostMemory

/// What the HostMemory tests share: reading `/proc/self/maps`, temporary
/// files, a lock that keeps these tests out of the way of the leak test in
/// HostSegmentsTests, and a little pthread lock for handler-side records.
enum HostMemTestKit {
    static let page = HostReservation.pageSize

    /// One line of `/proc/self/maps`.
    struct Mapping {
        let start: UInt64
        let end: UInt64
        let perms: String
        let path: String
    }

    static func readProcFile(_ path: String) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, 65536) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func mappings() -> [Mapping] {
        readProcFile("/proc/self/maps").split(separator: "\n").compactMap { line in
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
    static func mapping(containing address: UInt64) -> Mapping? {
        mappings().first { $0.start <= address && address < $0.end }
    }

    /// `rw-p` style permissions at `address` ("" when unmapped).
    static func perms(at address: UInt64) -> String { mapping(containing: address)?.perms ?? "" }

    /// A new file under /tmp holding `bytes`; removed by the caller.
    static func temporaryFile(_ bytes: [UInt8], tag: String = "f") -> String {
        var template = Array("/tmp/vmkit-hm-\(tag)-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        precondition(fd >= 0, "mkstemp")
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
            precondition(n > 0, "write")
            done += n
        }
        close(fd)
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Byte `i` of page `p` in the patterns the tests use.
    static func pattern(_ p: Int, _ i: Int, seed: UInt8 = 0) -> UInt8 {
        UInt8(truncatingIfNeeded: p &* 31 &+ i &* 7 &+ Int(seed))
    }

    static func patternBytes(pages: Int, seed: UInt8 = 0) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: pages * Int(page))
        for p in 0..<pages { for i in 0..<Int(page) { out[p * Int(page) + i] = pattern(p, i, seed: seed) } }
        return out
    }

    static func bytes(at address: UInt64, count: Int) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: UInt(address)), count: count))
    }

    static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

    /// The process-wide test gate shared with HostSegmentsTests (a lock on one
    /// byte of a file: separate opens conflict even within one process). Every
    /// host test holds it shared; the leak test holds it exclusively, so its
    /// before/after counts of mappings and descriptors see no other host test.
    static func gated<R>(exclusive: Bool = false, _ body: () throws -> R) rethrows -> R {
        let fd = open("/tmp/vmkit-host-tests.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o666)
        precondition(fd >= 0, "opening the test gate")
        defer { close(fd) }
        // An open-file-description lock on the byte at this process's id:
        // separate opens conflict within the process, other processes (each
        // on its own byte) never wait for this one.
        var lock = flock()
        lock.l_type = Int16(exclusive ? F_WRLCK : F_RDLCK)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = off_t(getpid())
        lock.l_len = 1
        let setLockWait: Int32 = 38  // F_OFD_SETLKW
        while fcntl(fd, setLockWait, &lock) != 0 {
            precondition(errno == EINTR, "locking the test gate: errno \(errno)")
        }
        return try body()
    }
}

/// A value guarded by a `pthread_mutex_t` (the thread sanitizer understands it).
final class HMLocked<Value>: @unchecked Sendable {
    private var value: Value
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    init(_ value: Value) {
        self.value = value
        pthread_mutex_init(mutex, nil)
    }
    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
    var get: Value { withLock { $0 } }
}
