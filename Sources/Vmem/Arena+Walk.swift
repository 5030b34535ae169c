// Looking at an arena: walks, contains, sizes, statistics, destroy.

extension Arena {
    /// Calls `body` for each segment selected by `mask`, in segment-list order
    /// (spans in creation order, segments by address within a span).
    ///
    /// The walk works on a snapshot taken under the lock, so `body` may call
    /// back into the arena (illumos needs `VMEM_REENTRANT` and a walker marker
    /// for that).
    public func walk(_ mask: WalkMask = .all, _ body: (Segment) -> Void) {
        for s in segments(mask) { body(s) }
    }

    /// The segments `walk` would visit.
    public func segments(_ mask: WalkMask = .all) -> [Segment] {
        lock.lock(); defer { lock.unlock() }
        var out: [Segment] = []
        let tags = core.pointee.tags
        var t = tags[Int(ReservedTag.seg0)].segNext
        while t != ReservedTag.seg0 {
            let tag = tags[Int(t)]
            let kind = SegmentKind(rawValue: tag.kind) ?? .walker
            let wanted: Bool
            switch kind {
            case .allocated: wanted = mask.contains(.allocated)
            case .free: wanted = mask.contains(.free)
            case .span: wanted = mask.contains(.spans)
            case .rotor, .walker: wanted = mask.contains(.markers)
            }
            if wanted {
                out.append(Segment(kind: kind, start: tag.start, end: tag.end, imported: kind == .span && tag.imported,
                                   tagAddress: tagAddress(t),
                                   audit: kind == .allocated ? audits[tag.start] : nil))
            }
            t = tag.segNext
        }
        return out
    }

    /// A stable, distinct number per boundary tag, shaped like a kernel
    /// address so that `::vmem_seg` output looks familiar.
    func tagAddress(_ t: TagIndex) -> UInt64 {
        0xFFFF_FE00_0000_0000 | (UInt64(sequence & 0xFFFF) << 24) | (UInt64(t) * UInt64(MemoryLayout<BoundaryTag>.stride))
    }

    /// An identity for the arena itself (the ADDR column of `::vmem`): a
    /// number shaped like an amd64 kernel address, a multiple of
    /// ``structAddressSpan``. Each boundary tag's number
    /// (``Segment/tagAddress``) is this plus 32 times the tag's index, so
    /// that for the first 2^19 tags it lies in
    /// `[address, address + structAddressSpan)`.
    public var address: UInt64 { 0xFFFF_FE00_0000_0000 | (UInt64(sequence & 0xFFFF) << 24) }

    /// The room above an arena's ``address`` that its boundary tags' numbers take.
    public static let structAddressSpan: UInt64 = 1 << 24

    /// Whether `[address, address+size)` lies inside one of the arena's spans
    /// (illumos `vmem_contains`).
    public func contains(_ address: UInt64, size: UInt64 = 1) -> Bool {
        let (end, o) = address.addingReportingOverflow(size)
        if o || size == 0 { return false }
        lock.lock(); defer { lock.unlock() }
        core.pointee.stats.containsCount &+= 1
        let tags = core.pointee.tags
        var s = tags[Int(ReservedTag.spans)].next
        while s != ReservedTag.spans {
            core.pointee.stats.containsSearch &+= 1
            if address >= tags[Int(s)].start && end <= tags[Int(s)].end { return true }
            s = tags[Int(s)].next
        }
        return false
    }

    /// Bytes allocated, free, or in all spans (illumos `vmem_size`). Objects
    /// held in quantum caches count as allocated, as in illumos.
    public func size(_ kind: SizeKind) -> UInt64 {
        lock.lock(); defer { lock.unlock() }
        let st = core.pointee.stats
        switch kind {
        case .allocated: return st.memInUse
        case .free: return st.memTotal &- st.memInUse
        case .total: return st.memTotal
        }
    }

    /// A snapshot of the counters.
    public var statistics: ArenaStatistics {
        lock.lock(); defer { lock.unlock() }
        var st = core.pointee.stats
        st.tagsFree = UInt64(core.pointee.availableTags)
        st.tagsOwned = UInt64(core.pointee.tagCapacity - ReservedTag.firstDynamic)
        return st
    }

