import HostMemory
import Synchronization

/// Which 2 MiB regions of a nested table may hold a dirty leaf: one bit per
/// region, set whenever a D bit is set in it and cleared only by a harvest
/// that has read every leaf of the region — the software counterpart of
/// Intel's page-modification log (PML), at table rather than page grain.
///
/// A harvest then reads the leaf tables of marked regions only, so its cost
/// follows what the guest wrote since the last harvest, not the tables that
/// exist (a 64 GiB guest has up to 32,768 leaf tables; its log is 4 KiB).
///
/// The bit is a superset: set before (or with) the D bit it stands for, so
/// a region with a dirty leaf is always marked; a marked region may hold no
/// dirty leaf (the leaf was unmapped, or a partial harvest cleared only
/// some), which costs one leaf table's read, never a lost page.
///
/// The words are set with atomic fetch-or by the concurrent access path and
/// read or cleared by the owner; they live in `AnonymousMemory` (no swap
/// reserved; the heap if the host refuses), so a log over the whole 2^48
/// space costs address space only (16 MiB of it) until regions are marked.
public final class NestedDirtyRegionLog: @unchecked Sendable {
    /// Bytes per region: one leaf table's reach.
    public static let regionSize: UInt64 = 1 << 21

    /// Regions covered: `[0, regions × 2 MiB)`.
    public let regions: UInt64
    let words: UnsafeMutablePointer<UInt64>
    /// The mapping that holds `words`; nil when they are on the heap.
    private let mapping: AnonymousMemory?

    /// A log over guest-physical `[0, limit)` (rounded up to 2 MiB; at most 2^48).
    init(limit: UInt64) {
        let limit = min(max(limit, 1), 1 << PageTableGeometry.addressBits)
        regions = (limit + Self.regionSize - 1) / Self.regionSize
        let wordCount = Int((regions + 63) / 64)
        // Where the host refuses the mapping, the heap: all of it committed, but the log works.
        if let m = try? AnonymousMemory(length: UInt64(wordCount) * 8) {
            words = m.base.bindMemory(to: UInt64.self, capacity: wordCount)
            mapping = m
        } else {
            words = .allocate(capacity: wordCount)
            words.initialize(repeating: 0, count: wordCount)
            mapping = nil
        }
    }

    deinit {
        if mapping == nil { words.deallocate() }
    }

    @inline(__always)
    func atomicWord(_ w: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        UnsafeMutableRawPointer(words + w).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// Marks the region of `gpa` (a no-op beyond the log, which the owner
    /// sized to its space). Safe from any thread.
    @inline(__always)
    func mark(_ gpa: UInt64) {
        let r = gpa >> 21
        guard r < regions else { return }
        let w = atomicWord(Int(r >> 6))
        let bit = UInt64(1) << (r & 63)
        // Repeated writes to a marked region stay read-only on the word.
        if w.pointee.load(ordering: .relaxed) & bit == 0 {
            w.pointee.bitwiseOr(bit, ordering: .acquiringAndReleasing)
        }
    }

    /// Whether the region of `gpa` is marked.
    public func isMarked(_ gpa: UInt64) -> Bool {
        let r = gpa >> 21
        guard r < regions else { return false }
        return atomicWord(Int(r >> 6)).pointee.load(ordering: .acquiring) & (UInt64(1) << (r & 63)) != 0
    }

    /// Regions marked now.
    public var markedRegions: Int {
        var n = 0
        for w in 0..<Int((regions + 63) / 64) { n += atomicWord(w).pointee.load(ordering: .relaxed).nonzeroBitCount }
        return n
    }

    /// Calls `body` with the base address of every marked region meeting
    /// `[first, last]`, ascending; a region lying wholly inside the range is
    /// unmarked first when `take` (so a D bit set while `body` reads it
    /// marks it again).
    func forEachMarked(first: UInt64, last: UInt64, take: Bool,
                       _ body: (UInt64) throws(PageTableError) -> Void) throws(PageTableError) {
        let r0 = first >> 21
        guard r0 < regions else { return }
        let r1 = min(last >> 21, regions - 1)
        var w = Int(r0 >> 6)
        let wEnd = Int(r1 >> 6)
        while w <= wEnd {
            var bits = atomicWord(w).pointee.load(ordering: .acquiring)
            if w == Int(r0 >> 6) { bits &= ~UInt64(0) << (r0 & 63) }
            if w == wEnd && r1 & 63 != 63 { bits &= (UInt64(1) << ((r1 & 63) + 1)) - 1 }
            while bits != 0 {
                let r = UInt64(w) << 6 | UInt64(bits.trailingZeroBitCount)
                bits &= bits - 1
                let base = r << 21
                if take && base >= first && base + (Self.regionSize - 1) <= last {
                    atomicWord(w).pointee.bitwiseAnd(~(UInt64(1) << (r & 63)), ordering: .acquiringAndReleasing)
                }
                try body(base)
            }
            w += 1
        }
    }
}
