#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import GuestMemory
import HostMemory

/// A full snapshot and the diffs after it, in order, checked as a chain:
/// the first is full, each diff's parent is the file before it and its
/// position is its place, every file has the same segments. A restore
/// takes each segment page from the newest file that records it.
public struct SnapshotChain: Sendable {
    public let files: [SnapshotFile]

    /// Checks `files` as a chain (nothing is read beyond their tables).
    public init(_ files: [SnapshotFile]) throws(GuestSnapshotError) {
        guard let first = files.first else { throw .emptyChain }
        guard first.kind == .full else { throw .chainMustStartWithFull(path: first.path, kind: "\(first.kind)") }
        for (i, f) in files.enumerated().dropFirst() {
            guard f.kind == .diff else { throw .chainMustStartWithFull(path: f.path, kind: "full snapshot at place \(i)") }
            // Position first: a diff given at the wrong place says so, rather than "wrong parent".
            guard f.position == UInt32(i) else { throw .outOfOrder(path: f.path, position: f.position, expected: UInt32(i)) }
            guard f.parent == files[i - 1].id, f.base == first.id else {
                throw .wrongBase(path: f.path, parent: f.parent, expected: files[i - 1].id)
            }
            guard f.limit == first.limit, f.segments.count == first.segments.count,
                  zip(f.segments, first.segments).allSatisfy({ $0.sameSegment($1) }) else {
                throw .chainSegmentsDiffer(path: f.path, detail: "\(f.segments.map { "\($0.id):\($0.kind):0x\(String($0.length, radix: 16))" }) "
                                           + "against \(first.segments.map { "\($0.id):\($0.kind):0x\(String($0.length, radix: 16))" })")
            }
        }
        self.files = files
    }

    /// Opens and checks each path, then the chain.
    public init(paths: [String]) throws(GuestSnapshotError) {
        var files: [SnapshotFile] = []
        for p in paths { files.append(try SnapshotFile(path: p)) }
        try self.init(files)
    }

    /// The last file: its mappings are the map a restore expects.
    public var newest: SnapshotFile { files[files.count - 1] }

    /// The index in ``files`` of the newest file recording page `page` of
    /// the segment at `segmentIndex`, or nil if none does (the page is zero).
    @inline(__always)
    func source(segmentIndex i: Int, page: UInt64) -> Int? {
        var f = files.count - 1
        while f >= 0 {
            if files[f].has(segmentIndex: i, page: page) { return f }
            f -= 1
        }
        return nil
    }

    // MARK: Restore

    /// Creates the memory the chain describes (``SnapshotFile/makeMemory(nested:honorWired:)``
    /// of the newest file) and restores into it eagerly.
    public func restoreIntoNewMemory(nested: NestedTableMode = NestedTableMode()) throws(GuestSnapshotError) -> (GuestMemory, RestoreReport) {
        let memory = try newest.makeMemory(nested: nested)
        return (memory, try restore(into: memory))
    }

    /// Eager restore: every recorded page, newest version, is read from the
    /// files into the segments (`pread` into a private view of each memfd;
    /// into the host window for anonymous memory) before the call returns.
    /// Refused, changing nothing, unless `memory` has the newest file's map
    /// and is fresh (``checkFresh(_:forLazyRestore:)``). Restored pages are not dirty.
    @discardableResult
    public func restore(into memory: GuestMemory) throws(GuestSnapshotError) -> RestoreReport {
        let start = SnapshotIO.now()
        try newest.checkMatches(memory)
        try Self.checkFresh(memory, forLazyRestore: false)
        let segments = memory.segments
        let mappings = memory.mappings
        // Anonymous memory is written through the guest's window: it must be writable there.
        for (i, s) in segments.enumerated() where s.object.fd < 0 {
            for m in mappings where m.segmentID == s.id && !m.protection.contains(.write) {
                if files.contains(where: { f in
                    (m.offset / 4096 ..< (m.offset + m.length) / 4096).contains { f.has(segmentIndex: i, page: $0) }
                }) {
                    throw .unsupportedSegment(id: s.id, reason: "anonymous memory mapped without write at 0x\(String(m.gpa, radix: 16)) cannot be restored eagerly (use a memfd segment)")
                }
            }
        }
        var pages: UInt64 = 0
        for (i, s) in segments.enumerated() {
            pages += try restoreSegment(i, s, mappings: mappings)
        }
        return RestoreReport(files: files.map(\.path), newest: newest.id, pagesRestored: pages,
                             bytesRestored: pages * SnapshotLayout.pageSize, nanoseconds: SnapshotIO.now() - start)
    }

