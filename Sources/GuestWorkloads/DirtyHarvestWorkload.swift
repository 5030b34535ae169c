import CGuestWorkloads
import GuestMemory
import HostWorkloads

/// A get-and-reset harvest of the VMM's dirty bitmap over a whole standard
/// guest (64 GiB by default: a 68 GiB sysmem segment with its 4 GiB hole,
/// a 2.1 MiB bitmap) with 1 % of its pages dirty: one random page of every
/// 100. Before each timed harvest (untimed) the pages are marked dirty by
/// VMM writes that touch nothing — a read-write hold released (which marks
/// its page) — so the guest stays unpopulated. Each harvest must report
/// exactly the pages marked. The figure is the harvest, counted, committed
/// and released (the release zeroes the bitmap buffer it took); listing the
/// 167,000 pages is left out of it (the consumer's walk: about 1 ms).
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

    /// One harvest of the whole guest space, committed and released — the
    /// whole cycle that leaves the pages clean, timed — then (untimed) the
    /// pages it reported and the nanoseconds.
    public func harvest() throws(GuestWorkloadError) -> (pages: [UInt64], ns: UInt64) {
        let (harvest, ns) = try timedHarvest()
        return (harvest.pages, ns)
    }

    /// One harvest of the whole guest space counted (on the bits),
    /// committed and released, nothing else: the count. For a harness that
    /// times the call itself.
    public func harvestCycle() throws(GuestWorkloadError) -> Int {
        do throws(GuestMemoryError) {
            let h = try memory.harvestDirty(0 ..< memory.limit)
            let n = h.pageCount
            h.commit()
            return n
        } catch {
            throw .guest(error)
        }
    }

    /// The timed cycle: harvest, count (on the bits), commit, release (the
    /// harvest's end of scope zeroes the buffer it took, between `t2` and
    /// `t3`); the list is expanded between `t1` and `t2`, untimed.
    func timedHarvest() throws(GuestWorkloadError) -> (pages: DirtyPagesSeen, ns: UInt64) {
        var seen = DirtyPagesSeen()
        var ns: UInt64 = 0
        do throws(GuestMemoryError) {
            let t0 = vgw_now_ns()
            let h = try memory.harvestDirty(0 ..< memory.limit)
            seen.count = h.pageCount
            h.commit()
            let t1 = vgw_now_ns()
            ns = t1 &- t0
            seen.pages = h.pages
            ns &-= vgw_now_ns()
        } catch {
            throw .guest(error)
        }
        ns &+= vgw_now_ns()
        return (seen, ns)
    }

    /// Marks, then times one harvest and checks it found exactly the pages marked.
    public func measure() throws(GuestWorkloadError) -> UInt64 {
        try markDirty()
        let (seen, ns) = try timedHarvest()
        guard seen.count == dirtyPages.count, seen.pages == dirtyPages else {
            throw .wrongResult(workload: "dirty-harvest",
                               detail: "harvested \(seen.count) pages where \(dirtyPages.count) were marked")
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

/// What a timed harvest saw: the count on the bits, and (expanded untimed) the list.
struct DirtyPagesSeen {
    var count = 0
    var pages: [UInt64] = []
}
