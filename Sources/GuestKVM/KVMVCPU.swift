internal import CGuestKVM
import HostMemory
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One virtual CPU: its fd, its shared `kvm_run` area, and (in ring mode)
/// its dirty ring. `run()` enters the guest until the next exit that needs
/// user space and returns it as a ``KVMExit``; it passes the VM's pause
/// gate, so a map change waits for it to come out and holds it until done.
///
/// Run a vCPU from one thread at a time (KVM's rule); registers are read
/// and written from that thread or while it is not running.
public final class KVMVCPU: @unchecked Sendable {
    /// The vCPU id (`KVM_CREATE_VCPU`'s argument).
    public let id: UInt32
    let fd: Int32
    let runArea: UnsafeMutablePointer<kvm_run>
    let runSize: Int
    /// The mappings `runArea` and `ring` point into (HostMemory maps, this keeps them).
    let runMapping: FileMapping
    let ringMapping: FileMapping?
    let gate: KVMPauseGate
    /// The dirty ring, when the VM logs with one; its entry count.
    let ring: UnsafeMutablePointer<kvm_dirty_gfn>?
    let ringEntries: UInt32
    /// Next ring entry to look at (the ring log's lock guards it).
    var ringFetch: UInt32 = 0
    /// The last pass found this ring entirely full: KVM may have written
    /// past its end, and its next entry may not be at `ringFetch`.
    var ringSuspect = false

    init(id: UInt32, vmFD: Int32, device: KVMDevice, gate: KVMPauseGate, ringBytes: UInt32) throws(KVMError) {
        let fd = vkvm_create_vcpu(vmFD, UInt(id))
        guard fd >= 0 else { throw .system(call: "KVM_CREATE_VCPU \(id)", errno: -fd) }
        let run: FileMapping
        do throws(HostMemoryError) {
            run = try FileMapping(fd: fd, length: UInt64(device.vcpuMapSize), access: .readWrite)
        } catch {
            close(fd)
            throw .system(call: "mmap of vCPU \(id)'s kvm_run", errno: error.errnoValue)
        }
        var ring: UnsafeMutablePointer<kvm_dirty_gfn>?
        var ringMapping: FileMapping?
        if ringBytes > 0 {
            do throws(HostMemoryError) {
                let m = try FileMapping(fd: fd, length: UInt64(ringBytes),
                                        offset: UInt64(vkvm_dirty_ring_page_offset()) * HostReservation.pageSize,
                                        access: .readWrite)
                ringMapping = m
                ring = UnsafeMutableRawPointer(mutating: m.base).assumingMemoryBound(to: kvm_dirty_gfn.self)
            } catch {
                close(fd)
                throw .system(call: "mmap of vCPU \(id)'s dirty ring", errno: error.errnoValue)
            }
        }
        self.id = id
        self.fd = fd
        self.runMapping = run
        self.ringMapping = ringMapping
        self.runArea = UnsafeMutableRawPointer(mutating: run.base).assumingMemoryBound(to: kvm_run.self)
        self.runSize = device.vcpuMapSize
        self.gate = gate
        self.ring = ring
        self.ringEntries = ringBytes / UInt32(vkvm_dirty_gfn_size())
    }

    deinit {
        // The mappings go with the object; they keep the file open until then.
        close(fd)
    }

    /// Enters the guest and returns the next exit user space must handle.
    /// A kick from a map change (`EINTR`) is not an exit: the vCPU waits at
    /// the gate and goes back in. For an `in` or an MMIO read the guest
    /// receives all ones (no device answers), written before the next entry.
    public func run() throws(KVMError) -> KVMExit {
        let me = ObjectIdentifier(self)
        while true {
            try gate.enter(me, run: runArea)
            let r = vkvm_run(fd)
            gate.leave(me, run: runArea)
            if r == -EINTR || r == -EAGAIN { continue }
            guard r >= 0 else { throw .system(call: "KVM_RUN on vCPU \(id)", errno: -r) }
            return decodeExit()
        }
    }

