internal import CGuestKVM
import GuestMemory
import HostMemory
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How KVM records the guest's writes (see the module article).
public enum KVMDirtyLogMode: String, Hashable, Sendable, CaseIterable {
    /// No logging: slots are registered without `KVM_MEM_LOG_DIRTY_PAGES`.
    case off
    /// `KVM_GET_DIRTY_LOG`: fetch and re-arm a whole slot at once.
    case bitmap
    /// `KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2`: fetch without clearing, re-arm
    /// chosen 64-page groups with `KVM_CLEAR_DIRTY_LOG`.
    case manual
    /// A per-vCPU ring of dirty GFNs (`KVM_CAP_DIRTY_LOG_RING[_ACQ_REL]`).
    case ring
}

/// A KVM virtual machine over a `GuestMemory`: one memslot per mapping
/// (read-only where the mapping has no write right), KVM's dirty log
/// attached to the memory's harvest, vCPUs, and map changes made with every
/// vCPU paused. See the module article for the invariants.
public final class KVMVirtualMachine: @unchecked Sendable {
    /// Where `KVM_SET_TSS_ADDR` puts the TSS (three pages), with the
    /// identity-map page KVM places just below it: no memslot may cover them.
    public static let tssAddress: UInt64 = 0xFFFB_D000
    public static let reservedRange: Range<UInt64> = 0xFFFB_C000 ..< 0xFFFC_0000
    /// KVM's longest memslot: 2^31 - 1 pages (`KVM_MEM_MAX_NR_PAGES`).
    public static let maxSlotLength: UInt64 = ((1 << 31) - 1) * 4096
    /// The dirty ring's default size: 65,536 entries of 16 bytes (1 MiB),
    /// or KVM's maximum if smaller. Large, because a nested KVM that
    /// emulates guest writes logs a page once per write, not once per
    /// re-arm, and can run past a small ring's end before it stops the vCPU.
    public static let defaultDirtyRingBytes: UInt32 = 1 << 20

    public let device: KVMDevice
    public let memory: GuestMemory
    public let dirtyLogMode: KVMDirtyLogMode
    /// Ring bytes per vCPU (ring mode), else 0.
    public let dirtyRingBytes: UInt32
    /// Ring mode with `KVM_CAP_DIRTY_LOG_RING_ACQ_REL` (else the plain ring).
    public let ringIsAcquireRelease: Bool
    /// How many memslots KVM offers (`KVM_CAP_NR_MEMSLOTS`).
    public let maxSlots: Int
    /// The log attached to ``memory``'s harvest, unless the mode is `off`.
    public private(set) var dirtyLog: KVMDirtyLog?

    let gate = KVMPauseGate()
    /// The VM's fd, slots and vCPUs, shared with the dirty log (which the
    /// guest memory holds, and which must outlive nothing but these).
    let core: KVMVMCore
    var fd: Int32 { core.fd }
    var lock: HostLock { core.lock }
    var slotStates: [KVMSlotState] {
        get { core.slotStates }
        _modify { yield &core.slotStates }
    }
    var vcpuList: [KVMVCPU] {
        get { core.vcpuList }
        _modify { yield &core.vcpuList }
    }
    var retiredGuestPages: [UInt64] {
        get { core.retiredGuestPages }
        _modify { yield &core.retiredGuestPages }
    }
    private var isClosed = false

