/// The private slab allocator of kernel map entries (FreeBSD `kmapentzone`
/// with its own `kmapent_alloc` slab function, D26851).
///
/// Items are identified by their kernel virtual address: slab base + index ×
/// ``KernelMap/entrySize``. A slab's VA comes from the kernel map itself, so
/// the zone cannot make a slab without the map making an entry — the
/// recursion of seed 002. The zone breaks it with a reserve: ordinary
/// allocations (`M_NOWAIT | M_NOVM`) never dig into the last `reserve`
/// free items and never build a slab; only an allocation that says
/// `M_USE_RESERVE` may take them.
///
/// Slabs are never given back (the zone was `UMA_ZONE_NOFREE` when the fix
/// landed), so freed items simply return to the free list.
struct _MapEntryZone {
    struct Slab: Hashable {
        var base: UInt64
        var capacity: Int
        /// The boot slab is mapped by an entry drawn from itself.
        var isBoot: Bool
    }

    let itemsPerSlab: Int
    let itemSize: UInt64
    /// `uma_zone_reserve`: items only `M_USE_RESERVE` may take.
    let reserve: Int
    private(set) var slabs: [Slab] = []
    /// Slab bases, ascending, for finding the slab of an item.
    private var sortedBases: [UInt64] = []
    /// Free item addresses; the most recently freed is reused first.
    private(set) var free: [UInt64] = []
    /// Items handed out.
    private(set) var inUse = 0

    init(itemsPerSlab: Int, itemSize: UInt64, reserve: Int) {
        self.itemsPerSlab = itemsPerSlab
        self.itemSize = itemSize
        self.reserve = reserve
    }

    var freeCount: Int { free.count }
    var capacity: Int { slabs.reduce(0) { $0 + $1.capacity } }
    /// How much of the reserve is intact: free items up to `reserve`.
    var reserveLevel: Int { min(free.count, reserve) }

    /// `uma_zalloc(kmapentzone, M_NOWAIT | M_NOVM [| M_USE_RESERVE])`: an item,
    /// or nil. Without `useReserve` the last `reserve` items are off limits.
    mutating func allocate(useReserve: Bool) -> UInt64? {
        guard free.count > (useReserve ? 0 : reserve) else { return nil }
        inUse += 1
        return free.removeLast()
    }

    mutating func release(_ item: UInt64) {
        inUse -= 1
        free.append(item)
    }

    /// Adds a slab at `base`; its items become free (highest address first
    /// on the stack, so the lowest is handed out first).
    mutating func addSlab(base: UInt64, isBoot: Bool) {
        slabs.append(Slab(base: base, capacity: itemsPerSlab, isBoot: isBoot))
        var lo = 0, hi = sortedBases.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if sortedBases[mid] < base { lo = mid + 1 } else { hi = mid }
        }
        sortedBases.insert(base, at: lo)
        for i in stride(from: itemsPerSlab - 1, through: 0, by: -1) {
            free.append(base + UInt64(i) * itemSize)
        }
    }

    /// The base of the slab holding `item`, if any.
    func slabBase(holding item: UInt64) -> UInt64? {
        var lo = 0, hi = sortedBases.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if sortedBases[mid] <= item { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0 else { return nil }
        let base = sortedBases[lo - 1]
        return item - base < UInt64(itemsPerSlab) * itemSize ? base : nil
    }
}
