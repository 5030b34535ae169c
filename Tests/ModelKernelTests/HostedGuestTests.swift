import Testing
import Foundation
import GuestMemory
import Inspect
import PhysicalMemory
@testable import ModelKernel

/// Guests hosted through GuestMemory, their system memory from
/// `vmm_alloc_arena` through the kernel's page provider (issue 15, item 5).
@Suite("hosted guests: GuestMemory over vmm_alloc_arena")
struct HostedGuestTests {
    @Test("::memstat of a kernel with two guests: VMM Memory is exactly their pages, the dump skips them")
    func twoGuests() throws {
        let k = try ModelKernel(model: .post12608, physmem: 8 * GiB)
        try k.run(KernelWorkload(kmemAllocations: 32, threads: 4, lwps: 1, zfsBuffers: 4, fileBytes: 16 << 10))
        let before = k.memstat()
        let dumpBefore = k.dumpPages()
        let small = try k.createGuest(size: 64 * MiB)
        let large = try k.createGuest(size: 5 * GiB)   // lowmem 3 GiB at 0, highmem 2 GiB at 4 GiB
        let m = k.memstat()
        #expect(m.vmmMemory == (64 * MiB + 5 * GiB) / 4096)
        #expect(m.vmmMemory - before.vmmMemory == k.hostedGuests.reduce(0) { $0 + $1.size / 4096 })
        #expect(m.total + m.freelist == m.physmem)
        #expect(k.hostedGuests.map(\.address) == [small.address, large.address].sorted())
        // The layout: one sysmem segment, lowmem at 0 and highmem at 4 GiB.
        #expect(large.memory.mappings.map(\.gpa) == [0, 4 * GiB])
        #expect(large.memory.mappings.map(\.length) == [3 * GiB, 2 * GiB])
        #expect(small.memory.mappings.map(\.length) == [64 * MiB])
        // Each segment's backing is a vmm_alloc_arena allocation in kvmmseg, on KV_VVP at offset = VA.
        for g in [small, large] {
            let b = try #require(g.backings.first)
            #expect(b.length == g.size)
            #expect(k.segment(containing: b.address)?.name == "kvmmseg")
            for va in [b.address, b.address + b.length / 2, b.address + b.length - 4096] {
                let w = k.whatis(va)
                #expect(w.page?.vnode == .vvp && w.page?.offset == va && w.category == .vmmMemory)
            }
            #expect(k.guests.contains { $0.address == b.address && $0.size == b.length })
        }
        // The dump: nothing of the guests; their vm_t (kmem) is kernel memory like any other.
        let dump = k.dumpPages()
        #expect(!dump.contains { $0.vnode == .vvp })
        for b in small.backings + large.backings {
            #expect(!dump.contains { $0.address >= b.address && $0.address < b.address + b.length })
        }
        #expect(dump.count >= dumpBefore.count)
        // The VMM's bytes go to the guest's own host memory, through both mappings.
        try large.memory.write(4 * GiB + 8192, [1, 2, 3])
        #expect(try large.memory.read(4 * GiB + 8192, count: 3) == [1, 2, 3])
        try k.verify()

        try k.destroyGuest(small)
        try k.destroyGuest(large)
        let after = k.memstat()
        #expect(after.vmmMemory == 0 && k.hostedGuests.isEmpty && k.guests.isEmpty)
        #expect(k.arenas["kvmm_arena"]?.statistics.memInUse == 0)
        #expect(after.total + after.freelist == after.physmem)
        try k.verify()
    }