    /// Creates a VM, enables the dirty log `dirtyLog` asks for (before any
    /// vCPU, as KVM requires), sets the TSS address, and registers every
    /// mapping of `memory` as a memslot. On any failure nothing is left
    /// behind.
    public init(memory: GuestMemory, device: KVMDevice? = nil, dirtyLog mode: KVMDirtyLogMode = .bitmap,
                dirtyRingBytes: UInt32 = KVMVirtualMachine.defaultDirtyRingBytes) throws(KVMError) {
        let device: KVMDevice = if let device { device } else { try KVMDevice() }
        self.device = device
        self.memory = memory
        self.dirtyLogMode = mode
        var ringBytes: UInt32 = 0
        var acqRel = false
        if mode == .ring {
            acqRel = device.check(.dirtyLogRingAcquireRelease) > 0
            let max = UInt32(clamping: device.check(.dirtyLogRing))
            guard max > 0 else {
                throw .missingCapability(name: KVMDevice.Capability.dirtyLogRing.name,
                                         number: KVMDevice.Capability.dirtyLogRing.rawValue)
            }
            let dirtyRingBytes = dirtyRingBytes == Self.defaultDirtyRingBytes ? min(dirtyRingBytes, max) : dirtyRingBytes
            guard dirtyRingBytes >= 4096, dirtyRingBytes <= max, dirtyRingBytes & (dirtyRingBytes - 1) == 0 else {
                throw .invalidDirtyRingSize(bytes: dirtyRingBytes, max: max)
            }
            ringBytes = dirtyRingBytes
        }
        if mode == .manual, device.check(.manualDirtyLogProtect2) & 1 == 0 {
            throw .missingCapability(name: KVMDevice.Capability.manualDirtyLogProtect2.name,
                                     number: KVMDevice.Capability.manualDirtyLogProtect2.rawValue)
        }
        self.dirtyRingBytes = ringBytes
        self.ringIsAcquireRelease = acqRel
        maxSlots = max(1, device.check(.nrMemslots))
        let vm = vkvm_create_vm(device.fd)
        guard vm >= 0 else { throw .system(call: "KVM_CREATE_VM", errno: -vm) }
        core = KVMVMCore(fd: vm)
        do throws(KVMError) {
            switch mode {
            case .off, .bitmap: break
            case .manual:
                // MANUAL_PROTECT_ENABLE only: not INITIALLY_SET, so a fresh
                // slot reports no page the guest has not written.
                let cap = KVMDevice.Capability.manualDirtyLogProtect2
                let rc = vkvm_enable_cap(fd, UInt32(cap.rawValue), 1)
                guard rc >= 0 else { throw KVMError.system(call: "KVM_ENABLE_CAP \(cap.name)", errno: -rc) }
            case .ring:
                let cap: KVMDevice.Capability = acqRel ? .dirtyLogRingAcquireRelease : .dirtyLogRing
                let rc = vkvm_enable_cap(fd, UInt32(cap.rawValue), UInt64(ringBytes))
                guard rc >= 0 else { throw KVMError.system(call: "KVM_ENABLE_CAP \(cap.name)", errno: -rc) }
            }
            let rc = vkvm_set_tss_addr(fd, UInt(Self.tssAddress))
            guard rc >= 0 else { throw KVMError.system(call: "KVM_SET_TSS_ADDR", errno: -rc) }
            try lock.withLock { () throws(KVMError) in
                for m in memory.mappings { try addSlot(m) }
            }
        } catch {
            core.slotStates.removeAll()
            throw error
        }
        if mode != .off {
            let log: KVMDirtyLog = switch mode {
            case .bitmap: KVMBitmapDirtyLog(core)
            case .manual: KVMManualDirtyLog(core)
            default: KVMRingDirtyLog(core)
            }
            dirtyLog = log
            memory.attachDirtyLog(log)
        }
    }

    deinit { closeVM() }

    /// Detaches the dirty log (after a last drain into the VMM bitmap, so
    /// nothing KVM logged is lost), refuses further runs, and releases the
    /// VM. Idempotent.
    public func close() throws(KVMError) {
        if let log = lock.withLock({ isClosed ? nil : dirtyLog }) {
            do { try memory.detachDirtyLog(log) } catch { throw .memory(error) }
        }
        closeVM()
    }

    private func closeVM() {
        let done = lock.withLock { () -> Bool in
            defer { isClosed = true }
            return isClosed
        }
        guard !done else { return }
        gate.close()
        // A last drain hands KVM's pages to the VMM bitmap; should it fail,
        // the log stays attached (it keeps the fd and slots alive) and the
        // next harvest drains it.
        if let log = dirtyLog { try? memory.detachDirtyLog(log) }
        lock.withLock { vcpuList.removeAll() }
    }

    // MARK: Slots

