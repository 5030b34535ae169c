import HostMemory

/// A segment's page protections: one value for the whole segment until a
/// `setprot` covers only part of it, then one byte per page (segvn's
/// `vpage` array, made the same lazy way). Indexed from the segment's
/// original base, so the halves of a split share it unchanged. Written
/// under the address space's write lock, read under its read lock.
final class _PageProtections: @unchecked Sendable {
    private var uniform: HostProtection
    private var perPage: [UInt8]?
    let origin: UInt64
    let pages: Int

    init(origin: UInt64, size: UInt64, protection: HostProtection) {
        self.origin = origin
        pages = Int(size / HostReservation.pageSize)
        uniform = protection
    }

    func protection(at address: UInt64) -> HostProtection {
        guard let perPage else { return uniform }
        return HostProtection(rawValue: perPage[index(address)])
    }

    func set(_ address: UInt64, _ size: UInt64, _ protection: HostProtection, wholeSegment: Bool) {
        if wholeSegment && perPage == nil {
            uniform = protection
            return
        }
        if perPage == nil { perPage = [UInt8](repeating: uniform.rawValue, count: pages) }
        let first = index(address)
        let count = Int(size / HostReservation.pageSize)
        for i in first ..< first + count { perPage![i] = protection.rawValue }
    }

    /// Whether every page of the range allows `wanted`; the first that does not.
    func firstRefusing(_ address: UInt64, _ size: UInt64, _ wanted: HostProtection) -> UInt64? {
        guard let perPage else { return wanted.isSubset(of: uniform) ? nil : address }
        let first = index(address)
        for i in first ..< first + Int(size / HostReservation.pageSize)
        where !wanted.isSubset(of: HostProtection(rawValue: perPage[i])) {
            return origin + UInt64(i) * HostReservation.pageSize
        }
        return nil
    }

    private func index(_ address: UInt64) -> Int { Int((address - origin) / HostReservation.pageSize) }
}