    @Test("a guest the kernel cannot back is the page layer's error, and nothing changes")
    func refusal() throws {
        let k = try ModelKernel(model: .post12608, physmem: 256 * MiB)
        let before = k.memstat()
        let records = k.physicalMemory.recordCount
        do {
            _ = try k.createGuest(size: 512 * MiB)
            Issue.record("a 512 MiB guest fit in 256 MiB")
        } catch {
            guard case .physicalMemory(.outOfMemory, _) = error else { Issue.record("unexpected \(error)"); return }
        }
        #expect(k.memstat() == before)
        #expect(k.physicalMemory.recordCount == records)
        #expect(k.hostedGuests.isEmpty && k.guests.isEmpty)
        try k.verify()
        let pre = try ModelKernel(model: .pre12608, physmem: 1 * GiB)
        #expect(throws: ModelKernelError.notSupported(model: "pre-12608", feature: "vmm_alloc_arena arena")) {
            try pre.createGuest(size: MiB)
        }
        #expect(throws: ModelKernelError.invalidArgument(name: "guest size", value: 0, reason: "must not be zero")) {
            try k.createGuest(size: 0)
        }
    }

    @Test("a hosted guest's memory goes only with the guest")
    func ownership() throws {
        let k = try ModelKernel(model: .post12608, physmem: 1 * GiB)
        let g = try k.createGuest(size: 16 * MiB)
        let b = try #require(g.backings.first)
        do {
            try k.vmmFree(b.address, size: b.length)
            Issue.record("vmmFree freed a hosted guest's memory")
        } catch {
            guard case .invalidArgument(name: "guest memory address", value: b.address, _) = error else {
                Issue.record("unexpected \(error)"); return
            }
        }
        #expect(k.memstat().vmmMemory == 16 * MiB / 4096)
        // A hold keeps the guest alive: destroy is refused and changes nothing.
        let hold = try g.memory.hold(4096, .read)
        #expect(throws: ModelKernelError.self) { try k.destroyGuest(g) }
        #expect(k.memstat().vmmMemory == 16 * MiB / 4096 && k.hostedGuests.count == 1)
        hold.release()
        try k.destroyGuest(g)
        #expect(throws: ModelKernelError.unknownAllocation(kind: "guest (vm_t)", address: g.address)) {
            try k.destroyGuest(g)
        }
        #expect(k.memstat().vmmMemory == 0)
        try k.verify()
    }

    @Test("records and page tables grow with runs, not with guest pages")
    func recordsStayProportionalToRuns() throws {
        let k = try ModelKernel(model: .post12608, physmem: 32 * GiB)
        let records = k.physicalMemory.recordCount
        let tables = k.hat.tablePages
        var guests: [ModelGuest] = []
        for _ in 0..<3 { guests.append(try k.createGuest(size: 4 * GiB)) }
        #expect(k.memstat().vmmMemory == 3 * (4 * GiB / 4096))
        // 3 Mi pages of guest memory; a handful of records: the runs, the vm_ts, a few page tables.
        #expect(k.physicalMemory.recordCount - records < 40, "records: \(k.physicalMemory.recordCount - records)")
        #expect(k.hat.tablePages - tables < 16, "1 GiB and 2 MiB leaves need few tables")
        #expect(k.physicalMemory.metadataFootprint < 4 << 20)
        try k.verify()
        for g in guests { try k.destroyGuest(g) }
        #expect(k.memstat().vmmMemory == 0)
        try k.verify()
    }

    @Test("guests made and destroyed on several threads while mdb reads them: no deadlock, nothing lost")
    func concurrent() throws {
        let k = try ModelKernel(model: .post12608, physmem: 4 * GiB)
        let failures = Locked(0)
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            let session = MdbSession(kernel: k)
            for round in 0..<8 {
                if worker == 3 {
                    // A reader: the guest tables and ::memstat, as mdb would.
                    _ = session.execute("::vm")
                    _ = session.execute("::walk vm | ::memseg")
                    _ = session.execute("::memstat")
                    continue
                }
                do {
                    let g = try k.createGuest(size: UInt64(1 + (worker + round) % 4) * 8 * MiB)
                    try g.memory.write(0x1000, [UInt8(round)])
                    try k.destroyGuest(g)
                } catch {
                    failures.withLock { $0 += 1 }
                }
            }
        }
        #expect(failures.withLock { $0 } == 0)
        #expect(k.hostedGuests.isEmpty && k.memstat().vmmMemory == 0)
        try k.verify()
    }

    @Test("soak (VMKIT_SOAK=1): 2 TiB, four 64 GiB guests, in a second and under 512 MiB",
          .enabled(if: ProcessInfo.processInfo.environment["VMKIT_SOAK"] == "1"))
    func realSize() throws {
        let clock = ContinuousClock()
        let start = clock.now
        let k = try ModelKernel(model: .post12608, physmem: 2048 * GiB)
        var w = KernelWorkload.standard(physmem: 2048 * GiB)
        w.guests = 4
        w.guestSize = 64 * GiB
        let r = try k.run(w)
        #expect(k.memstat().vmmMemory == 4 * (64 * GiB / 4096))
        #expect(k.physicalMemory.recordCount < 20_000)
        try k.verify()
        for g in r.guests { try k.destroyGuest(g) }
        #expect(k.memstat().vmmMemory == 0)
        #expect(clock.now - start < .seconds(30), "a debug build; release takes well under a second")
    }
}

/// A value behind an `NSLock`, for counting across test threads.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