    /// The memslots, in guest-physical order.
    public var slots: [KVMMemorySlot] { lock.withLock { slotStates.map(\.slot) } }

    /// Checks a new slot for `[gpa, gpa + length)` against KVM's rules and
    /// the slots there are. Under `lock`.
    private func checkSlot(gpa: UInt64, length: UInt64) throws(KVMError) {
        guard gpa % 4096 == 0 else { throw .notPageAligned(what: "slot gpa", value: gpa) }
        guard length % 4096 == 0, length > 0 else { throw .notPageAligned(what: "slot length", value: length) }
        guard length <= Self.maxSlotLength else {
            throw .slotTooLarge(gpa: gpa, length: length, maxLength: Self.maxSlotLength)
        }
        let end = gpa &+ length
        if let s = slotStates.first(where: { $0.slot.gpa < end && gpa < $0.slot.gpa + $0.slot.length }) {
            throw .slotsOverlap(gpa: gpa, length: length, slot: s.slot.slot, slotGPA: s.slot.gpa, slotLength: s.slot.length)
        }
        let r = Self.reservedRange
        if r.lowerBound < end && gpa < r.upperBound {
            throw .reservedRange(gpa: gpa, length: length, reservedGPA: r.lowerBound,
                                 reservedLength: r.upperBound - r.lowerBound)
        }
        guard slotStates.count < maxSlots else { throw .tooManySlots(limit: maxSlots) }
    }

    /// Registers `m` as a memslot. Under `lock`.
    private func addSlot(_ m: GuestMapping) throws(KVMError) {
        try checkSlot(gpa: m.gpa, length: m.length)
        let used = Set(slotStates.map(\.slot.slot))
        var id: UInt32 = 0
        while used.contains(id) { id += 1 }
        let readOnly = !m.protection.contains(.write)
        if readOnly, device.check(.readonlyMemory) == 0 {
            throw .missingCapability(name: KVMDevice.Capability.readonlyMemory.name,
                                     number: KVMDevice.Capability.readonlyMemory.rawValue)
        }
        let slot = KVMMemorySlot(slot: id, gpa: m.gpa, length: m.length, hostAddress: m.hostAddress,
                                 readOnly: readOnly, logsDirtyPages: dirtyLogMode != .off && !readOnly)
        let rc = vkvm_set_memory_region(fd, slot.slot, slot.flags, slot.gpa, slot.length, slot.hostAddress)
        guard rc >= 0 else { throw .system(call: "KVM_SET_USER_MEMORY_REGION (\(slot))", errno: -rc) }
        let index = slotStates.firstIndex { $0.slot.gpa > m.gpa } ?? slotStates.count
        slotStates.insert(KVMSlotState(slot), at: index)
    }

    /// Deletes the slot at `index` (size 0), after draining its dirty log
    /// into the VMM bitmap while the mapping still exists. Under `lock`,
    /// vCPUs paused.
    private func removeSlot(at index: Int) throws(KVMError) {
        let state = slotStates[index]
        if let log = dirtyLog {
            do { try log.drainLocked(into: memory, firstPage: state.slot.firstPage,
                                     endPage: state.slot.firstPage + state.slot.pageCount) }
            catch { throw .memory(error) }
        }
        let rc = vkvm_set_memory_region(fd, state.slot.slot, 0, state.slot.gpa, 0, state.slot.hostAddress)
        guard rc >= 0 else { throw .system(call: "KVM_SET_USER_MEMORY_REGION delete (\(state.slot))", errno: -rc) }
        core.retiredGuestPages += state.everPages
        slotStates.remove(at: index)
    }

