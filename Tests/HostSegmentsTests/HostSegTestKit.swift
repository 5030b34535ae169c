#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import AddressSpace
import HostMemory
import HostTestSupport
@testable import HostSegments

/// What the HostSegments tests in the files named Host*Tests.swift by this
/// helper share (distinct names, so as not to meet other files' helpers).
enum HostSegTestKit {
    static let page = HostReservation.pageSize

    // MARK: The process


    /// `/proc/self/fd` entries and what they point at.
    static func openDescriptors() -> [String] {
        guard let dir = opendir("/proc/self/fd") else { return [] }
        defer { closedir(dir) }
        let own = dirfd(dir)
        var out: [String] = []
        while let e = readdir(dir) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let n = Int32(name), n != own else { continue }
            var buf = [CChar](repeating: 0, count: 512)
            let len = readlink("/proc/self/fd/\(name)", &buf, 511)
            out.append("\(name) -> " + (len > 0 ? String(decoding: buf[0..<len].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"))
        }
        return out.sorted()
    }

    // MARK: Objects

    static func pattern(_ offset: Int, seed: UInt8) -> UInt8 {
        let page = offset >> 12
        return UInt8(truncatingIfNeeded: (offset & 4095) &* 7 &+ page &* 31 &+ Int(seed) &+ (page >> 8))
    }

    static func patternBytes(count: Int, seed: UInt8) -> [UInt8] {
        (0..<count).map { pattern($0, seed: seed) }
    }

    /// A new file under /tmp holding `bytes`, opened as a memory object; the
    /// path is unlinked when the object is created (the descriptor keeps it).
    static func file(_ bytes: [UInt8], writable: Bool = false, keepPath: Bool = false,
                     tag: String = "f") throws -> (object: MemoryObject, path: String) {
        var template = Array("/tmp/vmkit-hs-\(tag)-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        precondition(fd >= 0, "mkstemp")
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
            precondition(n > 0, "write")
            done += n
        }
        close(fd)
        let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let object = try MemoryObject.file(path: path, writable: writable)
        if !keepPath { unlink(path) }
        return (object, path)
    }

    /// A memfd holding `bytes`.
    static func memfd(_ bytes: [UInt8], name: String = "vmk-hs") throws -> MemoryObject {
        let m = try MemoryObject.memfd(name: name, size: UInt64(bytes.count))
        try m.write(bytes, offset: 0)
        return m
    }

    /// A memfd of `size` bytes whose 8-byte words name their own offset
    /// (mixed with `seed`), written a MiB at a time: cheap to make, and any
    /// misplaced page shows.
    static func wordMemfd(size: UInt64, seed: UInt64) throws -> MemoryObject {
        let m = try MemoryObject.memfd(name: "vmk-words", size: size)
        var chunk = [UInt64](repeating: 0, count: 1 << 17)
        var offset: UInt64 = 0
        while offset < size {
            let words = Int(min(UInt64(chunk.count), (size - offset) / 8))
            chunk.withUnsafeMutableBufferPointer { b in
                for i in 0..<words { b[i] = word(offset + UInt64(i) * 8, seed: seed) }
            }
            let n = chunk.withUnsafeBytes { pwrite(m.fd, $0.baseAddress, words * 8, off_t(offset)) }
            precondition(n == words * 8, "pwrite")
            offset += UInt64(words) * 8
        }
        return m
    }

    @inline(__always)
    static func word(_ offset: UInt64, seed: UInt64) -> UInt64 { (offset &* 0x9E37_79B9_7F4A_7C15) ^ seed }

    // MARK: Memory

    static func bytes(at address: UInt64, count: Int) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: UInt(address)), count: count))
    }

    static func load(_ address: UInt64) -> UInt8 {
        UnsafeRawPointer(bitPattern: UInt(address))!.load(as: UInt8.self)
    }

    static func store(_ address: UInt64, _ value: UInt8) {
        UnsafeMutableRawPointer(bitPattern: UInt(address))!.storeBytes(of: value, as: UInt8.self)
    }

    /// `memcmp` of `count` bytes at `address` with `expected`.
    static func equal(_ address: UInt64, _ expected: UnsafeRawPointer, _ count: Int) -> Bool {
        memcmp(UnsafeRawPointer(bitPattern: UInt(address))!, expected, count) == 0
    }

    /// Faults `[address, +count)` through `read(2)` from /dev/zero: the
    /// bytes or errno (EFAULT where nothing accessible is mapped), never a signal.
    static func readZero(into address: UInt64, count: Int) -> (Int, Int32) {
        let fd = open("/dev/zero", O_RDONLY | O_CLOEXEC)
        defer { close(fd) }
        let n = read(fd, UnsafeMutableRawPointer(bitPattern: UInt(address)), count)
        return (n, n < 0 ? errno : 0)
    }

    /// Reads `[address, +count)` (at most 64 KiB) through `write(2)` into a
    /// pipe: the bytes or errno (EFAULT where nothing readable is mapped),
    /// never a signal.
    static func readVia(_ address: UInt64, count: Int) -> (Int, Int32) {
        var p: [Int32] = [0, 0]
        guard pipe(&p) == 0 else { return (-1, errno) }
        defer { close(p[0]); close(p[1]) }
        let n = write(p[1], UnsafeRawPointer(bitPattern: UInt(address)), count)
        return (n, n < 0 ? errno : 0)
    }

    static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

    static func driver(_ s: Segment) -> HostSegmentDriver { s.driver as! HostSegmentDriver }

    /// Whether the long versions of the tests were asked for (VMKIT_SOAK=1).
    static let soak = ProcessInfo.processInfo.environment["VMKIT_SOAK"] == "1"

    /// Whether the address sanitizer runs in this process (its runtime
    /// defines `__asan_init`). Its allocator maps and unmaps memory of its
    /// own as it goes, so the process's mapping counts say nothing of ours.
    static let underAddressSanitizer: Bool = {
        guard let process = dlopen(nil, RTLD_NOW) else { return false }
        return dlsym(process, "__asan_init") != nil
    }()

    // MARK: Process gate

    /// The host tests' process-wide gate (``HostTestGate``).
    static func gated<R>(exclusive: Bool = false, _ body: () throws -> R) rethrows -> R {
        try HostTestGate.run(exclusive: exclusive, body)
    }

    // MARK: Threads

    /// Starts a pthread running `body`.
    static func thread(_ body: @escaping @Sendable () -> Void) -> pthread_t {
        final class Job { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
        var t = pthread_t()
        let r = pthread_create(&t, nil, { raw in
            Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, Unmanaged.passRetained(Job(body)).toOpaque())
        precondition(r == 0, "pthread_create")
        return t
    }

    /// Runs `body` with the thread sanitizer ignoring the calling thread's
    /// memory accesses (its dynamic annotations, where the sanitizer is
    /// linked in; plainly otherwise). For threads whose only job is to make
    /// the kernel touch memory that another thread remaps on purpose;
    /// everything the library does stays checked.
    static func tsanIgnoringAccesses(_ body: () -> Void) {
        guard let a = tsanAnnotations else { return body() }
        a.readsBegin(nil, 0)
        a.writesBegin(nil, 0)
        body()
        a.writesEnd(nil, 0)
        a.readsEnd(nil, 0)
    }

    typealias TSanAnnotation = @convention(c) (UnsafePointer<CChar>?, Int32) -> Void
    static let tsanAnnotations: (readsBegin: TSanAnnotation, writesBegin: TSanAnnotation, writesEnd: TSanAnnotation,
                                 readsEnd: TSanAnnotation)? = {
        let names = ["AnnotateIgnoreReadsBegin", "AnnotateIgnoreWritesBegin", "AnnotateIgnoreWritesEnd", "AnnotateIgnoreReadsEnd"]
        let found = names.compactMap { dlsym(nil, $0) }
        guard found.count == 4 else { return nil }
        let f = found.map { unsafeBitCast($0, to: TSanAnnotation.self) }
        return (f[0], f[1], f[2], f[3])
    }()
}

/// A value guarded by a `pthread_mutex_t` (the thread sanitizer understands it).
final class HSLocked<Value>: @unchecked Sendable {
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
