import Foundation
import GuestKVM
import GuestMemory
import GuestSnapshot
import Testing

/// Snapshots meet a real vCPU: a guest's own writes (KVM's log) and the
/// VMM's writes in the same diff, restores (eager and lazy) that a payload
/// resumes on, and a lazy restore that serves only the pages the guest
/// touches.
@Suite("KVM snapshots and restores")
struct KVMSnapshotTests {
    /// A fresh directory for one test's files, removed by the caller.
    static func directory() throws -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("vmkit-kvm-snap-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// The sysmem pages a snapshot records (segment 0).
    static func recorded(_ path: String) throws -> [UInt64] {
        try SnapshotFile(path: path).recordedPages(segmentIndex: 0)
    }

    /// Points the vCPU at the payload again (a second run of the same code).
    static func rewind(_ guest: KVMGuest) throws {
        guard let vcpu = guest.vcpu else { return }
        var r = try vcpu.registers()
        r.rip = GuestPayload.codeAddress
        r.rdi = GuestPayload.dataBase
        try vcpu.setRegisters(r)
    }

    @Test("pattern, full snapshot, restore, checksum: the same sum", arguments: [false, true])
    func checksumAfterRestore(lazy: Bool) throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let touch: UInt64 = 64 << 10
        let kvm = KVMTestSupport.kvmUsable("snapshot/restore with a payload")
        let before = try KVMGuest(memorySize: 16 << 20, payload: .pattern, touch: touch, useKVM: kvm, requireKVM: kvm)
        try before.run(maxExits: 1 << 12)
        let path = dir + "/base"
        let full = try GuestSnapshotter(memory: before.memory).writeFull(to: path)
        #expect(full.kind == .full)
        let restored = try KVMRestoredGuest(paths: [path], lazy: lazy, payload: .checksum, touch: touch,
                                            useKVM: kvm, requireKVM: kvm)
        #expect(restored.isLazy == lazy)
        // Checksum's code is not pattern's: page 1 is the one page the VMM
        // writes; the long-mode tables are the snapshot's.
        #expect(restored.guest.resumeReport == KVMResumeReport(codeReloaded: true, tablesRebuilt: false))
        guard kvm else {
            // Without a vCPU the VMM still sees the snapshot's bytes (nothing ran: zero).
            #expect(try restored.guest.memory.read(GuestPayload.dataBase, count: 8) == [UInt8](repeating: 0, count: 8))
            return
        }
        let sum = try #require(before.guestChecksum)
        #expect(sum == GuestPayload.expectedPatternSum(length: touch))
        let exits = try restored.guest.run(maxExits: 1 << 12)
        #expect(exits.last == .hlt)
        #expect(restored.guest.guestChecksum == sum)
        if lazy {
            let stats = try #require(restored.statistics)
            // The 16 data pages, page 1, and the tables' pages — not the 4,096 of RAM.
            #expect(stats.faultsServed >= touch / 4096 + 1)
            #expect(stats.faultsServed <= touch / 4096 + 1 + UInt64(restored.guest.tablePages.count) + 4)
            #expect(stats.servedTwice == 0 && stats.refused == 0)
        } else {
            #expect(restored.faults == 0)
            #expect(try #require(restored.eager).pagesRestored >= touch / 4096)
        }
    }

    @Test("a lazy restore of a 1 GiB guest whose payload reads 1 MiB serves about 256 faults")
    func lazyFaultsFollowTheTouch() throws {
        guard KVMTestSupport.kvmUsable("the 1 GiB lazy restore") else { return }
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let touch: UInt64 = 1 << 20
        let path = dir + "/base"
        let sum: UInt32
        do {
            let g = try KVMGuest(memorySize: 1 << 30, payload: .pattern, touch: touch, requireKVM: true)
            try g.run(maxExits: 1 << 12)
            sum = try #require(g.guestChecksum)
            let report = try GuestSnapshotter(memory: g.memory).writeFull(to: path)
            // Data pages, code, tables, the ROM: a few hundred of 262,144.
            #expect(report.pagesRecorded < 400)
            try g.vm?.close()
        }
        let restored = try KVMRestoredGuest(paths: [path], lazy: true, payload: .checksum, touch: touch, requireKVM: true)
        let exits = try restored.guest.run(maxExits: 1 << 12)
        #expect(exits.last == .hlt)
        #expect(restored.guest.guestChecksum == sum)
        let stats = try #require(restored.statistics)
        // 256 data pages + page 1 + the table pages the walk reads (PML4,
        // PDPT, one directory); nowhere near 262,144.
        let tables = UInt64(restored.guest.tablePages.count)
        #expect(stats.faultsServed >= 256)
        #expect(stats.faultsServed <= 300 + tables, "faults \(stats.faultsServed)")
        #expect(stats.prefetched == 0)
        #expect(stats.servedTwice == 0)
    }

