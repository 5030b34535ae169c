import AddressSpace
import CHostMemory
import HostMemory
import HostSegments

/// A 4 KiB zero-fill fault served through userfaultfd by segvn: ns per
/// fault, against the least a C handler can do, and the kernel's own fault
/// for scale.
///
/// **Ours.** A fresh anonymous segvn segment of ``pages`` pages is mapped
/// into a host address space (untimed); then one byte is written to each
/// page, lowest first, and that loop is timed. Each write faults; the
/// kernel queues the event; the address space's handler thread reads it,
/// takes the address space's lock as reader, finds the segment
/// (`as_segat`), and its driver answers with `UFFDIO_COPY` of a page of
/// zeros (a write, so the zero page would not do), which wakes the writer.
/// Afterwards (untimed) every page is checked — the written byte is there,
/// the rest is zero, and the driver counted one copy per page — and the
/// segment is unmapped.
///
/// **C.** `vmk_baseline_uffd_copy(pages, NULL)`: a fresh registered region
/// and one thread that reads each event and answers `UFFDIO_COPY` from a
/// page of zeros; the same write loop, timed the same way, in C.
///
/// **Kernel.** `vmk_baseline_anonymous_touch(pages)`: the same loop over a
/// fresh anonymous mapping with `MADV_NOHUGEPAGE`, whose faults the kernel
/// fills itself — what a userfaultfd round trip adds to.
///
/// ``run(repeats:warmup:progress:)`` takes the three turn about.
public final class ZeroFillFaultWorkload {
    /// Pages faulted per repeat.
    public let pages: Int
    /// The host address space the segments are mapped in.
    public let host: HostAddressSpace

    /// What one run measured.
    public struct Result: Hashable, Sendable {
        /// Ours against the C handler.
        public let comparison: Comparison
        /// The kernel's own first-touch fault.
        public let kernel: TimingSamples
    }

    /// At most 4 Mi pages (16 GiB) per repeat.
    public static let maximumPages = 1 << 22

    public init(pages: Int) throws(HostWorkloadError) {
        try HostWorkloadError.checkCount("pages", pages, maximum: Self.maximumPages)
        self.pages = pages
        host = try _HostSetup.addressSpace(for: UInt64(pages) * _HostSetup.page)
    }

    deinit { try? host.destroy() }

    /// Maps a fresh anonymous segment of ``pages`` pages (untimed).
    public func prepare() throws(HostWorkloadError) -> Segment {
        do throws(HostSegmentError) {
            return try host.mapAnonymous(size: UInt64(pages) * _HostSetup.page)
        } catch {
            throw .host(error)
        }
    }

    /// The timed part: writes a byte to each page of `segment`; returns the nanoseconds.
    public func touch(_ segment: Segment) -> UInt64 {
        PageTouch.timedWrite(host.pointer(segment.base), pages: pages)
    }

    /// Checks what the faults left (untimed) and unmaps the segment.
    public func finish(_ segment: Segment) throws(HostWorkloadError) {
        defer { try? host.unmap(address: segment.base, size: segment.size) }
        let p = host.pointer(segment.base)
        for i in 0..<pages {
            let page = p + i * PageTouch.pageSize
            let first = page.load(as: UInt8.self)
            let later = page.load(fromByteOffset: 8, as: UInt64.self) | page.load(fromByteOffset: 4088, as: UInt64.self)
            if first != 1 || later != 0 {
                throw .wrongContents(workload: "fault.zero-fill", page: UInt64(i), expected: 1,
                                     found: first != 1 ? UInt64(first) : later)
            }
        }
        if let driver = segment.driver as? HostSegmentDriver, driver.statistics.copies != UInt64(pages) {
            throw .wrongContents(workload: "fault.zero-fill (pages filled by the driver)", page: 0,
                                 expected: UInt64(pages), found: driver.statistics.copies)
        }
    }

    /// One repeat of ours: prepare, time the touch, check and unmap.
    public func measureOurs() throws(HostWorkloadError) -> UInt64 {
        let segment = try prepare()
        let ns = touch(segment)
        try finish(segment)
        return ns
    }

    /// One repeat of the C handler.
    public func measureBaseline() throws(HostWorkloadError) -> UInt64 {
        try _HostSetup.baseline("vmk_baseline_uffd_copy", vmk_baseline_uffd_copy(UInt64(pages), nil))
    }

    /// One repeat of the kernel's own anonymous fault.
    public func measureKernel() throws(HostWorkloadError) -> UInt64 {
        try _HostSetup.baseline("vmk_baseline_anonymous_touch", vmk_baseline_anonymous_touch(UInt64(pages)))
    }

    /// Ours, C and the kernel turn about: `warmup` untimed rounds, then `repeats` timed.
    public func run(repeats: Int, warmup: Int = 1,
                    progress: (Int, Int) -> Void = { _, _ in }) throws(HostWorkloadError) -> Result {
        let rounds = try InterleavedRounds([
            .init("fault.zero-fill", opsPerRepeat: pages) { () throws(HostWorkloadError) in try self.measureOurs() },
            .init("fault.zero-fill.c", opsPerRepeat: pages) { () throws(HostWorkloadError) in try self.measureBaseline() },
            .init("fault.kernel-anonymous", opsPerRepeat: pages) { () throws(HostWorkloadError) in try self.measureKernel() },
        ], repeats: repeats, warmup: warmup)
        let s = try rounds.run(progress: progress)
        return Result(comparison: Comparison(ours: s[0], baseline: s[1]), kernel: s[2])
    }
}
