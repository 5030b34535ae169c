extension Layout {
    /// The amd64 layout, pre- and post-12608: `startup_memlist()` (valloc and
    /// the large-memory adjustment), `startup_kmem()` (kernelbase) and
    /// `layout_kernel_va()` (everything between valloc and the core heap).
    mutating func computeAMD64() {
        let config = configuration
        let post = config.model == .post12608
        let defaults = config.model.defaults
        var t = OverflowTracker()

        // Physical memory: whole pages, contiguous from 0.
        physmem = alignDown(config.physmem, AMD64.pageSize)
        let requestedPhysmax = config.physmax ?? config.physmem
        physmax = t.roundUp(requestedPhysmax, AMD64.pageSize)
        if physmem != config.physmem || physmax != requestedPhysmax { notes.insert(.sizeRoundedToPages) }
        npages = physmem / AMD64.pageSize

        var dr: UInt64 = 0
        if config.drPhysmax != 0 {
            if post {
                notes.insert(.drPhysmaxIgnored)  // 12609: memory DR disabled
            } else if config.drPhysmax > AMD64.physmemMax64 {
                dr = AMD64.physmemMax64
                notes.insert(.drPhysmaxCapped)
            } else {
                dr = config.drPhysmax
            }
        }
        if config.eepromKernelbase != nil { notes.insert(.kernelbaseIgnored) }
        if !post, let size = config.segkvmmSize, size != 0 { notes.insert(.segkvmmSizeIgnored) }

        valloc = VallocSize(npages: npages, pageStructSize: AMD64.pageStructSize,
                            hashEntrySize: AMD64.pageHashEntrySize, other: config.vallocOther,
                            largePage: AMD64.largePageSize, tracker: &t)

        // The large-memory adjustment.
        segkpmBase = defaults.segkpmBase
        vallocBase = defaults.vallocBase
        let threshold = AMD64.largeMemoryThreshold
        if post {
            if physmax > threshold {
                let shift = t.roundUp(t.mul(8, physmax - threshold), AMD64.kernelRedzoneSize)
                // A shift past zero would put segkpm_base below the hole (and
                // below 0): treat it as "far below the floor".
                let (candidate, under) = defaults.segkpmBase.subtractingReportingOverflow(shift)
                var base = under ? 0 : candidate
                var clamp = LargeMemoryAdjustment.Clamp.none
                if base < AMD64.segkpmFloor { base = AMD64.segkpmFloor; clamp = .toFloor }
                adjustment = LargeMemoryAdjustment(
                    triggered: true, reservation: physmax, shift: shift,
                    candidateSegkpmBase: under ? 0 : candidate, clamp: clamp)
                segkpmBase = base
                vallocBase = t.add(base, t.roundUp(physmax, AMD64.oneGig))
            }
        } else if physmax > threshold || dr > threshold {
            let reservation = max(physmax, dr)
            // The old expression: a two's-complement negation, meant to give
            // "the top 4 × K of the address space".
            let rounded = t.roundUp(t.mul(4, reservation), AMD64.kernelRedzoneSize)
            let candidate = 0 &- rounded
            var base = max(candidate, AMD64.segkpmFloor)
            var clamp: LargeMemoryAdjustment.Clamp = base == candidate ? .none : .toFloor
            if base > defaults.segkpmBase { base = defaults.segkpmBase; clamp = .toDefault }
            adjustment = LargeMemoryAdjustment(
                triggered: true, reservation: reservation, shift: 0,
                candidateSegkpmBase: candidate, clamp: clamp)
            segkpmBase = base
            vallocBase = t.add(base, t.roundUp(reservation, AMD64.oneGig))
        }
        kpmSize = t.roundUp(max(physmax, dr), AMD64.largePageSize)

        // startup_kmem()
        kernelbase = t.sub(segkpmBase, AMD64.kernelRedzoneSize)
        userlimit = t.sub(kernelbase, AMD64.userLimitGap)

        // layout_kernel_va()
        segkpBase = t.add(vallocBase, valloc.total)
        var segkp = config.segkpSize ?? AMD64.segkpDefaultSize
        if segkp < AMD64.segkpMinimumSize || segkp > AMD64.segkpMaximumSize {
            segkp = AMD64.segkpDefaultSize
            notes.insert(.segkpSizeReset)
        }
        segkp = min(segkp, max(AMD64.segkpMinimumSize, physmem))
        segkpSize = t.roundUp(segkp, AMD64.largePageSize)
        var next = t.add(segkpBase, segkpSize)

        if post {
            segkvmmBase = next
            var size = config.segkvmmSize ?? 0
            if size == 0 { size = t.mul(physmem, 4) }
            segkvmmSize = t.roundUp(max(size, AMD64.segkvmmMinimumSize), AMD64.largePageSize)
            next = t.add(segkvmmBase, segkvmmSize)
        }

        segzioBase = next
        var zio = config.segzioSize ?? 0
        if zio == 0 { zio = t.mul(physmem, 3) / 2 }
        segzioSize = t.roundUp(max(zio, AMD64.segzioMinimumSize), AMD64.largePageSize)

        toxicAddr = t.roundUp(t.add(segzioBase, segzioSize), AMD64.largePageSize)
        toxicSize = config.toxicSize
        segmapStart = t.roundUp(t.add(toxicAddr, toxicSize), AMD64.largePageSize)
        segmapSize = max(t.roundUp(config.segmapSize ?? AMD64.segmapDefaultSize, AMD64.largePageSize),
                         AMD64.segmapDefaultSize)
        kernelheap = t.roundUp(t.add(segmapStart, segmapSize), AMD64.largePageSize)
        heapEnd = AMD64.coreHeapBase

        // The fixed top: core heap split by kernelheap_init(), MISC VA.
        heapCoreBase = AMD64.coreHeapBase
        heaptextBase = AMD64.miscVABase - AMD64.heapTextSize
        heaptextSize = AMD64.heapTextSize
        heapCoreSize = heaptextBase - heapCoreBase
        miscBase = AMD64.miscVABase
        miscSize = AMD64.kernelText - AMD64.miscVABase

        wrapped = t.wrapped
    }
}
