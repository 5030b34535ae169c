internal import CGuestKVM
import GuestMemory
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The KVM figures of the guest-memory issue, each as medians of
/// interleaved rounds against a baseline measured in the same run:
///
/// - `vmCreate`: a VM created and a 4 GiB guest registered (not
///   populated) through ``KVMVirtualMachine``, against the bare ioctls
///   (`KVM_CREATE_VM`, `KVM_SET_TSS_ADDR`, one `KVM_SET_USER_MEMORY_REGION`).
/// - `harvest`: one 4 GiB memslot (highmem of a 7 GiB guest) with 1 % of its
///   pages written by the guest (every 100th page, by the `pattern`
///   payload with a 400 KiB stride), bitmap mode: KVM's drain alone
///   (`KVM_GET_DIRTY_LOG` + handing the pages to the VMM bitmap) and the
///   whole `GuestMemory.harvestDirty(_:)` + commit, against a bare
///   `KVM_GET_DIRTY_LOG` of the slot with the same pages dirty.
public enum KVMBenchmarks {
    /// One figure: medians in microseconds.
    public struct Figure: Sendable, CustomStringConvertible {
        public let name: String
        public let medianMicroseconds: Double
        public let baselineName: String
        public let baselineMedianMicroseconds: Double
        public let rounds: Int
        public let note: String

        public var description: String {
            "\(name): median \(fmt(medianMicroseconds)) µs; \(baselineName): \(fmt(baselineMedianMicroseconds)) µs "
                + "(\(rounds) interleaved rounds\(note.isEmpty ? "" : "; \(note)"))"
        }

        private func fmt(_ v: Double) -> String {
            let r = (v * 10).rounded() / 10
            return "\(r)"
        }
    }

    static func micros(_ d: Duration) -> Double {
        Double(d.components.seconds) * 1e6 + Double(d.components.attoseconds) / 1e12
    }

    static func median(_ v: [Double]) -> Double {
        let s = v.sorted()
        return s.isEmpty ? 0 : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
    }

    /// VM creation with 4 GiB registered. The guest memory (a 4 GiB
    /// segment mapped at 4 GiB, one mapping) is made once; each round
    /// creates and closes a VM over it.
    public static func vmCreate(rounds: Int = 15) throws(KVMError) -> Figure {
        let device = try KVMDevice()
        let memory: GuestMemory
        do throws(GuestMemoryError) {
            memory = try GuestMemory(limit: 8 << 30)
            try memory.allocateSegment(id: 0, length: 4 << 30)
            try memory.map(gpa: 4 << 30, segment: 0, offset: 0, length: 4 << 30, protection: .all)
        } catch { throw .memory(error) }
        let host = memory.mappings[0].hostAddress
        let clock = ContinuousClock()
        var ours: [Double] = [], bare: [Double] = []
        for _ in 0..<rounds {
            var t = clock.now
            let vm = try KVMVirtualMachine(memory: memory, device: device, dirtyLog: .bitmap)
            ours.append(micros(clock.now - t))
            try vm.close()

            t = clock.now
            let fd = vkvm_create_vm(device.fd)
            guard fd >= 0 else { throw .system(call: "KVM_CREATE_VM", errno: -fd) }
            _ = vkvm_set_tss_addr(fd, UInt(KVMVirtualMachine.tssAddress))
            let rc = vkvm_set_memory_region(fd, 0, UInt32(KVM_MEM_LOG_DIRTY_PAGES), 4 << 30, 4 << 30, host)
            bare.append(micros(clock.now - t))
            close(fd)
            guard rc >= 0 else { throw .system(call: "KVM_SET_USER_MEMORY_REGION", errno: -rc) }
        }
        return Figure(name: "VM created + 4 GiB registered (KVMVirtualMachine.init, bitmap log)",
                      medianMicroseconds: median(ours), baselineName: "bare ioctls",
                      baselineMedianMicroseconds: median(bare), rounds: rounds, note: "/dev/kvm opened once")
    }