    @Test("Firecracker #3666 end to end: a diff after a guest write and a VMM write holds both pages")
    func diffHoldsGuestAndVMMWrites() throws {
        guard KVMTestSupport.kvmUsable("the guest/VMM diff") else { return }
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let guest = try KVMGuest(memorySize: 1 << 20, payload: .realmode, requireKVM: true)
        try guest.run()
        let snapshotter = GuestSnapshotter(memory: guest.memory)
        try snapshotter.writeFull(to: dir + "/base")
        #expect(try Self.recorded(dir + "/base").contains(2))
        // The guest writes pages 2 and 5 again (KVM's log); the VMM writes page 7.
        try Self.rewind(guest)
        #expect(try guest.run().last == .hlt)
        try guest.memory.write(7 * 4096, [0xEE])
        let diff = try snapshotter.writeDiff(to: dir + "/d1")
        #expect(diff.kind == .diff)
        #expect(try Self.recorded(dir + "/d1") == [2, 5, 7])
        // Restored, the chain holds both writers' bytes.
        let (memory, _) = try SnapshotChain(paths: [dir + "/base", dir + "/d1"]).restoreIntoNewMemory()
        #expect(try memory.read(0x2000, count: 1) == [0x42])
        #expect(try memory.read(7 * 4096, count: 1) == [0xEE])
    }

    @Test("after a committed snapshot the next diff holds only the pages written since", arguments: [false, true])
    func diffAfterCommitHoldsOnlyNewWrites(lazy: Bool) throws {
        guard KVMTestSupport.kvmUsable("the diff after a commit") else { return }
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let touch: UInt64 = 16 << 10
        let data = Array(GuestPayload.dataBase / 4096 ..< (GuestPayload.dataBase + touch) / 4096)
        let guest = try KVMGuest(memorySize: 8 << 20, payload: .pattern, touch: touch, requireKVM: true)
        try guest.run(maxExits: 1 << 12)
        let snapshotter = GuestSnapshotter(memory: guest.memory)
        try snapshotter.writeFull(to: dir + "/base")
        // Nothing written since: an empty diff.
        #expect(try snapshotter.writeDiff(to: dir + "/d1").pagesRecorded == 0)
        // The guest writes its range again: those pages (and at most the
        // tables the walk touches), not the code, not the ROM.
        try Self.rewind(guest)
        #expect(try guest.run(maxExits: 1 << 12).last == .hlt)
        try snapshotter.writeDiff(to: dir + "/d2")
        let d2 = try Self.recorded(dir + "/d2")
        #expect(Set(data).isSubset(of: d2))
        #expect(Set(d2).isSubset(of: Set(data + guest.tablePages)))
        #expect(try SnapshotFile(path: dir + "/d2").recordedPages(segmentIndex: 1).isEmpty)
        // Resumed on the chain, `checksum` reads only: the next diff is page 1
        // alone (the VMM wrote checksum's code over pattern's).
        let chain = [dir + "/base", dir + "/d1", dir + "/d2"]
        let restored = try KVMRestoredGuest(paths: chain, lazy: lazy, payload: .checksum, touch: touch, requireKVM: true)
        #expect(try restored.guest.run(maxExits: 1 << 12).last == .hlt)
        #expect(restored.guest.guestChecksum == GuestPayload.expectedPatternSum(length: touch))
        let d3 = try restored.snapshotter().writeDiff(to: dir + "/d3")
        #expect(d3.position == 3)
        #expect(try Self.recorded(dir + "/d3") == [1])
    }

    @Test("without a vCPU: the VMM's writes are snapshotted and restored, eagerly and lazily", arguments: [false, true])
    func withoutKVM(lazy: Bool) throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let guest = try KVMGuest(memorySize: 4 << 20, payload: .realmode, useKVM: false)
        #expect(guest.kvmUnavailableReason != nil && guest.vm == nil)
        try guest.memory.write(0x3000, [7, 8, 9])
        try GuestSnapshotter(memory: guest.memory).writeFull(to: dir + "/base")
        let restored = try KVMRestoredGuest(paths: [dir + "/base"], lazy: lazy, payload: .realmode, useKVM: false)
        #expect(try restored.guest.run().isEmpty)
        #expect(try restored.guest.memory.read(0x3000, count: 3) == [7, 8, 9])
        #expect(restored.guest.resumeReport == KVMResumeReport(codeReloaded: false, tablesRebuilt: false))
        // The ROM came back from the file, not from a reload.
        #expect(try restored.guest.memory.read(KVMGuestMemory.romAddress, count: 8) == KVMGuestMemory.romSignature)
        // Nothing dirty: the restored state is the committed one.
        #expect(try restored.guest.dirtyPages().isEmpty)
        if lazy {
            // Page 1 (compared with the code), page 3, the ROM's first page.
            #expect(restored.faults == 3)
        }
    }

    @Test("a snapshot not of a vmkit guest is refused as not bootable, naming what differs")
    func foreignSnapshotIsRefused() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let memory = try GuestMemory(limit: 1 << 20)
        try memory.allocateSegment(id: 0, length: 1 << 20)
        try memory.map(gpa: 0, segment: 0, offset: 0, length: 1 << 20, protection: .readWrite)
        try memory.write(0x1000, [1])
        try GuestSnapshotter(memory: memory).writeFull(to: dir + "/other")
        #expect {
            _ = try KVMRestoredGuest(paths: [dir + "/other"], lazy: false, payload: .realmode, useKVM: false)
        } throws: { e in
            guard case KVMError.notABootableGuest(let d)? = e as? KVMError else { return false }
            return d.contains("sysmem mapping at guest address 0")
        }
        // A missing file is refused by the chain, typed.
        #expect {
            _ = try KVMRestoredGuest(paths: [dir + "/missing"], lazy: true, payload: .realmode, useKVM: false)
        } throws: { e in
            if case KVMError.snapshot? = e as? KVMError { return true }
            return false
        }
    }
}
