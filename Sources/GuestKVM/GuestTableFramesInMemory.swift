import GuestMemory
import PageTables

/// Page-table frames inside guest memory, for a long-mode payload's own
/// tables: frames are handed out from `[base, limit)` in order, and a
/// table's entries are reached through the VMM's mapping of that page.
/// Every frame handed out, and every frame given back (the `PageTable`
/// cleared it), is marked dirty in the VMM bitmap: the VMM wrote it. Keep
/// the `PageTable` built on this alive as long as the guest runs: a
/// `PageTable` clears its tables when it goes away.
final class GuestTableFramesInMemory: TableFrameAllocator {
    let memory: GuestMemory
    let base: UInt64
    let limit: UInt64
    private var next: UInt64
    private(set) var frames: [UInt64] = []
    private var pointers: [UInt64: UnsafeMutablePointer<UInt64>] = [:]
    private let scratch = UnsafeMutablePointer<UInt64>.allocate(capacity: 512)

    init(memory: GuestMemory, base: UInt64, limit: UInt64) {
        self.memory = memory
        self.base = base
        self.limit = limit
        next = base
        scratch.initialize(repeating: 0, count: 512)
    }

    deinit { scratch.deallocate() }

    func allocateTableFrame() throws(PageTableError) -> UInt64 {
        guard next + 4096 <= limit else {
            throw .tableAllocationFailed("the payload's table area [0x\(String(base, radix: 16)), 0x\(String(limit, radix: 16))) is full")
        }
        guard let p = memory.translate(next, 4096, .readWrite) else {
            throw .tableAllocationFailed("guest page 0x\(String(next, radix: 16)) is not mapped writable")
        }
        let table = p.bindMemory(to: UInt64.self, capacity: 512)
        table.update(repeating: 0, count: 512)
        memory.markDirty(guestPage: next / GuestMemory.pageSize)
        pointers[next] = table
        frames.append(next)
        defer { next += 4096 }
        return next
    }

    /// A frame comes back when the `PageTable` clears its tables (it goes
    /// away with the guest, while the memory may stay and be snapshotted):
    /// the clearing wrote guest memory, so the frame is dirty.
    func freeTableFrame(_ physicalAddress: UInt64) {
        if pointers.removeValue(forKey: physicalAddress) != nil {
            memory.markDirty(guestPage: physicalAddress / GuestMemory.pageSize)
        }
    }

    func entries(ofTableAt physicalAddress: UInt64) -> UnsafeMutablePointer<UInt64> {
        pointers[physicalAddress] ?? scratch
    }
}
