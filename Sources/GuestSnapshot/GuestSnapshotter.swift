#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import GuestMemory
import HostMemory

/// What a snapshot call wrote.
public struct SnapshotReport: Hashable, Sendable {
    /// The file (complete and synced when the report exists).
    public let path: String
    public let kind: SnapshotKind
    public let id: SnapshotID
    /// The full snapshot of its chain.
    public let base: SnapshotID
    public let position: UInt32
    /// Segment pages recorded (their bit set).
    public let pagesRecorded: UInt64
    /// Recorded pages written as data; the rest of the recorded pages were all
    /// zero and are file holes (a diff records such a page as zero).
    public let pagesWritten: UInt64
    /// Pages with data in the segment that were all zero: a full snapshot
    /// leaves them out, a diff records them as holes.
    public let zeroPages: UInt64
    /// Bytes of page data written.
    public let bytesWritten: UInt64
    /// The file's size (holes included).
    public let fileSize: UInt64
    /// The file's allocated bytes (`st_blocks * 512`): data, tables, no holes.
    public let allocatedBytes: UInt64
    /// From the call to the file synced and the harvest committed.
    public let nanoseconds: UInt64
}

/// Takes full and diff snapshots of one `GuestMemory` into files, keeping
/// the chain: each diff records the id of the snapshot before it.
///
/// Every snapshot is built on one `DirtyHarvest` of the whole guest
/// space: the pages are taken from both dirty sources (VMM writes and the
/// guest's — the nested D bits, and KVM's log through `GuestDirtyLog`),
/// written, synced, and only then committed; any failure aborts the harvest
/// and every page is dirty again (Firecracker #4545). VMM writes mark the
/// bitmap the harvest reads, so a write between two snapshots is in the next
/// diff (Firecracker #3666). A full snapshot commits its harvest too, so the
/// next diff is relative to it. One snapshot at a time per snapshotter, and
/// one snapshotter (or other harvest consumer that commits) per memory: a
/// second one committing its own harvests would take pages from this one's
/// next diff.
public final class GuestSnapshotter: @unchecked Sendable {
    public let memory: GuestMemory
    private let lock = HostLock()
    private var lastID: SnapshotID?
    private var baseID: SnapshotID = .none
    private var lastPosition: UInt32 = 0

    /// A snapshotter with no snapshot yet: the first must be full.
    public init(memory: GuestMemory) {
        self.memory = memory
    }

    /// A snapshotter continuing the chain that ends at `file` (the newest
    /// file of a restore): the next diff's parent is `file`. Refused unless
    /// `memory` has `file`'s map.
    public init(memory: GuestMemory, continuingFrom file: SnapshotFile) throws(GuestSnapshotError) {
        try file.checkMatches(memory)
        self.memory = memory
        lastID = file.id
        baseID = file.base
        lastPosition = file.position
    }

    /// The newest snapshot written (or continued from): id, base, position.
    public var last: (id: SnapshotID, base: SnapshotID, position: UInt32)? {
        lock.withLock { lastID.map { ($0, baseID, lastPosition) } }
    }

    /// Writes every non-zero page of every segment (segments, not mappings:
    /// an aliased range is stored once) to `path`, and commits the harvest of
    /// everything. Pages never written, and pages all zero, are file holes.
    /// A lazy restore still fetching pages of this memory is completed first.
    @discardableResult
    public func writeFull(to path: String) throws(GuestSnapshotError) -> SnapshotReport {
        try lock.withLock { () throws(GuestSnapshotError) -> SnapshotReport in
            if let lazy = LazyRestore.active(on: memory) { try lazy.fetchAll() }
            let r = try write(kind: .full, path: path, parent: .none, base: nil, position: 0)
            (lastID, baseID, lastPosition) = (r.id, r.id, 0)
            return r
        }
    }

