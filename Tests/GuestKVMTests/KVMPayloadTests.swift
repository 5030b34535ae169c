import GuestKVM
import GuestMemory
import PageTables
import Testing

@Suite("KVM payloads")
struct KVMPayloadTests {
    static let sysmemPages: UInt64 = (1 << 20) / 4096

    @Test("real mode: io 0x10 with 0x42, hlt; RAM written; KVM's log {2,5}; combined {1,2,5}")
    func realMode() throws {
        guard KVMTestSupport.kvmUsable("the real-mode payload") else { return }
        let guest = try KVMGuest(memorySize: 1 << 20, payload: .realmode, requireKVM: true)
        // Loaded by the VMM: in the VMM bitmap before the guest runs.
        #expect(try guest.dirtyPages().filter { $0 < Self.sysmemPages } == [1])
        let exits = try guest.run()
        #expect(exits == [.io(port: 0x10, size: 1, direction: .out, count: 1, data: [0x42]), .hlt])
        #expect(try guest.memory.read(0x2000, count: 1) == [0x42])
        #expect(try guest.memory.read(0x5000, count: 1) == [0x99])
        let dirty = try guest.dirtyPages()
        #expect(guest.guestDirtyPages == [2, 5])
        #expect(dirty.filter { $0 < Self.sysmemPages } == [1, 2, 5])
    }

    @Test("long mode: tables from PageTables; io 0x10, hlt; KVM's log is {2,5} plus the table pages the walk set A/D in")
    func longMode() throws {
        guard KVMTestSupport.kvmUsable("the long-mode payload") else { return }
        let guest = try KVMGuest(memorySize: 1 << 20, payload: .longmode, requireKVM: true)
        let exits = try guest.run()
        #expect(exits == [.io(port: 0x10, size: 1, direction: .out, count: 1, data: [0x42]), .hlt])
        #expect(try guest.memory.read(0x2000, count: 1) == [0x42])
        #expect(try guest.memory.load(UInt64.self, at: 0x5000) == 0x99)
        // The page walk for the code and data (all in the first GiB) sets
        // A in the PML4 and PDPT entries and A (and D, on writes) in the
        // leaf: the CPU writes those table pages, so KVM logs them. The
        // tables for 1-4 GiB are not walked.
        let pml4 = guest.tablePages[0], pdpt = guest.tablePages[1]
        var walked: [UInt64] = [pml4, pdpt]
        if guest.identityPageSize == .size2M { walked.append(guest.tablePages[2]) }
        _ = try guest.dirtyPages()
        #expect(guest.guestDirtyPages == ([2, 5] + walked).sorted())
        let accessed = X86PTEFormat.accessed
        #expect(try guest.memory.load(UInt64.self, at: pml4 * 4096) & accessed != 0)
        #expect(try guest.memory.load(UInt64.self, at: pdpt * 4096) & accessed != 0)
        // Combined: the VMM loaded the code and every table page.
        let combined = try guest.dirtyPages().filter { $0 < Self.sysmemPages }
        #expect(combined == ([1, 2, 5] + guest.tablePages).sorted())
    }

    @Test("a write to the read-only ROM exits as MMIO and leaves the ROM; an unmapped GPA exits as MMIO")
    func romWrite() throws {
        guard KVMTestSupport.kvmUsable("the rom-write payload") else { return }
        let guest = try KVMGuest(memorySize: 1 << 20, payload: .romWrite, requireKVM: true)
        let slot = try #require(guest.vm?.slots.first { $0.gpa == KVMGuestMemory.romAddress })
        #expect(slot.readOnly)
        let exits = try guest.run()
        let rom = KVMGuestMemory.romAddress
        #expect(exits == [
            .io(port: 0x10, size: 1, direction: .out, count: 1, data: [KVMGuestMemory.romSignature[0]]),
            .mmio(gpa: rom, length: 1, isWrite: true, data: [GuestPayload.romWriteValue]),
            .mmio(gpa: GuestPayload.unmappedProbe, length: 1, isWrite: false, data: [0xFF]),
            .io(port: 0x11, size: 1, direction: .out, count: 1, data: [0xFF]),
            .hlt,
        ])
        #expect(try guest.memory.read(rom, count: 8) == KVMGuestMemory.romSignature)
        _ = try guest.dirtyPages()
        #expect(!guest.guestDirtyPages.contains(rom / 4096))
    }

    @Test("pattern then checksum report the host's sum; the log holds every touched page", arguments: [UInt64(64 << 10), 256 << 10])
    func patternAndChecksum(touch: UInt64) throws {
        guard KVMTestSupport.kvmUsable("the pattern payload") else { return }
        let expected = GuestPayload.expectedPatternSum(length: touch)
        let guest = try KVMGuest(memorySize: 2 << 20, payload: .pattern, touch: touch, requireKVM: true)
        let exits = try guest.run()
        #expect(exits.last == .hlt)
        #expect(guest.guestChecksum == expected)
        _ = try guest.dirtyPages()
        let first = GuestPayload.dataBase / 4096
        let touched = Set(first ..< first + touch / 4096)
        #expect(touched.isSubset(of: Set(guest.guestDirtyPages)))
        #expect(try guest.memory.load(UInt64.self, at: GuestPayload.dataBase) == GuestPayload.dataBase ^ GuestPayload.seed)

        // checksum over memory the VMM filled the same way: same sum, no writes.
        let check = try KVMGuest(memorySize: 2 << 20, payload: .checksum, touch: touch, requireKVM: true)
        var a = GuestPayload.dataBase
        while a < GuestPayload.dataBase + touch {
            try check.memory.store(a ^ GuestPayload.seed, at: a)
            a += GuestPayload.stride
        }
        try check.run()
        #expect(check.guestChecksum == expected)
        _ = try check.dirtyPages()
        #expect(check.guestDirtyPages.allSatisfy { !touched.contains($0) })
    }

    @Test("without KVM the guest memory is built and loaded, and no vCPU runs")
    func withoutKVM() throws {
        let guest = try KVMGuest(memorySize: 1 << 20, payload: .longmode, useKVM: false)
        #expect(guest.vm == nil && guest.vcpu == nil)
        #expect(guest.kvmUnavailableReason != nil)
        #expect(try guest.run().isEmpty)
        #expect(try guest.memory.read(GuestPayload.codeAddress, count: 2) == [0xC6, 0x04])
        #expect(try guest.dirtyPages().filter { $0 < Self.sysmemPages } == ([1] + guest.tablePages).sorted())
    }

    @Test("the guest's page tables, cleared when the guest goes, are dirty in the memory that stays")
    func tableTeardownIsDirty() throws {
        var guest: KVMGuest? = try KVMGuest(memorySize: 1 << 20, payload: .longmode, useKVM: false)
        let memory = try #require(guest?.memory)
        let tables = try #require(guest?.tablePages)
        let pml4 = tables[0]
        #expect(try memory.read(pml4 * 4096, count: 8) != [UInt8](repeating: 0, count: 8))
        try memory.harvestDirty(0 ..< memory.limit).commit()
        #expect(try memory.harvestDirty(0, memory.limit, .get) == [])
        guest = nil
        // The tables were cleared in guest memory: a snapshot diff taken now
        // must carry them, so they must be dirty.
        #expect(try memory.read(pml4 * 4096, count: 8) == [UInt8](repeating: 0, count: 8))
        let dirty = try memory.harvestDirty(0, memory.limit, .get)
        #expect(Set(tables).isSubset(of: Set(dirty)), "tables \(tables), dirty \(dirty)")
    }
}
