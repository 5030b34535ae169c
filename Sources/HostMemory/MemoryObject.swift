#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CHostMemory

/// Something host memory can be mapped from: anonymous memory, a `memfd`
/// (shared memory with a file descriptor another process can map, sealable),
/// or a regular file.
///
/// The object knows what rights it can give (``allowedProtection(shared:)``)
/// and its size, so that a mapping asking for more, or reaching past its
/// end, is refused with a typed error before `mmap` sees it. It owns its
/// descriptor and closes it when deinitialised.
public final class MemoryObject: @unchecked Sendable {
    public enum Kind: Hashable, Sendable {
        case anonymous
        case memfd
        case file
    }

    /// File seals (`F_SEAL_*`).
    public struct Seals: OptionSet, Hashable, Sendable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        public static let seal = Seals(rawValue: 0x01)
        public static let shrink = Seals(rawValue: 0x02)
        public static let grow = Seals(rawValue: 0x04)
        public static let write = Seals(rawValue: 0x08)
        public static let futureWrite = Seals(rawValue: 0x10)
        public static let exec = Seals(rawValue: 0x20)
    }

    public let kind: Kind
    /// A name for messages: `memfd "guest-rom"`, `file /tmp/x`, `anonymous memory`.
    public let name: String
    /// The descriptor (-1 for anonymous memory).
    public let fd: Int32
    /// Whether the descriptor was opened for writing.
    public let writable: Bool
    /// Whether the object may be mapped executable.
    public let executable: Bool
    private let lock = HostLock()
    private var _size: UInt64

    private init(kind: Kind, name: String, fd: Int32, size: UInt64, writable: Bool, executable: Bool) {
        self.kind = kind
        self.name = name
        self.fd = fd
        self._size = size
        self.writable = writable
        self.executable = executable
    }

    deinit { if fd >= 0 { close(fd) } }

    /// The object's size in bytes (a file's size when it was opened or last resized).
    public var size: UInt64 { lock.withLock { _size } }

    /// Anonymous memory of `size` bytes (no descriptor).
    public static func anonymous(size: UInt64) -> MemoryObject {
        MemoryObject(kind: .anonymous, name: "anonymous memory", fd: -1, size: size, writable: true, executable: true)
    }

    /// A new `memfd` of `size` bytes. Without `executable` it is made with
    /// `MFD_NOEXEC_SEAL` where the kernel has it, and exec mappings are refused
    /// either way. With `hugePages` it is backed by 2 MiB pages (`MFD_HUGETLB`;
    /// fails where the host has none reserved).
    public static func memfd(name: String, size: UInt64, sealable: Bool = true, executable: Bool = false,
                             hugePages: Bool = false) throws(HostMemoryError) -> MemoryObject {
        var flags = UInt32(VMK_MFD_CLOEXEC)
        if sealable { flags |= UInt32(VMK_MFD_ALLOW_SEALING) }
        if hugePages { flags |= UInt32(VMK_MFD_HUGETLB) }
        var fd = vmk_memfd_create(name, flags | UInt32(executable ? VMK_MFD_EXEC : VMK_MFD_NOEXEC_SEAL))
        if fd == -EINVAL {
            // Kernels before 6.3 know neither MFD_EXEC nor MFD_NOEXEC_SEAL.
            fd = vmk_memfd_create(name, flags)
        }
        guard fd >= 0 else { throw .system(call: "memfd_create", errno: -fd, detail: "of \"\(name)\"") }
        // MFD_NOEXEC_SEAL makes the memfd sealable whatever was asked: seal the seals.
        if !sealable { _ = vmk_add_seals(fd, Int32(VMK_F_SEAL_SEAL)) }
        let object = MemoryObject(kind: .memfd, name: "memfd \"\(name)\"", fd: fd, size: 0, writable: true,
                                  executable: executable)
        try object.resize(to: size)
        return object
    }

    /// Opens a regular file; `writable` opens it read-write (needed for shared
    /// writable mappings).
    public static func file(path: String, writable: Bool = false) throws(HostMemoryError) -> MemoryObject {
        let fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC)
        guard fd >= 0 else { throw .system(call: "open", errno: errno, detail: "of \(path)") }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw .system(call: "fstat", errno: e, detail: "of \(path)")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw .invalidArgument(name: "path \(path) mode", value: UInt64(st.st_mode), reason: "not a regular file")
        }
        return MemoryObject(kind: .file, name: "file \(path)", fd: fd, size: UInt64(st.st_size),
                            writable: writable, executable: true)
    }

    /// The rights a mapping of this object can have. A private mapping may
    /// always write (its writes are copies); a shared one only through a
    /// writable descriptor not sealed against writes. Exec needs `executable`.
    public func allowedProtection(shared: Bool) -> HostProtection {
        var p: HostProtection = [.read]
        if kind == .anonymous || !shared { p.insert(.write) }
        else if writable && !sealsOrEmpty.contains(.write) && !sealsOrEmpty.contains(.futureWrite) { p.insert(.write) }
        if executable { p.insert(.execute) }
        return p
    }

    /// Refuses a mapping that asks for more than ``allowedProtection(shared:)``
    /// or reaches past the object's end.
    public func checkMappable(offset: UInt64, length: UInt64, protection: HostProtection,
                              shared: Bool) throws(HostMemoryError) {
        let allowed = allowedProtection(shared: shared)
        guard protection.isSubset(of: allowed) else {
            throw .protectionExceedsObject(requested: protection, allowed: allowed, object: name)
        }
        guard offset % HostReservation.pageSize == 0 else {
            throw .notAligned(what: "offset in \(name)", value: offset, alignment: HostReservation.pageSize)
        }
        guard kind != .anonymous else { return }
        let (end, o) = offset.addingReportingOverflow(length)
        let size = self.size
        guard !o, end <= size else {
            throw .objectTooShort(object: name, objectSize: size, offset: offset, length: length)
        }
    }

    /// Sets the size (`ftruncate`).
    public func resize(to newSize: UInt64) throws(HostMemoryError) {
        guard kind != .anonymous else {
            lock.withLock { _size = newSize }
            return
        }
        guard newSize <= UInt64(Int64.max) else {
            throw .invalidArgument(name: "size", value: newSize, reason: "larger than a file can be")
        }
        guard ftruncate(fd, off_t(newSize)) == 0 else {
            throw .system(call: "ftruncate", errno: errno, detail: "of \(name) to \(newSize) bytes")
        }
        lock.withLock { _size = newSize }
    }

    /// Adds seals (a `memfd` made `sealable`).
    public func seal(_ seals: Seals) throws(HostMemoryError) {
        let r = vmk_add_seals(fd, seals.rawValue)
        guard r == 0 else { throw .system(call: "fcntl(F_ADD_SEALS)", errno: -r, detail: "of \(name)") }
    }

    /// The seals in force (`F_GET_SEALS`).
    public func seals() throws(HostMemoryError) -> Seals {
        let r = vmk_get_seals(fd)
        guard r >= 0 else { throw .system(call: "fcntl(F_GET_SEALS)", errno: -r, detail: "of \(name)") }
        return Seals(rawValue: r)
    }

    private var sealsOrEmpty: Seals { kind == .memfd ? ((try? seals()) ?? []) : [] }

    /// Refuses a byte range that a file offset (`off_t`) cannot reach.
    private static func checkFileRange(_ offset: UInt64, _ count: Int) throws(HostMemoryError) {
        guard offset <= UInt64(Int64.max) - UInt64(count) else {
            throw .invalidArgument(name: "offset", value: offset, reason: "\(count) bytes from there pass the largest file offset")
        }
    }

    /// Reads `count` bytes at `offset` (`pread`), for checks and copies.
    public func read(offset: UInt64, count: Int) throws(HostMemoryError) -> [UInt8] {
        guard count >= 0 else {
            throw .invalidArgument(name: "count", value: UInt64(bitPattern: Int64(count)), reason: "must not be negative")
        }
        try Self.checkFileRange(offset, count)
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                if n == 0 { break }
                throw .system(call: "pread", errno: errno, detail: "of \(name) at \(offset)")
            }
            done += n
        }
        return Array(out[0..<done])
    }

    /// Writes `bytes` at `offset` (`pwrite`).
    public func write(_ bytes: [UInt8], offset: UInt64) throws(HostMemoryError) {
        try Self.checkFileRange(offset, bytes.count)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .system(call: "pwrite", errno: errno, detail: "of \(name) at \(offset)") }
            done += n
        }
        if offset + UInt64(bytes.count) > size { lock.withLock { _size = max(_size, offset + UInt64(bytes.count)) } }
    }
}
