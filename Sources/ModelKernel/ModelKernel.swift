import AddressSpace
import KernelLayout
import PageTables
import PhysicalMemory
import class Vmem.Arena

/// A booted model of the illumos kernel's memory: a layout turned into
/// `kas` with its segments and drivers, the vmem arena tree with segkmem's
/// page-creating imports, page frames with identities, and a software page
/// table. See the module article for the boot order and the invariants.
///
/// ``init(_:)`` boots it. Consumers then allocate as the kernel's do:
/// ``kmemAlloc(_:)`` from `kmem_default`, ``allocateStack(_:)`` from segkp,
/// ``zioBufAlloc(_:)`` from `zfs_file_data_buf`, ``vmmAlloc(_:)`` (guest
/// memory) from `vmm_alloc_arena`. ``memstat()``, ``dumpPages()``,
/// ``whatis(_:)`` and ``verify()`` look at the result.
///
/// Thread safety: every part locks itself (arenas, physical memory, the
/// HAT, each driver), so consumers may run on several threads.
public final class ModelKernel: @unchecked Sendable {
    /// The nucleus data the model loads (`e_moddata - s_data`): sized so that
    /// ktextseg is 0x550000 bytes, as in the seed's mdb listing.
    public static let nucleusDataSize: UInt64 = 0x15_0000

    public let configuration: ModelKernelConfiguration
    public let layout: Layout
    public let symbols: KernelSymbols
    public let physicalMemory: PhysicalMemory
    public let hat: KernelHAT
    public let memory: KernelMemory
    /// The kernel address space.
    public let kas: AddressSpace
    public let arenas: KernelArenas
    /// The segkp driver (on i386 it has no segment of its own: its arena
    /// imports from `heap` and kvseg forwards its faults).
    public let segkp: SegKp
    public let segkpm: SegKpm?
    public let segmap: SegMap
    /// The segments attached at boot, in attach order.
    public let segments: [KernelSegment]
    /// The swapfs vnode anon-backed segkp pages are named on.
    public let swapfsVnode: Vnode
    /// Cookies of the `segkp_thread` and `segkp_lwp` caches.
    public let threadStackCache: Int
    public let lwpStackCache: Int
    /// `DEFAULTSTKSZ`
    public let stackSize: UInt64
    /// The nucleus (kernel text and data) loaded at boot.
    public let nucleus: Range<UInt64>
    let bootData: _BootData
    let stateLock = _OwnedMutex()
    var liveStacks: [UInt64: KernelStack] = [:]
    /// i386: the red-zone pages `segkp_map_red` has mapped (`t_red_pp`), by stack base.
    var redPages: [UInt64: UInt64] = [:]
    /// `red_nmapped`, `red_closest`, `red_ndoubles`.
    var redStatistics = RedZoneStatistics()
    var liveGuests: [UInt64: UInt64] = [:]
    /// Guests hosted through GuestMemory, by the address of their `vm_t`.
    var hostedGuestTable: [UInt64: ModelGuest] = [:]
    /// Process address spaces, by the address of their `struct as`.
    var processTable: [UInt64: _ProcessSpace] = [:]
    /// The next identity range for a process HAT's table pages (never reused:
    /// a destroyed process's HAT lives on while its caller keeps it).
    var nextProcessTableSlot: UInt64 = 1
    /// Every process HAT still alive, live process or not, for the
    /// page-table pages ``verify()`` accounts for.
    var processHATs: [_WeakHAT] = []
    /// Why the page provider refused, for the thread that asked (GuestMemory
    /// can carry only its own error type across the hook).
    let guestFailures = _FailureLog()
    /// The page provider of hosted guests: `vmm_alloc_arena` pages on
    /// `kvps[KV_VVP]` (it holds this kernel weakly).
    public let vmmPageProvider = VmmArenaPageProvider()

    public var model: LayoutModel { layout.model }

    /// The red zone, `[kernelbase, segkpm_base)` on amd64 (512 GiB) and
    /// `[kernelbase, segmap)` on i386: no segment and no mapping, so a touch
    /// there is `FC_NOMAP`, reported as a fault in "redzone".
    public var redZone: Range<UInt64> {
        let end = layout.model.isAMD64 ? layout.segkpmBase : layout.segmapStart
        return layout.kernelbase ..< max(layout.kernelbase, end)
    }

