import CGuestWorkloads
import GuestMemory
import HostWorkloads
import PageTables

/// A nested fault resolved in A/D emulation mode (FreeBSD's
/// `pmap_emulate_accessed_dirty` for EPT without A/D): a guest write to a
/// page whose leaf exists but is clean — its hardware W withheld until D is
/// set — faults, the handler sets D and grants W by compare-and-swap, and
/// the access is walked again. Over a cycle of 4096 random pages of a 64 MiB
/// mapping; before each timed round (untimed) a harvest clears D, taking W
/// away again, so every timed write faults exactly once.
///
/// Two arms, turn about: `table` is `NestedPageTable.guestAccess` (walk,
/// fault, handler, walk) on an `EPTEmulatedADFormat` table — the fault's
/// own cost; `guest` is `GuestMemory.touch` on an emulated-A/D guest — the
/// same through the VMM's locks and mapping check.
public final class NestedFaultWorkload {
    public static let mappingLength: UInt64 = 64 << 20

    public let faults: Int
    public let memory: GuestMemory
    let table: NestedPageTable<EPTEmulatedADFormat, HostTableAllocator>
    let pages: [UInt64]
    /// Host frame of GPA 0 in the table arm.
    static let tableHost: UInt64 = 0x40_0000_0000

    /// `faults` per repeat from 1 to 4096 (each page faults once per round).
    public init(faults: Int, seed: UInt64 = 5) throws(GuestWorkloadError) {
        try GuestWorkloadError.checkCount("faults", faults, maximum: 4096)
        self.faults = faults
        let len = Self.mappingLength
        do throws(GuestMemoryError) {
            memory = try GuestMemory(limit: len, nested: NestedTableMode(format: .ept, accessedDirty: .emulated))
            try memory.allocateSegment(id: 0, length: len)
            try memory.map(gpa: 0, segment: 0, offset: 0, length: len, protection: .readWrite)
        } catch {
            throw .guest(error)
        }
        do throws(NestedPageTableError) {
            let frames: HostTableAllocator
            do { frames = try HostTableAllocator() } catch { throw NestedPageTableError.table(error) }
            table = try NestedPageTable(frames: frames, superpages: false, addressLimit: len)
            try table.map(0, length: len, to: Self.tableHost, access: .readWrite, populate: false)
        } catch {
            throw .wrongResult(workload: "nested-fault", detail: "the table refused its mapping: \(error)")
        }
        // Distinct pages, so each faults once per round.
        var rng = SplitMix64(seed: seed)
        var chosen = Set<UInt64>()
        var order: [UInt64] = []
        while order.count < 4096 {
            let p = UInt64.random(in: 0..<(len / GuestMemory.pageSize), using: &rng) * GuestMemory.pageSize
            if chosen.insert(p).inserted { order.append(p) }
        }
        pages = order
        // Leaves installed (the first touch), so the timed faults are A/D emulation only.
        do {
            for g in pages {
                try memory.touch(g, write: true)
                _ = try table.guestAccess(g, .write)
            }
        } catch {
            throw .wrongResult(workload: "nested-fault", detail: "setting up: \(error)")
        }
    }

    /// Clears D everywhere (untimed): the next write to each page faults.
    public func rearm() throws(GuestWorkloadError) {
        do throws(GuestMemoryError) {
            _ = try memory.harvestDirty(0, Self.mappingLength, .reset)
        } catch {
            throw .guest(error)
        }
        do throws(NestedPageTableError) {
            try table.scanDirty(0, length: Self.mappingLength, clear: true) { _ in }
        } catch {
            throw .wrongResult(workload: "nested-fault", detail: "re-arming the table: \(error)")
        }
    }

    /// `faults` write faults on the table; the nanoseconds (checked: every
    /// write went through to its frame and faulted once).
    public func faultTable() throws(GuestWorkloadError) -> UInt64 {
        try rearm()
        let before = table.generation
        let t0 = vgw_now_ns()
        var wrong = 0
        do throws(NestedPageTableError) {
            for g in pages.prefix(faults) {
                let outcome = try table.guestAccess(g, .write)
                if outcome.hostAddress != Self.tableHost + g { wrong += 1 }
            }
        } catch {
            throw .wrongResult(workload: "nested-fault", detail: "\(error)")
        }
        let ns = vgw_now_ns() &- t0
        guard wrong == 0, table.generation == before else {
            throw .wrongResult(workload: "nested-fault", detail: "\(wrong) writes missed their frame")
        }
        var dirty = 0
        do throws(NestedPageTableError) {
            try table.scanDirty(0, length: Self.mappingLength, clear: false) { _ in dirty += 1 }
        } catch {
            throw .wrongResult(workload: "nested-fault", detail: "\(error)")
        }
        guard dirty == faults else {
            throw .wrongResult(workload: "nested-fault", detail: "\(dirty) pages dirty after \(faults) write faults")
        }
        return ns
    }

    /// `faults` write faults through `GuestMemory.touch`; the nanoseconds.
    public func faultGuest() throws(GuestWorkloadError) -> UInt64 {
        try rearm()
        let t0 = vgw_now_ns()
        var wrong = 0
        do throws(GuestMemoryError) {
            for g in pages.prefix(faults) where try memory.touch(g, write: true) != memory.hostBase + g { wrong += 1 }
        } catch {
            throw .guest(error)
        }
        let ns = vgw_now_ns() &- t0
        guard wrong == 0 else { throw .wrongResult(workload: "nested-fault.guest", detail: "\(wrong) writes missed their frame") }
        return ns
    }

    /// `faults` write faults on the table, untimed and unchecked (for a
    /// harness that times the call itself, after ``rearm()``); the frames
    /// reached, summed.
    public func tableFaults() throws(GuestWorkloadError) -> UInt64 {
        var sum: UInt64 = 0
        do throws(NestedPageTableError) {
            for g in pages.prefix(faults) { sum &+= try table.guestAccess(g, .write).hostAddress ?? 0 }
        } catch {
            throw .wrongResult(workload: "nested-fault", detail: "\(error)")
        }
        return sum
    }

    /// The table arm and the guest arm, turn about.
    public func run(repeats: Int, warmup: Int = 1,
                    progress: (Int, Int) -> Void = { _, _ in }) throws(GuestWorkloadError) -> (table: TimingSamples, guest: TimingSamples) {
        let stash = Stash()
        let s = try GuestWorkloadError.rounds([
            .init("nested-fault", opsPerRepeat: faults) { () throws(HostWorkloadError) -> UInt64 in
                do throws(GuestWorkloadError) { return try self.faultTable() } catch { throw stash.fail(error) }
            },
            .init("nested-fault.guest", opsPerRepeat: faults) { () throws(HostWorkloadError) -> UInt64 in
                do throws(GuestWorkloadError) { return try self.faultGuest() } catch { throw stash.fail(error) }
            },
        ], repeats: repeats, warmup: warmup, stash: stash, progress: progress)
        return (s[0], s[1])
    }
}
