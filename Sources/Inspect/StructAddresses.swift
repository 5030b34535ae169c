import Vmem

/// The target's pointer width and the numbers mdb shows for the model's
/// `vmem_t` and `vmem_seg_t` structures.
///
/// mdb's `%?` is the target's pointer width: 16 columns on amd64, 8 on
/// i386. Vmem numbers an arena and its boundary tags with 64-bit values
/// shaped like amd64 kernel addresses (Vmem's `Arena.address`, and each
/// tag 32 bytes per index above it), which an i386 kernel cannot hold. On a
/// 32-bit target each arena instead gets a 64 KiB slot in the kernel data
/// region, where illumos keeps its static arenas, from 1 MiB in (below that
/// lie the model's `kas`, `kvps[]` and static segments, `KernelSymbols` in ModelKernel):
/// the arena at the slot's start, its tags at the same offsets as above
/// the 64-bit number. The slot follows the arena's place in `::vmem`'s
/// pre-order, so the numbers are the same on every line of a session. A
/// number that does not fit (an arena past the region's 48 slots, a tag
/// index of 2048 or more; the i386 model uses 12 arenas and fewer than
/// 1,000 tags in each) keeps its 64-bit value, printed in full, which no
/// 32-bit number can equal.
public struct StructAddresses: Sendable {
    /// `%?`'s columns: 16, or 8 on a 32-bit target.
    public let pointerWidth: Int
    /// On a 32-bit target, each arena's 64-bit number → its slot's start.
    let slots: [UInt64: UInt64]

    /// Where the slots start in the kernel data region.
    public static let slotsOffset: UInt64 = 0x10_0000
    /// One slot per arena.
    public static let slotBytes: UInt64 = 0x1_0000

    /// 64-bit pointers: every number as Vmem gives it.
    public static let wide = StructAddresses(pointerWidth: 16, slots: [:])

    init(pointerWidth: Int, slots: [UInt64: UInt64]) {
        self.pointerWidth = pointerWidth
        self.slots = slots
    }

    /// The numbering for `arenas` (in `::vmem`'s pre-order) on a target
    /// with 32-bit pointers whose kernel data region is `kernelData`, or
    /// ``wide`` when `kernelData` is nil (a 64-bit target).
    public init(arenas: [Arena], kernelData: (base: UInt64, size: UInt64)?) {
        guard let kernelData, kernelData.size > Self.slotsOffset else { self = .wide; return }
        let count = (kernelData.size - Self.slotsOffset) / Self.slotBytes
        var slots: [UInt64: UInt64] = [:]
        for (i, a) in arenas.enumerated() where UInt64(i) < count {
            // A region that runs past 2^64 has no room for the slots that would.
            let (slot, o1) = kernelData.base.addingReportingOverflow(Self.slotsOffset + UInt64(i) * Self.slotBytes)
            let (_, o2) = slot.addingReportingOverflow(Self.slotBytes)
            if o1 || o2 { break }
            slots[a.address] = slot
        }
        self.init(pointerWidth: 8, slots: slots)
    }

    /// What mdb shows for an arena's or a boundary tag's 64-bit number.
    public func display(_ number: UInt64) -> UInt64 {
        guard !slots.isEmpty else { return number }
        // A tag's number is its arena's plus 32 x its index, below the
        // arena's plus 2^24 (Vmem's `Arena.address`).
        let arena = number & ~(Arena.structAddressSpan &- 1)
        guard let slot = slots[arena] else { return number }
        let offset = number &- arena
        return offset < Self.slotBytes ? slot + offset : number
    }
}
