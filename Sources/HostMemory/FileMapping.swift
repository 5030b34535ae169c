#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CHostMemory

/// A shared mapping of `[offset, offset + length)` of a file descriptor (a
/// file, a memfd, a device such as a KVM vCPU),
/// outside any reservation: reads see the file's bytes, and in a read-write
/// mapping writes reach the file and every other mapping of it. No swap is
/// reserved (`MAP_NORESERVE`). Unmapped when the last reference goes; the
/// descriptor stays the caller's, and may be closed while the mapping lives.
///
/// Callers keep ``base`` and compute addresses themselves. Keep the object
/// alive for as long as any pointer into it is used.
public final class FileMapping: @unchecked Sendable {
    /// What the mapping lets its user do.
    public enum Access: Hashable, Sendable {
        case readOnly
        case readWrite
    }

    /// The first byte of the mapping (file offset ``offset``).
    public let base: UnsafeRawPointer
    /// ``base`` for writing: nil for a read-only mapping, where a write would
    /// fault, so that the type says so rather than a signal.
    public let writableBase: UnsafeMutableRawPointer?
    /// Bytes mapped.
    public let length: UInt64
    /// Where in the file the mapping starts (page aligned).
    public let offset: UInt64
    public let access: Access

    /// Maps `[offset, offset + length)` of `fd` shared. A regular file (or
    /// memfd) that ends before `offset + length` is refused: a touch past its
    /// end would raise `SIGBUS`.
    public init(fd: Int32, length: UInt64, offset: UInt64 = 0, access: Access) throws(HostMemoryError) {
        guard length > 0 else { throw .invalidArgument(name: "length", value: length, reason: "a mapping of no bytes") }
        guard length <= UInt64(Int.max) - (HostReservation.pageSize - 1) else {
            throw .invalidArgument(name: "length", value: length, reason: "more bytes than an address space holds")
        }
        guard offset % HostReservation.pageSize == 0 else {
            throw .notAligned(what: "file offset", value: offset, alignment: HostReservation.pageSize)
        }
        guard offset <= UInt64(Int64.max) - length else { throw .rangeWraps(address: offset, length: length) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .system(call: "fstat", errno: errno, detail: "of fd \(fd)") }
        // Only a regular file's size bounds the mapping; a device's st_size says nothing.
        if st.st_mode & S_IFMT == S_IFREG, UInt64(st.st_size) < offset + length {
            throw .objectTooShort(object: "fd \(fd)", objectSize: UInt64(st.st_size), offset: offset, length: length)
        }
        let protection = access == .readWrite ? PROT_READ | PROT_WRITE : PROT_READ
        let r = mmap(nil, Int(length), protection, MAP_SHARED | vmk_map_noreserve(), fd, off_t(offset))
        guard let r, r != MAP_FAILED else {
            throw .system(call: "mmap", errno: errno,
                          detail: "of [0x\(String(offset, radix: 16)), +0x\(String(length, radix: 16))) of fd \(fd) \(access)")
        }
        base = UnsafeRawPointer(r)
        writableBase = access == .readWrite ? r : nil
        self.length = length
        self.offset = offset
        self.access = access
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), Int(length)) }
}