    /// Writes the pages dirty since the last committed snapshot, by any
    /// source, to `path`. Refused with ``GuestSnapshotError/noBaseSnapshot``
    /// before any full snapshot.
    @discardableResult
    public func writeDiff(to path: String) throws(GuestSnapshotError) -> SnapshotReport {
        try lock.withLock { () throws(GuestSnapshotError) -> SnapshotReport in
            guard let parent = lastID else { throw .noBaseSnapshot }
            let r = try write(kind: .diff, path: path, parent: parent, base: baseID, position: lastPosition + 1)
            (lastID, lastPosition) = (r.id, r.position)
            return r
        }
    }

    // MARK: Writing

    private func write(kind: SnapshotKind, path: String, parent: SnapshotID, base: SnapshotID?,
                       position: UInt32) throws(GuestSnapshotError) -> SnapshotReport {
        let start = SnapshotIO.now()
        let segments = memory.segments
        let mappings = memory.mappings
        let harvest: DirtyHarvest
        do { harvest = try memory.harvestDirty(0 ..< memory.limit) } catch { throw .memory(error) }
        let temp = path + ".partial"
        let fd = open(temp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            harvest.abort()
            throw .io(path: path, call: "open", errno: errno, segment: nil, page: nil)
        }
        do throws(GuestSnapshotError) {
            let id = SnapshotID.random()
            var plan = SnapshotPlan(segments: segments, mappings: mappings)
            guard ftruncate(fd, off_t(plan.fileSize)) == 0 else {
                throw GuestSnapshotError.io(path: path, call: "ftruncate", errno: errno, segment: nil, page: nil)
            }
            var stats = WriteStats()
            if kind == .full {
                for i in segments.indices { try writeFullSegment(i, &plan, fd: fd, path: path, stats: &stats) }
            } else {
                plan.markDirty(harvest.pages)
                for i in segments.indices { try writeRecorded(i, plan, fd: fd, path: path, stats: &stats) }
            }
            let tables = plan.encodeTables()
            let header = SnapshotHeader(kind: kind, position: position, id: id, parent: parent, base: base ?? id,
                                        limit: memory.limit, segmentCount: UInt32(segments.count),
                                        mappingCount: UInt32(mappings.count), tablesOffset: UInt64(SnapshotLayout.headerSize),
                                        tablesLength: UInt64(tables.count), dataOffset: plan.dataOffset,
                                        fileSize: plan.fileSize, pagesRecorded: plan.totalRecorded,
                                        tablesCRC: CRC32C.checksum(tables)).encode()
            // The header goes last: until it is there the file reads as no snapshot at all.
            for (bytes, offset) in [(tables, UInt64(SnapshotLayout.headerSize)), (header, 0)] {
                if let e = bytes.withUnsafeBytes({ SnapshotIO.pwriteAll(fd, $0.baseAddress!, $0.count, offset) }) {
                    throw GuestSnapshotError.io(path: path, call: "pwrite", errno: e.errno, segment: nil, page: nil)
                }
            }
            guard fsync(fd) == 0 else { throw GuestSnapshotError.io(path: path, call: "fsync", errno: errno, segment: nil, page: nil) }
            let allocated = SnapshotIO.allocatedBytes(fd) ?? 0
            guard close(fd) == 0 else {
                let e = errno
                unlink(temp)
                harvest.abort()
                throw .io(path: path, call: "close", errno: e, segment: nil, page: nil)
            }
            guard rename(temp, path) == 0 else {
                let e = errno
                unlink(temp)
                harvest.abort()
                throw .io(path: path, call: "rename", errno: e, segment: nil, page: nil)
            }
            harvest.commit()
            return SnapshotReport(path: path, kind: kind, id: id, base: base ?? id, position: position,
                                  pagesRecorded: plan.totalRecorded, pagesWritten: stats.pagesWritten,
                                  zeroPages: stats.zeroPages, bytesWritten: stats.pagesWritten * SnapshotLayout.pageSize,
                                  fileSize: plan.fileSize, allocatedBytes: allocated, nanoseconds: SnapshotIO.now() - start)
        } catch {
            close(fd)
            unlink(temp)
            harvest.abort()
            throw error
        }
    }

