import GuestMemory
import PageTables
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A guest as `vmkit guest run` drives it: the memory of ``KVMGuestMemory``,
/// a payload loaded by the VMM (code at page 1, long-mode tables at 0x9000),
/// and — when KVM is usable — a VM with the chosen dirty log and one vCPU
/// set up to run the payload. Without KVM the memory and the VMM's loading
/// still happen and ``kvmUnavailableReason`` says why the vCPU part is skipped.
public final class KVMGuest: @unchecked Sendable {
    public let memory: GuestMemory
    public let payload: GuestPayload
    /// Bytes `pattern`/`checksum` cover from ``GuestPayload/dataBase``.
    public let touch: UInt64
    public let vm: KVMVirtualMachine?
    public let vcpu: KVMVCPU?
    /// Why KVM is not used (one line), or nil.
    public let kvmUnavailableReason: String?
    /// The long-mode identity map's leaf size (1 GiB where CPUID offers
    /// `pdpe1gb`, else 2 MiB); nil for real mode.
    public internal(set) var identityPageSize: PageSize?
    /// The guest pages holding the payload's page tables (PML4 first).
    public internal(set) var tablePages: [UInt64] = []
    /// Every exit so far.
    public private(set) var exits: [KVMExit] = []
    /// What the VMM reloaded on restored memory (see `KVMGuest+Resume.swift`); nil for a fresh guest.
    public internal(set) var resumeReport: KVMResumeReport?
    /// Kept alive while the guest runs (a `PageTable` clears its tables on deinit).
    var tables: PageTable<X86PTEFormat, GuestTableFramesInMemory>?

    /// Builds the guest. `useKVM: false`, or KVM unusable where
    /// `requireKVM` is false, gives a guest without a vCPU. `requireKVM`
    /// turns an unusable KVM into the error.
    public convenience init(memorySize: UInt64, payload: GuestPayload, touch: UInt64 = 0,
                            dirtyLog: KVMDirtyLogMode = .bitmap, dirtyRingBytes: UInt32 = KVMVirtualMachine.defaultDirtyRingBytes,
                            useKVM: Bool = true, requireKVM: Bool = false) throws(KVMError) {
        try Self.checkFits(payload: payload, touch: touch, memorySize: memorySize)
        let memory = try KVMGuestMemory.make(size: memorySize)
        try self.init(memory: memory, payload: payload, touch: touch, dirtyLog: dirtyLog, dirtyRingBytes: dirtyRingBytes,
                      useKVM: useKVM, requireKVM: requireKVM, restored: false)
    }

    /// Refuses a payload that does not fit `memorySize` bytes of RAM.
    static func checkFits(payload: GuestPayload, touch: UInt64, memorySize: UInt64) throws(KVMError) {
        if payload.usesTouch {
            let (end, o) = GuestPayload.dataBase.addingReportingOverflow(touch)
            // The touched range lies in lowmem, above the payload's own pages.
            guard !o, touch > 0, touch % GuestMemory.pageSize == 0,
                  end <= min(memorySize, GuestMemory.defaultLowmemLimit) else {
                throw .payloadDoesNotFit(payload: payload.rawValue, needs: end, has: memorySize)
            }
        }
        // Real mode writes up to page 5; long mode also needs its table area.
        let needs = payload.usesTouch ? 0 : (payload.isLongMode ? GuestPayload.tableLimit : 0x6000)
        guard memorySize >= needs else {
            throw .payloadDoesNotFit(payload: payload.rawValue, needs: needs, has: memorySize)
        }
    }

    /// The VM and vCPU over `memory`, then either the VMM's full load of a
    /// fresh guest or, for memory a snapshot restored, ``resume()`` (see
    /// `KVMGuest+Resume.swift`: only what the payload needs to start).
    init(memory: GuestMemory, payload: GuestPayload, touch: UInt64, dirtyLog: KVMDirtyLogMode, dirtyRingBytes: UInt32,
         useKVM: Bool, requireKVM: Bool, restored: Bool) throws(KVMError) {
        self.memory = memory
        self.payload = payload
        self.touch = touch
        var vm: KVMVirtualMachine?
        var vcpu: KVMVCPU?
        var reason: String?
        if useKVM {
            do throws(KVMError) {
                let device = try KVMDevice()
                let v = try KVMVirtualMachine(memory: memory, device: device, dirtyLog: dirtyLog, dirtyRingBytes: dirtyRingBytes)
                vm = v
                vcpu = try v.createVCPU()
            } catch {
                switch error {
                case .unavailable where !requireKVM: reason = error.description
                default: throw error
                }
            }
        } else {
            reason = "KVM not requested"
        }
        self.vm = vm
        self.vcpu = vcpu
        kvmUnavailableReason = reason
        if restored { try resume() } else { try load() }
    }

    /// The VMM loads the payload: code at page 1 (a VMM write: dirty in the
    /// VMM bitmap, not in KVM's log), then the page tables and the vCPU state.
    private func load() throws(KVMError) {
        do { try memory.write(GuestPayload.codeAddress, payload.code) } catch { throw .memory(error) }
        guard payload.isLongMode else { return try setRealModeRegisters() }
        let gigabytePages = try vcpu?.setSupportedCPUID(device: vm!.device) ?? true
        try buildTables(gigabytePages: gigabytePages)
        try setLongModeRegisters()
    }

