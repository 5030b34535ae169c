/// A vCPU stand-in with a small software TLB over a ``NestedPageTable``
/// (illumos's `vm_client_t` on the data path; VMX's `eptgen[cpu]`).
///
/// ``enter()`` is VM entry: it compares the table's generation with the one
/// recorded at the last entry and flushes the TLB when they differ (INVEPT,
/// or a new ASID on SVM). An invalidation while the client is in guest
/// context is a poke: the next ``access(_:_:)`` leaves guest context and
/// re-enters first, as the IPI forces. So no access ever uses an entry filled
/// before the latest invalidation.
///
/// A TLB entry caches one 4 KiB page: its host frame, the hardware rights
/// the leaf allowed, and whether D was set; a write through an entry filled
/// without D walks again (as processors do to set D).
public final class NestedTLBClient<Format: NestedPTEFormat, Frames: TableFrameAllocator> {
    struct Entry {
        var frame: UInt64
        var rights: PageAttributes.Access
        var dirty: Bool
        var generation: UInt64
    }

    public let table: NestedPageTable<Format, Frames>
    /// Most pages cached (FIFO replacement).
    public let capacity: Int
    /// The generation recorded at the last entry.
    public private(set) var enteredGeneration: UInt64
    public private(set) var inGuest = false
    public private(set) var flushes: UInt64 = 0
    public private(set) var pokes: UInt64 = 0
    public private(set) var hits: UInt64 = 0
    public private(set) var misses: UInt64 = 0
    /// The generation of the TLB entry or walk the last access used.
    public private(set) var lastUsedGeneration: UInt64 = 0

    var entries: [UInt64: Entry] = [:]
    var order: [UInt64] = []
    var next = 0

    /// `capacity` must be 1...4096.
    public init(table: NestedPageTable<Format, Frames>, capacity: Int = 64) throws(NestedPageTableError) {
        guard (1...4096).contains(capacity) else { throw .invalidCapacity(capacity) }
        self.table = table
        self.capacity = capacity
        self.enteredGeneration = table.generation
    }

    /// Pages cached now.
    public var cachedPages: Int { entries.count }

    /// VM entry: flush if the table changed since the last entry.
    public func enter() {
        if table.generation != enteredGeneration {
            flush()
            enteredGeneration = table.generation
        }
        inGuest = true
    }

    /// VM exit.
    public func exit() { inGuest = false }

    /// Drops every cached translation.
    public func flush() {
        entries.removeAll(keepingCapacity: true)
        order.removeAll(keepingCapacity: true)
        next = 0
        flushes += 1
    }

    /// One guest access: enters if outside (re-enters if poked), uses the
    /// TLB or walks the table (running the nested-fault path as needed).
    public func access(_ gpa: UInt64, _ kind: MemoryAccess) throws(NestedPageTableError) -> NestedAccessOutcome {
        if inGuest && table.generation != enteredGeneration {
            pokes += 1
            exit()
        }
        if !inGuest { enter() }
        let page = gpa & ~0xFFF
        if let e = entries[page], e.rights.contains(kind.right), kind != .write || e.dirty {
            hits += 1
            lastUsedGeneration = e.generation
            return .ok(hostAddress: e.frame | gpa & 0xFFF, size: .size4K)
        }
        misses += 1
        let outcome = try table.guestAccess(gpa, kind)
        lastUsedGeneration = table.generation
        guard case .ok = outcome, let (slot, _) = table.leafSlot(gpa) else {
            entries[page] = nil
            return outcome
        }
        let leaf = slot.pointee
        var rights: PageAttributes.Access = []
        if Format.permits(leaf, .read) { rights.insert(.read) }
        if Format.permits(leaf, .write) { rights.insert(.write) }
        if Format.permits(leaf, .execute) { rights.insert(.execute) }
        let entry = Entry(frame: (outcome.hostAddress ?? 0) & ~0xFFF, rights: rights,
                          dirty: leaf & Format.dirtyBit != 0, generation: table.generation)
        if entries.updateValue(entry, forKey: page) == nil {
            if order.count < capacity {
                order.append(page)
            } else {
                entries[order[next]] = nil
                order[next] = page
                next = (next + 1) % capacity
            }
        }
        return outcome
    }
}

extension NestedAccessOutcome {
    /// The host address of an `ok` outcome.
    public var hostAddress: UInt64? {
        if case .ok(let h, _) = self { return h }
        return nil
    }
}
