import GuestKVM
import GuestMemory
import Testing

/// The error a throwing call gave, or nil.
func kvmError(_ body: () throws -> Void) -> KVMError? {
    do { try body() } catch let e as KVMError { return e } catch {
        Issue.record("not a KVMError: \(error)")
    }
    return nil
}

@Suite("KVM refusals")
struct KVMRefusalTests {
    @Test("guest memory not page aligned, or larger than the host can reserve: typed, before any KVM call")
    func memoryRefused() {
        #expect(kvmError { _ = try KVMGuestMemory.make(size: 4097) } == .memory(.invalidSegmentLength(id: 0, length: 4097)))
        #expect(kvmError { _ = try KVMGuestMemory.make(size: 0) } == .memory(.invalidSegmentLength(id: 0, length: 0)))
        // 127 TiB of RAM needs a host window past the 47-bit user address space.
        let huge: UInt64 = (1 << 47) - (1 << 30)
        guard case .memory(let e)? = kvmError({ _ = try KVMGuestMemory.make(size: huge) }) else {
            Issue.record("a \(huge)-byte guest was not refused as a memory error")
            return
        }
        #expect(e.kind == .fault || e.kind == .invalid)
        // Beyond the guest-physical space altogether.
        guard case .memory(.beyondGuestSpace)? = kvmError({ _ = try KVMGuestMemory.make(size: 1 << 47) }) else {
            Issue.record("a 2^47-byte guest was not refused as beyondGuestSpace")
            return
        }
        #expect(kvmError { _ = try KVMGuest(memorySize: 1 << 20, payload: .pattern, touch: 1 << 20, useKVM: false) }
                == .payloadDoesNotFit(payload: "pattern", needs: GuestPayload.dataBase + (1 << 20), has: 1 << 20))
        #expect(kvmError { _ = try KVMGuest(memorySize: 2 << 20, payload: .checksum, touch: 100, useKVM: false) }
                == .payloadDoesNotFit(payload: "checksum", needs: GuestPayload.dataBase + 100, has: 2 << 20))
    }

    @Test("overlapping, unaligned, reserved, too long and unknown slots: typed, nothing changed")
    func slotsRefused() throws {
        guard KVMTestSupport.kvmUsable("slot refusals") else { return }
        let memory = try KVMGuestMemory.make(size: 1 << 20)
        try memory.allocateSegment(id: 2, length: 1 << 20, name: "extra")
        let vm = try KVMVirtualMachine(memory: memory)
        let slots = vm.slots, mappings = memory.mappings
        #expect(slots.count == 2)
        #expect(kvmError { try vm.map(gpa: 0x8_0000, segment: 2, offset: 0, length: 1 << 20, protection: .all) }
                == .slotsOverlap(gpa: 0x8_0000, length: 1 << 20, slot: slots[0].slot, slotGPA: 0, slotLength: 1 << 20))
        #expect(kvmError { try vm.map(gpa: 0x20_0001, segment: 2, offset: 0, length: 4096, protection: .all) }
                == .notPageAligned(what: "slot gpa", value: 0x20_0001))
        #expect(kvmError { try vm.map(gpa: 0x20_0000, segment: 2, offset: 0, length: 100, protection: .all) }
                == .notPageAligned(what: "slot length", value: 100))
        #expect(kvmError { try vm.map(gpa: 0xFFFB_C000, segment: 2, offset: 0, length: 4096, protection: .all) }
                == .reservedRange(gpa: 0xFFFB_C000, length: 4096, reservedGPA: 0xFFFB_C000, reservedLength: 0x4000))
        let long = KVMVirtualMachine.maxSlotLength + 4096
        #expect(kvmError { try vm.map(gpa: 1 << 40, segment: 2, offset: 0, length: long, protection: .all) }
                == .slotTooLarge(gpa: 1 << 40, length: long, maxLength: KVMVirtualMachine.maxSlotLength))
        #expect(kvmError { try vm.unmap(gpa: 0x20_0000, length: 4096) } == .noSuchSlot(gpa: 0x20_0000, length: 4096))
        // The guest memory's own refusals come through typed.
        #expect(kvmError { try vm.map(gpa: 0x20_0000, segment: 9, offset: 0, length: 4096, protection: .all) }
                == .memory(.noSuchSegment(id: 9)))
        #expect(vm.slots == slots)
        #expect(memory.mappings == mappings)
    }

    @Test("dirty ring size and vCPU ids: typed")
    func settingsRefused() throws {
        guard KVMTestSupport.kvmUsable("VM setting refusals") else { return }
        let memory = try KVMGuestMemory.make(size: 1 << 20)
        guard case .invalidDirtyRingSize(5000, _)? = kvmError({ _ = try KVMVirtualMachine(memory: memory, dirtyLog: .ring, dirtyRingBytes: 5000) }) else {
            Issue.record("a 5000-byte ring was not refused")
            return
        }
        let vm = try KVMVirtualMachine(memory: memory)
        _ = try vm.createVCPU(id: 0)
        #expect(kvmError { _ = try vm.createVCPU(id: 0) } == .invalidVCPU(id: 0, reason: "already exists"))
        try vm.close()
        #expect(kvmError { _ = try vm.createVCPU() } == .closed)
    }
}
