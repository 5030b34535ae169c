#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Host memory that holds the bytes of every frame, reserved at once and
/// populated lazily.
///
/// One private anonymous mapping of `frames × 4096` bytes with
/// `MAP_NORESERVE`: the host commits a page only when it is first written, so a
/// model of a large machine costs only what it touches. Frame `pfn` lives at
/// `base + pfn × 4096`, which is all a page-table walker needs. When a frame
/// goes back to the free list its host page is given back (`MADV_DONTNEED`),
/// so host usage follows pages in use and the next owner sees zeros.
struct _HostBacking {
    let base: UnsafeMutableRawPointer
    let byteCount: Int

    init(frames: UInt64) throws(PhysicalMemoryError) {
        let (bytes, overflow) = frames.multipliedReportingOverflow(by: PhysicalMemory.pageSize)
        guard !overflow, bytes <= UInt64(Int.max) else {
            throw .hostMemoryUnavailable(bytes: overflow ? .max : bytes, errno: EOVERFLOW)
        }
        #if os(Linux)
        let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE
        #else
        let flags = MAP_PRIVATE | MAP_ANON
        #endif
        let p = mmap(nil, Int(bytes), PROT_READ | PROT_WRITE, flags, -1, 0)
        guard let p, p != MAP_FAILED else {
            throw .hostMemoryUnavailable(bytes: bytes, errno: errno)
        }
        base = p
        byteCount = Int(bytes)
    }

    func unmap() { munmap(base, byteCount) }

    @inline(__always)
    func pointer(_ pfn: PageFrameNumber) -> UnsafeMutableRawPointer {
        base + Int(pfn << PhysicalMemory.pageShift)
    }

    /// Returns the frame's host page to the host; it reads as zeros afterwards.
    func discard(_ pfn: PageFrameNumber, count: UInt64 = 1) {
        _ = madvise(pointer(pfn), Int(count << PhysicalMemory.pageShift), MADV_DONTNEED)
    }
}