    /// Bytes of boundary tags, hash buckets and free-list arrays the arena
    /// owns, divided by its allocated segments (the "metadata per live
    /// segment" of the benchmarks).
    public var metadataBytesPerAllocatedSegment: Double {
        lock.lock(); defer { lock.unlock() }
        let c = core.pointee
        var bytes = Int(c.tagCapacity) * MemoryLayout<BoundaryTag>.stride + (1 << c.hashBits) * MemoryLayout<TagIndex>.stride
        bytes += 64 * MemoryLayout<FreeListArray>.stride
        for i in 0..<64 { bytes += c.lists[i].capacity * MemoryLayout<FreeEntry>.stride }
        return Double(bytes) / Double(max(c.stats.allocatedSegments, 1))
    }

    /// The metadata the arena and its quantum caches own, against the live
    /// allocations it serves: the figure the benchmarks report as "metadata
    /// per segment", with the arena's and the caches' shares apart.
    public var metadataFootprint: MetadataFootprint {
        // The caches first, each under its own locks, and then the arena:
        // never the arena lock and a cache's at once.
        let caches = qcaches.map { $0.statistics }
        lock.lock(); defer { lock.unlock() }
        let c = core.pointee
        var bytes = Int(c.tagCapacity) * MemoryLayout<BoundaryTag>.stride + (1 << c.hashBits) * MemoryLayout<TagIndex>.stride
        bytes += 64 * MemoryLayout<FreeListArray>.stride
        for i in 0..<64 { bytes += c.lists[i].capacity * MemoryLayout<FreeEntry>.stride }
        let slabs = caches.reduce(0) { $0 + $1.slabs }
        let objects = caches.reduce(0) { $0 + $1.objectsInUse }
        let segments = Int(truncatingIfNeeded: c.stats.allocatedSegments)
        return MetadataFootprint(arenaBytes: bytes, cacheBytes: caches.reduce(0) { $0 + $1.metadataBytes },
                                 allocations: max(segments - slabs, 0) + objects)
    }

    /// Quantum-cache counters, one entry per cache (size ascending).
    public var quantumCacheStatistics: [QuantumCacheStatistics] { qcaches.map { $0.statistics } }

    /// Whether ``destroy()`` has run.
    public var isDestroyed: Bool { lock.withLock { destroyed } }

    /// Destroys the arena (illumos `vmem_destroy`): empties the quantum caches,
    /// reports what was still allocated, and gives every imported span back
    /// to the source. Later operations throw ``VmemError/arenaDestroyed(arena:)``.
    /// Calling it twice reports nothing the second time.
    @discardableResult
    public func destroy() -> LeakReport {
        drainCaches()
        lock.lock()
        if destroyed { lock.unlock(); return LeakReport(arena: name, leakedBytes: 0, leakedSegments: 0) }
        destroyed = true
        let report = LeakReport(arena: name, leakedBytes: core.pointee.stats.memInUse,
                                leakedSegments: core.pointee.stats.allocatedSegments,
                                identifiers: flags.contains(.identifier))
        var spans: [(UInt64, UInt64)] = []
        let tags = core.pointee.tags
        // While other arenas keep their tag tables in this one's memory,
        // its spans stay with it (`tagClients`).
        if tagClients == 0 {
            var s = tags[Int(ReservedTag.spans)].next
            while s != ReservedTag.spans {
                if tags[Int(s)].imported { spans.append((tags[Int(s)].start, tags[Int(s)].size)) }
                s = tags[Int(s)].next
            }
        }
        let slabs = tagSlabs
        tagSlabs = []
        if waiters > 0 { lock.broadcast() }
        lock.unlock()
        if let source { for (b, n) in spans { source.releaseSpan(b, n) } }
        if tagBacking == .accounting, let tagArena { for (b, n) in slabs { try? tagArena.free(b, size: n) } }
        return report
    }
}
