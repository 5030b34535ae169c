#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import HostMemory
import HostTestSupport

/// What the HostMemory tests share: reading `/proc/self/maps`, temporary
/// files, a lock that keeps these tests out of the way of the leak test in
/// HostSegmentsTests, and a little pthread lock for handler-side records.
enum HostMemTestKit {
    static let page = HostReservation.pageSize


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

    /// The host tests' process-wide gate (``HostTestGate``).
    static func gated<R>(exclusive: Bool = false, _ body: () throws -> R) rethrows -> R {
        try HostTestGate.run(exclusive: exclusive, body)
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
