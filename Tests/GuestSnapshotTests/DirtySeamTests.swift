#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
import GuestMemory
import GuestSnapshot
import HostMemory

/// A stand-in for KVM's dirty log: guest pages written behind the VMM's back.
final class FakeGuestLog: GuestDirtyLog, @unchecked Sendable {
    let dirtyLogName = "fake-kvm"
    private let lock = HostLock()
    private var pages: Set<UInt64> = []
    func guestWrote(page: UInt64) { lock.withLock { pages.insert(page) } }
    func drain(into memory: GuestMemory, firstPage: UInt64, endPage: UInt64) throws(GuestMemoryError) {
        let taken = lock.withLock { () -> [UInt64] in
            let t = Array(pages.filter { $0 >= firstPage && $0 < endPage })
            pages.subtract(t)
            return t
        }
        for p in taken {
            var word: UInt64 = 1
            withUnsafePointer(to: &word) { memory.markDirty(firstGuestPage: p, words: UnsafeBufferPointer(start: $0, count: 1)) }
        }
    }
}

/// Firecracker #3666 (VMM writes missing from diff snapshots) and #4545 (the
/// dirty log cleared before the snapshot was safely written) as tests, and
/// the guest's sources (nested D bits, a KVM-style log) joining the diff.
@Suite("Snapshot dirty seams: #3666, #4545")
struct DirtySeamTests {
    /// #3666: every kind of VMM write between two snapshots is in the next diff.
    @Test func vmmWritesBetweenSnapshotsAreInTheNextDiff() throws {
        try SnapKit.gated {
            try SnapKit.withScratch { dir in
                let g = try ModelGuest()
                var rng = SnapRNG(seed: 3666)
                try g.randomWrites(40, rng: &rng)
                let snap = GuestSnapshotter(memory: g.memory)
                try snap.writeFull(to: dir + "/0")
                // A copy, an atomic store, a writable hold: all VMM writes (pages 0x100, 0x101, 0x102).
                try g.memory.write(0x100 * SnapKit.page + 10, [0xAB])
                g.record(segment: 0, offset: 0x100 * SnapKit.page + 10, [0xAB])
                try g.memory.store(UInt64(0x1122_3344_5566_7788), at: 0x101 * SnapKit.page)
                g.record(segment: 0, offset: 0x101 * SnapKit.page, [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
                let hold = try g.memory.hold(0x102 * SnapKit.page, .readWrite)
                hold.pointer.storeBytes(of: 0xEE, toByteOffset: 5, as: UInt8.self)
                hold.release()
                g.record(segment: 0, offset: 0x102 * SnapKit.page + 5, [0xEE])
                let d = try snap.writeDiff(to: dir + "/1")
                let file = try SnapshotFile(path: dir + "/1")
                let idx = file.segments.firstIndex { $0.id == 0 }!
                #expect(Set(file.recordedPages(segmentIndex: idx)) == [0x100, 0x101, 0x102])
                #expect(d.pagesRecorded == 3)
                let chain = try SnapshotChain(paths: [dir + "/0", dir + "/1"])
                let m = try chain.newest.makeMemory()
                try chain.restore(into: m)
                #expect(try ModelGuest(memory: m, model: g.model).mismatch() == nil)
                // Nothing between: an empty diff.
                #expect(try snap.writeDiff(to: dir + "/2").pagesRecorded == 0)
            }
        }
    }

    /// Guest writes (a nested-table touch; a KVM-style log) join the diff
    /// through the one harvest.
    @Test func guestWritesFromEverySourceAreInTheDiff() throws {
        try SnapKit.gated {
            try SnapKit.withScratch { dir in
                let g = try ModelGuest()
                let log = FakeGuestLog()
                g.memory.attachDirtyLog(log)
                let snap = GuestSnapshotter(memory: g.memory)
                try snap.writeFull(to: dir + "/0")
                _ = try g.memory.touch(0x7000, write: true)
                // The "guest" writes the framebuffer's memfd directly; only the log knows.
                try g.memory.segment(2)!.object.write([5, 6, 7], offset: 0x3000)
                log.guestWrote(page: (32 << 20) / SnapKit.page + 3)
                let file = try SnapshotFile(path: try snap.writeDiff(to: dir + "/1").path)
                #expect(file.recordedPages(segmentIndex: file.segments.firstIndex { $0.id == 0 }!) == [7])
                #expect(file.recordedPages(segmentIndex: file.segments.firstIndex { $0.id == 2 }!) == [3])
                // The restore target must not have a hypervisor attached.
                try g.memory.detachDirtyLog(log)
            }
        }
    }

    /// Mounts a 256 KiB tmpfs at a fresh directory for `body` (root only).
    static func withSmallTmpfs(_ body: (String) throws -> Void) throws {
        var template = Array("/tmp/vmkit-snap-full-XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        defer { rmdir(dir) }
        guard mount("tmpfs", dir, "tmpfs", 0, "size=256k") == 0 else {
            print("skipping the full-disk half: mount of a small tmpfs failed with errno \(errno) (not root?)")
            return
        }
        defer { umount2(dir, Int32(MNT_DETACH)) }
        try body(dir)
    }

    /// #4545: a snapshot write that fails midway (a full disk) names the file
    /// and the page, leaves no file, and loses nothing: the next diff holds
    /// every page.
    @Test func failedSnapshotWriteLosesNothing() throws {
        try SnapKit.gated {
            try SnapKit.withScratch { dir in
                try Self.withSmallTmpfs { small in
                    let g = try ModelGuest()
                    var rng = SnapRNG(seed: 4545)
                    try g.randomWrites(30, rng: &rng)
                    let snap = GuestSnapshotter(memory: g.memory)
                    let full = try snap.writeFull(to: dir + "/0")
                    g.written.removeAll()
                    // ~140 distinct pages: more than 256 KiB.
                    for i in 0 ..< 140 {
                        let gpa = UInt64(i) * 5 * SnapKit.page + 64
                        try g.memory.write(gpa, [UInt8(i), 1, 2, 3])
                        g.record(segment: 0, offset: gpa, [UInt8(i), 1, 2, 3])
                    }
                    let bad = small + "/diff"
                    let e = SnapKit.error { try snap.writeDiff(to: bad) }
                    guard case let .io(path, call, err, segment, page)? = e else {
                        Issue.record("expected an I/O error, got \(String(describing: e))")
                        return
                    }
                    #expect(path == bad && call == "pwrite" && err == ENOSPC && segment == 0)
                    #expect(page != nil && page! > 0 && page! < 700)
                    #expect("\(e!)".contains(bad))
                    #expect(access(bad, F_OK) != 0 && access(bad + ".partial", F_OK) != 0)
                    // A failed full snapshot gives everything back too.
                    #expect(SnapKit.error { try snap.writeFull(to: small + "/full") } != nil)
                    #expect(snap.last?.id == full.id)
                    let d = try snap.writeDiff(to: dir + "/1")
                    #expect(d.pagesRecorded == UInt64(g.written.count))
                    let chain = try SnapshotChain(paths: [dir + "/0", dir + "/1"])
                    let m = try chain.newest.makeMemory()
                    try chain.restore(into: m)
                    #expect(try ModelGuest(memory: m, model: g.model).mismatch() == nil)
                }
            }
        }
    }
}