    /// Boots the model: layout, page frames, HAT, the nucleus, the arena
    /// tree, then the segments in `startup_vm` order (ktextseg, kvalloc,
    /// kvseg, kvseg_core, kvmmseg, kzioseg, kdebugseg, segkp, kpmseg,
    /// kmapseg), and the segkp stack caches. The red zone below `kernelbase`
    /// gets no segment (``redZone``).
    public init(_ configuration: ModelKernelConfiguration) throws(ModelKernelError) {
        self.configuration = configuration
        let layout: Layout
        do { layout = try Layout(configuration.layout) } catch { throw .layout(error) }
        let fatal = layout.failedChecks.filter { ArenaTree.fatalChecks.contains($0) }
        if !fatal.isEmpty { throw .unusableLayout(failedChecks: fatal) }
        self.layout = layout
        let page = PhysicalMemory.pageSize

        // Page frames: metadata for pages in use only.
        let physical: PhysicalMemory
        do {
            physical = try PhysicalMemory(pageCount: max(layout.physmax / page, 1),
                                          physmem: max(layout.physmem / page, 1), backing: configuration.backing)
        } catch {
            throw .physicalMemory(error, context: "creating \(layout.physmax / page) page frames")
        }
        physicalMemory = physical
        let hat = try KernelHAT(memory: physical)
        self.hat = hat
        let memory = KernelMemory(physical: physical, hat: hat)
        self.memory = memory
        let symbols = KernelSymbols(layout: layout)
        self.symbols = symbols
        let swapfs: Vnode
        do { swapfs = try physical.makeVnode(.swapfs, name: "swapfs") } catch {
            throw .physicalMemory(error, context: "making the swapfs vnode")
        }
        swapfsVnode = swapfs
        let kas = AddressSpace(name: "kas", kind: .kernel, hat: hat, address: symbols.kas,
                               virtualHole: layout.model.isAMD64 ? AddressSpace.amd64Hole : nil,
                               segmentRecordBase: symbols.staticSegment(64))
        self.kas = kas

        // The nucleus that boot loaded: kernel text and data pages on kvp.
        guard let text = layout.region(.kernelText), let data = layout.region(.kernelData),
              let debugger = layout.region(.debugger) else {
            throw .invariantViolated("layout \(layout.model.name) has no kernel text, data or debugger region")
        }
        let nucleus = text.base ..< data.base + Self.nucleusDataSize
        self.nucleus = nucleus
        try memory.createPages(va: text.base, size: text.size, vnode: .kvp, protection: [.read, .execute])
        try memory.createPages(va: data.base, size: Self.nucleusDataSize, vnode: .kvp, protection: [.read, .write])

        // startup_kmem / kmem_init / segkmem_zio_init / segkmem_kvmm_init:
        // the arena tree, with segkmem imports.
        let arenas = try KernelArenas.build(layout: layout, memory: memory, audit: configuration.auditArenas)
        self.arenas = arenas
        guard let kmemDefault = arenas["kmem_default"], let heap = arenas["heap"],
              let segkpArena = arenas["segkp"] else {
            throw .invariantViolated("the arena tree lacks kmem_default, heap or segkp")
        }
        let bootData = _BootData(arena: kmemDefault)
        self.bootData = bootData

        // kvm_init and startup_vm: the segments, in order.
        var attached: [KernelSegment] = []
        func attach(_ name: String, _ base: UInt64, _ size: UInt64, _ driver: any SegmentDriver, segAddress: UInt64,
                    flags: SegmentFlags = [], account: Bool = false) throws(ModelKernelError) -> Segment {
            let seg: Segment
            do {
                seg = try kas.attach(base: base, size: size, driver: driver, flags: flags,
                                     segmentAddress: segAddress, accountSize: account)
            } catch {
                throw .addressSpace(error)
            }
            attached.append(KernelSegment(name: name, base: base, size: size, address: seg.address,
                                          opsName: driver.opsName))
            return seg
        }
        func segkmem(_ name: String, _ base: UInt64, _ size: UInt64, vnode: Vnode, _ index: Int,
                     dump: SegKmem.DumpPolicy) throws(ModelKernelError) -> SegKmem {
            let kvIndex = vnode == .zvp ? 1 : vnode == .vvp ? 2 : 0
            let driver = SegKmem(name: name, vnode: vnode, dataAddress: symbols.kvp(kvIndex), dumpPolicy: dump,
                                 memory: memory)
            _ = try attach(name, base, size, driver, segAddress: symbols.staticSegment(index), account: true)
            return driver
        }

        _ = try segkmem("ktextseg", nucleus.lowerBound, nucleus.upperBound - nucleus.lowerBound, vnode: .kvp, 0,
                        dump: .wholeRange)
        _ = try segkmem("kvalloc", layout.vallocBase, layout.vallocSize, vnode: .kvp, 1, dump: .wholeRange)
        let kvsegEnd = layout.model.isAMD64 ? layout.heapEnd : layout.heaptextBase + layout.heaptextSize
        let kvseg = try segkmem("kvseg", layout.kernelheap, kvsegEnd - layout.kernelheap, vnode: .kvp, 2,
                                dump: .allocatedIn(heap))
        if layout.model.isAMD64, let core = arenas["heap_core"] {
            _ = try segkmem("kvseg_core", layout.heapCoreBase, layout.miscBase - layout.heapCoreBase, vnode: .kvp, 3,
                            dump: .allocatedIn(core))
        }
        if layout.model == .post12608 {
            _ = try segkmem("kvmmseg", layout.segkvmmBase, layout.segkvmmSize, vnode: .vvp, 4, dump: .never)
        }
        if layout.model.isAMD64 {
            _ = try segkmem("kzioseg", layout.segzioBase, layout.segzioSize, vnode: .zvp, 5, dump: .never)
        }
        _ = try segkmem("kdebugseg", debugger.base, debugger.size, vnode: .kvp, 6, dump: .wholeRange)

        // segkp: its own segment on amd64; an arena in the heap on i386.
        let anonBase = layout.model.isAMD64 ? layout.segkpBase : layout.kernelheap
        let segkp = SegKp(arena: segkpArena, dataAddress: try bootData.allocate(0x40), memory: memory,
                          anonVnode: swapfs, anonBase: anonBase)
        self.segkp = segkp
        if layout.model.isAMD64 {
            _ = try attach("kpseg", layout.segkpBase, layout.segkpSize, segkp, segAddress: symbols.staticSegment(7))
        } else {
            kvseg.segkp = segkp
        }

        // kpm_init: the linear window onto physical memory.
        if layout.model.isAMD64 {
            let kpm = SegKpm(base: layout.segkpmBase, physicalSize: layout.physmax, dataAddress: try bootData.allocate(0x40))
            _ = try attach("kpmseg", layout.segkpmBase, layout.kpmSize, kpm,
                           segAddress: try bootData.allocate(KernelSymbols.segmentStructSize))
            do throws(HATError) {
                try hat.mapLinear(address: layout.segkpmBase, physicalAddress: 0, length: layout.physmax,
                                  protection: [.read, .write])
            } catch {
                throw .hat(error)
            }
            segkpm = kpm
        } else {
            segkpm = nil
        }

        // segmap, faulted on without a_lock.
        let map = SegMap(base: layout.segmapStart, size: layout.segmapSize, dataAddress: try bootData.allocate(0x80),
                         memory: memory)
        let kmapseg = try attach("kmapseg", layout.segmapStart, layout.segmapSize, map,
                                 segAddress: try bootData.allocate(KernelSymbols.segmentStructSize))
        do { try kas.setLockFreeFaultSegment(kmapseg) } catch { throw .addressSpace(error) }
        segmap = map

        // The red zone below the kernel has no segment (kernel-layout.md,
        // region 14): kvm_init's as_setprot(0) leaves it unmappable, and an
        // access there finds no segment, so kas lists the seed's segments only.
        segments = attached

        // thread_init's stack caches.
        let stackSize = (layout.model.isAMD64 ? AMD64.defaultStackPages : 3) * page
        self.stackSize = stackSize
        threadStackCache = try segkp.cacheInit(maxCount: configuration.stackCacheDepth, length: stackSize,
                                               flags: .threadStack)
        lwpStackCache = try segkp.cacheInit(maxCount: configuration.stackCacheDepth, length: stackSize,
                                            flags: .lwpStack)
        vmmPageProvider.attach(self)
    }

    /// Boots a model of `physmem` bytes under `model` with default tunables.
    public convenience init(model: LayoutModel = .post12608, physmem: UInt64) throws(ModelKernelError) {
        try self.init(ModelKernelConfiguration(model: model, physmem: physmem))
    }

    /// The boot-time segment containing `address`.
    public func segment(containing address: UInt64) -> KernelSegment? {
        segments.first { $0.contains(address) }
    }

    /// The boot-time segment called `name`.
    public func segment(named name: String) -> KernelSegment? {
        segments.first { $0.name == name }
    }

    /// `::memstat`
    public func memstat() -> MemoryStatistics { physicalMemory.memstat() }

    func withState<R>(_ body: () -> R) -> R {
        stateLock.lock()
        defer { stateLock.unlock() }
        return body()
    }
}
