#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import AddressSpace
import HostMemory
import PhysicalMemory

/// The translation layer of a host address space: the host's own page
/// tables, reached through `mmap`, `mprotect` and userfaultfd.
///
/// Nothing here loads a frame: host memory is mapped from objects, and a
/// page appears when the kernel or a driver's fill puts it there. So
/// ``load(address:pfn:attributes:flags:)`` is refused; unloading returns the
/// range to the window's `PROT_NONE` reservation; a change of protection is
/// `mprotect`; and a translation is what `mincore` and `/proc/self/pagemap`
/// say (the frame number is 0 where the kernel hides it from this user).
public final class HostHAT: HAT, @unchecked Sendable {
    /// The window all segments live in.
    public let reservation: HostReservation
    /// The userfaultfd service, or nil where userfaultfd is not allowed.
    public let service: UserFaultService?
    /// One page of zeros: the source of a write fault's zero fill.
    let zeroPage: UnsafeMutableRawPointer
    private let pagemap: Int32

    init(reservation: HostReservation, service: UserFaultService?) {
        self.reservation = reservation
        self.service = service
        zeroPage = UnsafeMutableRawPointer.allocate(byteCount: Int(HostReservation.pageSize),
                                                    alignment: Int(HostReservation.pageSize))
        zeroPage.initializeMemory(as: UInt8.self, repeating: 0, count: Int(HostReservation.pageSize))
        pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
    }

    deinit {
        zeroPage.deallocate()
        if pagemap >= 0 { close(pagemap) }
    }

    public func load(address: UInt64, pfn: PageFrameNumber, attributes: HATAttributes,
                     flags: HATLoadFlags) throws(HATError) {
        throw .failed(address: address, reason: "a host address space maps objects, not frames")
    }

    public func unload(address: UInt64, size: UInt64, flags: HATUnloadFlags) throws(HATError) {
        do throws(HostMemoryError) {
            try reservation.release(at: address, length: size)
        } catch {
            throw .failed(address: address, reason: error.description)
        }
    }

    public func changeProtection(address: UInt64, size: UInt64, protection: Protection) throws(HATError) {
        do throws(HostMemoryError) {
            try reservation.protect(at: address, length: size, protection: HostProtection(protection))
        } catch {
            throw .failed(address: address, reason: error.description)
        }
    }

    public func translation(of address: UInt64) -> HATTranslation? {
        let page = address & ~(HostReservation.pageSize - 1)
        guard reservation.window.contains(page),
              let resident = try? reservation.residentPages(at: page, length: HostReservation.pageSize),
              resident == 1 else { return nil }
        var entry: UInt64 = 0
        if pagemap >= 0 {
            _ = pread(pagemap, &entry, 8, off_t(page / HostReservation.pageSize * 8))
        }
        // Bits 0-54 hold the frame when bit 63 (present) is set.
        let pfn = entry >> 63 == 1 ? entry & ((1 << 55) - 1) : 0
        return HATTranslation(pfn: PageFrameNumber(pfn), protection: .read)
    }
}

extension HostProtection {
    /// The host protection of an address-space protection (same bits).
    public init(_ p: Protection) { self.init(rawValue: UInt8(truncatingIfNeeded: p.rawValue & 7)) }
}

extension Protection {
    /// The address-space protection of a host protection, with `PROT_USER`.
    public init(_ p: HostProtection) { self.init(rawValue: UInt32(p.rawValue) | Protection.user.rawValue) }
}
