import Foundation
import GuestKVM
import GuestMemory
import Testing

/// Long-mode code at 0x3000: `mov byte [0x200000], 0x33; hlt`.
let writeExtra: [UInt8] = [0xC6, 0x04, 0x25, 0x00, 0x00, 0x20, 0x00, 0x33, 0xF4]

@Suite("KVM slots")
struct KVMSlotTests {
    @Test("map and unmap through the VM keep the memslots in step with the guest map, vCPU present")
    func mapUnmap() throws {
        guard KVMTestSupport.kvmUsable("map/unmap with a vCPU") else { return }
        let guest = try KVMGuest(memorySize: 1 << 20, payload: .longmode, requireKVM: true)
        let vm = try #require(guest.vm), vcpu = try #require(guest.vcpu)
        try guest.run()
        let extra = try guest.memory.allocateSegment(id: 2, length: 64 << 10, name: "extra")
        try vm.map(gpa: 0x20_0000, segment: 2, offset: 0, length: 64 << 10, protection: .readWrite)
        #expect(vm.slots.map(\.range) == guest.memory.mappings.map(\.range))
        #expect(vm.slots.contains { $0.gpa == 0x20_0000 && !$0.readOnly && $0.logsDirtyPages })

        try guest.memory.write(0x3000, writeExtra)
        var regs = try vcpu.registers()
        regs.rip = 0x3000
        try vcpu.setRegisters(regs)
        #expect(try guest.run() == [.hlt])
        #expect(try guest.memory.read(0x20_0000, count: 1) == [0x33])
        _ = extra

        // Unmap: KVM's log for the slot reaches the VMM bitmap first; the
        // segment keeps its bytes; the guest's next access is MMIO.
        try vm.unmap(gpa: 0x20_0000, length: 64 << 10)
        #expect(vm.slots.map(\.range) == guest.memory.mappings.map(\.range))
        #expect(guest.guestDirtyPages.contains(0x200))
        regs = try vcpu.registers()
        regs.rip = 0x3000
        try vcpu.setRegisters(regs)
        #expect(try guest.run() == [.mmio(gpa: 0x20_0000, length: 1, isWrite: true, data: [0x33]), .hlt])
        // Mapped again elsewhere: the bytes are the segment's.
        try vm.map(gpa: 0x40_0000, segment: 2, offset: 0, length: 64 << 10, protection: .read)
        #expect(try guest.memory.read(0x40_0000, count: 1) == [0x33])
        #expect(vm.slots.first { $0.gpa == 0x40_0000 }?.readOnly == true)
    }
}

/// Long-mode code at 0x3000: spin until byte 0x2800 is non-zero, then `hlt`:
/// `cmp byte [0x2800], 0; je -10; hlt`.
let spinUntilFlag: [UInt8] = [0x80, 0x3C, 0x25, 0x00, 0x28, 0x00, 0x00, 0x00, 0x74, 0xF6, 0xF4]

@Suite("KVMConcurrencyTests")
struct KVMConcurrencyTests {
    @Test("map and unmap while a vCPU runs: each change pauses it (no vCPU inside KVM_RUN), then it runs on")
    func pauseWhileRunning() throws {
        guard KVMTestSupport.kvmUsable("map/unmap under a running vCPU") else { return }
        let guest = try KVMGuest(memorySize: 1 << 20, payload: .longmode, requireKVM: true)
        let vm = try #require(guest.vm), vcpu = try #require(guest.vcpu)
        try guest.run()
        try guest.memory.allocateSegment(id: 2, length: 64 << 10, name: "extra")
        try guest.memory.write(0x3000, spinUntilFlag)
        var regs = try vcpu.registers()
        regs.rip = 0x3000
        try vcpu.setRegisters(regs)

        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: Result<[KVMExit], KVMError> = .success([])
        let thread = Thread {
            do { result = .success(try guest.run()) } catch let e as KVMError { result = .failure(e) } catch {}
            done.signal()
        }
        thread.start()
        // Wait until the vCPU is inside the guest.
        let start = ContinuousClock.now
        while vm.runningVCPUCount == 0 && ContinuousClock.now - start < .seconds(5) { usleep(1000) }
        #expect(vm.runningVCPUCount == 1)
        var pausedCounts: [Int] = []
        for i in 0..<20 {
            let gpa: UInt64 = 0x20_0000 + UInt64(i % 4) * 0x10_0000
            try vm.map(gpa: gpa, segment: 2, offset: 0, length: 64 << 10, protection: .readWrite)
            pausedCounts.append(vm.withVCPUsPaused { vm.runningVCPUCount })
            #expect(vm.slots.map(\.range) == guest.memory.mappings.map(\.range))
            try vm.unmap(gpa: gpa, length: 64 << 10)
        }
        #expect(pausedCounts == Array(repeating: 0, count: 20))
        // Still spinning: let it finish.
        try guest.memory.store(UInt8(1), at: 0x2800)
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(try result.get() == [.hlt])
    }
}
