import AddressSpace
import PhysicalMemory
import class Vmem.Arena

/// `seg_kp`: kernel stacks and other pageable or locked kernel memory, each
/// resource with an optional red-zone page below it (address-space.md §3.7).
///
/// VA comes from the `segkp` arena (its own span on amd64; imported from
/// `heap` on i386, seed 001). Every page but the red zone is created and
/// mapped when the resource is made: on `kvps[KV_KVP]` at offset = VA with
/// `KPD_NO_ANON`, otherwise on the swapfs vnode at the resource's anon slot
/// (so LWP stacks show up as "Anon" in `::memstat`). `KPD_LOCKED` pages keep
/// a shared page lock. The red-zone page gets no page and no translation,
/// so a touch of it faults; the kernel reports that as a stack overflow.
///
/// Active resources sit in a 256-bucket hash keyed on `(va >> 12) & 255` of
/// their base, searched downwards from the bucket of an address as
/// `segkp_find` does. Up to ``maximumCaches`` freelist caches keep released
/// resources whole (pages and all) for reuse, each up to its own maximum.
public final class SegKp: SegmentDriver, @unchecked Sendable {
    /// `SEGKP_HASHSZ`
    public static let hashSize = 256
    /// `SEGKP_MAX_CACHE`
    public static let maximumCaches = 4

    struct Cache {
        var maxCount: Int
        var length: UInt64
        var flags: SegKpFlags
        var free: [SegKpResource] = []
    }

    /// The `segkp` arena.
    public let arena: Arena
    public let dataAddress: UInt64
    let memory: KernelMemory
    let anonVnode: Vnode
    /// The base anon slot numbers count from (segkp's base; kvseg's on i386).
    let anonBase: UInt64
    private let mutex = _OwnedMutex()
    private var buckets = [[SegKpResource]](repeating: [], count: SegKp.hashSize)
    private var caches = [Cache?](repeating: nil, count: SegKp.maximumCaches)

    init(arena: Arena, dataAddress: UInt64, memory: KernelMemory, anonVnode: Vnode, anonBase: UInt64) {
        self.arena = arena
        self.dataAddress = dataAddress
        self.memory = memory
        self.anonVnode = anonVnode
        self.anonBase = anonBase
    }

    public var opsName: String { "segkp_ops" }

    /// segkp's table: everything else is `segkp_badop` (a panic in illumos),
    /// and inherit is `seg_inherit_notsup`.
    public var supportedOperations: SegmentOperations {
        [.fault, .checkprot, .kluster, .dump, .pagelock, .getmemid, .getpolicy, .capable]
    }

    static func bucket(_ va: UInt64) -> Int { Int((va >> 12) & UInt64(hashSize - 1)) }

    // MARK: The hash (mutex held)

    private func _find(_ va: UInt64) -> (bucket: Int, index: Int)? {
        let stop = Self.bucket(va)
        var i = stop
        repeat {
            if let k = buckets[i].firstIndex(where: { $0.contains(va) }) { return (i, k) }
            i = i == 0 ? Self.hashSize - 1 : i - 1
        } while i != stop
        return nil
    }

    private func _insert(_ r: SegKpResource) { buckets[Self.bucket(r.base)].append(r) }

    // MARK: Resources

    /// `segkp_get`: a resource of `length` bytes (plus a red-zone page with
    /// `KPD_HASREDZONE`); returns the first mapped address (`stom`).
    public func get(length: UInt64, flags: SegKpFlags) throws(ModelKernelError) -> UInt64 {
        try getInternal(length: length, flags: flags, cookie: -1).mappedBase
    }