    /// The dirty harvest of a 4 GiB slot with 1 % of its pages dirty.
    /// Returns the drain figure and the whole-harvest figure.
    public static func harvest(rounds: Int = 7) throws(KVMError) -> [Figure] {
        let base: UInt64 = 4 << 30, length: UInt64 = 4 << 30
        let guest = try KVMGuest(memorySize: 7 << 30, payload: .pattern, touch: 4096, dirtyLog: .bitmap, requireKVM: true)
        guard let vm = guest.vm, let vcpu = guest.vcpu, let log = vm.dirtyLog,
              let slot = vm.slots.first(where: { $0.gpa == base && $0.length == length }) else {
            throw .noSuchSlot(gpa: base, length: length)
        }
        let memory = guest.memory
        let stride = 100 * GuestMemory.pageSize
        let dirtyPages = Int((length + stride - 1) / stride)
        let initial = try vcpu.registers()
        let words = UnsafeMutablePointer<UInt64>.allocate(capacity: Int(slot.pageCount / 64))
        defer { words.deallocate() }
        /// The guest writes every 100th page of the slot.
        func dirty() throws(KVMError) {
            var r = initial
            r.rdi = base; r.r9 = base; r.rsi = base + length; r.rdx = stride
            try vcpu.setRegisters(r)
            let exits = try guest.run()
            guard exits.last == .hlt else { throw .tooManyExits(limit: exits.count) }
        }
        // The first round populates the pages; clear everything after it.
        try dirty()
        do { _ = try memory.harvestDirty(0, memory.limit, .reset) } catch { throw .memory(error) }
        let clock = ContinuousClock()
        var drain: [Double] = [], whole: [Double] = [], bare: [Double] = []
        var harvested = 0
        for _ in 0..<rounds {
            try dirty()
            var t = clock.now
            do { try log.drain(into: memory, firstPage: slot.firstPage, endPage: slot.firstPage + slot.pageCount) }
            catch { throw .memory(error) }
            drain.append(micros(clock.now - t))
            do { _ = try memory.harvestDirty(0, memory.limit, .reset) } catch { throw .memory(error) }

            try dirty()
            t = clock.now
            do {
                let h = try memory.harvestDirty(base ..< base + length)
                harvested = h.pages.count
                h.commit()
            } catch { throw .memory(error) }
            whole.append(micros(clock.now - t))

            // The baseline: the bare ioctl on the same dirty state (its
            // pages then handed over untimed, so nothing is lost).
            try dirty()
            t = clock.now
            let rc = vkvm_get_dirty_log(vm.fd, slot.slot, words)
            bare.append(micros(clock.now - t))
            guard rc >= 0 else { throw .system(call: "KVM_GET_DIRTY_LOG", errno: -rc) }
            memory.markDirty(firstGuestPage: slot.firstPage, words: UnsafeBufferPointer(start: words, count: Int(slot.pageCount / 64)))
            do { _ = try memory.harvestDirty(0, memory.limit, .reset) } catch { throw .memory(error) }
        }
        let note = "\(dirtyPages) pages dirtied by the guest per round, \(harvested) harvested"
        return [
            Figure(name: "KVM drain of a 4 GiB slot, 1 % dirty (GET_DIRTY_LOG + markDirty)", medianMicroseconds: median(drain),
                   baselineName: "bare GET_DIRTY_LOG, same dirty state", baselineMedianMicroseconds: median(bare),
                   rounds: rounds, note: note),
            Figure(name: "harvestDirty of the 4 GiB slot + commit (drain, VMM bitmap, nested D bits)",
                   medianMicroseconds: median(whole), baselineName: "bare GET_DIRTY_LOG, same dirty state",
                   baselineMedianMicroseconds: median(bare), rounds: rounds, note: note),
        ]
    }
}
