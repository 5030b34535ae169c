extension Layout {
    /// The checks that apply to this layout's model.
    public var applicableChecks: [LayoutCheck] { LayoutCheck.applicable(to: model) }

    /// The checks whose quantities were computed past a wrap of 2^64, and
    /// so say nothing: the heap's size and kpm's end then come from wrapped
    /// arithmetic (a "heap" of 16383.996 PiB). They are reported as skipped,
    /// neither ok nor failed; `no-wrap` fails in their place.
    public var skippedChecks: LayoutCheckSet {
        guard wrapped else { return LayoutCheckSet() }
        return LayoutCheckSet([.heapNonempty, .heapAtLeast1_5xPhysmem, .kpmBelowValloc])
    }

    /// The checks that fail, computed without allocating. A skipped check
    /// (``skippedChecks``) is never among them.
    public var failedChecks: LayoutCheckSet {
        var failed = LayoutCheckSet()
        defer { failed.rawValue &= ~skippedChecks.rawValue }
        if firstDisorder() != nil { failed.insert(.regionsOrderedNoOverlap) }
        if firstMisaligned() != nil { failed.insert(.aligned2M) }
        if heapSize == 0 { failed.insert(.heapNonempty) }
        if wrapped { failed.insert(.noWrap) }
        switch model {
        case .post12608, .pre12608:
            if !kpmFitsBelowValloc { failed.insert(.kpmBelowValloc) }
            if heapSize < physmem + physmem / 2 { failed.insert(.heapAtLeast1_5xPhysmem) }
            if adjustment.clamp == .toDefault { failed.insert(.segkpmBaseAboveDefault) }
            // kernel-layout.md §3: kernelbase stays above the VA hole plus 1 TiB.
            // A floored segkpm_base always fails it (kernelbase is then
            // 512 GiB short); so does one that lands less than 512 GiB above
            // the floor without needing the clamp.
            if kernelbase < AMD64.segkpmFloor { failed.insert(.kernelbaseAboveHole) }
        case .i386:
            break
        }
        return failed
    }

    /// Whether every applicable check passes.
    public var isSound: Bool { failedChecks.isEmpty }

    /// Each applicable check with its outcome and the numbers behind it.
    public func checkResults() -> [CheckResult] {
        let failed = failedChecks
        let skipped = skippedChecks
        return applicableChecks.map { check in
            if skipped.contains(check) {
                return CheckResult(check: check, ok: false, skipped: true,
                                   detail: "skipped: the layout wrapped past 2^64 before this was computed (the wrapped numbers: \(detail(of: check)))")
            }
            return CheckResult(check: check, ok: !failed.contains(check), detail: detail(of: check))
        }
    }

    var kpmFitsBelowValloc: Bool {
        let (end, overflow) = segkpmBase.addingReportingOverflow(kpmSize)
        return !overflow && end <= vallocBase
    }

    /// The first pair of regions out of order (or a region whose end wraps).
    func firstDisorder() -> (lower: Region, upper: Region)? {
        var previous: Region?
        var found: (Region, Region)?
        forEachRegion { region in
            guard found == nil else { return }
            if region.base.addingReportingOverflow(region.size).overflow && region.end != 0 {
                found = (region, region)
            } else if let previous, previous.end > region.base || previous.end < previous.base {
                found = (previous, region)
            }
            previous = region
        }
        return found
    }

    /// Calls `body` with each value the kernel rounds to the large page.
    func forEachLargePageValue(_ body: (String, UInt64) -> Void) {
        switch model {
        case .post12608, .pre12608:
            body("kernelbase", kernelbase)
            body("segkpm_base", segkpmBase)
            body("kpm_size", kpmSize)
            body("valloc_base", vallocBase)
            body("valloc_sz", valloc.total)
            body("segkp_base", segkpBase)
            body("segkpsize", segkpSize)
            if model == .post12608 {
                body("segkvmm_base", segkvmmBase)
                body("segkvmmsize", segkvmmSize)
            }
            body("segzio_base", segzioBase)
            body("segziosize", segzioSize)
            body("toxic_addr", toxicAddr)
            body("segmap_start", segmapStart)
            body("segmapsize", segmapSize)
            body("kernelheap", kernelheap)
        case .i386:
            body("valloc_base", vallocBase)
            body("valloc_sz", valloc.total)
            body("segmap end", segmapStart &+ segmapSize)
            body("kernelheap", kernelheap)
        }
    }

    func firstMisaligned() -> (String, UInt64)? {
        var found: (String, UInt64)?
        forEachLargePageValue { name, value in
            if found == nil, value & (AMD64.largePageSize - 1) != 0 { found = (name, value) }
        }
        return found
    }

    /// The sentence behind one check's outcome.
    public func detail(of check: LayoutCheck) -> String {
        let h = Hex.lower
        let human = HumanSize.format
        switch check {
        case .regionsOrderedNoOverlap:
            guard let (lower, upper) = firstDisorder() else {
                var count = 0
                forEachRegion { _ in count += 1 }
                return "\(count) regions in order, none overlapping"
            }
            if lower == upper {
                return "\(lower.name.name) at \(h(lower.base)) size \(h(lower.size)) wraps past the top of the address space"
            }
            return "\(lower.name.name) [\(h(lower.base)), \(h(lower.end))) runs into \(upper.name.name) at \(h(upper.base))"
        case .aligned2M:
            if let (name, value) = firstMisaligned() {
                return "\(name) \(h(value)) is not 2 MiB aligned"
            }
            var count = 0
            forEachLargePageValue { _, _ in count += 1 }
            return "\(count) rounded bases and sizes are 2 MiB aligned"
        case .kpmBelowValloc:
            let end = segkpmBase &+ kpmSize
            return kpmFitsBelowValloc
                ? "kpm ends at \(h(end)) <= valloc_base \(h(vallocBase))"
                : "kpm ends at \(h(end)) above valloc_base \(h(vallocBase)): not enough room for kpm!"
        case .heapNonempty:
            return heapSize > 0
                ? "heap [\(h(kernelheap)), \(h(heapEnd))) is \(h(heapSize)) (\(human(heapSize)))"
                : "kernelheap \(h(kernelheap)) is not below the heap end \(h(heapEnd))"
        case .heapAtLeast1_5xPhysmem:
            let want = physmem + physmem / 2
            let relation = heapSize >= want ? ">=" : "<"
            return "heap \(h(heapSize)) (\(human(heapSize))) \(relation) 1.5 x physmem \(h(want)) (\(human(want)))"
        case .segkpmBaseAboveDefault:
            let defaultBase = model.defaults.segkpmBase
            guard adjustment.triggered else {
                return "no large-memory adjustment (physmax \(h(physmax)) <= 256 GiB); segkpm_base = SEGKPM_BASE \(h(defaultBase))"
            }
            if adjustment.clamp == .toDefault {
                return "adjustment computed segkpm_base \(h(adjustment.candidateSegkpmBase)) above SEGKPM_BASE \(h(defaultBase)); clamped to SEGKPM_BASE (the 12608 miscalculation)"
            }
            return "adjustment computed segkpm_base \(h(adjustment.candidateSegkpmBase)) <= SEGKPM_BASE \(h(defaultBase))"
        case .kernelbaseAboveHole:
            if adjustment.clamp == .toFloor {
                return "adjustment wanted segkpm_base \(h(adjustment.candidateSegkpmBase)) below \(h(AMD64.segkpmFloor)) (VA hole end + 1 TiB); clamped there, kernelbase \(h(kernelbase)) and the layout is short of VA"
            }
            if kernelbase < AMD64.segkpmFloor {
                return "kernelbase \(h(kernelbase)) (segkpm_base \(h(segkpmBase)) - 512 GiB) is below \(h(AMD64.segkpmFloor)) (VA hole end + 1 TiB)"
            }
            return "kernelbase \(h(kernelbase)) >= \(h(AMD64.segkpmFloor)) (VA hole end + 1 TiB)"
        case .noWrap:
            let limit = model == .i386 ? "2^32" : "2^64"
            return wrapped
                ? "a layout computation wrapped past \(limit): not enough kernel VA to support memory size"
                : "no computation wrapped past \(limit)"
        }
    }

    /// The kernel's messages for ``notes``.
    public var noteMessages: [String] {
        let h = Hex.lower
        var messages: [String] = []
        let config = configuration
        if notes.contains(.sizeRoundedToPages) {
            messages.append("physmem/physmax rounded to whole 4 KiB pages")
        }
        if notes.contains(.segkpSizeReset) {
            messages.append("Illegal value for segkpsize (\(h(config.segkpSize ?? 0)) bytes, outside [200 MiB, 8 GiB]). segkpsize has been reset to \(AMD64.segkpDefaultSize / AMD64.pageSize) pages")
        }
        if notes.contains(.segkpSizeIgnored) {
            messages.append("segkpsize ignored: on i386 segkp is an arena importing from heap")
        }
        if notes.contains(.segkvmmSizeIgnored) {
            messages.append("segkvmmsize ignored: \(model.name) has no segkvmm")
        }
        if notes.contains(.segzioSizeIgnored) {
            messages.append("segziosize ignored: on i386 segzio comes from the heap")
        }
        if notes.contains(.toxicSizeIgnored) {
            messages.append("toxic_size ignored: on i386 device mappings share the heap")
        }
        if notes.contains(.drPhysmaxIgnored) {
            messages.append("plat_dr_physmax ignored: \(model.name) has no memory DR")
        }
        if notes.contains(.drPhysmaxCapped) {
            messages.append("plat_dr_physmax \(h(config.drPhysmax)) capped at PHYSMEM_MAX64 (64 TiB)")
        }
        if notes.contains(.kernelbaseIgnored) {
            messages.append("kernelbase cannot be changed on 64-bit systems")
        }
        if notes.contains(.kernelbaseCapped) {
            messages.append("kernelbase value, User specified \(h(config.eepromKernelbase ?? 0)), System using \(h(kernelbase))")
        }
        if notes.contains(.physmaxClamped) {
            messages.append("memory above 64 GiB is not addressable with PAE; physmax clamped to \(h(physmax))")
        }
        if notes.contains(.kernelbaseBelowABIMinimum) {
            messages.append("kernelbase \(h(kernelbase)) is below KERNELBASE_ABI_MIN \(h(I386.kernelBaseABIMinimum)): system is not i386 ABI compliant")
        }
        if notes.contains(.physmemCapped) {
            messages.append("Due to virtual address space limiting physmem to \(h(npages)) pages")
        }
        return messages
    }
}
