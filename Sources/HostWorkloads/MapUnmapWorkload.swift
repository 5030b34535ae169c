import AddressSpace
import CHostMemory
import HostMemory
import HostSegments

/// Map and unmap of an anonymous segment (2 MiB by default): ns per pair,
/// against the system calls underneath made directly from C.
///
/// **Ours.** ``pairs`` times: `HostAddressSpace.mapAnonymous(size:)` —
/// the lowest gap of the window that fits (`as_gap`), the checks, `as_map`
/// with the write lock held, the segvn driver's create (`mmap` `MAP_FIXED`
/// over the window's reservation, `UFFDIO_REGISTER` for missing faults) —
/// then `HostAddressSpace.unmap(address:size:)` — `as_unmap`, the driver
/// putting the `PROT_NONE` reservation back, the segment freed. The loop is
/// timed as one piece; nothing is touched, so no page is filled. Afterwards
/// the address space must hold no segment.
///
/// **C.** `vmk_baseline_map_unmap(pairs, size)`: the same three system
/// calls per pair (map, register, reservation back) in a window of its
/// own, with no segment tree and no checks — what ours adds to.
public final class MapUnmapWorkload {
    /// Pairs timed per repeat.
    public let pairs: Int
    /// Bytes per segment.
    public let size: UInt64
    /// The host address space the segments are mapped in.
    public let host: HostAddressSpace

    /// `size`: a non-zero multiple of 4096, at most 1 GiB; `pairs` from 1 to 10^7.
    public init(pairs: Int, size: UInt64 = 2 << 20) throws(HostWorkloadError) {
        try HostWorkloadError.checkCount("pairs", pairs, maximum: 10_000_000)
        guard size > 0, size % _HostSetup.page == 0, size <= 1 << 30 else {
            throw .invalidArgument(name: "segment size", value: size,
                                   reason: "must be a non-zero multiple of 4096, at most 1 GiB")
        }
        self.pairs = pairs
        self.size = size
        host = try _HostSetup.addressSpace(for: size)
    }

    deinit { try? host.destroy() }

    /// `count` map and unmap pairs; returns the nanoseconds.
    public func mapUnmap(_ count: Int) throws(HostWorkloadError) -> UInt64 {
        let start = vmk_now_ns()
        do throws(HostSegmentError) {
            for _ in 0..<count {
                let segment = try host.mapAnonymous(size: size)
                try host.unmap(address: segment.base, size: size)
            }
        } catch {
            throw .host(error)
        }
        return vmk_now_ns() &- start
    }

    /// One repeat of ours, checked to leave no segment behind.
    public func measureOurs() throws(HostWorkloadError) -> UInt64 {
        let ns = try mapUnmap(pairs)
        let left = host.space.segmentCount
        guard left == 0 else {
            throw .wrongContents(workload: "map-unmap (segments left)", page: 0, expected: 0, found: UInt64(left))
        }
        return ns
    }

    /// One repeat of the C system calls.
    public func measureBaseline() throws(HostWorkloadError) -> UInt64 {
        try _HostSetup.baseline("vmk_baseline_map_unmap", vmk_baseline_map_unmap(UInt64(pairs), size))
    }

    /// Ours and C turn about: `warmup` untimed rounds, then `repeats` timed.
    public func run(repeats: Int, warmup: Int = 1,
                    progress: (Int, Int) -> Void = { _, _ in }) throws(HostWorkloadError) -> Comparison {
        let rounds = try InterleavedRounds([
            .init("map-unmap", opsPerRepeat: pairs) { () throws(HostWorkloadError) in try self.measureOurs() },
            .init("map-unmap.c", opsPerRepeat: pairs) { () throws(HostWorkloadError) in try self.measureBaseline() },
        ], repeats: repeats, warmup: warmup)
        let s = try rounds.run(progress: progress)
        return Comparison(ours: s[0], baseline: s[1])
    }
}
