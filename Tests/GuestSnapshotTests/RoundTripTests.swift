#if canImport(Glibc)
import Glibc
#endif
import Testing
import GuestMemory
import GuestSnapshot
import HostMemory

/// Snapshots and restores against a reference byte model: full, full plus
/// two diffs, eager and lazy, with an alias, devmem (a read-only ROM, a
/// framebuffer), memfd and anonymous sysmem, and seeded random VMM writes.
@Suite("Snapshot round trips")
struct RoundTripTests {
    enum Mode: String, CaseIterable, Sendable { case eager, lazy }

    /// Restores `paths` into a memory made from the newest file's tables.
    static func restore(_ paths: [String], _ mode: Mode, model: [[UInt8]]) throws -> (ModelGuest, LazyRestore?) {
        let chain = try SnapshotChain(paths: paths)
        let memory = try chain.newest.makeMemory()
        let guest = ModelGuest(memory: memory, model: model)
        switch mode {
        case .eager:
            let report = try chain.restore(into: memory)
            #expect(report.newest == chain.newest.id)
            return (guest, nil)
        case .lazy:
            return (guest, try LazyRestore(chain, into: memory))
        }
    }

    @Test(arguments: Mode.allCases, [UInt64(1), 2, 3])
    func fullSnapshot(mode: Mode, seed: UInt64) throws {
        try SnapKit.gated {
            try SnapKit.withScratch { dir in
                let g = try ModelGuest()
                try g.loadROM(seed: seed)
                var rng = SnapRNG(seed: seed)
                try g.randomWrites(200, rng: &rng)
                let snap = GuestSnapshotter(memory: g.memory)
                let r = try snap.writeFull(to: dir + "/full")
                #expect(r.kind == .full && r.position == 0)
                // Stored once per segment page: the alias does not double it, and holes cost nothing.
                #expect(r.pagesRecorded <= UInt64(g.written.count) + 16)
                #expect(r.allocatedBytes < r.fileSize / 4)
                let (restored, lazy) = try Self.restore([dir + "/full"], mode, model: g.model)
                #expect(try restored.mismatch() == nil)
                // The ROM's bytes came back although the guest maps it read-only.
                #expect(try restored.memory.read(48 << 20, count: 8192) == Array(g.model[1][0 ..< 8192]))
                // Restored pages are the committed state: not dirty.
                #expect(try restored.memory.harvestDirty(0, ModelGuest.limit, .get).isEmpty)
                if let lazy {
                    let s = lazy.statistics
                    #expect(s.servedTwice == 0 && s.refused == 0)
                    #expect(s.faultsServed > 0)
                    try lazy.finish()
                }
                // VMM writes after the restore are dirty.
                try restored.memory.write(0x3000, [1, 2, 3])
                #expect(try restored.memory.harvestDirty(0, ModelGuest.limit, .get) == [3])
            }
        }
    }

    @Test(arguments: Mode.allCases, [UInt64(11), 12])
    func fullAndTwoDiffs(mode: Mode, seed: UInt64) throws {
        try SnapKit.gated {
            try SnapKit.withScratch { dir in
                let g = try ModelGuest()
                try g.loadROM(seed: seed)
                var rng = SnapRNG(seed: seed)
                try g.randomWrites(150, rng: &rng)
                let snap = GuestSnapshotter(memory: g.memory)
                let full = try snap.writeFull(to: dir + "/0")
                g.written.removeAll()
                try g.randomWrites(60, rng: &rng)
                let d1 = try snap.writeDiff(to: dir + "/1")
                // A diff records exactly the segment pages written since (an alias once).
                #expect(d1.pagesRecorded == UInt64(g.written.count))
                #expect(d1.position == 1 && d1.base == full.id)
                g.written.removeAll()
                try g.randomWrites(60, rng: &rng)
                // Zeroing a page the base had data in: the diff must record it.
                try g.memory.write(0, [UInt8](repeating: 0, count: Int(SnapKit.page)))
                g.record(segment: 0, offset: 0, [UInt8](repeating: 0, count: Int(SnapKit.page)))
                let d2 = try snap.writeDiff(to: dir + "/2")
                #expect(d2.pagesRecorded == UInt64(g.written.count))
                let file2 = try SnapshotFile(path: dir + "/2")
                #expect(file2.parent == d1.id && file2.position == 2 && file2.base == full.id)
                let (restored, lazy) = try Self.restore([dir + "/0", dir + "/1", dir + "/2"], mode, model: g.model)
                #expect(try restored.mismatch() == nil)
                try lazy?.finish()
                // Continuing the chain from the restored memory.
                let next = try GuestSnapshotter(memory: restored.memory, continuingFrom: file2)
                try restored.memory.write(5 * SnapKit.page, [9])
                let d3 = try next.writeDiff(to: dir + "/3")
                #expect(d3.position == 3 && d3.pagesRecorded == 1)
                _ = try SnapshotChain(paths: [dir + "/0", dir + "/1", dir + "/2", dir + "/3"])
            }
        }
    }

