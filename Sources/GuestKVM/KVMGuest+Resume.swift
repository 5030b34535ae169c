import GuestMemory
import PageTables

/// What the VMM reloaded when a payload resumed on restored memory.
public struct KVMResumeReport: Hashable, Sendable {
    /// The payload's code differed from the bytes at page 1 and was written
    /// (a VMM write: dirty, and in the next diff). False when the snapshot
    /// already held this payload's code.
    public let codeReloaded: Bool
    /// Long mode: the identity map was not in the snapshot (a real-mode
    /// guest's, say) and was built again. False when the snapshot's tables
    /// were used as they are, or in real mode.
    public let tablesRebuilt: Bool

    public init(codeReloaded: Bool, tablesRebuilt: Bool) {
        self.codeReloaded = codeReloaded
        self.tablesRebuilt = tablesRebuilt
    }
}

/// A guest on memory a snapshot restored.
///
/// A snapshot holds memory only, so the vCPU state is set fresh (the
/// payload's entry registers, its CPUID), and the VMM writes only what the
/// payload needs to start and the snapshot lacks: page 1 when it does not
/// already hold this payload's code (running `checksum` on a `pattern`
/// snapshot), the long-mode identity map when the snapshot has none. Every
/// other byte — the data, the ROM, the tables — is the snapshot's, and with
/// a lazy restore is fetched when first touched (the two words read to
/// recognise the tables, and page 1, included).
extension KVMGuest {
    /// A guest on `memory` (restored from a snapshot, so not loaded by the
    /// VMM), which must have ``KVMGuestMemory``'s map. Creates the VM on it
    /// (the restore must come first: a restore refuses memory a VM runs),
    /// then resumes as the type's notes say.
    public convenience init(restoredMemory memory: GuestMemory, payload: GuestPayload, touch: UInt64 = 0,
                            dirtyLog: KVMDirtyLogMode = .bitmap,
                            dirtyRingBytes: UInt32 = KVMVirtualMachine.defaultDirtyRingBytes,
                            useKVM: Bool = true, requireKVM: Bool = false) throws(KVMError) {
        let ram = try KVMGuestMemory.ramSize(of: memory)
        try Self.checkFits(payload: payload, touch: touch, memorySize: ram)
        try self.init(memory: memory, payload: payload, touch: touch, dirtyLog: dirtyLog, dirtyRingBytes: dirtyRingBytes,
                      useKVM: useKVM, requireKVM: requireKVM, restored: true)
    }

    /// The restored counterpart of the fresh load.
    func resume() throws(KVMError) {
        let code = payload.code
        let present: [UInt8]
        do { present = try memory.read(GuestPayload.codeAddress, count: code.count) } catch { throw .memory(error) }
        let codeReloaded = present != code
        if codeReloaded {
            do { try memory.write(GuestPayload.codeAddress, code) } catch { throw .memory(error) }
        }
        guard payload.isLongMode else {
            resumeReport = KVMResumeReport(codeReloaded: codeReloaded, tablesRebuilt: false)
            return try setRealModeRegisters()
        }
        let gigabytePages = try vcpu?.setSupportedCPUID(device: vm!.device) ?? true
        let rebuilt: Bool
        if let (size, pages) = try restoredTables(), size == (gigabytePages ? .size1G : .size2M) {
            identityPageSize = size
            tablePages = pages
            rebuilt = false
        } else {
            try buildTables(gigabytePages: gigabytePages)
            rebuilt = true
        }
        resumeReport = KVMResumeReport(codeReloaded: codeReloaded, tablesRebuilt: rebuilt)
        try setLongModeRegisters()
    }

    /// The identity map a fresh load builds, if the memory holds it: PML4
    /// at ``GuestPayload/tableBase`` whose entry 0 points to the PDPT in the
    /// next page, and a present PDPT entry 0 (its PS bit gives the leaf
    /// size). Returns the leaf size and the table pages (PML4, PDPT, and
    /// for 2 MiB leaves the page directories that follow).
    private func restoredTables() throws(KVMError) -> (PageSize, [UInt64])? {
        let present: UInt64 = 1, largePage: UInt64 = 1 << 7, frame: UInt64 = 0x000F_FFFF_FFFF_F000
        let pdpt = GuestPayload.tableBase + GuestMemory.pageSize
        let pml4e: UInt64, pdpte: UInt64
        do {
            pml4e = try memory.load(UInt64.self, at: GuestPayload.tableBase)
            pdpte = try memory.load(UInt64.self, at: pdpt)
        } catch { throw .memory(error) }
        guard pml4e & present != 0, pml4e & frame == pdpt, pdpte & present != 0 else { return nil }
        var pages = [GuestPayload.tableBase / GuestMemory.pageSize, pdpt / GuestMemory.pageSize]
        if pdpte & largePage != 0 { return (.size1G, pages) }
        // Page directories follow the PDPT, one per GiB mapped.
        var gpa = pdpt + GuestMemory.pageSize
        var entry: UInt64 = 0
        while gpa < GuestPayload.tableLimit, entry < 512 {
            let e: UInt64
            do { e = try memory.load(UInt64.self, at: pdpt + entry * 8) } catch { throw .memory(error) }
            guard e & present != 0, e & frame == gpa else { break }
            pages.append(gpa / GuestMemory.pageSize)
            gpa += GuestMemory.pageSize
            entry += 1
        }
        return (.size2M, pages)
    }
}