    /// Builds the identity map at ``GuestPayload/tableBase`` (VMM writes).
    func buildTables(gigabytePages: Bool) throws(KVMError) {
        let frames = GuestTableFramesInMemory(memory: memory, base: GuestPayload.tableBase, limit: GuestPayload.tableLimit)
        do throws(PageTableError) {
            let table = try PageTable<X86PTEFormat, GuestTableFramesInMemory>(frames: frames)
            let gib: UInt64 = 1 << 30
            // The identity map covers the guest space (at least the ROM
            // below 4 GiB): one PDPT's 512 GiB with 1 GiB pages, or the
            // 16 GiB whose directories fit the table area with 2 MiB pages.
            let size: PageSize = gigabytePages ? .size1G : .size2M
            let span = min((max(memory.limit, 4 * gib) + gib - 1) / gib * gib, gigabytePages ? 512 * gib : 16 * gib)
            try table.mapRange(0, to: 0, length: span, attributes: PageAttributes(access: .all), largestPage: size)
            tables = table
            identityPageSize = size
            tablePages = frames.frames.map { $0 / GuestMemory.pageSize }
        } catch {
            throw .memory(.nestedTable("payload page tables: \(error)"))
        }
    }

    /// Real mode at `0:0x1000`.
    func setRealModeRegisters() throws(KVMError) {
        guard let vcpu else { return }
        var s = try vcpu.specialRegisters()
        s.cs.base = 0
        s.cs.selector = 0
        try vcpu.setSpecialRegisters(s)
        var r = KVMRegisters()
        r.rip = GuestPayload.codeAddress
        try vcpu.setRegisters(r)
    }

    /// 64-bit mode on the tables at ``GuestPayload/tableBase``, with the
    /// `pattern`/`checksum` arguments in registers.
    func setLongModeRegisters() throws(KVMError) {
        guard let vcpu else { return }
        var s = try vcpu.specialRegisters()
        let code = KVMSegment(base: 0, limit: 0xFFFF_FFFF, selector: 0x8, type: 11, present: true, dpl: 0,
                              db: false, s: true, l: true, g: true)
        let data = KVMSegment(base: 0, limit: 0xFFFF_FFFF, selector: 0x10, type: 3, present: true, dpl: 0,
                              db: true, s: true, l: false, g: true)
        s.cs = code
        s.ds = data; s.es = data; s.fs = data; s.gs = data; s.ss = data
        s.cr3 = GuestPayload.tableBase
        s.cr4 = 1 << 5                                   // PAE
        s.cr0 = 1 | (1 << 4) | (1 << 5) | (1 << 16) | (1 << 31) // PE, ET, NE, WP, PG
        s.efer = (1 << 8) | (1 << 10)                    // LME, LMA
        try vcpu.setSpecialRegisters(s)
        var r = KVMRegisters()
        r.rip = GuestPayload.codeAddress
        r.rsp = GuestPayload.tableBase
        if payload.usesTouch {
            r.rdi = GuestPayload.dataBase
            r.r9 = GuestPayload.dataBase
            r.rsi = GuestPayload.dataBase + touch
            r.rdx = GuestPayload.stride
            r.r8 = GuestPayload.seed
        }
        try vcpu.setRegisters(r)
    }

    /// Runs the vCPU until a final exit (`hlt`, shutdown, failure) or
    /// `maxExits`, and returns this run's exits. A full dirty ring is
    /// drained into the VMM bitmap and the vCPU goes on. Without KVM,
    /// returns no exits.
    @discardableResult
    public func run(maxExits: Int = 64) throws(KVMError) -> [KVMExit] {
        guard let vcpu, let vm else { return [] }
        var these: [KVMExit] = []
        var fruitless = 0
        while these.count < maxExits {
            let exit = try vcpu.run()
            these.append(exit)
            exits.append(exit)
            if case .dirtyRingFull = exit, let ring = vm.dirtyLog as? KVMRingDirtyLog {
                let fresh: Int
                do { fresh = try ring.drainAfterFull(into: memory, vcpu: vcpu) } catch { throw .memory(error) }
                // Each fruitless exit hands back a soft limit's worth of
                // stale places; a ring that stays full after this many
                // is not one KVM is keeping.
                fruitless = fresh > 0 ? 0 : fruitless + 1
                if fruitless > Self.fruitlessRingExitLimit {
                    throw .dirtyRingOverflow(vcpu: vcpu.id, ringBytes: vm.dirtyRingBytes)
                }
            }
            if exit.isFinal { return these }
        }
        throw .tooManyExits(limit: maxExits)
    }

    /// Ring-full exits in a row that may find nothing new before the ring
    /// is declared beyond repair.
    static let fruitlessRingExitLimit = 64

    /// The 32-bit sum the payload reported with `out 0x30, eax`, if any.
    public var guestChecksum: UInt32? {
        for case let .io(port, 4, .out, 1, data) in exits where port == 0x30 {
            return data.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
        }
        return nil
    }

    /// Every page dirty since the memory was created, by any source (KVM's
    /// log drained into the VMM bitmap, the VMM's writes, the nested
    /// table's D bits), ascending. Reads without clearing.
    public func dirtyPages() throws(KVMError) -> [UInt64] {
        do { return try memory.harvestDirty(0, memory.limit, .get) } catch { throw .memory(error) }
    }

    /// The pages KVM's log alone has reported (after a drain: call
    /// ``dirtyPages()`` or harvest first).
    public var guestDirtyPages: [UInt64] { vm?.guestDirtyPages ?? [] }
}
