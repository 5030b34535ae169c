import AddressSpace
import HostMemory

extension HostAddressSpace {
    /// `as_unmap`: the range goes back to the window's reservation; segments
    /// are trimmed, split or removed by their drivers.
    public func unmap(address: UInt64, size: UInt64) throws(HostSegmentError) {
        try checkAlive()
        do throws(HostMemoryError) { try reservation.check(address, size) } catch { throw .host(error) }
        do throws(AddressSpaceError) { try space.unmap(address: address, size: size) } catch {
            throw .addressSpace(error)
        }
    }

    /// `as_setprot`, after checking that no segment in the range would get
    /// more than its object allows (a typed error naming both).
    public func setProtection(address: UInt64, size: UInt64, protection: HostProtection) throws(HostSegmentError) {
        try checkAlive()
        do throws(HostMemoryError) { try reservation.check(address, size) } catch { throw .host(error) }
        for seg in space.segments where seg.base < address + size && address <= seg.last {
            guard let d = seg.driver as? HostSegmentDriver, !(d is HostSegHole) else { continue }
            if !protection.isSubset(of: d.maxProtection) {
                throw .host(.protectionExceedsObject(requested: protection, allowed: d.maxProtection,
                                                     object: d.object?.name ?? "anonymous memory"))
            }
        }
        do throws(AddressSpaceError) {
            try space.setProtection(address: address, size: size, protection: Protection(protection))
        } catch {
            throw .addressSpace(error)
        }
    }

    /// `as_fault`: makes the range present now (`softLock` also locks it in
    /// memory until a `softUnlock`).
    public func fault(address: UInt64, size: UInt64, access: SegmentAccess = .read,
                      type: FaultType = .invalid) throws(HostSegmentError) {
        try checkAlive()
        do throws(AddressSpaceError) {
            try space.fault(address: address, size: size, type: type, access: access)
        } catch {
            throw .addressSpace(error)
        }
    }

    /// Pages of `segment` resident now (`mincore`).
    public func residentPages(_ segment: Segment) -> UInt64 {
        guard !isDestroyed, segment.isAttached else { return 0 }
        return (try? reservation.residentPages(at: segment.base, length: segment.size)) ?? 0
    }
}
