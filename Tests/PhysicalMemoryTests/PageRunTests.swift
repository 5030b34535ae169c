import Testing
import PhysicalMemory

/// The extent records (one `page_t` record per run of pages that share an
/// identity and a state), checked against a plain per-page model.
@Suite("Page runs: one record per run, split on demand, merged back")
struct PageRunTests {
    /// What the reference model knows of one page.
    struct RefPage: Equatable {
        var vnode: Vnode
        var offset: UInt64
        var exclusive: Bool
        var shared: UInt16
        var lockCount: UInt16
    }

    struct Rng {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: UInt64) -> UInt64 { n == 0 ? 0 : next() % n }
    }

    /// `verify()`, the counts, and the pages: every page at the end, a sample of
    /// 256 (and their neighbours, where runs are cut) along the way.
    static func check(_ pm: PhysicalMemory, _ ref: [PageFrameNumber: RefPage], step: Int, sample: Int? = 256) throws {
        try pm.verify()
        #expect(pm.recordedPages == UInt64(ref.count), "step \(step)")
        var pfns = Array(ref.keys)
        if let sample, pfns.count > sample {
            var rng = Rng(state: UInt64(step))
            pfns = (0..<sample).flatMap { _ -> [PageFrameNumber] in
                let p = pfns[Int(rng.below(UInt64(pfns.count)))]
                return [p, p &- 1, p + 1].filter { ref[$0] != nil }
            }
        }
        for pfn in pfns {
            let r = ref[pfn]!
            let p = try pm.page(pfn)
            let lock: PageLockState = r.exclusive ? .exclusive : r.shared > 0 ? .shared(count: r.shared) : .unlocked
            guard p.vnode == r.vnode, p.offset == r.offset, p.lock == lock, p.lockCount == r.lockCount else {
                Issue.record("step \(step): pfn \(pfn) is \(p), the model says \(r)")
                return
            }
            #expect(pm.pageFind(vnode: r.vnode, offset: r.offset) == pfn)
        }
        let stats = pm.memstat()
        #expect(stats.kernel == UInt64(ref.values.filter { $0.vnode == .kvp }.count))
        #expect(stats.vmmMemory == UInt64(ref.values.filter { $0.vnode == .vvp }.count))
    }

    @Test("random creates, splits, locks, lookups and frees agree with a per-page model", arguments: [1, 2, 3, 4])
    func randomized(seed: UInt64) throws {
        let pm = try PhysicalMemory(pageCount: 1 << 16)
        var rng = Rng(state: seed)
        var ref: [PageFrameNumber: RefPage] = [:]
        var nextOffset: [Vnode: UInt64] = [.kvp: 0x10_0000, .vvp: 0x4000_0000]
        for step in 0..<500 {
            let pfns = Array(ref.keys)
            let pick = pfns.isEmpty ? nil : pfns[Int(rng.below(UInt64(pfns.count)))]
            switch rng.below(10) {
            case 0, 1:
                // A run: large ones take aligned ranges, small ones frame by frame.
                let vnode: Vnode = rng.below(2) == 0 ? .kvp : .vvp
                let n = rng.below(4) == 0 ? 512 + rng.below(1500) : 1 + rng.below(40)
                let offset = nextOffset[vnode]!
                nextOffset[vnode]! += (n + rng.below(3)) << 12
                let runs = try pm.pageCreateRuns(vnode: vnode, offset: offset, pageCount: n)
                #expect(runs.reduce(0) { $0 + $1.count } == n)
                var off = offset
                for r in runs {
                    for pfn in r.lower ..< r.upper {
                        #expect(ref[pfn] == nil, "pfn \(pfn) handed out twice")
                        ref[pfn] = RefPage(vnode: vnode, offset: off, exclusive: true, shared: 0, lockCount: 0)
                        off += 4096
                    }
                }
            case 2:
                // Downgrade a whole run (every page exclusive) or one page.
                guard let pfn = pick else { continue }
                let ok = ref[pfn]!.exclusive
                do {
                    try pm.pageDowngrade(pfn)
                    #expect(ok, "step \(step): downgrade of a non-exclusive page succeeded")
                    ref[pfn]!.exclusive = false
                    ref[pfn]!.shared = 1
                } catch {
                    #expect(!ok, "step \(step): \(error)")
                }
            case 3:
                guard let pfn = pick else { continue }
                let r = ref[pfn]!
                do {
                    try pm.pageUnlock(pfn)
                    #expect(r.exclusive || r.shared > 0)
                    if r.exclusive { ref[pfn]!.exclusive = false } else { ref[pfn]!.shared -= 1 }
                } catch {
                    #expect(!r.exclusive && r.shared == 0 && error == .notLocked(pfn: pfn))
                }
            case 4:
                // page_lookup shared (a soft lock) by name.
                guard let pfn = pick else { continue }
                let r = ref[pfn]!
                do {
                    let found = try pm.pageLookup(vnode: r.vnode, offset: r.offset, lock: .shared)
                    #expect(found == pfn && !r.exclusive)
                    ref[pfn]!.shared += 1
                } catch {
                    #expect(r.exclusive, "step \(step): \(error)")
                }
            case 5:
                guard let pfn = pick else { continue }
                let count = UInt16(rng.below(2))
                try pm.setLockCount(pfn, to: count)
                ref[pfn]!.lockCount = count
            case 6:
                guard let pfn = pick else { continue }
                let r = ref[pfn]!
                do {
                    try pm.pageDestroy(pfn)
                    #expect(r.exclusive && r.lockCount == 0)
                    ref[pfn] = nil
                } catch {
                    #expect(!r.exclusive || r.lockCount != 0)
                }
            case 7:
                // A range call over a run of consecutive pages in the model.
                guard let pfn = pick else { continue }
                var upper = pfn
                while upper < pfn + 64, let r = ref[upper], r.exclusive, r.lockCount == 0 { upper += 1 }
                guard upper > pfn else { continue }
                let frames = FrameRange(lower: pfn, upper: upper)
                if rng.below(2) == 0 {
                    try pm.pageDestroy(frames)
                    for p in pfn ..< upper { ref[p] = nil }
                } else {
                    try pm.setLockCount(frames, to: 1)
                    try pm.pageDowngrade(frames)
                    for p in pfn ..< upper { ref[p]!.lockCount = 1; ref[p]!.exclusive = false; ref[p]!.shared = 1 }
                }
            case 8:
                // A range call that must be refused whole: one page in it is in another state.
                guard let pfn = pick, let next = ref[pfn + 1], next.vnode == ref[pfn]!.vnode else { continue }
                let same = ref[pfn]!.exclusive == next.exclusive && ref[pfn]!.lockCount == next.lockCount
                    && ref[pfn]!.shared == next.shared
                guard !same, ref[pfn]!.exclusive != next.exclusive else { continue }
                let before = pm.recordCount
                #expect(throws: PhysicalMemoryError.self) { try pm.pageDowngrade(FrameRange(lower: pfn, upper: pfn + 2)) }
                #expect(pm.recordCount == before, "a refused range call changes no record")
            default:
                // whatis-style lookups of frames in and out of runs.
                let pfn = rng.below(1 << 16)
                let page = try? pm.page(pfn)
                #expect((page != nil) == (ref[pfn] != nil), "step \(step): pfn \(pfn)")
                #expect(try pm.isFree(pfn) == (ref[pfn] == nil))
            }
            if step % 25 == 0 { try Self.check(pm, ref, step: step) }
        }
        try Self.check(pm, ref, step: 500, sample: nil)
    }

    @Test("records grow with runs, not pages; a split run merges back when its pages agree again")
    func recordsFollowRuns() throws {
        let pm = try PhysicalMemory(pageCount: 1 << 22)
        let runs = try pm.pageCreateRuns(vnode: .vvp, offset: 1 << 30, pageCount: 1 << 20)
        #expect(runs.count == 1, "a large create on an empty machine is one run")
        #expect(pm.recordCount == 1)
        #expect(pm.recordedPages == 1 << 20)
        let frames = runs[0]
        try pm.setLockCount(frames, to: 1)
        try pm.pageDowngrade(frames)
        #expect(pm.recordCount == 1)
        // A soft lock on one page in the middle splits the run in three...
        let mid = frames.lower + 1000
        let name = (1 << 30) + 1000 * 4096 as UInt64
        #expect(try pm.pageLookup(vnode: .vvp, offset: name, lock: .shared) == mid)
        #expect(pm.recordCount == 3)
        #expect(try pm.page(mid).lock == .shared(count: 2))
        #expect(try pm.page(mid + 1).lock == .shared(count: 1))
        try pm.verify()
        // ...and its unlock makes it one again.
        try pm.pageUnlock(mid)
        #expect(pm.recordCount == 1)
        #expect(pm.memstat().vmmMemory == 1 << 20)
        let listed = try pm.pageRuns(of: .vvp, offset: 1 << 30, pageCount: 1 << 20)
        #expect(listed.count == 1 && listed[0].count == 1 << 20 && listed[0].first.lockCount == 1)
        // Freeing it takes the whole run back in one step.
        #expect(try pm.pageTryUpgrade(frames))
        try pm.setLockCount(frames, to: 0)
        try pm.pageDestroy(frames)
        #expect(pm.recordCount == 0 && pm.freelistPages == 1 << 22)
        try pm.verify()
    }

    @Test("a large run lines its frames up with its offsets for large pages")
    func alignment() throws {
        let pm = try PhysicalMemory(pageCount: 1 << 20)
        _ = try pm.pageCreate(vnode: .kvp, offset: 0, pageCount: 3)   // the lowest frames are taken
        let offset: UInt64 = 0x7_4020_0000                              // 2 MiB aligned, not 1 GiB
        let runs = try pm.pageCreateRuns(vnode: .vvp, offset: offset, pageCount: 4096)
        #expect(runs.count == 1)
        #expect(runs[0].lower % 512 == (offset >> 12) % 512, "2 MiB-aligned VA on 2 MiB-aligned frames")
        try pm.verify()
    }

    @Test("range calls refuse bad input with typed errors and change nothing")
    func rangeErrors() throws {
        let pm = try PhysicalMemory(pageCount: 4096)
        let runs = try pm.pageCreateRuns(vnode: .kvp, offset: 0, pageCount: 8)
        let frames = runs[0]
        #expect(throws: PhysicalMemoryError.zeroPageCount) { try pm.pageDowngrade(FrameRange(lower: 3, upper: 3)) }
        #expect(throws: PhysicalMemoryError.pageNotFound(pfn: frames.upper)) {
            try pm.pageDowngrade(FrameRange(lower: frames.lower, upper: frames.upper + 1))
        }
        #expect(try pm.page(frames.lower).lock == .exclusive, "the refused range changed nothing")
        #expect(throws: PhysicalMemoryError.notLocked(pfn: frames.lower)) {
            try pm.pageUnlock(frames)
            try pm.pageUnlock(frames)
        }
        #expect(throws: PhysicalMemoryError.identityExists(vnode: .kvp, offset: 4 << 12, pfn: frames.lower + 4)) {
            _ = try pm.pageCreateRuns(vnode: .kvp, offset: 4 << 12, pageCount: 100)
        }
        #expect(throws: PhysicalMemoryError.offsetNotPageAligned(offset: 12)) {
            _ = try pm.pageRuns(of: .kvp, offset: 12, pageCount: 1)
        }
        #expect(throws: PhysicalMemoryError.outOfMemory(requested: 5000, available: 4088)) {
            _ = try pm.pageCreateRuns(vnode: .vvp, offset: 0, pageCount: 5000)
        }
        try pm.verify()
    }
}
