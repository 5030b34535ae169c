import CGuestWorkloads
import GuestMemory
import HostWorkloads

/// A get-and-reset harvest of the VMM's dirty bitmap over a whole standard
/// guest (64 GiB by default: a 68 GiB sysmem segment with its 4 GiB hole,
/// a 2.1 MiB bitmap) with 1 % of its pages dirty: one random page of every
/// 100. Before each timed harvest (untimed) the pages are marked dirty by
/// VMM writes that touch nothing — a read-write hold released (which marks
/// its page) — so the guest stays unpopulated. Each harvest must report
/// exactly the pages marked.
public final class DirtyHarvestWorkload {
    public let guestSize: UInt64
    public let memory: GuestMemory
    /// The dirty guest pages (gpa >> 12), ascending.
    public let dirtyPages: [UInt64]

    /// `guestSize`: a multiple of 4096 from 400 KiB to 1 TiB.
    public init(guestSize: UInt64, seed: UInt64 = 11) throws(GuestWorkloadError) {
        try GuestWorkloadError.checkSize("harvest guest size", guestSize, minimum: 100 * GuestMemory.pageSize, maximum: 1 << 40)
        self.guestSize = guestSize
        do throws(GuestMemoryError) {
            memory = try GuestMemory.standard(size: guestSize)
        } catch {
            throw .guest(error)
        }
        var rng = SplitMix64(seed: seed)
        var pages: [UInt64] = []
        for m in memory.mappings {
            let first = m.gpa / GuestMemory.pageSize
            let count = m.length / GuestMemory.pageSize
            var block: UInt64 = 0
            while block + 100 <= count {
                pages.append(first + block + UInt64.random(in: 0..<100, using: &rng))
                block += 100
            }
        }
        dirtyPages = pages
    }

    /// Marks every page of ``dirtyPages`` dirty (a released read-write hold each).
    public func markDirty() throws(GuestWorkloadError) {
        do throws(GuestMemoryError) {
            for p in dirtyPages { try memory.hold(p * GuestMemory.pageSize, .readWrite).release() }
        } catch {
            throw .guest(error)
        }
    }

    /// One get-and-reset harvest of the whole guest space: the pages and the nanoseconds.
    public func harvest() throws(GuestWorkloadError) -> (pages: [UInt64], ns: UInt64) {
        let t0 = vgw_now_ns()
        let pages: [UInt64]
        do throws(GuestMemoryError) {
            pages = try memory.harvestDirty(0, memory.limit, .getAndReset)
        } catch {
            throw .guest(error)
        }
        return (pages, vgw_now_ns() &- t0)
    }

    /// Marks, then times one harvest and checks it found exactly the pages marked.
    public func measure() throws(GuestWorkloadError) -> UInt64 {
        try markDirty()
        let (pages, ns) = try harvest()
        guard pages == dirtyPages else {
            throw .wrongResult(workload: "dirty-harvest",
                               detail: "harvested \(pages.count) pages where \(dirtyPages.count) were marked")
        }
        return ns
    }

    public func run(repeats: Int, warmup: Int = 1,
                    progress: (Int, Int) -> Void = { _, _ in }) throws(GuestWorkloadError) -> TimingSamples {
        let stash = Stash()
        return try GuestWorkloadError.rounds([
            .init("dirty-harvest", opsPerRepeat: 1) { () throws(HostWorkloadError) -> UInt64 in
                do throws(GuestWorkloadError) { return try self.measure() } catch { throw stash.fail(error) }
            },
        ], repeats: repeats, warmup: warmup, stash: stash, progress: progress)[0]
    }
}