    func getInternal(length: UInt64, flags: SegKpFlags, cookie: Int) throws(ModelKernelError) -> SegKpResource {
        guard length > 0, length & (PhysicalMemory.pageSize - 1) == 0, length <= 1 << 40 else {
            throw .invalidArgument(name: "segkp length", value: length, reason: "must be a non-zero multiple of 4096 up to 1 TiB")
        }
        if flags.contains(.noAnon) && !flags.contains(.locked) {
            throw .invalidArgument(name: "segkp flags", value: UInt64(flags.rawValue), reason: "KPD_NO_ANON is only valid with KPD_LOCKED")
        }
        if flags.contains(.hasAnonMap) {
            throw .invalidArgument(name: "segkp flags", value: UInt64(flags.rawValue), reason: "KPD_HASAMP (a caller's anon map) is not modelled")
        }
        let total = flags.contains(.hasRedZone) ? length + PhysicalMemory.pageSize : length
        let base: UInt64
        do { base = try arena.alloc(total, policy: .bestFit) } catch {
            throw memory.failures.take() ?? .vmem(error, arena: arena.name)
        }
        var r = SegKpResource(base: base, length: total, flags: flags, cookie: cookie,
                              anonIndex: (base &- anonBase) >> PhysicalMemory.pageShift)
        do throws(ModelKernelError) {
            try createPages(r)
        } catch {
            try? arena.free(base, size: total)
            throw error
        }
        r.flags = flags
        mutex.withLock { _insert(r) }
        return r
    }

    private func identity(_ r: SegKpResource) -> (Vnode, UInt64) {
        r.flags.contains(.noAnon) ? (.kvp, r.mappedBase) : (anonVnode, r.mappedBase &- anonBase)
    }

    private func createPages(_ r: SegKpResource) throws(ModelKernelError) {
        let (vnode, offset) = identity(r)
        try memory.createPages(va: r.mappedBase, size: r.mappedLength, vnode: vnode, offset: offset,
                               protection: [.read, .write], hold: r.isLocked ? .shared : .none)
    }

    /// `segkp_release`: a resource from a cache goes back to its freelist
    /// (whole, still mapped) while the freelist is below its maximum;
    /// otherwise its pages are destroyed and its VA freed. `address` may be
    /// any address inside the resource.
    public func release(_ address: UInt64) throws(ModelKernelError) {
        mutex.lock()
        guard let (b, k) = _find(address) else {
            mutex.unlock()
            throw .unknownAllocation(kind: "segkp resource", address: address)
        }
        var r = buckets[b].remove(at: k)
        if r.cookie >= 0, var cache = caches[r.cookie], cache.free.count < cache.maxCount {
            cache.free.append(r)
            caches[r.cookie] = cache
            mutex.unlock()
            return
        }
        r.cookie = -1
        mutex.unlock()
        try releaseInternal(r)
    }

    /// `segkp_release_internal`: unload, destroy the pages, free the VA.
    func releaseInternal(_ r: SegKpResource) throws(ModelKernelError) {
        let (vnode, offset) = identity(r)
        do throws(ModelKernelError) {
            try memory.destroyPages(va: r.mappedBase, size: r.mappedLength, vnode: vnode, offset: offset)
        } catch {
            mutex.withLock { _insert(r) }   // still whole: put it back
            throw error
        }
        do { try arena.free(r.base, size: r.length) } catch { throw .vmem(error, arena: arena.name) }
    }

    /// `segkp_cache_init`: a freelist of resources of `length` bytes made
    /// with `flags`, kept up to `maxCount` deep. Returns its cookie.
    public func cacheInit(maxCount: Int, length: UInt64, flags: SegKpFlags) throws(ModelKernelError) -> Int {
        guard maxCount >= 0, maxCount <= 1 << 20 else {
            throw .invalidArgument(name: "segkp cache maximum", value: UInt64(truncatingIfNeeded: maxCount), reason: "outside [0, 2^20]")
        }
        guard length > 0, length & (PhysicalMemory.pageSize - 1) == 0 else {
            throw .invalidArgument(name: "segkp cache length", value: length, reason: "must be a non-zero multiple of 4096")
        }
        if flags.contains(.noAnon) && !flags.contains(.locked) {
            throw .invalidArgument(name: "segkp flags", value: UInt64(flags.rawValue), reason: "KPD_NO_ANON is only valid with KPD_LOCKED")
        }
        return try mutex.withLock { () throws(ModelKernelError) -> Int in
            guard let i = caches.firstIndex(where: { $0 == nil }) else {
                throw .invalidArgument(name: "segkp caches", value: UInt64(Self.maximumCaches),
                                       reason: "all SEGKP_MAX_CACHE freelists are in use")
            }
            caches[i] = Cache(maxCount: maxCount, length: length, flags: flags)
            return i
        }
    }