    private struct WriteStats {
        var pagesWritten: UInt64 = 0
        var zeroPages: UInt64 = 0
    }

    /// A full snapshot of segment `i`: the pages that hold data (`SEEK_DATA`
    /// on a memfd, so never-touched pages are not even read; every mapped
    /// page of an anonymous segment), less the all-zero ones.
    private func writeFullSegment(_ i: Int, _ plan: inout SnapshotPlan, fd: Int32, path: String,
                                  stats: inout WriteStats) throws(GuestSnapshotError) {
        let seg = plan.segments[i]
        let source = try SegmentSource(seg, plan.mappings, path: path)
        defer { source.close() }
        for range in source.candidateRanges() {
            var p = range.lowerBound / SnapshotLayout.pageSize
            let end = range.upperBound / SnapshotLayout.pageSize
            while p < end {
                guard let src = source.address(ofPage: p), !SnapshotIO.isZeroPage(src) else {
                    if source.address(ofPage: p) != nil { stats.zeroPages += 1 }
                    p += 1
                    continue
                }
                // A run of non-zero pages with contiguous sources: one pwrite.
                var n: UInt64 = 1
                while p + n < end, n < 256, let s = source.address(ofPage: p + n), s == src + Int(n * SnapshotLayout.pageSize),
                      !SnapshotIO.isZeroPage(s) { n += 1 }
                try writePages(src, first: p, count: n, segment: i, plan: plan, fd: fd, path: path)
                for q in p ..< p + n { plan.setBit(segment: i, page: q) }
                stats.pagesWritten += n
                p += n
            }
        }
    }

    /// The recorded pages of segment `i` (a diff's dirty pages): non-zero
    /// ones written, zero ones left as holes (still recorded).
    private func writeRecorded(_ i: Int, _ plan: SnapshotPlan, fd: Int32, path: String,
                               stats: inout WriteStats) throws(GuestSnapshotError) {
        guard plan.recorded(segment: i) > 0 else { return }
        let source = try SegmentSource(plan.segments[i], plan.mappings, path: path)
        defer { source.close() }
        let words = plan.bitmaps[i]
        var w = 0
        while w < words.count {
            var bits = words[w]
            while bits != 0 {
                let p = UInt64(w) * 64 + UInt64(bits.trailingZeroBitCount)
                bits &= bits - 1
                guard let src = source.address(ofPage: p) else { continue }
                if SnapshotIO.isZeroPage(src) {
                    stats.zeroPages += 1
                    continue
                }
                // Extend over the following set bits (across words) with contiguous non-zero sources.
                var n: UInt64 = 1
                while n < 256 {
                    if bits == 0 {
                        // The run reached the word's end: carry on into the next word if it starts with the next page.
                        guard (p + n) % 64 == 0, w + 1 < words.count, words[w + 1] & 1 != 0 else { break }
                        w += 1
                        bits = words[w]
                    }
                    guard UInt64(w) * 64 + UInt64(bits.trailingZeroBitCount) == p + n,
                          let s = source.address(ofPage: p + n), s == src + Int(n * SnapshotLayout.pageSize),
                          !SnapshotIO.isZeroPage(s) else { break }
                    bits &= bits - 1
                    n += 1
                }
                try writePages(src, first: p, count: n, segment: i, plan: plan, fd: fd, path: path)
                stats.pagesWritten += n
            }
            w += 1
        }
    }

    private func writePages(_ src: UnsafeRawPointer, first p: UInt64, count n: UInt64, segment i: Int, plan: SnapshotPlan,
                            fd: Int32, path: String) throws(GuestSnapshotError) {
        let offset = plan.dataOffsets[i] + p * SnapshotLayout.pageSize
        if let e = SnapshotIO.pwriteAll(fd, src, Int(n * SnapshotLayout.pageSize), offset) {
            throw .io(path: path, call: "pwrite", errno: e.errno, segment: plan.segments[i].id,
                      page: p + UInt64(e.done) / SnapshotLayout.pageSize)
        }
    }
}
