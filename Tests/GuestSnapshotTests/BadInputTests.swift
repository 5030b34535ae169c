#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
import GuestMemory
import GuestSnapshot
import HostMemory

/// Every refusal is a typed error naming the file and the values, and a
/// refused restore changes no guest memory.
@Suite("Snapshot bad input")
struct BadInputTests {
    /// A copy of `from` at `to` with `edit` applied to its bytes.
    static func edited(_ from: String, _ to: String, _ edit: (inout [UInt8]) -> Void) throws {
        let src = try MemoryObject.file(path: from)
        var bytes = try src.read(offset: 0, count: Int(src.size))
        edit(&bytes)
        let fd = open(to, O_RDWR | O_CREAT | O_TRUNC, 0o644)
        defer { close(fd) }
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
    }

    /// A small guest with one written page, its full snapshot and a diff.
    static func setUp(_ dir: String) throws -> ModelGuest {
        let g = try ModelGuest()
        try g.memory.write(0x2000, [1, 2, 3])
        let s = GuestSnapshotter(memory: g.memory)
        try s.writeFull(to: dir + "/full")
        try g.memory.write(0x3000, [4])
        try s.writeDiff(to: dir + "/d1")
        try g.memory.write(0x4000, [5])
        try s.writeDiff(to: dir + "/d2")
        return g
    }

