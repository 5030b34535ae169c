import AddressSpace
import CHostMemory
import HostMemory
import HostSegments

/// A 4 KiB fault filled by copying a page of a file that is in the page
/// cache, served through userfaultfd by the lazy-fill driver: ns per fault,
/// against a C handler that copies from a mapping of the same file.
///
/// A ``PageCacheFile`` of ``pages`` pages is made once (written, flushed,
/// read through).
///
/// **Ours.** A fresh lazy-fill segment over the file with a read-ahead of
/// 4096 bytes, so that each fault copies exactly its own page, is mapped
/// (untimed; the driver maps a fresh read-only view of the file as its
/// source). One byte is written to each page, lowest first, and that loop
/// is timed: each write faults, the handler thread takes the lock as
/// reader, finds the segment, and the driver claims the page in its bitmap
/// and answers with `UFFDIO_COPY` from the view. Afterwards (untimed) every
/// page is checked against the file's pattern, and the driver's count of
/// copies against the pages, and the segment is unmapped.
///
/// **C.** A fresh read-only `MAP_SHARED` view of the same file (so that,
/// like ours, the copies meet source pages not yet in the page tables) and
/// `vmk_baseline_uffd_copy(pages, view)`: one thread reads each event and
/// copies the page at the fault's offset from the view; the same loop.
public final class FileCopyFaultWorkload {
    /// Pages faulted per repeat.
    public let pages: Int
    /// The file the pages are copied from.
    public let file: PageCacheFile
    /// The host address space the segments are mapped in.
    public let host: HostAddressSpace

    public init(pages: Int, directory: String = "/tmp") throws(HostWorkloadError) {
        try HostWorkloadError.checkCount("pages", pages, maximum: ZeroFillFaultWorkload.maximumPages)
        self.pages = pages
        let bytes = UInt64(pages) * _HostSetup.page
        file = try PageCacheFile(size: bytes, directory: directory)
        host = try _HostSetup.addressSpace(for: bytes)
    }

    deinit { try? host.destroy() }

    /// Maps a fresh lazy-fill segment over the file, one page per fault (untimed).
    public func prepare() throws(HostWorkloadError) -> Segment {
        do throws(HostSegmentError) {
            return try host.mapLazyFill(file.object, size: file.size, readAhead: _HostSetup.page)
        } catch {
            throw .host(error)
        }
    }

    /// The timed part: writes a byte to each page of `segment`; returns the nanoseconds.
    public func touch(_ segment: Segment) -> UInt64 {
        PageTouch.timedWrite(host.pointer(segment.base), pages: pages)
    }

    /// Checks the copies against the file (untimed) and unmaps the segment.
    public func finish(_ segment: Segment) throws(HostWorkloadError) {
        defer { try? host.unmap(address: segment.base, size: segment.size) }
        let p = host.pointer(segment.base)
        for i in 0..<pages {
            let page = p + i * PageTouch.pageSize
            let expected = PageCacheFile.pattern(page: UInt64(i))
            let first = page.load(as: UInt8.self)
            let later = page.load(fromByteOffset: 4095, as: UInt8.self)
            if first != 1 || later != expected {
                throw .wrongContents(workload: "fault.copy-file", page: UInt64(i),
                                     expected: UInt64(first != 1 ? 1 : expected),
                                     found: UInt64(first != 1 ? first : later))
            }
        }
        if let driver = segment.driver as? HostSegmentDriver, driver.statistics.copies != UInt64(pages) {
            throw .wrongContents(workload: "fault.copy-file (pages copied by the driver)", page: 0,
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

    /// One repeat of the C handler, copying from a fresh view of the file.
    public func measureBaseline() throws(HostWorkloadError) -> UInt64 {
        let view: ObjectView
        do throws(HostMemoryError) {
            view = try ObjectView(file.object, offset: 0, length: file.size)
        } catch {
            throw .hostMemory(error)
        }
        return try withExtendedLifetime(view) { () throws(HostWorkloadError) -> UInt64 in
            try _HostSetup.baseline("vmk_baseline_uffd_copy", vmk_baseline_uffd_copy(UInt64(pages), view.base))
        }
    }

    /// Ours and C turn about: `warmup` untimed rounds, then `repeats` timed.
    public func run(repeats: Int, warmup: Int = 1,
                    progress: (Int, Int) -> Void = { _, _ in }) throws(HostWorkloadError) -> Comparison {
        let rounds = try InterleavedRounds([
            .init("fault.copy-file", opsPerRepeat: pages) { () throws(HostWorkloadError) in try self.measureOurs() },
            .init("fault.copy-file.c", opsPerRepeat: pages) { () throws(HostWorkloadError) in try self.measureBaseline() },
        ], repeats: repeats, warmup: warmup)
        let s = try rounds.run(progress: progress)
        return Comparison(ours: s[0], baseline: s[1])
    }
}