    /// `segkp_cache_get`: a resource from the freelist, or a new one.
    public func cacheGet(_ cookie: Int) throws(ModelKernelError) -> UInt64 {
        guard cookie >= 0, cookie < Self.maximumCaches else {
            throw .invalidArgument(name: "segkp cookie", value: UInt64(truncatingIfNeeded: cookie), reason: "not a cache")
        }
        mutex.lock()
        guard var cache = caches[cookie] else {
            mutex.unlock()
            throw .invalidArgument(name: "segkp cookie", value: UInt64(cookie), reason: "no cache was initialised with it")
        }
        if let r = cache.free.popLast() {
            caches[cookie] = cache
            _insert(r)
            mutex.unlock()
            return r.mappedBase
        }
        mutex.unlock()
        return try getInternal(length: cache.length, flags: cache.flags, cookie: cookie).mappedBase
    }

    /// `segkp_cache_free`: destroys every cached resource.
    public func cacheFree() throws(ModelKernelError) {
        var all: [SegKpResource] = []
        mutex.withLock {
            for i in caches.indices {
                guard var cache = caches[i] else { continue }
                all += cache.free
                cache.free.removeAll()
                caches[i] = cache
            }
        }
        for var r in all {
            r.cookie = -1
            try releaseInternal(r)
        }
    }

    // MARK: Lookups

    /// `segkp_find`: the active resource containing `address`.
    public func find(_ address: UInt64) -> SegKpResource? {
        mutex.withLock { _find(address).map { buckets[$0.bucket][$0.index] } }
    }

    /// Whether an active resource contains `address` (i386: `segkp_bitmap`).
    func owns(_ address: UInt64) -> Bool { find(address) != nil }

    /// The resource, active or cached, whose red-zone page holds `address`.
    public func redZoneOwner(of address: UInt64) -> SegKpResource? {
        mutex.withLock {
            if let (b, k) = _find(address), buckets[b][k].redZone?.contains(address) == true { return buckets[b][k] }
            for cache in caches.compactMap({ $0 }) {
                if let r = cache.free.first(where: { $0.redZone?.contains(address) == true }) { return r }
            }
            return nil
        }
    }

    /// Active resources, by base.
    public var activeResources: [SegKpResource] {
        mutex.withLock { buckets.flatMap { $0 }.sorted { $0.base < $1.base } }
    }

    /// Resources waiting on the freelist of `cookie`.
    public func cachedResources(_ cookie: Int) -> [SegKpResource] {
        mutex.withLock { cookie >= 0 && cookie < Self.maximumCaches ? caches[cookie]?.free ?? [] : [] }
    }

    /// Every resource the driver holds: active, then cached.
    var allResources: [SegKpResource] {
        mutex.withLock { buckets.flatMap { $0 } + caches.compactMap { $0 }.flatMap(\.free) }
    }

    // MARK: Segment operations

