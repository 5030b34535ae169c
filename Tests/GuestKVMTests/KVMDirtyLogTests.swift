import GuestKVM
import GuestMemory
import Testing

@Suite("KVM dirty logs")
struct KVMDirtyLogTests {
    static let sysmem: UInt64 = 1 << 20

    /// Real-mode code at 0x3000: `mov byte [0x7000], 0x17; hlt`.
    static let snippet: [UInt8] = [0xC6, 0x06, 0x00, 0x70, 0x17, 0xF4]

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
        try guest.memory.write(0x3000, Self.snippet)
        let vcpu = try #require(guest.vcpu)
        var regs = try vcpu.registers()
        regs.rip = 0x3000
        try vcpu.setRegisters(regs)
        #expect(try guest.run() == [.hlt])
        #expect(try guest.memory.read(0x7000, count: 1) == [0x17])
        let h3 = try guest.memory.harvestDirty(0 ..< Self.sysmem)
        #expect(h3.pages == [3, 7])
        h3.commit()
        #expect(guest.guestDirtyPages == [2, 5, 7])
    }

    @Test("a full dirty ring is drained into the VMM bitmap and the guest goes on, or KVM's overflow is a typed error")
    func ringFull() throws {
        guard KVMTestSupport.kvmUsable("dirty ring full") else { return }
        // 16 KiB = 1,024 entries, of which KVM keeps 576 in reserve: the
        // 64 pages of the pattern, logged once per write under this nested
        // KVM, fill it several times over. The nested KVM can also push past
        // the ring's end before it stops the vCPU (a kvm_dirty_ring_push
        // warning in the host log); that must come out as
        // dirtyRingOverflow, never as a hang or a silent loss.
        let touch: UInt64 = 256 << 10
        let guest = try KVMGuest(memorySize: 2 << 20, payload: .pattern, touch: touch, dirtyLog: .ring,
                                 dirtyRingBytes: 16 << 10, requireKVM: true)
        #expect(guest.vm?.dirtyRingBytes == 16 << 10)
        let outcome = Result { () throws(KVMError) -> [KVMExit] in try guest.run(maxExits: 4096) }
        switch outcome {
        case .success(let exits):
            #expect(exits.contains(.dirtyRingFull))
            #expect(exits.last == .hlt)
            #expect(guest.guestChecksum == GuestPayload.expectedPatternSum(length: touch))
            _ = try guest.dirtyPages()
            let first = GuestPayload.dataBase / 4096
            #expect(Set(first ..< first + touch / 4096).isSubset(of: Set(guest.guestDirtyPages)))
        case .failure(.dirtyRingOverflow(let vcpu, let bytes)):
            print("the nested KVM overflowed the ring (vCPU \(vcpu), \(bytes) bytes): reported, as it must be")
            #expect(guest.exits.contains(.dirtyRingFull))
        case .failure(let error):
            Issue.record("unexpected: \(error)")
        }
    }
}
