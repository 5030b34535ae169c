extension Layout {
    /// The 32-bit layout: valloc hangs below the MISC VA pages, kernelbase
    /// drops by twice valloc (rounded to 4 MiB), segmap sits just above a
    /// small red zone at kernelbase, and the heap takes everything between
    /// segmap and valloc minus the 64 MiB of heaptext. No kpm, segzio,
    /// segkvmm or device range; segkp is an arena importing from `heap`.
    mutating func computeI386() {
        let config = configuration
        var t = OverflowTracker(limit: I386.addressLimit - 1)
        let page = I386.pageSize
        let large = I386.largePageSize

        if config.segkpSize != nil { notes.insert(.segkpSizeIgnored) }
        if let size = config.segkvmmSize, size != 0 { notes.insert(.segkvmmSizeIgnored) }
        if let size = config.segzioSize, size != 0 { notes.insert(.segzioSizeIgnored) }
        if config.toxicSize != AMD64.toxicSizeDefault { notes.insert(.toxicSizeIgnored) }
        if config.drPhysmax != 0 { notes.insert(.drPhysmaxIgnored) }

        // Memory: PAE addresses 64 GiB at most; physmem is capped at PHYSMEM
        // unless set with eeprom (npages follows physmem when it is smaller).
        // Physical sizes are not addresses: only VA must stay below 2^32.
        let requestedPhysmax = config.physmax ?? config.physmem
        var top = (requestedPhysmax &+ (page - 1)) & ~(page - 1)
        if top != requestedPhysmax || config.physmem % page != 0 { notes.insert(.sizeRoundedToPages) }
        var installed = alignDown(config.physmem, page)
        if top > I386.physmaxClamp {
            // physinstalled loses what lies above the clamp.
            installed -= min(installed, top - I386.physmaxClamp)
            top = I386.physmaxClamp
            notes.insert(.physmaxClamped)
        }
        physmax = top
        if config.capI386Physmem && installed > I386.physmemCap {
            installed = I386.physmemCap
            notes.insert(.physmemCapped)
        }
        physmem = installed
        npages = installed / page

        valloc = VallocSize(npages: npages, pageStructSize: I386.pageStructSize,
                            hashEntrySize: I386.pageHashEntrySize, other: config.vallocOther,
                            largePage: large, tracker: &t)
        vallocBase = alignDown(t.sub(I386.miscVABase, valloc.total), large)

        if let eeprom = config.eepromKernelbase, eeprom != 0 {
            var base = alignDown(eeprom, large)  // & mmu.level_mask[1]
            if base > I386.kernelBaseMaximum {
                base = I386.kernelBaseMaximum
                notes.insert(.kernelbaseCapped)
            }
            kernelbase = base
        } else {
            kernelbase = t.sub(I386.kernelBase, t.roundUp(t.mul(2, valloc.total), I386.fourMeg))
        }
        userlimit = kernelbase
        if kernelbase < I386.kernelBaseABIMinimum { notes.insert(.kernelbaseBelowABIMinimum) }

        // layout_kernel_va(), 32-bit branch.
        segmapStart = t.add(t.roundUp(kernelbase, large), I386.kernelRedzoneSize)
        segmapSize = max(t.roundUp(config.segmapSize ?? I386.segmapDefaultSize, large),
                         I386.segmapDefaultSize) - I386.kernelRedzoneSize
        kernelheap = t.roundUp(t.add(segmapStart, segmapSize), large)

        // kernelheap_init() carves heaptext off the top of the heap.
        heaptextSize = I386.heapTextSize
        heaptextBase = t.sub(vallocBase, I386.heapTextSize)
        heapEnd = heaptextBase
        miscBase = I386.miscVABase
        miscSize = I386.kernelText - I386.miscVABase

        wrapped = t.wrapped
    }
}
