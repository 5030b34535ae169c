import AddressSpace
import CHostMemory
import HostMemory
import HostSegments

/// Lazy fill of a region from a file in the page cache, touched from end
/// to end: bytes per second, against a C handler with the same read-ahead.
///
/// A ``PageCacheFile`` of ``size`` bytes is made once (written, flushed,
/// read through).
///
/// **Ours.** A fresh lazy-fill segment over the whole file with a
/// read-ahead of ``readAhead`` bytes is mapped (untimed). One byte of each
/// page is read, lowest page first, and that loop is timed: a fault copies
/// its page and the pages after it up to the read-ahead in one
/// `UFFDIO_COPY`, so only one page in `readAhead / 4096` faults. The sum of
/// the bytes read is checked against the file's pattern, and the segment is
/// unmapped (untimed).
///
/// **C.** A fresh read-only view of the same file and
/// `vmk_baseline_uffd_fill(pages, view, readAhead / 4096, read)`: a thread
/// that answers each fault with one `UFFDIO_COPY` of the same run from the
/// view; the same loop, whose sum is checked too.
///
/// The figure is nanoseconds per 4 KiB page touched, and bytes per second
/// (``gigabytesPerSecond(nsPerPage:)``, 10^9 bytes).
public final class LazyFillWorkload {
    /// Bytes filled per repeat.
    public let size: UInt64
    /// Bytes copied per fault.
    public let readAhead: UInt64
    /// The file the region is filled from.
    public let file: PageCacheFile
    /// The host address space the segments are mapped in.
    public let host: HostAddressSpace
    private let expectedSum: UInt64

    /// Pages per repeat.
    public var pages: Int { Int(size / _HostSetup.page) }

    /// `size`: a non-zero multiple of 4096, at most 64 GiB; `readAhead`: a
    /// multiple of 4096 from 4096 to 1 GiB.
    public init(size: UInt64, readAhead: UInt64 = 64 << 10, directory: String = "/tmp") throws(HostWorkloadError) {
        guard size > 0, size % _HostSetup.page == 0, size <= 64 << 30 else {
            throw .invalidArgument(name: "lazy-fill size", value: size,
                                   reason: "must be a non-zero multiple of 4096, at most 64 GiB")
        }
        guard readAhead >= _HostSetup.page, readAhead % _HostSetup.page == 0, readAhead <= 1 << 30 else {
            throw .invalidArgument(name: "read-ahead", value: readAhead,
                                   reason: "must be a multiple of 4096 from 4096 to 1 GiB")
        }
        self.size = size
        self.readAhead = readAhead
        file = try PageCacheFile(size: size, directory: directory)
        host = try _HostSetup.addressSpace(for: size)
        var sum: UInt64 = 0
        for i in 0..<(size / _HostSetup.page) { sum &+= UInt64(PageCacheFile.pattern(page: i)) }
        expectedSum = sum
    }

    deinit { try? host.destroy() }

    /// 10^9 bytes per second for a time per 4 KiB page.
    public static func gigabytesPerSecond(nsPerPage: Double) -> Double {
        nsPerPage > 0 ? Double(PageTouch.pageSize) / nsPerPage : 0
    }

    /// Maps a fresh lazy-fill segment over the file (untimed).
    public func prepare() throws(HostWorkloadError) -> Segment {
        do throws(HostSegmentError) {
            return try host.mapLazyFill(file.object, size: size, readAhead: readAhead)
        } catch {
            throw .host(error)
        }
    }

    /// The timed part: reads a byte of each page; returns the nanoseconds and the sum read.
    public func touch(_ segment: Segment) -> (nanoseconds: UInt64, sum: UInt64) {
        let p = UnsafeRawPointer(host.pointer(segment.base))
        let start = vmk_now_ns()
        let sum = PageTouch.read(p, pages: pages)
        return (vmk_now_ns() &- start, sum)
    }

    /// Checks the sum read (untimed) and unmaps the segment.
    public func finish(_ segment: Segment, sum: UInt64) throws(HostWorkloadError) {
        defer { try? host.unmap(address: segment.base, size: segment.size) }
        try check(sum, "lazy-fill")
    }

    private func check(_ sum: UInt64, _ name: String) throws(HostWorkloadError) {
        guard sum == expectedSum else {
            throw .wrongContents(workload: "\(name) (sum of the first byte of every page)", page: 0,
                                 expected: expectedSum, found: sum)
        }
    }

    /// One repeat of ours.
    public func measureOurs() throws(HostWorkloadError) -> UInt64 {
        let segment = try prepare()
        let (ns, sum) = touch(segment)
        try finish(segment, sum: sum)
        return ns
    }

    /// One repeat of the C handler, copying from a fresh view of the file.
    public func measureBaseline() throws(HostWorkloadError) -> UInt64 {
        let view: ObjectView
        do throws(HostMemoryError) {
            view = try ObjectView(file.object, offset: 0, length: size)
        } catch {
            throw .hostMemory(error)
        }
        var sum: UInt64 = 0
        let ns = try withExtendedLifetime(view) { () throws(HostWorkloadError) -> UInt64 in
            try _HostSetup.baseline("vmk_baseline_uffd_fill",
                                    vmk_baseline_uffd_fill(UInt64(pages), view.base, readAhead / _HostSetup.page, 0, &sum))
        }
        try check(sum, "lazy-fill.c")
        return ns
    }

    /// Ours and C turn about: `warmup` untimed rounds, then `repeats` timed.
    public func run(repeats: Int, warmup: Int = 1,
                    progress: (Int, Int) -> Void = { _, _ in }) throws(HostWorkloadError) -> Comparison {
        let rounds = try InterleavedRounds([
            .init("lazy-fill", opsPerRepeat: pages) { () throws(HostWorkloadError) in try self.measureOurs() },
            .init("lazy-fill.c", opsPerRepeat: pages) { () throws(HostWorkloadError) in try self.measureBaseline() },
        ], repeats: repeats, warmup: warmup)
        let s = try rounds.run(progress: progress)
        return Comparison(ours: s[0], baseline: s[1])
    }
}
