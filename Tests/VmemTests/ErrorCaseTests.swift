import Testing
import Vmem

/// One test per error case of vmem.md §4, each asserting the exact typed
/// error (illumos panics or ASSERTs on most of them), and `addr + size`
/// overflow on every operation that computes it.
@Suite struct ErrorCaseTests {
    static let q: UInt64 = 0x1000
    static let top = UInt64.max - 0xFFF   // the last page-aligned address

    func arena(_ name: String = "err") throws -> Arena {
        try Arena(name: name, base: 0x10_0000, size: 0x10_0000, quantum: Self.q)
    }

    // MARK: size 0, or not a multiple of the quantum

    @Test func zeroSizeIsRefusedEverywhere() throws {
        let a = try arena()
        #expect(throws: VmemError.zeroSize) { try a.alloc(0) }
        #expect(throws: VmemError.zeroSize) { try a.alloc(0, policy: .nextFit) }
        #expect(throws: VmemError.zeroSize) { try a.xalloc(0, align: 0x2000) }
        #expect(throws: VmemError.zeroSize) { try a.allocExact(at: 0x10_0000, size: 0) }
        #expect(throws: VmemError.zeroSize) { try a.free(0x10_0000, size: 0) }
        #expect(throws: VmemError.zeroSize) { try a.xfree(0x10_0000, size: 0) }
        #expect(throws: VmemError.zeroSize) { try a.add(base: 0x40_0000, size: 0) }
        try a.verify()
        #expect(a.statistics.failCount == 0)   // argument errors are not allocation failures
    }

    @Test func sizeNotAQuantumMultiple() throws {
        let a = try arena()
        let e = VmemError.sizeNotQuantumMultiple(size: 0x1800, quantum: Self.q)
        #expect(throws: e) { try a.alloc(0x1800) }
        #expect(throws: e) { try a.alloc(0x1800, policy: .bestFit) }
        #expect(throws: e) { try a.xalloc(0x1800) }
        #expect(throws: e) { try a.allocExact(at: 0x10_0000, size: 0x1800) }
        #expect(throws: e) { try a.free(0x10_0000, size: 0x1800) }
        #expect(throws: e) { try a.add(base: 0x40_0000, size: 0x1800) }
    }