    /// Reads segment `i`'s newest pages into it; returns the pages read.
    private func restoreSegment(_ i: Int, _ s: MemorySegment, mappings: [GuestMapping]) throws(GuestSnapshotError) -> UInt64 {
        let mapping: FileMapping?
        if s.object.fd >= 0 {
            do throws(HostMemoryError) {
                mapping = try FileMapping(fd: s.object.fd, length: s.length, access: .readWrite)
            } catch {
                throw .io(path: newest.path, call: "mmap of segment \(s.id)", errno: error.errnoValue, segment: s.id, page: nil)
            }
        } else {
            mapping = nil
        }
        let target = mapping?.writableBase
        // `target` is a raw pointer into the mapping: keep the mapping until the last pread through it.
        defer { withExtendedLifetime(mapping) {} }
        func destination(_ p: UInt64) -> UnsafeMutableRawPointer? {
            if let target { return target + Int(p * SnapshotLayout.pageSize) }
            for m in mappings where m.segmentID == s.id && p >= m.offset / 4096 && p < (m.offset + m.length) / 4096 {
                return UnsafeMutableRawPointer(bitPattern: UInt(m.hostAddress + p * 4096 - m.offset))
            }
            return nil
        }
        let words = files[0].segments[i].bitmapWords
        var done = [UInt64](repeating: 0, count: words)
        var count: UInt64 = 0
        // Newest first: a page taken from a file is masked out of the older ones.
        for f in files.reversed() {
            let data = f.segments[i].dataOffset
            let bits = f.bitmaps[i]
            var p: UInt64 = 0
            let end = f.segments[i].pages
            while p < end {
                let w = Int(p / 64)
                let fresh = bits[w] & ~done[w]
                if fresh == 0 {
                    p = UInt64(w + 1) * 64
                    continue
                }
                guard fresh & (UInt64(1) << (p % 64)) != 0, let dst = destination(p) else {
                    p += 1
                    continue
                }
                var n: UInt64 = 1
                while p + n < end, n < 512, bits[Int((p + n) / 64)] & ~done[Int((p + n) / 64)] & (UInt64(1) << ((p + n) % 64)) != 0,
                      destination(p + n) == dst + Int(n * 4096) { n += 1 }
                let got = SnapshotIO.preadAll(f.fd, dst, Int(n * 4096), data + p * 4096)
                guard got == Int(n * 4096) else {
                    throw .io(path: f.path, call: got < 0 ? "pread" : "pread (short)", errno: got < 0 ? Int32(-got) : EIO,
                              segment: s.id, page: p)
                }
                count += n
                p += n
            }
            for w in 0..<words { done[w] |= bits[w] }
        }
        return count
    }

    /// The rule for a restore target ("fresh"): not destroyed; no dirty log
    /// attached (a hypervisor would be writing it); no page dirty by any
    /// source; no segment holding data; no lazy restore active on it.
    /// Anything else counts as running, and a restore would mix two states.
    /// "Holding data": for an eager restore, a non-zero page in a memfd's
    /// data extents or an anonymous mapping's resident pages (so a memory
    /// whose wired mappings were populated with zeros qualifies); for a lazy
    /// restore, any page there at all — a page already present never raises
    /// the missing fault that would fetch it.
    public static func checkFresh(_ memory: GuestMemory, forLazyRestore lazy: Bool = false) throws(GuestSnapshotError) {
        guard !memory.isDestroyed else { throw .memory(.destroyed) }
        let logs = memory.attachedDirtyLogNames
        guard logs.isEmpty else { throw .memoryNotFresh(reason: "dirty log \(logs.joined(separator: ", ")) attached: a hypervisor is running it") }
        if LazyRestore.active(on: memory) != nil { throw .memoryNotFresh(reason: "a lazy restore is active on it") }
        let dirty: [UInt64]
        do { dirty = try memory.harvestDirty(0, memory.limit, .get) } catch { throw .memory(error) }
        if let first = dirty.first {
            throw .memoryNotFresh(reason: "\(dirty.count) pages written, the first at gpa 0x\(String(first * 4096, radix: 16))")
        }
        let mappings = memory.mappings
        for s in memory.segments {
            if s.object.fd >= 0 {
                guard let bytes = SnapshotIO.allocatedBytes(s.object.fd), bytes > 0 else { continue }
                if lazy {
                    throw .memoryNotFresh(reason: "segment \(s.id) holds \(bytes) bytes (a lazy restore needs every page missing: "
                                          + "make the memory without wired mappings)")
                }
                if let page = try firstNonZeroPage(s, mappings) {
                    throw .memoryNotFresh(reason: "segment \(s.id) holds data (page \(page) is not zero)")
                }
            } else {
                for m in mappings where m.segmentID == s.id {
                    let resident: UInt64
                    do { resident = try memory.reservation.residentPages(at: m.hostAddress, length: m.length) } catch { throw .host(error) }
                    guard resident > 0 else { continue }
                    if lazy || m.protection.isDisjoint(with: [.read, .execute]) {
                        throw .memoryNotFresh(reason: "\(resident) pages resident in the anonymous mapping at gpa 0x\(String(m.gpa, radix: 16))")
                    }
                    if let page = try firstNonZeroPage(s, [m]) {
                        throw .memoryNotFresh(reason: "segment \(s.id) holds data (page \(page) is not zero)")
                    }
                }
            }
        }
    }

    /// The first segment page with a non-zero byte among those that may hold data.
    private static func firstNonZeroPage(_ s: MemorySegment, _ mappings: [GuestMapping]) throws(GuestSnapshotError) -> UInt64? {
        let source = try SegmentSource(s, mappings, path: "segment \(s.id)")
        defer { source.close() }
        for range in source.candidateRanges() {
            var p = range.lowerBound / SnapshotLayout.pageSize
            while p < range.upperBound / SnapshotLayout.pageSize {
                if let a = source.address(ofPage: p), !SnapshotIO.isZeroPage(a) { return p }
                p += 1
            }
        }
        return nil
    }
}

/// What an eager restore did.
public struct RestoreReport: Hashable, Sendable {
    public let files: [String]
    /// The newest file's id: a ``GuestSnapshotter`` continuing the chain takes it as parent.
    public let newest: SnapshotID
    /// Segment pages read.
    public let pagesRestored: UInt64
    public let bytesRestored: UInt64
    /// From the call to the return (every page in place).
    public let nanoseconds: UInt64
}
