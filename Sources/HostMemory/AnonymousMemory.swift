#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CHostMemory

/// A private, zero-filled, read-write mapping of anonymous memory, with no
/// swap reserved: it costs address space until a page is first written, so a
/// bitmap or frame pool can be sized for the largest case and paid for by
/// what is used. Unmapped when the last reference goes.
///
/// Callers keep ``base`` and compute addresses themselves: reaching a byte
/// is an addition, with no lookup, lock or reference count on the way. Keep
/// the object alive for as long as any pointer into it is used.
public final class AnonymousMemory: @unchecked Sendable {
    /// The first byte (page aligned).
    public let base: UnsafeMutableRawPointer
    /// The bytes asked for; the mapping itself ends at the next page boundary.
    public let length: UInt64

    /// Maps `length` bytes (not zero; rounded up to whole pages by the host).
    public init(length: UInt64) throws(HostMemoryError) {
        guard length > 0 else {
            throw .invalidArgument(name: "length", value: length, reason: "anonymous memory of no bytes")
        }
        // Below this the page round-up cannot overflow Int; above it no host has the address space anyway.
        guard length <= UInt64(Int.max) - (HostReservation.pageSize - 1) else {
            throw .invalidArgument(name: "length", value: length, reason: "more bytes than an address space holds")
        }
        let r = mmap(nil, Int(length), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | vmk_map_noreserve(), -1, 0)
        guard let r, r != MAP_FAILED else {
            throw .system(call: "mmap", errno: errno, detail: "of \(length) bytes of anonymous memory")
        }
        base = r
        self.length = length
    }

    deinit { munmap(base, Int(length)) }

    /// Gives the pages of `[offset, offset + length)` back to the host
    /// (`MADV_DONTNEED`): they cost nothing again until written, and read as
    /// zeros. The range is whole pages — `offset` page aligned, `length` a
    /// page multiple unless the range runs to the end — because the host
    /// discards whole pages and would otherwise take bytes past the range.
    public func discard(offset: UInt64, length: UInt64) throws(HostMemoryError) {
        let page = HostReservation.pageSize
        guard length > 0 else { throw .zeroLength(address: offset) }
        guard offset % page == 0 else { throw .notAligned(what: "offset", value: offset, alignment: page) }
        let (end, wraps) = offset.addingReportingOverflow(length)
        guard !wraps else { throw .rangeWraps(address: offset, length: length) }
        // Offsets, not addresses: the window named is the mapping's own [0, length).
        guard end <= self.length else {
            throw .outsideWindow(address: offset, length: length, windowBase: 0, windowSize: self.length)
        }
        guard length % page == 0 || end == self.length else {
            throw .notAligned(what: "length", value: length, alignment: page)
        }
        guard madvise(base + Int(offset), Int(length), MADV_DONTNEED) == 0 else {
            throw .system(call: "madvise", errno: errno,
                          detail: "(MADV_DONTNEED) of [0x\(String(offset, radix: 16)), +0x\(String(length, radix: 16))) of anonymous memory")
        }
    }
}
