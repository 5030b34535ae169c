import Synchronization

/// One mapping of a segment range at a guest-physical address (bhyve
/// `vm_mmap_memseg`), as the map reports it.
public struct GuestMapping: Hashable, Sendable, CustomStringConvertible {
    /// Guest-physical start, page aligned.
    public let gpa: UInt64
    /// Bytes, a non-zero multiple of the page size.
    public let length: UInt64
    /// The segment mapped.
    public let segmentID: Int
    /// Where in the segment the mapping starts.
    public let offset: UInt64
    public let protection: GuestProtection
    /// Populated up front (`VM_MEMMAP_F_WIRED`).
    public let wired: Bool
    /// The host address of `gpa` in the guest's reservation.
    public let hostAddress: UInt64

    /// `[gpa, gpa + length)`.
    public var range: Range<UInt64> { gpa ..< gpa + length }

    /// `map 0xGPA 0xLEN seg=ID off=0xOFF prot=PROT[ wired]` (§7's `maps`).
    public var description: String {
        "map 0x\(String(gpa, radix: 16)) 0x\(String(length, radix: 16)) seg=\(segmentID) "
            + "off=0x\(String(offset, radix: 16)) prot=\(protection.word)\(wired ? " wired" : "")"
    }
}

/// A mapping in the table, with what the access paths need at hand.
final class MappingEntry: @unchecked Sendable {
    let info: GuestMapping
    let segment: MemorySegment
    /// Page holds outstanding; an unmap waits for none (it refuses).
    let holds = Atomic<Int>(0)

    init(info: GuestMapping, segment: MemorySegment) {
        self.info = info
        self.segment = segment
    }

    var gpa: UInt64 { info.gpa }
    var end: UInt64 { info.gpa + info.length }

    /// The segment page of guest-physical `gpa` (which must lie in the mapping).
    @inline(__always)
    func segmentPage(_ gpa: UInt64) -> UInt64 { (gpa - info.gpa + info.offset) / GuestMemory.pageSize }

    /// Marks the segment pages under `[gpa, gpa + length)` dirty.
    @inline(__always)
    func markDirty(_ gpa: UInt64, _ length: UInt64) {
        guard length > 0 else { return }
        let first = segmentPage(gpa)
        let last = segmentPage(gpa + length - 1)
        segment.dirty.mark(first: first, count: last - first + 1)
    }
}