    /// Bytes left in a range no mapping covers (mapped, written, unmapped)
    /// come back in both modes: read from the segment itself.
    @Test(arguments: Mode.allCases)
    func unmappedSegmentRange(mode: Mode) throws {
        try SnapKit.gated {
            try SnapKit.withScratch { dir in
                let g = try ModelGuest()
                try g.memory.allocateSegment(id: 4, length: 1 << 20)
                try g.memory.map(gpa: 56 << 20, segment: 4, offset: 0, length: 1 << 20, protection: .readWrite)
                try g.memory.write((56 << 20) + 0x5000, [7, 7, 7])
                try g.memory.unmap(gpa: 56 << 20, length: 1 << 20)
                try GuestSnapshotter(memory: g.memory).writeFull(to: dir + "/full")
                var model = g.model
                model[4] = [UInt8](repeating: 0, count: 1 << 20)
                let (restored, lazy) = try Self.restore([dir + "/full"], mode, model: model)
                #expect(try restored.memory.segment(4)!.object.read(offset: 0x5000, count: 4) == [7, 7, 7, 0])
                if let lazy { #expect(lazy.statistics.eagerPages == 1) }
            }
        }
    }

    /// Wired mappings are populated with zeros up front: an eager restore
    /// accepts that (the pages are zero), a lazy one cannot (a present page
    /// never faults) and says so; a memory made without populating works.
    @Test func wiredMappings() throws {
        try SnapKit.gated {
            try SnapKit.withScratch { dir in
                let g = try GuestMemory(limit: 8 << 20)
                try g.allocateSegment(id: 0, length: 4 << 20)
                try g.map(gpa: 0, segment: 0, offset: 0, length: 4 << 20, protection: .readWrite, wired: true)
                try g.write(0x1234, [1, 2, 3])
                try GuestSnapshotter(memory: g).writeFull(to: dir + "/w")
                let chain = try SnapshotChain(paths: [dir + "/w"])
                let wired = try chain.newest.makeMemory()
                #expect(wired.mappings.first?.wired == true)
                guard case let .memoryNotFresh(reason)? = SnapKit.error({ try LazyRestore(chain, into: wired) }) else {
                    Issue.record("expected memoryNotFresh for a populated memory")
                    return
                }
                #expect(reason.contains("segment 0"))
                try chain.restore(into: wired)
                #expect(try wired.read(0x1234, count: 3) == [1, 2, 3])
                let (lazyMemory, lazy) = try LazyRestore.intoNewMemory(chain)
                #expect(try lazyMemory.read(0x1234, count: 3) == [1, 2, 3])
                #expect(lazy.statistics.faultsServed == 1)
                // Zeros in a wired memory are fine, data is not.
                let dirty = try chain.newest.makeMemory()
                try dirty.segment(0)!.object.write([9], offset: 0x8000)
                #expect(SnapKit.error { try chain.restore(into: dirty) }
                        == .memoryNotFresh(reason: "segment 0 holds data (page 8 is not zero)"))
            }
        }
    }

    /// A longer randomized soak (VMKIT_SNAPSHOT_SOAK=N seeds, each a full
    /// snapshot and five diffs, restored both ways); off by default.
    @Test(.enabled(if: getenv("VMKIT_SNAPSHOT_SOAK") != nil)) func soak() throws {
        let seeds = UInt64(atoi(getenv("VMKIT_SNAPSHOT_SOAK")))
        try SnapKit.gated {
            try SnapKit.withScratch { dir in
                for seed in 100 ..< 100 + max(seeds, 1) {
                    let g = try ModelGuest()
                    try g.loadROM(seed: seed)
                    var rng = SnapRNG(seed: seed)
                    let snap = GuestSnapshotter(memory: g.memory)
                    var paths: [String] = []
                    for k in 0 ..< 6 {
                        try g.randomWrites(Int(20 + rng.below(200)), rng: &rng)
                        let path = dir + "/\(seed)-\(k)"
                        if k == 0 { try snap.writeFull(to: path) } else { try snap.writeDiff(to: path) }
                        paths.append(path)
                    }
                    for mode in Mode.allCases {
                        let (restored, lazy) = try Self.restore(paths, mode, model: g.model)
                        #expect(try restored.mismatch() == nil, "seed \(seed) \(mode)")
                        try lazy?.finish()
                    }
                }
            }
        }
    }
}