    private func decodeExit() -> KVMExit {
        let reason = vkvm_run_exit_reason(runArea)
        switch Int32(reason) {
        case KVM_EXIT_IO:
            let size = vkvm_run_io_size(runArea), count = vkvm_run_io_count(runArea)
            let data = UnsafeMutableRawPointer(runArea) + Int(vkvm_run_io_data_offset(runArea))
            let n = Int(size) * Int(count)
            let dir: KVMExit.Direction = vkvm_run_io_direction(runArea) == UInt8(KVM_EXIT_IO_OUT) ? .out : .in
            if dir == .in { data.initializeMemory(as: UInt8.self, repeating: 0xFF, count: n) }
            let bytes = [UInt8](UnsafeRawBufferPointer(start: data, count: n))
            return .io(port: vkvm_run_io_port(runArea), size: size, direction: dir, count: count, data: bytes)
        case KVM_EXIT_MMIO:
            let len = min(vkvm_run_mmio_len(runArea), 8)
            let isWrite = vkvm_run_mmio_is_write(runArea) != 0
            let data = vkvm_run_mmio_data(runArea)!
            if !isWrite { data.initialize(repeating: 0xFF, count: Int(len)) }
            let bytes = [UInt8](UnsafeBufferPointer(start: data, count: Int(len)))
            return .mmio(gpa: vkvm_run_mmio_phys_addr(runArea), length: len, isWrite: isWrite, data: bytes)
        case KVM_EXIT_HLT: return .hlt
        case KVM_EXIT_SHUTDOWN: return .shutdown
        case KVM_EXIT_FAIL_ENTRY:
            return .failEntry(hardwareReason: vkvm_run_fail_entry_reason(runArea), cpu: vkvm_run_fail_entry_cpu(runArea))
        case KVM_EXIT_INTERNAL_ERROR:
            let n = min(vkvm_run_internal_ndata(runArea), 16)
            return .internalError(suberror: vkvm_run_internal_suberror(runArea),
                                  data: (0..<n).map { vkvm_run_internal_data(runArea, $0) })
        case KVM_EXIT_DIRTY_RING_FULL: return .dirtyRingFull
        case KVM_EXIT_UNKNOWN: return .unknown(hardwareReason: vkvm_run_hw_reason(runArea))
        default: return .other(reason: reason)
        }
    }

    // MARK: Registers

    public func registers() throws(KVMError) -> KVMRegisters {
        var r = kvm_regs()
        let rc = vkvm_get_regs(fd, &r)
        guard rc >= 0 else { throw .system(call: "KVM_GET_REGS", errno: -rc) }
        return KVMRegisters(r)
    }

    public func setRegisters(_ registers: KVMRegisters) throws(KVMError) {
        var r = registers.raw
        let rc = vkvm_set_regs(fd, &r)
        guard rc >= 0 else { throw .system(call: "KVM_SET_REGS", errno: -rc) }
    }

    public func specialRegisters() throws(KVMError) -> KVMSpecialRegisters {
        var s = kvm_sregs()
        let rc = vkvm_get_sregs(fd, &s)
        guard rc >= 0 else { throw .system(call: "KVM_GET_SREGS", errno: -rc) }
        return KVMSpecialRegisters(s)
    }

    public func setSpecialRegisters(_ sregs: KVMSpecialRegisters) throws(KVMError) {
        var s = sregs.raw
        let rc = vkvm_set_sregs(fd, &s)
        guard rc >= 0 else { throw .system(call: "KVM_SET_SREGS", errno: -rc) }
    }

    /// Gives the vCPU the CPUID that KVM supports on this host
    /// (`KVM_GET_SUPPORTED_CPUID` → `KVM_SET_CPUID2`). Without `pdpe1gb`
    /// in the guest's CPUID the PS bit of a PDPTE is reserved and a 1 GiB
    /// page triple-faults. Where KVM does not list the bit (this nested
    /// host, although its processor has it), setting it by hand was tried
    /// and still triple-faulted, so it is not forced. Returns whether
    /// 1 GiB pages are offered.
    @discardableResult
    public func setSupportedCPUID(device: KVMDevice) throws(KVMError) -> Bool {
        var table = vkvm_cpuid(table: nil)
        let n = vkvm_supported_cpuid(device.fd, &table)
        guard n >= 0 else { throw .system(call: "KVM_GET_SUPPORTED_CPUID", errno: -n) }
        defer { vkvm_cpuid_free(&table) }
        var gigabytePages = false
        for i in 0..<UInt32(n) {
            let e = vkvm_cpuid_entry(&table, i)!
            if e.pointee.function == 0x8000_0001 {
                gigabytePages = e.pointee.edx & (1 << 26) != 0
            }
        }
        let rc = vkvm_set_cpuid(fd, &table)
        guard rc >= 0 else { throw .system(call: "KVM_SET_CPUID2", errno: -rc) }
        return gigabytePages
    }
}