    /// The initial span of `init` is checked like `add` (and a refused one
    /// once crashed the process: the core was freed in init and in deinit).
    @Test func initialSpanIsValidatedLikeAdd() {
        #expect(throws: VmemError.sizeNotQuantumMultiple(size: 0x1800, quantum: Self.q)) {
            _ = try Arena(name: "e", base: 0x40_0000, size: 0x1800, quantum: Self.q)
        }
        #expect(throws: VmemError.notQuantumAligned(parameter: "base", value: 0x40_0800, quantum: Self.q)) {
            _ = try Arena(name: "e", base: 0x40_0800, size: 0x1000, quantum: Self.q)
        }
        #expect(throws: VmemError.overflow(base: Self.top, size: 0x2000)) {
            _ = try Arena(name: "e", base: Self.top, size: 0x2000, quantum: Self.q)
        }
    }

    // MARK: creation

    @Test func quantumNotAPowerOfTwo() {
        #expect(throws: VmemError.quantumNotPowerOfTwo(quantum: 0x3000)) { _ = try Arena(name: "e", quantum: 0x3000) }
        #expect(throws: VmemError.quantumNotPowerOfTwo(quantum: 0)) { _ = try Arena(name: "e", quantum: 0) }
    }

    @Test func badNamesAndCacheLimits() {
        #expect(throws: VmemError.invalidName("")) { _ = try Arena(name: "") }
        let long = String(repeating: "n", count: Arena.maximumNameLength + 1)
        #expect(throws: VmemError.invalidName(long)) { _ = try Arena(name: long) }
        #expect((try? Arena(name: String(repeating: "n", count: Arena.maximumNameLength))) != nil)
        #expect(throws: VmemError.quantumCacheTooLarge(quantumCacheMax: 17 * Self.q, limit: 16 * Self.q)) {
            _ = try Arena(name: "e", quantum: Self.q, quantumCacheMax: 17 * Self.q)
        }
        #expect(throws: VmemError.notQuantumAligned(parameter: "quantumCacheMax", value: 0x1800, quantum: Self.q)) {
            _ = try Arena(name: "e", quantum: Self.q, quantumCacheMax: 0x1800)
        }
        #expect(throws: VmemError.notQuantumAligned(parameter: "minimumImport", value: 0x800, quantum: Self.q)) {
            _ = try Arena(name: "e", quantum: Self.q, minimumImport: 0x800)
        }
    }

    // MARK: align, phase, nocross (and the range) not quantum multiples

    @Test func constraintsNotQuantumAligned() throws {
        let a = try arena()
        for (p, v) in [("align", 0x800 as UInt64), ("phase", 0x800), ("nocross", 0x800), ("minaddr", 0x10_0800), ("maxaddr", 0x18_0800)] {
            let e = VmemError.notQuantumAligned(parameter: p, value: v, quantum: Self.q)
            #expect(throws: e) {
                switch p {
                case "align": _ = try a.xalloc(Self.q, align: v)
                case "phase": _ = try a.xalloc(Self.q, align: 0x4000, phase: v)
                case "nocross": _ = try a.xalloc(Self.q, nocross: v)
                case "minaddr": _ = try a.xalloc(Self.q, minaddr: v)
                default: _ = try a.xalloc(Self.q, maxaddr: v)
                }
            }
        }
        #expect(throws: VmemError.notQuantumAligned(parameter: "base", value: 0x40_0800, quantum: Self.q)) {
            try a.add(base: 0x40_0800, size: Self.q)
        }
        try a.verify()
    }

    /// allocExact of an unaligned address names the parameter the caller
    /// passed, not the "minaddr" of the xalloc it is built on.
    @Test func exactAllocationAtAnUnalignedAddress() throws {
        let a = try arena()
        #expect(throws: VmemError.notQuantumAligned(parameter: "address", value: 0x10_0800, quantum: Self.q)) {
            try a.allocExact(at: 0x10_0800, size: Self.q)
        }
        #expect(a.size(.allocated) == 0)
    }

    // MARK: align or nocross not a power of two, phase >= align

    @Test func alignOrNocrossNotAPowerOfTwoOrPhaseNotBelowAlign() throws {
        let a = try arena()
        #expect(throws: VmemError.notPowerOfTwo(parameter: "align", value: 0x3000)) { try a.xalloc(Self.q, align: 0x3000) }
        #expect(throws: VmemError.notPowerOfTwo(parameter: "nocross", value: 0x6000)) { try a.xalloc(Self.q, nocross: 0x6000) }
        #expect(throws: VmemError.phaseNotBelowAlign(phase: 0x4000, align: 0x4000)) { try a.xalloc(Self.q, align: 0x4000, phase: 0x4000) }
        // With align 0 the quantum is the alignment, so any non-zero phase is too big.
        #expect(throws: VmemError.phaseNotBelowAlign(phase: Self.q, align: Self.q)) { try a.xalloc(Self.q, phase: Self.q) }
        try a.verify()
    }

    // MARK: overconstrained

    @Test func overconstrained() throws {
        let a = try arena()
        // nocross < align
        #expect(throws: VmemError.overconstrained(size: Self.q, align: 0x8000, phase: 0, nocross: 0x4000)) {
            try a.xalloc(Self.q, align: 0x8000, nocross: 0x4000)
        }
        // roundup(phase + size, align) > nocross
        #expect(throws: VmemError.overconstrained(size: 0x4000, align: 0x2000, phase: 0x1000, nocross: 0x4000)) {
            try a.xalloc(0x4000, align: 0x2000, phase: 0x1000, nocross: 0x4000)
        }
        #expect(throws: VmemError.overconstrained(size: 0x8000, align: Self.q, phase: 0, nocross: 0x4000)) {
            try a.xalloc(0x8000, nocross: 0x4000)
        }
        // The largest request nocross allows (roundup(0x1000 + 0x3000, 0x2000) == nocross) is accepted.
        let x = try a.xalloc(0x3000, align: 0x2000, phase: 0x1000, nocross: 0x4000)
        #expect(x % 0x2000 == 0x1000 && x / 0x4000 == (x + 0x2FFF) / 0x4000)
        // phase + size overflowing is overconstrained, not a trap.
        #expect(throws: VmemError.overconstrained(size: Self.top, align: 1 << 63, phase: 1 << 62, nocross: 1 << 63)) {
            try a.xalloc(Self.top, align: 1 << 63, phase: 1 << 62, nocross: 1 << 63)
        }
        try a.verify()
    }

    // MARK: [minaddr, maxaddr) empty or unable to hold size

    @Test func rangeEmptyOrTooSmall() throws {
        let a = try arena()
        #expect(throws: VmemError.rangeCannotHoldSize(minaddr: 0x18_0000, maxaddr: 0x18_0000, size: Self.q)) {
            try a.xalloc(Self.q, minaddr: 0x18_0000, maxaddr: 0x18_0000)
        }
        #expect(throws: VmemError.rangeCannotHoldSize(minaddr: 0x18_0000, maxaddr: 0x17_0000, size: Self.q)) {
            try a.xalloc(Self.q, minaddr: 0x18_0000, maxaddr: 0x17_0000)
        }
        #expect(throws: VmemError.rangeCannotHoldSize(minaddr: 0x18_0000, maxaddr: 0x18_2000, size: 0x3000)) {
            try a.xalloc(0x3000, minaddr: 0x18_0000, maxaddr: 0x18_2000)
        }
        // maxaddr alone: [0, maxaddr)
        #expect(throws: VmemError.rangeCannotHoldSize(minaddr: 0, maxaddr: 0x2000, size: 0x3000)) {
            try a.xalloc(0x3000, maxaddr: 0x2000)
        }
        // A range that could hold it but has nothing free there is exhaustion, not an argument error.
        #expect(throws: VmemError.exhausted(arena: "err", size: Self.q)) {
            try a.xalloc(Self.q, minaddr: 0x40_0000, maxaddr: 0x50_0000)
        }
    }

    // MARK: bad frees

    @Test func freeOfAnAddressNeverAllocated() throws {
        let a = try arena()
        #expect(throws: VmemError.badFree(address: 0x10_0000, size: Self.q)) { try a.free(0x10_0000, size: Self.q) }
        let x = try a.alloc(0x2000)
        #expect(throws: VmemError.badFree(address: x + Self.q, size: Self.q)) { try a.free(x + Self.q, size: Self.q) }
        #expect(throws: VmemError.badFree(address: 0x90_0000, size: Self.q)) { try a.xfree(0x90_0000, size: Self.q) }
        // An unaligned address was never allocated either.
        #expect(throws: VmemError.badFree(address: x + 8, size: 0x2000)) { try a.free(x + 8, size: 0x2000) }
        try a.verify()
        #expect(a.size(.allocated) == 0x2000)
    }

    @Test func doubleFree() throws {
        let a = try arena()
        let x = try a.alloc(0x2000)
        try a.free(x, size: 0x2000)
        #expect(throws: VmemError.badFree(address: x, size: 0x2000)) { try a.free(x, size: 0x2000) }
        let y = try a.xalloc(0x2000, align: 0x8000)
        try a.xfree(y, size: 0x2000)
        #expect(throws: VmemError.badFree(address: y, size: 0x2000)) { try a.xfree(y, size: 0x2000) }
        try a.verify()
        #expect(a.statistics.freeCount == 2)
    }

    /// ``ArenaDebugging/checkCachedFrees`` off: the caches skip the
    /// per-object check, as documented, but still refuse an address that is
    /// not at an object offset; with it on (the default) a double free of a
    /// cached size is refused.
    @Test func cachedFreeCheckingCanBeTurnedOff() throws {
        let checked = try Arena(name: "chk", base: 0x10_0000, size: 0x100_0000, quantum: Self.q,
                                quantumCacheMax: 4 * Self.q)
        let x = try checked.alloc(2 * Self.q)
        try checked.free(x, size: 2 * Self.q)
        #expect(throws: VmemError.badFree(address: x, size: 2 * Self.q)) { try checked.free(x, size: 2 * Self.q) }
        try checked.verify()

        let unchecked = try Arena(name: "unchk", base: 0x10_0000, size: 0x100_0000, quantum: Self.q,
                                  quantumCacheMax: 4 * Self.q,
                                  debugging: ArenaDebugging(checkCachedFrees: false))
        #expect(unchecked.debugging.checkCachedFrees == false)
        let y = try unchecked.alloc(2 * Self.q)
        #expect(throws: VmemError.badFree(address: y + Self.q, size: 2 * Self.q)) {
            try unchecked.free(y + Self.q, size: 2 * Self.q)
        }
        try unchecked.free(y, size: 2 * Self.q)
        try unchecked.verify()
        #expect(try unchecked.alloc(2 * Self.q) == y, "the cache hands the freed object back")
    }

    @Test func freeWithADifferentSize() throws {
        let a = try arena()
        let x = try a.alloc(0x3000)
        #expect(throws: VmemError.wrongSize(address: x, size: 0x2000, allocatedSize: 0x3000)) { try a.free(x, size: 0x2000) }
        #expect(throws: VmemError.wrongSize(address: x, size: 0x4000, allocatedSize: 0x3000)) { try a.xfree(x, size: 0x4000) }
        // Nothing was freed by the refused calls.
        #expect(a.size(.allocated) == 0x3000)
        try a.free(x, size: 0x3000)
        try a.verify()
    }

    // MARK: add overlapping, base + size overflowing

    @Test func addOverlappingAnExistingSpan() throws {
        let a = try arena()
        let e = { (b: UInt64, s: UInt64) in
            VmemError.spanOverlap(base: b, size: s, existingStart: 0x10_0000, existingEnd: 0x20_0000)
        }
        #expect(throws: e(0x18_0000, 0x1000)) { try a.add(base: 0x18_0000, size: 0x1000) }      // inside
        #expect(throws: e(0x0F_F000, 0x2000)) { try a.add(base: 0x0F_F000, size: 0x2000) }      // straddles the start
        #expect(throws: e(0x1F_F000, 0x2000)) { try a.add(base: 0x1F_F000, size: 0x2000) }      // straddles the end
        #expect(throws: e(0x08_0000, 0x20_0000)) { try a.add(base: 0x08_0000, size: 0x20_0000) } // covers it
        // Touching spans are fine (and never coalesce).
        try a.add(base: 0x20_0000, size: 0x1000)
        try a.add(base: 0x0F_F000, size: 0x1000)
        #expect(a.segments(.spans).count == 3)
        try a.verify()
    }

    @Test func addOverflowing() throws {
        let a = try arena()
        #expect(throws: VmemError.overflow(base: Self.top, size: 0x2000)) { try a.add(base: Self.top, size: 0x2000) }
        #expect(throws: VmemError.overflow(base: 0x1000, size: Self.top)) { try a.add(base: 0x1000, size: Self.top) }
        // Ending exactly at 2^64 does not fit in 64 bits either.
        #expect(throws: VmemError.overflow(base: Self.top, size: Self.q)) { try a.add(base: Self.top, size: Self.q) }
        // The highest span that fits: [top - q, top).
        try a.add(base: Self.top - Self.q, size: Self.q)
        #expect(try a.allocExact(at: Self.top - Self.q, size: Self.q) == Self.top - Self.q)
        try a.free(Self.top - Self.q, size: Self.q)
        try a.verify()
    }

    // MARK: addr + size overflow in xalloc, free, allocExact

    @Test func xallocRangeAtTheTopOverflows() throws {
        let a = try arena()
        try a.add(base: Self.top - 0x10_0000, size: 0x10_0000)
        // [minaddr, 2^64) holds fewer than size bytes: the range cannot hold it.
        #expect(throws: VmemError.rangeCannotHoldSize(minaddr: Self.top, maxaddr: 0, size: 0x2000)) {
            try a.xalloc(0x2000, minaddr: Self.top)
        }
        // [minaddr, 2^64) that can hold it, near the top: searched without wrapping.
        #expect(try a.xalloc(0x2000, minaddr: Self.top - 0x4000) == Self.top - 0x4000)
        #expect(throws: VmemError.exhausted(arena: "err", size: 0x4000)) {
            try a.xalloc(0x4000, minaddr: Self.top - 0x4000)
        }
        // An alignment whose next multiple lies beyond 2^64 must not wrap to a low address.
        #expect(throws: VmemError.exhausted(arena: "err", size: Self.q)) {
            try a.xalloc(Self.q, align: 1 << 63, phase: 0x1000, minaddr: Self.top - 0x10_0000)
        }
        #expect(throws: VmemError.exhausted(arena: "err", size: 0x20_0000)) {
            try a.xalloc(0x20_0000, minaddr: Self.top - 0x20_0000, maxaddr: Self.top)
        }
        try a.verify()
    }

    @Test func freeOverflowing() throws {
        let a = try arena()
        #expect(throws: VmemError.overflow(base: Self.top, size: 0x2000)) { try a.free(Self.top, size: 0x2000) }
        #expect(throws: VmemError.overflow(base: Self.top, size: 0x2000)) { try a.xfree(Self.top, size: 0x2000) }
        #expect(throws: VmemError.overflow(base: 0x10_0000, size: Self.top)) { try a.free(0x10_0000, size: Self.top) }
        try a.verify()
    }

    @Test func exactAllocationOverflowing() throws {
        let a = try arena()
        #expect(throws: VmemError.overflow(base: Self.top, size: 0x2000)) { try a.allocExact(at: Self.top, size: 0x2000) }
        #expect(throws: VmemError.overflow(base: Self.top, size: Self.q)) { try a.allocExact(at: Self.top, size: Self.q) }
        #expect(throws: VmemError.overflow(base: 0x10_0000, size: Self.top)) { try a.allocExact(at: 0x10_0000, size: Self.top) }
        try a.verify()
    }

    @Test func hugeRequestsFailWithoutTrapping() throws {
        let a = try arena()
        #expect(throws: VmemError.exhausted(arena: "err", size: Self.top)) { try a.alloc(Self.top) }
        #expect(throws: VmemError.exhausted(arena: "err", size: Self.top)) { try a.alloc(Self.top, policy: .bestFit, fromEnd: true) }
        #expect(throws: VmemError.exhausted(arena: "err", size: Self.top)) { try a.alloc(Self.top, policy: .nextFit) }
        #expect(throws: VmemError.exhausted(arena: "err", size: 1 << 63)) { try a.xalloc(1 << 63, align: 1 << 63) }
        #expect(a.statistics.failCount == 4)
        try a.verify()
    }

    // MARK: destroy with live allocations

    @Test func destroyReportsLeaks() throws {
        let a = try arena()
        _ = try a.alloc(0x2000)
        _ = try a.xalloc(0x1000, align: 0x10000)
        let x = try a.alloc(0x1000)
        try a.free(x, size: 0x1000)
        let report = a.destroy()
        #expect(report == LeakReport(arena: "err", leakedBytes: 0x3000, leakedSegments: 2))
        #expect(!report.isClean)
        #expect(report.description == "vmem_destroy('err'): leaked 12288 bytes in 2 segments")
        #expect(throws: VmemError.arenaDestroyed(arena: "err")) { try a.alloc(0x1000) }
        #expect(throws: VmemError.arenaDestroyed(arena: "err")) { try a.xalloc(0x1000, align: 0x2000) }
        #expect(throws: VmemError.arenaDestroyed(arena: "err")) { try a.free(0x10_0000, size: 0x2000) }
        #expect(throws: VmemError.arenaDestroyed(arena: "err")) { try a.add(base: 0x40_0000, size: 0x1000) }
        #expect(a.destroy().isClean)   // a second destroy reports nothing
    }

    @Test func destroyOfACleanArena() throws {
        let a = try arena()
        let x = try a.alloc(0x2000)
        try a.free(x, size: 0x2000)
        #expect(a.destroy() == LeakReport(arena: "err", leakedBytes: 0, leakedSegments: 0))
    }

    // MARK: import from the source fails, arena exhausted

    @Test func arenaExhausted() throws {
        let a = try arena()
        #expect(try a.alloc(0x10_0000) == 0x10_0000)
        for p in AllocationPolicy.allCases {
            #expect(throws: VmemError.exhausted(arena: "err", size: Self.q)) { try a.alloc(Self.q, policy: p) }
        }
        #expect(throws: VmemError.exhausted(arena: "err", size: Self.q)) { try a.xalloc(Self.q, align: 0x2000) }
        #expect(throws: VmemError.exhausted(arena: "err", size: Self.q)) { try a.allocExact(at: 0x10_0000, size: Self.q) }
        #expect(a.statistics.failCount == 6)
    }

    @Test func importFromTheSourceFails() throws {
        let parent = try Arena(name: "parent", base: 0x100_0000, size: 0x4000, quantum: Self.q)
        let child = try Arena(name: "child", quantum: Self.q, source: .arena(parent), minimumImport: 0)
        // The import size is the request rounded to aq: 0x8000 > what the parent has.
        #expect(throws: VmemError.importFailed(arena: "child", size: 0x8000)) { try child.alloc(0x8000) }
        // With an alignment above aq the import asks for align - aq more.
        #expect(throws: VmemError.importFailed(arena: "child", size: 0x5000)) { try child.xalloc(0x2000, align: 0x4000) }
        #expect(child.statistics.failCount == 2)
        #expect(parent.statistics.failCount == 2)
        // A constrained request does not import: plain exhaustion.
        #expect(throws: VmemError.exhausted(arena: "child", size: Self.q)) { try child.xalloc(Self.q, nocross: 0x10000) }
        #expect(parent.size(.allocated) == 0)
        try child.verify()
        try parent.verify()
    }

    @Test func importSizeOverflowFails() throws {
        let parent = try Arena(name: "parent", base: 0x100_0000, size: 0x4000, quantum: Self.q)
        let child = try Arena(name: "child", quantum: 0x10, source: .arena(parent))
        // Rounding UInt64.max - 0xf up to the parent's quantum overflows.
        let huge = UInt64.max - 0xF
        #expect(throws: VmemError.importFailed(arena: "child", size: huge)) { try child.alloc(huge) }
        #expect(throws: VmemError.importFailed(arena: "child", size: huge)) { try child.xalloc(huge, align: 0x10) }
        try child.verify()
    }
}
