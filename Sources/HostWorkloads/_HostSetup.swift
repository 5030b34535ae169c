import HostMemory
import HostSegments

/// What the workloads share to set themselves up: a host address space with
/// a window big enough, and the checks that userfaultfd is on.
enum _HostSetup {
    static let page = HostReservation.pageSize
    static let twoMiB = HostReservation.alignment

    /// A window that holds `bytes` placed on a 2 MiB boundary, with room to spare.
    static func window(for bytes: UInt64) -> UInt64 {
        (bytes + twoMiB - 1) / twoMiB * twoMiB + 2 * twoMiB
    }

    /// A host address space for `bytes` of segments; with `userfaultfd`,
    /// refuses (typed) where the kernel does not let us serve faults.
    static func addressSpace(for bytes: UInt64, userfaultfd: Bool = true) throws(HostWorkloadError) -> HostAddressSpace {
        let host: HostAddressSpace
        do throws(HostSegmentError) {
            host = try HostAddressSpace(windowSize: window(for: bytes), faultThreads: 1, userfaultfd: userfaultfd)
        } catch {
            throw .host(error)
        }
        if userfaultfd && !host.usesUserfaultfd {
            let reason = host.userfaultfdUnavailableReason ?? "unknown"
            try? host.destroy()
            throw .userfaultfdUnavailable(reason: reason)
        }
        return host
    }

    /// A C baseline's answer: nanoseconds, or a typed error for its -errno.
    static func baseline(_ name: String, _ r: Int64) throws(HostWorkloadError) -> UInt64 {
        guard r >= 0 else { throw .baseline(name: name, errno: Int32(truncatingIfNeeded: -r)) }
        return UInt64(r)
    }
}