    @Test func truncatedWrongMagicWrongVersionBadChecksum() throws {
        try SnapKit.gated {
            try SnapKit.withScratch { dir in
                _ = try Self.setUp(dir)
                let full = dir + "/full"
                let size = try SnapshotFile(path: full).fileSize
                try Self.edited(full, dir + "/short-header") { $0.removeLast($0.count - 100) }
                #expect(SnapKit.error { try SnapshotFile(path: dir + "/short-header") }
                        == .truncated(path: dir + "/short-header", size: 100, needed: 256, what: "the header"))
                // Cutting the page data: the size the header promised is missing.
                try Self.edited(dir + "/d1", dir + "/short-data") { $0.removeLast(0) }
                #expect(truncate(dir + "/short-data", off_t(size - 4096)) == 0)
                #expect(SnapKit.error { try SnapshotFile(path: dir + "/short-data") }
                        == .truncated(path: dir + "/short-data", size: size - 4096, needed: size, what: "the page data"))
                try Self.edited(dir + "/d1", dir + "/magic") { $0[0] = 0x58 }
                guard case let .badMagic(p, found)? = SnapKit.error({ try SnapshotFile(path: dir + "/magic") }) else {
                    Issue.record("expected badMagic")
                    return
                }
                #expect(p == dir + "/magic" && found & 0xFF == 0x58)
                try Self.edited(dir + "/d1", dir + "/version") { $0[8] = 9 }
                #expect(SnapKit.error { try SnapshotFile(path: dir + "/version") }
                        == .unsupportedVersion(path: dir + "/version", found: 9, supported: 1))
                try Self.edited(dir + "/d1", dir + "/tables") { $0[256 + 16] ^= 0x40 }
                guard case let .checksumMismatch(_, what, stored, computed)? = SnapKit.error({ try SnapshotFile(path: dir + "/tables") }) else {
                    Issue.record("expected a tables checksum mismatch")
                    return
                }
                #expect(what == "tables" && stored != computed)
                try Self.edited(dir + "/d1", dir + "/header") { $0[72] ^= 1 }
                guard case .checksumMismatch(_, "header", _, _)? = SnapKit.error({ try SnapshotFile(path: dir + "/header") }) else {
                    Issue.record("expected a header checksum mismatch")
                    return
                }
                #expect(SnapKit.error { try SnapshotFile(path: dir + "/none") } == .io(path: dir + "/none", call: "open", errno: ENOENT, segment: nil, page: nil))
            }
        }
    }

    @Test func chainsInTheWrongOrderOrOnTheWrongBase() throws {
        try SnapKit.gated {
            try SnapKit.withScratch { dir in
                _ = try Self.setUp(dir)
                let other = try ModelGuest()
                try GuestSnapshotter(memory: other.memory).writeFull(to: dir + "/other")
                let otherID = try SnapshotFile(path: dir + "/other").id
                let fullID = try SnapshotFile(path: dir + "/full").id
                #expect(SnapKit.error { try SnapshotChain(paths: [dir + "/other", dir + "/d1"]) }
                        == .wrongBase(path: dir + "/d1", parent: fullID, expected: otherID))
                #expect(SnapKit.error { try SnapshotChain(paths: [dir + "/full", dir + "/d2", dir + "/d1"]) }
                        == .outOfOrder(path: dir + "/d2", position: 2, expected: 1))
                #expect(SnapKit.error { try SnapshotChain(paths: [dir + "/d1"]) }
                        == .chainMustStartWithFull(path: dir + "/d1", kind: "diff"))
                #expect(SnapKit.error { try SnapshotChain(paths: []) } == .emptyChain)
                #expect(SnapKit.error { try SnapshotChain(paths: [dir + "/full", dir + "/full"]) } != nil)
                let fresh = try ModelGuest()
                #expect(SnapKit.error { try GuestSnapshotter(memory: fresh.memory).writeDiff(to: dir + "/x") } == .noBaseSnapshot)
            }
        }
    }

    @Test func aDifferentMemoryMapIsRefusedAndNothingChanges() throws {
        try SnapKit.gated {
            try SnapKit.withScratch { dir in
                _ = try Self.setUp(dir)
                let chain = try SnapshotChain(paths: [dir + "/full", dir + "/d1"])
                // Same segments, one mapping moved.
                let m = try GuestMemory(limit: ModelGuest.limit)
                try m.allocateSegment(id: 0, length: 4 << 20)
                try m.allocateSegment(id: 1, length: 64 << 10, name: "bootrom")
                try m.allocateSegment(id: 2, length: 1 << 20, name: "framebuffer")
                try m.allocateSegment(id: 3, length: 1 << 20, backing: .anonymous)
                try m.map(gpa: 0, segment: 0, offset: 0, length: 4 << 20, protection: .all)
                try m.map(gpa: 20 << 20, segment: 0, offset: 1 << 20, length: 1 << 20, protection: .readWrite)
                guard case let .mapMismatch(path, detail)? = SnapKit.error({ try chain.restore(into: m) }) else {
                    Issue.record("expected mapMismatch")
                    return
                }
                #expect(path == dir + "/d1" && detail.contains("0x1000000") && detail.contains("0x1400000"))
                #expect(SnapKit.allocated(m) == [0, 0, 0, 0])
                // A different segment length.
                let n = try GuestMemory(limit: ModelGuest.limit)
                try n.allocateSegment(id: 0, length: 8 << 20)
                guard case .mapMismatch? = SnapKit.error({ try LazyRestore(chain, into: n) }) else {
                    Issue.record("expected mapMismatch for a lazy restore")
                    return
                }
                #expect(SnapKit.error { try chain.restore(into: try GuestMemory(limit: 128 << 20)) }
                        == .mapMismatch(path: dir + "/d1", detail: "guest space 0x4000000 in the file, 0x8000000 in the memory"))
            }
        }
    }

    @Test func aRestoreIntoRunningMemoryIsRefusedAndNothingChanges() throws {
        try SnapKit.gated {
            try SnapKit.withScratch { dir in
                _ = try Self.setUp(dir)
                let chain = try SnapshotChain(paths: [dir + "/full", dir + "/d1", dir + "/d2"])
                // Written by the VMM.
                let written = try chain.newest.makeMemory()
                try written.write(0x9000, [42])
                let before = SnapKit.allocated(written)
                guard case let .memoryNotFresh(reason)? = SnapKit.error({ try chain.restore(into: written) }) else {
                    Issue.record("expected memoryNotFresh")
                    return
                }
                #expect(reason.contains("0x9000"))
                #expect(SnapKit.allocated(written) == before)
                #expect(try written.read(0x2000, count: 3) == [0, 0, 0] && written.read(0x9000, count: 1) == [42])
                // Data put straight into a segment (not dirty: a VMM loading a ROM).
                let loaded = try chain.newest.makeMemory()
                try loaded.segment(1)!.object.write([1], offset: 0)
                guard case .memoryNotFresh? = SnapKit.error({ try LazyRestore(chain, into: loaded) }) else {
                    Issue.record("expected memoryNotFresh for data in a segment")
                    return
                }
                // A hypervisor attached (its dirty log).
                let attached = try chain.newest.makeMemory()
                let log = FakeGuestLog()
                attached.attachDirtyLog(log)
                #expect(SnapKit.error { try chain.restore(into: attached) }
                        == .memoryNotFresh(reason: "dirty log fake-kvm attached: a hypervisor is running it"))
                // A lazy restore already running on it.
                let lazyTarget = try chain.newest.makeMemory()
                let lazy = try LazyRestore(chain, into: lazyTarget)
                #expect(SnapKit.error { try chain.restore(into: lazyTarget) }
                        == .memoryNotFresh(reason: "a lazy restore is active on it"))
                #expect(lazy.statistics.faultsServed == 0)
                #expect(try lazyTarget.read(0x2000, count: 3) == [1, 2, 3] && lazyTarget.read(0x4000, count: 1) == [5])
                try lazy.finish()
                // Restored already (eagerly): not fresh either.
                let once = try chain.newest.makeMemory()
                try chain.restore(into: once)
                guard case .memoryNotFresh? = SnapKit.error({ try chain.restore(into: once) }) else {
                    Issue.record("expected memoryNotFresh after a restore")
                    return
                }
            }
        }
    }
}
