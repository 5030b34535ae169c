#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CHostMemory
import Synchronization

/// One window of host virtual memory, reserved and inaccessible until
/// something is mapped into it.
///
/// The window is `mmap(PROT_NONE, MAP_NORESERVE)`: it costs neither memory
/// nor swap, only address space, and nothing else in the process can be
/// placed inside it. Objects are mapped over parts of it with `MAP_FIXED`;
/// unmapping puts a fresh `PROT_NONE` reservation back, so the range stays
/// ours and any stray touch faults. The window is 2 MiB aligned (so a 2 MiB
/// run inside it can be a huge page) and released when the reservation is
/// destroyed or deinitialised.
///
/// The reservation checks ranges (alignment, inside the window, no wrap) but
/// keeps no record of what is mapped where: that is the address space's job.
public final class HostReservation: @unchecked Sendable {
    /// 64 GiB, the default window.
    public static let defaultSize: UInt64 = 64 << 30
    /// The window's alignment: one 2 MiB huge page.
    public static let alignment: UInt64 = 2 << 20
    /// The host page size (4 KiB on x86-64).
    public static let pageSize: UInt64 = 4096

    /// The window's first address.
    public let base: UInt64
    /// The window's size in bytes.
    public let size: UInt64
    private let destroyedFlag = Atomic<Bool>(false)

    /// Reserves `size` bytes (a non-zero multiple of 2 MiB) of host address space.
    public init(size: UInt64 = HostReservation.defaultSize) throws(HostMemoryError) {
        guard size > 0, size % Self.alignment == 0, size < 1 << 47 else { throw .invalidWindowSize(size) }
        // Over-reserve by one alignment unit, then trim both ends to the boundary.
        let span = Int(size + Self.alignment)
        let raw = mmap(nil, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | vmk_map_noreserve(), -1, 0)
        guard let raw, raw != MAP_FAILED else {
            throw .system(call: "mmap", errno: errno, detail: "reserving \(size) bytes of address space")
        }
        let start = UInt64(UInt(bitPattern: raw))
        let aligned = (start + Self.alignment - 1) & ~(Self.alignment - 1)
        if aligned > start { munmap(raw, Int(aligned - start)) }
        let tail = start + UInt64(span) - (aligned + size)
        if tail > 0 { munmap(UnsafeMutableRawPointer(bitPattern: UInt(aligned + size)), Int(tail)) }
        base = aligned
        self.size = size
    }

    deinit { destroy() }

    /// `[base, base + size)`.
    public var window: Range<UInt64> { base ..< base + size }

    /// Whether ``destroy()`` has run.
    public var isDestroyed: Bool { destroyedFlag.load(ordering: .acquiring) }

    /// Returns the window to the system. Idempotent; every mapping in it goes too.
    public func destroy() {
        guard !destroyedFlag.exchange(true, ordering: .acquiringAndReleasing) else { return }
        munmap(UnsafeMutableRawPointer(bitPattern: UInt(base)), Int(size))
    }