    public func fault(_ hat: any HAT, _ segment: Segment, address: UInt64, size: UInt64,
                      type: FaultType, access: SegmentAccess) throws(SegmentError) {
        if type == .protection { throw .errno(Errno.EINVAL, operation: .fault) }  // illumos panics
        mutex.lock()
        defer { mutex.unlock() }
        guard let (b, k) = _find(address) else { throw .fault(.noMapping, address: address) }
        let r = buckets[b][k]
        if let red = r.redZone, red.contains(address) {
            // segkp_fault panics "accessing redzone"; the kernel's page-fault
            // path reports the touch as a stack overflow before it gets here.
            throw .fault(.protection, address: address)
        }
        let (vnode, offset) = identity(r)
        switch type {
        case .softLock, .softUnlock:
            guard address == r.mappedBase, size == r.mappedLength else {
                throw .fault(.objectError(errno: Errno.EFAULT), address: address)
            }
            let pages = r.mappedLength >> PhysicalMemory.pageShift
            if type == .softLock {
                guard !r.isLocked else { throw .errno(Errno.EINVAL, operation: .fault) }
                var held: [PageFrameNumber] = []
                for i in 0..<pages {
                    let pfn = try? memory.physical.pageLookup(vnode: vnode, offset: offset + i << PhysicalMemory.pageShift,
                                                              lock: .shared)
                    guard let pfn = pfn ?? nil else {
                        for p in held { try? memory.physical.pageUnlock(p) }
                        throw .fault(.objectError(errno: Errno.EFAULT), address: r.mappedBase + i << PhysicalMemory.pageShift)
                    }
                    held.append(pfn)
                }
                buckets[b][k].flags.insert(.locked)
            } else {
                guard r.isLocked, !r.flags.contains(.noAnon) else { throw .errno(Errno.EINVAL, operation: .fault) }
                for i in 0..<pages {
                    if let pfn = memory.physical.pageFind(vnode: vnode, offset: offset + i << PhysicalMemory.pageShift) {
                        try? memory.physical.pageUnlock(pfn)
                    }
                }
                buckets[b][k].flags.remove(.locked)
            }
        case .invalid:
            // Pages are created with the resource; a missing translation is
            // one a pageout would have taken: load it again.
            let page = address & ~(PhysicalMemory.pageSize - 1)
            if hat.probe(page) { return }
            guard let pfn = memory.physical.pageFind(vnode: vnode, offset: offset + (page - r.mappedBase)) else {
                throw .fault(.objectError(errno: Errno.EFAULT), address: address)
            }
            do throws(HATError) {
                try hat.load(address: page, pfn: pfn, attributes: HATAttributes([.read, .write]), flags: [])
            } catch {
                throw .fault(.objectError(errno: Errno.EFAULT), address: address)
            }
        case .protection:
            break
        }
    }

    public func checkprot(_ segment: Segment, address: UInt64, size: UInt64, protection: Protection) throws(SegmentError) {
        guard let r = find(address) else { throw .errno(Errno.EACCES, operation: .checkprot) }
        let (end, o) = address.addingReportingOverflow(size)
        guard !o, address >= r.mappedBase, end <= r.mappedBase + r.mappedLength else {
            throw .errno(Errno.EACCES, operation: .checkprot)
        }
    }

    public func kluster(_ segment: Segment, address: UInt64, delta: Int64) throws(SegmentError) -> Bool { true }

    /// `segkp_dump`: the mapped pages of every active resource.
    public func dump(_ segment: Segment, into sink: (UInt64, PageFrameNumber) -> Void) throws(SegmentError) {
        for r in activeResources {
            var va = r.mappedBase
            while va < r.mappedBase + r.mappedLength {
                if let t = memory.hat.translation(of: va) { sink(va, t.pfn) }
                va += PhysicalMemory.pageSize
            }
        }
    }

    public func pagelock(_ segment: Segment, address: UInt64, size: UInt64, type: PageLockType,
                         access: SegmentAccess) throws(SegmentError) -> [PageFrameNumber] {
        throw .errno(Errno.ENOTSUP, operation: .pagelock)
    }

    public func getmemid(_ segment: Segment, address: UInt64) throws(SegmentError) -> MemoryID {
        throw .errno(19, operation: .getmemid)   // ENODEV
    }

    public func getpolicy(_ segment: Segment, address: UInt64) throws(SegmentError) -> MemoryPolicy? { nil }

    public func capable(_ segment: Segment, capability: SegmentCapability) throws(SegmentError) -> Bool { false }
}
