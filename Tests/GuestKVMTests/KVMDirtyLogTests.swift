import GuestKVM
import GuestMemory
import Testing

@Suite("KVM dirty logs")
struct KVMDirtyLogTests {
    static let sysmem: UInt64 = 1 << 20

    /// Real-mode code at 0x3000: `mov byte [0x7000], 0x17; hlt`.
    static let snippet: [UInt8] = [0xC6, 0x06, 0x00, 0x70, 0x17, 0xF4]
    /// Long-mode code at 0x3000: `mov byte [abs 0x7000], 0x17; hlt`.
    static let longModeSnippet: [UInt8] = [0xC6, 0x04, 0x25, 0x00, 0x70, 0x00, 0x00, 0x17, 0xF4]

    /// Writes `code` at guest address 0x3000 and runs the vCPU from there
    /// until the code's `hlt`.
    static func run(_ code: [UInt8], on guest: KVMGuest) throws {
        try guest.memory.write(0x3000, code)
        let vcpu = try #require(guest.vcpu)
        var regs = try vcpu.registers()
        regs.rip = 0x3000
        try vcpu.setRegisters(regs)
        #expect(try guest.run() == [.hlt])
    }

    @Test("each mode reports exactly the pages the guest wrote; abort keeps them; VMM and guest writes in one harvest",
          arguments: [KVMDirtyLogMode.bitmap, .manual, .ring])
    func mode(_ mode: KVMDirtyLogMode) throws {
        guard KVMTestSupport.kvmUsable("dirty log \(mode)") else { return }
        let guest = try KVMGuest(memorySize: Self.sysmem, payload: .realmode, dirtyLog: mode, requireKVM: true)
        let vm = try #require(guest.vm)
        #expect(vm.dirtyLogMode == mode)
        try guest.run()

        // The first harvest: the VMM's load (page 1) and the guest's writes.
        let h1 = try guest.memory.harvestDirty(0 ..< Self.sysmem)
        #expect(h1.pages == [1, 2, 5])
        #expect(guest.guestDirtyPages == [2, 5])
        // Aborted: every page is dirty again, KVM's included.
        #expect(h1.abort())
        let h2 = try guest.memory.harvestDirty(0 ..< Self.sysmem)
        #expect(h2.pages == [1, 2, 5])
        #expect(h2.commit())
        #expect(try guest.memory.harvestDirty(0, Self.sysmem, .get) == [])

        // A VMM write (the snippet at page 3) and a guest write (page 7)
        // land in one harvest.
        try Self.run(Self.snippet, on: guest)
        #expect(try guest.memory.read(0x7000, count: 1) == [0x17])
        let h3 = try guest.memory.harvestDirty(0 ..< Self.sysmem)
        #expect(h3.pages == [3, 7])
        h3.commit()
        #expect(guest.guestDirtyPages == [2, 5, 7])
    }

    @Test("a full dirty ring is drained into the VMM bitmap and the guest goes on; an overrun loses no page and the ring is read on")
    func ringFull() throws {
        guard KVMTestSupport.kvmUsable("dirty ring full") else { return }
        // 16 KiB = 1,024 entries, of which KVM keeps up to 576 in reserve:
        // the 64 pages of the pattern, logged once per write under this
        // nested KVM, fill it several times over. This nested KVM also runs
        // past the ring's end before it stops the vCPU, sometimes by more
        // than a whole ring: every page must still be reported, and the
        // ring must afterwards be read where KVM writes.
        let touch: UInt64 = 256 << 10
        let sysmem: UInt64 = 2 << 20
        let guest = try KVMGuest(memorySize: sysmem, payload: .pattern, touch: touch, dirtyLog: .ring,
                                 dirtyRingBytes: 16 << 10, requireKVM: true)
        #expect(guest.vm?.dirtyRingBytes == 16 << 10)
        let outcome = Result { () throws(KVMError) -> [KVMExit] in try guest.run(maxExits: 4096) }
        switch outcome {
        case .success(let exits):
            #expect(exits.contains(.dirtyRingFull))
            #expect(exits.last == .hlt)
            #expect(guest.guestChecksum == GuestPayload.expectedPatternSum(length: touch))
            let vm = try #require(guest.vm)
            let first = GuestPayload.dataBase / 4096
            let h1 = try guest.memory.harvestDirty(0 ..< guest.memory.limit)
            #expect(Set(first ..< first + touch / 4096).isSubset(of: Set(h1.pages)))
            #expect(Set(first ..< first + touch / 4096).isSubset(of: Set(guest.guestDirtyPages)))
            if vm.dirtyRingOverflows > 0 {
                // A pass found the ring full: every page is reported, none lost.
                let unreported = Set(0 ..< sysmem / 4096).subtracting(h1.pages).sorted()
                #expect(unreported.isEmpty, "\(unreported.count) pages unreported, from \(unreported.first ?? 0) to \(unreported.last ?? 0)")
            }
            h1.commit()

            // After the overruns the ring must still be read where KVM
            // writes: one guest store (page 7) is seen, and the whole-memory
            // marking of an overrun does not linger.
            try Self.run(Self.longModeSnippet, on: guest)
            let h2 = try guest.memory.harvestDirty(0 ..< guest.memory.limit)
            #expect(h2.pages.contains(3) && h2.pages.contains(7))
            #expect(!h2.pages.contains(first))
            h2.commit()
            print("ring full: \(vm.dirtyRingOverflows) overflowing passes, \(vm.dirtyRingResyncs) resyncs")
        case .failure(let error):
            Issue.record("unexpected: \(error)")
        }
    }
}