    /// A pointer to `address` (which should lie in the window).
    @inlinable
    public func pointer(_ address: UInt64) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(bitPattern: UInt(address))!
    }

    /// Refuses a range that is empty, unaligned, wraps, or leaves the window.
    public func check(_ address: UInt64, _ length: UInt64) throws(HostMemoryError) {
        guard !isDestroyed else { throw .destroyed(what: "the reservation at 0x\(String(base, radix: 16))") }
        guard length > 0 else { throw .zeroLength(address: address) }
        guard address % Self.pageSize == 0 else {
            throw .notAligned(what: "address", value: address, alignment: Self.pageSize)
        }
        guard length % Self.pageSize == 0 else {
            throw .notAligned(what: "length", value: length, alignment: Self.pageSize)
        }
        let (end, o) = address.addingReportingOverflow(length)
        guard !o else { throw .rangeWraps(address: address, length: length) }
        guard address >= base, end <= base + size else {
            throw .outsideWindow(address: address, length: length, windowBase: base, windowSize: size)
        }
    }

    /// Maps fresh anonymous memory over `[address, address + length)`:
    /// private, zero-filled on first touch, no swap reserved. With `populate`
    /// the pages are faulted in at once (the fallback where userfaultfd is
    /// not allowed).
    public func mapAnonymous(at address: UInt64, length: UInt64, protection: HostProtection,
                             populate: Bool = false) throws(HostMemoryError) {
        try check(address, length)
        let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | vmk_map_noreserve() | (populate ? vmk_map_populate() : 0)
        try fixedMap(address, length, protection, flags, -1, 0, what: "anonymous memory")
    }

    /// Maps `object` from `offset` over `[address, address + length)`, shared
    /// (writes reach the object and every other mapping of it) or private
    /// (copy-on-write). Refuses rights the object does not give and a range
    /// that reaches past the object's end.
    public func map(_ object: MemoryObject, offset: UInt64, at address: UInt64, length: UInt64,
                    protection: HostProtection, shared: Bool, populate: Bool = false) throws(HostMemoryError) {
        try check(address, length)
        try object.checkMappable(offset: offset, length: length, protection: protection, shared: shared)
        if object.kind == .anonymous {
            try mapAnonymous(at: address, length: length, protection: protection, populate: populate)
            return
        }
        let flags = (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED | (populate ? vmk_map_populate() : 0)
        try fixedMap(address, length, protection, flags, object.fd, offset, what: object.name)
    }

    /// Returns `[address, address + length)` to an inaccessible reservation:
    /// whatever was mapped there is gone (and with it any userfaultfd
    /// registration of the range).
    public func release(at address: UInt64, length: UInt64) throws(HostMemoryError) {
        try check(address, length)
        try fixedMap(address, length, .none, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | vmk_map_noreserve(), -1, 0,
                     what: "the reservation")
    }

    /// `mprotect` over a range of the window.
    public func protect(at address: UInt64, length: UInt64, protection: HostProtection) throws(HostMemoryError) {
        try check(address, length)
        guard mprotect(pointer(address), Int(length), protection.systemValue) == 0 else {
            throw .system(call: "mprotect", errno: errno,
                          detail: "of [0x\(String(address, radix: 16)), +0x\(String(length, radix: 16))) to \(protection)")
        }
    }

    /// `madvise` over a range of the window.
    public func advise(at address: UInt64, length: UInt64, advice: Int32) throws(HostMemoryError) {
        try check(address, length)
        guard madvise(pointer(address), Int(length), advice) == 0 else {
            throw .system(call: "madvise", errno: errno,
                          detail: "(\(advice)) of [0x\(String(address, radix: 16)), +0x\(String(length, radix: 16)))")
        }
    }

    /// How many pages of the range are resident (`mincore`).
    public func residentPages(at address: UInt64, length: UInt64) throws(HostMemoryError) -> UInt64 {
        try check(address, length)
        var count: UInt64 = 0
        let chunkPages = 4096
        var vec = [UInt8](repeating: 0, count: chunkPages)
        var a = address
        let end = address + length
        while a < end {
            let n = min(UInt64(chunkPages), (end - a) / Self.pageSize)
            let r = vec.withUnsafeMutableBufferPointer { mincore(pointer(a), Int(n * Self.pageSize), $0.baseAddress) }
            guard r == 0 else {
                throw .system(call: "mincore", errno: errno, detail: "of [0x\(String(a, radix: 16)), +\(n) pages)")
            }
            for i in 0..<Int(n) where vec[i] & 1 != 0 { count += 1 }
            a += n * Self.pageSize
        }
        return count
    }

    private func fixedMap(_ address: UInt64, _ length: UInt64, _ protection: HostProtection, _ flags: Int32,
                          _ fd: Int32, _ offset: UInt64, what: String) throws(HostMemoryError) {
        let r = mmap(pointer(address), Int(length), protection.systemValue, flags, fd, off_t(Int64(bitPattern: offset)))
        guard let r, r != MAP_FAILED else {
            throw .system(call: "mmap", errno: errno,
                          detail: "of \(what) at [0x\(String(address, radix: 16)), +0x\(String(length, radix: 16)))")
        }
    }
}
