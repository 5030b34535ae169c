import AddressSpace
import PhysicalMemory
import Vmem

/// Everything the model knows about one address: mdb's `::whatis`, widened
/// to the layers of this model.
public struct WhatisReport: Sendable {
    /// One arena segment that contains the address.
    public struct ArenaHit: Sendable {
        public let arena: String
        /// The arena's address (the ADDR column of `::vmem`).
        public let arenaAddress: UInt64
        /// Ancestors in the import tree.
        public let depth: Int
        /// The containing segment (ALLC or FREE) and its boundary tag.
        public let segment: Vmem.Segment
    }

    public let address: UInt64
    /// A kernel symbol at exactly this address (`kas`, `kvps+0x...`).
    public let symbol: String?
    /// The boot-time segment containing it, and its driver.
    public let segment: KernelSegment?
    /// Arena segments containing it, root first.
    public let arenas: [ArenaHit]
    /// The segkp resource it falls in, and whether it is the red zone.
    public let stack: SegKpResource?
    public let inRedZone: Bool
    /// The translation, the frame's `page_t` and its `::memstat` row.
    public let translation: HATTranslation?
    public let page: Page?
    public let category: MemstatCategory?
}

extension ModelKernel {
    /// `::whatis ADDR`: the segment, the arenas and the page of an address.
    public func whatis(_ address: UInt64) -> WhatisReport {
        var hits: [WhatisReport.ArenaHit] = []
        for (arena, depth) in arenas.preorder where arena.contains(address) {
            if let s = arena.segments([.allocated, .free]).first(where: { address >= $0.start && address < $0.end }) {
                hits.append(.init(arena: arena.name, arenaAddress: arena.address, depth: depth, segment: s))
            }
        }
        let stack = segkp.find(address) ?? segkp.redZoneOwner(of: address)
        let translation = hat.translation(of: address)
        let page = translation.flatMap { try? physicalMemory.page($0.pfn) }
        let category = translation.flatMap { (try? physicalMemory.memstatCategory(of: $0.pfn)) ?? nil }
        return WhatisReport(address: address, symbol: symbols.symbol(at: address), segment: segment(containing: address),
                            arenas: hits, stack: stack, inRedZone: stack?.redZone?.contains(address) ?? false,
                            translation: translation, page: page, category: category)
    }
}
