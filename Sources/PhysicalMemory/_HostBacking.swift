#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import HostMemory

/// Host memory that holds the bytes of every frame, reserved at once and
/// populated lazily.
///
/// One `AnonymousMemory` (HostMemory) of `frames × 4096` bytes with no swap
/// reserved: the host commits a page only when it is first written, so a
/// model of a large machine costs only what it touches. Frame `pfn` lives at
/// `base + pfn × 4096`, which is all a page-table walker needs. When a frame
/// goes back to the free list its host page is given back (`MADV_DONTNEED`),
/// so host usage follows pages in use and the next owner sees zeros. The
/// mapping goes with the last copy of this value (the frame table's).
struct _HostBacking {
    /// `memory.base`, kept here so that reaching a frame needs no second load.
    let base: UnsafeMutableRawPointer
    private let memory: AnonymousMemory

    init(frames: UInt64) throws(PhysicalMemoryError) {
        let (bytes, overflow) = frames.multipliedReportingOverflow(by: PhysicalMemory.pageSize)
        guard !overflow, bytes <= UInt64(Int.max) else {
            throw .hostMemoryUnavailable(bytes: overflow ? .max : bytes, errno: EOVERFLOW)
        }
        do throws(HostMemoryError) {
            memory = try AnonymousMemory(length: bytes)
        } catch {
            throw .hostMemoryUnavailable(bytes: bytes, errno: error.errnoValue)
        }
        base = memory.base
    }

    @inline(__always)
    func pointer(_ pfn: PageFrameNumber) -> UnsafeMutableRawPointer {
        base + Int(pfn << PhysicalMemory.pageShift)
    }

    /// Returns the frame's host page to the host; it reads as zeros afterwards.
    func discard(_ pfn: PageFrameNumber, count: UInt64 = 1) {
        // Best effort, as before: a frame the host keeps is only memory not yet returned.
        try? memory.discard(offset: pfn << PhysicalMemory.pageShift, length: count << PhysicalMemory.pageShift)
    }
}
