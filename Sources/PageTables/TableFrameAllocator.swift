import HostMemory

/// Where the 4 KiB frames that hold page tables come from, and how the walker
/// reaches their entries.
///
/// A table lives at a *physical* address (that is what entries store), but the
/// walker reads it through host memory; the allocator is the bridge. Tables
/// can therefore live in a model's `PhysicalMemory` (counted as kernel pages,
/// as illumos's htables are) or in plain host memory (``HostTableAllocator``).
/// ``PageTable`` is generic over the allocator so that `entries(ofTableAt:)`
/// is inlined into the walk.
public protocol TableFrameAllocator: AnyObject {
    /// A zero-filled frame for a table; returns its 4 KiB-aligned physical address.
    func allocateTableFrame() throws(PageTableError) -> UInt64
    /// Returns a frame obtained from ``allocateTableFrame()``.
    func freeTableFrame(_ physicalAddress: UInt64)
    /// The 512 entries of a table this allocator handed out. (An address it
    /// never handed out yields a scratch table rather than a trap; the walker
    /// only ever passes addresses it stored.)
    func entries(ofTableAt physicalAddress: UInt64) -> UnsafeMutablePointer<UInt64>
}

/// A zeroed table returned for addresses an allocator does not know, so that a
/// misuse reads "not present" instead of trapping.
@usableFromInline
final class _ScratchTable: @unchecked Sendable {
    @usableFromInline static let shared = _ScratchTable()
    @usableFromInline let entries: UnsafeMutablePointer<UInt64>
    private init() {
        entries = .allocate(capacity: 512)
        entries.initialize(repeating: 0, count: 512)
    }
}

/// Table frames in host memory, numbered from `physicalBase` upwards as if
/// they were physical frames.
///
/// The frames are one `AnonymousMemory` (HostMemory) of `frameLimit × 4 KiB`
/// made up front with no swap reserved (the host commits a frame when it is
/// first written), so reaching a table is one addition: no lookup, no lock,
/// no reference count on the walk. Freed frames go on a stack and are reused, so map and unmap reach
/// a steady state that allocates nothing.
public final class HostTableAllocator: TableFrameAllocator {
    /// `memory.base`, kept here so that reaching a table needs no second load.
    @usableFromInline let base: UnsafeMutableRawPointer
    private let memory: AnonymousMemory
    @usableFromInline let physicalBase: UInt64
    /// The most frames this allocator holds, so a runaway mapping fails
    /// instead of eating the host.
    public let frameLimit: Int
    private var nextFrame = 0
    private var freeFrames: [Int] = []
    /// Frames handed out and not yet returned.
    public private(set) var framesInUse = 0

    /// - Parameters:
    ///   - physicalBase: the (4 KiB aligned) address the first frame pretends to be at.
    ///   - frameLimit: the most frames this allocator will hold (address space
    ///     is reserved for all of them; memory only for those used).
    public init(physicalBase: UInt64 = 0x1_0000_0000, frameLimit: Int = 1 << 18) throws(PageTableError) {
        guard physicalBase & 0xFFF == 0, frameLimit > 0, frameLimit <= 1 << 28,
              physicalBase >> PageTableGeometry.physicalAddressBits == 0,
              (physicalBase + UInt64(frameLimit) << 12) >> PageTableGeometry.physicalAddressBits == 0 else {
            throw .tableAllocationFailed("bad host allocator geometry: base 0x\(String(physicalBase, radix: 16)), \(frameLimit) frames")
        }
        do throws(HostMemoryError) {
            memory = try AnonymousMemory(length: UInt64(frameLimit) << 12)
        } catch {
            throw .tableAllocationFailed("mmap of \(frameLimit) frames failed (errno \(error.errnoValue))")
        }
        self.base = memory.base
        self.physicalBase = physicalBase
        self.frameLimit = frameLimit
    }

    public func allocateTableFrame() throws(PageTableError) -> UInt64 {
        let index: Int
        if let reused = freeFrames.popLast() {
            index = reused
            (base + index << 12).initializeMemory(as: UInt64.self, repeating: 0, count: 512)
        } else {
            guard nextFrame < frameLimit else {
                throw .tableAllocationFailed("host allocator limit of \(frameLimit) frames reached")
            }
            index = nextFrame          // fresh anonymous memory reads as zeros
            nextFrame += 1
        }
        framesInUse += 1
        return physicalBase + UInt64(index) << 12
    }

    public func freeTableFrame(_ physicalAddress: UInt64) {
        let i = (physicalAddress &- physicalBase) >> 12
        guard i < UInt64(nextFrame) else { return }
        freeFrames.append(Int(i))
        framesInUse -= 1
    }

    @inlinable @inline(__always)
    public func entries(ofTableAt physicalAddress: UInt64) -> UnsafeMutablePointer<UInt64> {
        let offset = physicalAddress &- physicalBase
        guard offset >> 12 < UInt64(frameLimit) else { return _ScratchTable.shared.entries }
        return (base + Int(truncatingIfNeeded: offset)).assumingMemoryBound(to: UInt64.self)
    }
}