    /// Maps a segment range into the guest (`GuestMemory.map(gpa:segment:offset:length:protection:wired:)`)
    /// and registers it as a memslot, with every vCPU paused. The slot is
    /// checked first (overlap, KVM's reserved pages, length, free slots);
    /// if KVM refuses it, the mapping is taken back: all or nothing.
    public func map(gpa: UInt64, segment: Int, offset: UInt64, length: UInt64,
                    protection: GuestProtection, wired: Bool = false) throws(KVMError) {
        try lock.withLock { () throws(KVMError) in
            guard !isClosed else { throw .closed }
            try checkSlot(gpa: gpa, length: length)
            try gate.paused { () throws(KVMError) in
                do throws(GuestMemoryError) {
                    try memory.map(gpa: gpa, segment: segment, offset: offset, length: length,
                                   protection: protection, wired: wired)
                } catch { throw .memory(error) }
                guard let m = memory.mappings.first(where: { $0.gpa == gpa && $0.length == length }) else {
                    throw .noSuchSlot(gpa: gpa, length: length)
                }
                do throws(KVMError) { try addSlot(m) } catch {
                    try? memory.unmap(gpa: gpa, length: length)
                    throw error
                }
            }
        }
    }

    /// Deletes the memslot that is exactly `[gpa, gpa + length)` and
    /// unmaps it from the guest memory, with every vCPU paused. KVM's log
    /// for the slot is drained into the VMM bitmap first. If the guest
    /// memory refuses the unmap (page holds), the slot is registered again.
    public func unmap(gpa: UInt64, length: UInt64) throws(KVMError) {
        try lock.withLock { () throws(KVMError) in
            guard !isClosed else { throw .closed }
            guard let i = slotStates.firstIndex(where: { $0.slot.gpa == gpa && $0.slot.length == length }) else {
                throw .noSuchSlot(gpa: gpa, length: length)
            }
            try gate.paused { () throws(KVMError) in
                guard let m = memory.mappings.first(where: { $0.gpa == gpa && $0.length == length }) else {
                    throw .noSuchSlot(gpa: gpa, length: length)
                }
                try removeSlot(at: i)
                do throws(GuestMemoryError) { try memory.unmap(gpa: gpa, length: length) } catch {
                    try? addSlot(m)
                    throw .memory(error)
                }
            }
        }
    }

    /// Pages KVM's log alone has reported (guest page numbers, ascending)
    /// since the VM was created: guest writes, and the CPU's A/D updates
    /// of guest page tables, never the VMM's own writes.
    public var guestDirtyPages: [UInt64] {
        lock.withLock { (retiredGuestPages + slotStates.flatMap(\.everPages)).sorted() }
    }

    /// Ring mode: drains that found a vCPU's dirty ring entirely full. KVM
    /// may have written past the ring's end there, so each such drain marked
    /// every logged page dirty (over-reporting rather than losing a page).
    /// A nested KVM that does not stop its vCPU in time does this; 0 in the
    /// other modes.
    public var dirtyRingOverflows: Int { (dirtyLog as? KVMRingDirtyLog)?.counts.overflows ?? 0 }

    /// Ring mode: times a drain found KVM writing further on in a ring
    /// than expected after an overrun, and caught up with it.
    public var dirtyRingResyncs: Int { (dirtyLog as? KVMRingDirtyLog)?.counts.resyncs ?? 0 }

    // MARK: vCPUs

    /// The vCPUs, by creation.
    public var vcpus: [KVMVCPU] { lock.withLock { vcpuList } }

    /// Creates vCPU `id` (the next free id when nil), with its `kvm_run`
    /// area and, in ring mode, its dirty ring mapped.
    public func createVCPU(id: UInt32? = nil) throws(KVMError) -> KVMVCPU {
        try lock.withLock { () throws(KVMError) -> KVMVCPU in
            guard !isClosed else { throw .closed }
            let id = id ?? (vcpuList.map(\.id).max().map { $0 + 1 } ?? 0)
            if vcpuList.contains(where: { $0.id == id }) { throw .invalidVCPU(id: id, reason: "already exists") }
            let v = try KVMVCPU(id: id, vmFD: fd, device: device, gate: gate, ringBytes: dirtyRingBytes)
            vcpuList.append(v)
            return v
        }
    }

    /// Runs `body` with every vCPU out of the guest and held (FreeBSD's
    /// freeze): what a map change does around its slot update.
    public func withVCPUsPaused<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        try gate.paused(body)
    }

    /// vCPUs inside `KVM_RUN` at this moment.
    public var runningVCPUCount: Int { gate.insideCount }
}
