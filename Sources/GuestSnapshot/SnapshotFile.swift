#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import GuestMemory
import HostMemory

/// A snapshot file opened and checked: header (magic, version, checksum),
/// tables (checksum, every value in range), and a size that covers the
/// page data. Page data is not read until a restore asks for it: opening
/// an 8 GiB snapshot costs its tables, not its pages.
public final class SnapshotFile: @unchecked Sendable {
    public let path: String
    public let kind: SnapshotKind
    /// This file's identity.
    public let id: SnapshotID
    /// The file before it in its chain (``SnapshotID/none`` for a full snapshot).
    public let parent: SnapshotID
    /// The full snapshot its chain starts at (its own id for a full snapshot).
    public let base: SnapshotID
    /// 0 for the full snapshot, n for the n-th diff after it.
    public let position: UInt32
    /// The guest-physical space of the memory it was taken of.
    public let limit: UInt64
    public let segments: [SnapshotSegmentRecord]
    public let mappings: [SnapshotMappingRecord]
    /// Pages recorded over all segments.
    public let pagesRecorded: UInt64
    /// The size the header says (the file may not be shorter).
    public let fileSize: UInt64
    /// Per segment (same order as ``segments``), its bitmap words.
    let bitmaps: [[UInt64]]
    let fd: Int32
    private let mapLock = HostLock()
    private var mapped: FileMapping?

    /// Opens and checks `path`. Every refusal names the file and the value.
    public init(path: String) throws(GuestSnapshotError) {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(path: path, call: "open", errno: errno, segment: nil, page: nil) }
        do {
            let parsed = try Self.parse(fd: fd, path: path)
            (kind, id, parent, base, position, limit) = (parsed.h.kind, parsed.h.id, parsed.h.parent, parsed.h.base,
                                                          parsed.h.position, parsed.h.limit)
            segments = parsed.segments
            mappings = parsed.mappings
            bitmaps = parsed.bitmaps
            pagesRecorded = parsed.h.pagesRecorded
            fileSize = parsed.h.fileSize
            self.fd = fd
        } catch {
            close(fd)
            throw error
        }
    }

    deinit {
        close(fd)  // the mapping, if any, outlives the descriptor until it is released
    }

    /// The segment record of `id`, if the file has one.
    public func segment(_ id: Int) -> SnapshotSegmentRecord? { segments.first { $0.id == id } }

    /// Whether the file holds segment page `page` of the segment at `index` in ``segments``.
    @inline(__always)
    func has(segmentIndex index: Int, page: UInt64) -> Bool {
        bitmaps[index][Int(page / 64)] & (UInt64(1) << (page % 64)) != 0
    }

    /// The recorded pages of the segment at `index`, ascending.
    public func recordedPages(segmentIndex index: Int) -> [UInt64] {
        var out: [UInt64] = []
        for (w, word) in bitmaps[index].enumerated() {
            var bits = word
            while bits != 0 {
                out.append(UInt64(w) * 64 + UInt64(bits.trailingZeroBitCount))
                bits &= bits - 1
            }
        }
        return out
    }

    /// The whole file mapped read-only (once; kept until deinit).
    func mapping() throws(GuestSnapshotError) -> UnsafeRawPointer {
        try mapLock.withLock { () throws(GuestSnapshotError) -> UnsafeRawPointer in
            if let mapped { return mapped.base }
            do throws(HostMemoryError) {
                let m = try FileMapping(fd: fd, length: fileSize, access: .readOnly)
                mapped = m
                return m.base
            } catch {
                throw .io(path: path, call: "mmap", errno: error.errnoValue, segment: nil, page: nil)
            }
        }
    }

    // MARK: The memory map

    /// A new `GuestMemory` with the file's space, segments (ids, kinds,
    /// names, lengths, backings) and mappings: the memory a restore of this
    /// snapshot goes into.
    /// `honorWired: false` maps every range unpopulated, as a lazy restore
    /// needs (a populated page never faults, so it would never be fetched).
    public func makeMemory(nested: NestedTableMode = NestedTableMode(), honorWired: Bool = true) throws(GuestSnapshotError) -> GuestMemory {
        do throws(GuestMemoryError) {
            let memory = try GuestMemory(limit: limit, nested: nested)
            for s in segments {
                try memory.allocateSegment(id: s.id, length: s.length, name: s.kind == .system ? nil : segmentName(s),
                                           backing: s.backing)
            }
            for m in mappings {
                try memory.map(gpa: m.gpa, segment: m.segmentID, offset: m.offset, length: m.length,
                               protection: m.protection, wired: m.wired && honorWired)
            }
            return memory
        } catch {
            throw .memory(error)
        }
    }

    private func segmentName(_ s: SnapshotSegmentRecord) -> String? {
        if case .device(let n) = s.kind { return n }
        return nil
    }

    /// Refuses, with the first difference, a memory whose space, segments or
    /// mappings are not this file's (host addresses and the wired flag — a
    /// population policy, not part of the map — aside).
    public func checkMatches(_ memory: GuestMemory) throws(GuestSnapshotError) {
        guard memory.limit == limit else {
            throw .mapMismatch(path: path, detail: "guest space 0x\(String(limit, radix: 16)) in the file, "
                               + "0x\(String(memory.limit, radix: 16)) in the memory")
        }
        let have = memory.segments
        for s in segments {
            guard let m = have.first(where: { $0.id == s.id }) else {
                throw .mapMismatch(path: path, detail: "segment \(s.id) (\(s.kind)) is not in the memory")
            }
            guard m.kind == s.kind, m.length == s.length, m.backing == s.backing else {
                throw .mapMismatch(path: path, detail: "segment \(s.id): \(s.kind) 0x\(String(s.length, radix: 16)) "
                                   + "\(s.backing) in the file, \(m.kind) 0x\(String(m.length, radix: 16)) \(m.backing) in the memory")
            }
        }
        if let extra = have.first(where: { m in !segments.contains { $0.id == m.id } }) {
            throw .mapMismatch(path: path, detail: "segment \(extra.id) (\(extra.kind)) is not in the file")
        }
        let maps = memory.mappings.map { SnapshotMappingRecord(gpa: $0.gpa, length: $0.length, segmentID: $0.segmentID,
                                                               offset: $0.offset, protection: $0.protection, wired: false) }
        for (i, recorded) in mappings.enumerated() {
            let f = SnapshotMappingRecord(gpa: recorded.gpa, length: recorded.length, segmentID: recorded.segmentID,
                                          offset: recorded.offset, protection: recorded.protection, wired: false)
            guard i < maps.count else { throw .mapMismatch(path: path, detail: "\(f) is not in the memory") }
            guard maps[i] == f else { throw .mapMismatch(path: path, detail: "\(f) in the file, \(maps[i]) in the memory") }
        }
        if maps.count > mappings.count {
            throw .mapMismatch(path: path, detail: "\(maps[mappings.count]) is not in the file")
        }
    }

    // MARK: Parsing

    private struct Parsed {
        var h: SnapshotHeader
        var segments: [SnapshotSegmentRecord]
        var mappings: [SnapshotMappingRecord]
        var bitmaps: [[UInt64]]
    }

    private static func parse(fd: Int32, path: String) throws(GuestSnapshotError) -> Parsed {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .io(path: path, call: "fstat", errno: errno, segment: nil, page: nil) }
        let size = UInt64(st.st_size)
        var head = [UInt8](repeating: 0, count: SnapshotLayout.headerSize)
        let got = head.withUnsafeMutableBytes { SnapshotIO.preadAll(fd, $0.baseAddress!, SnapshotLayout.headerSize, 0) }
        guard got >= 0 else { throw .io(path: path, call: "pread", errno: Int32(-got), segment: nil, page: nil) }
        let r = ByteReader(bytes: head)
        // The magic first, so a file that is not a snapshot says so whatever its size.
        if got >= 8, r.u64(0) != SnapshotLayout.magic { throw .badMagic(path: path, found: r.u64(0)) }
        guard got == SnapshotLayout.headerSize else {
            throw .truncated(path: path, size: size, needed: UInt64(SnapshotLayout.headerSize), what: "the header")
        }
        let version = r.u32(8)
        guard version == SnapshotLayout.version else {
            throw .unsupportedVersion(path: path, found: version, supported: SnapshotLayout.version)
        }
        let stored = r.u32(SnapshotLayout.headerCRCOffset)
        let computed = head.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<SnapshotLayout.headerCRCOffset])) }
        guard stored == computed else { throw .checksumMismatch(path: path, what: "header", stored: stored, computed: computed) }
        func bad(_ field: String, _ value: UInt64, _ reason: String) -> GuestSnapshotError {
            .corrupt(path: path, field: field, value: value, reason: reason)
        }
        guard r.u32(12) == UInt32(SnapshotLayout.headerSize) else { throw bad("header size", UInt64(r.u32(12)), "must be 256") }
        guard let kind = SnapshotKind(rawValue: r.u32(16)) else { throw bad("kind", UInt64(r.u32(16)), "neither full (1) nor diff (2)") }
        guard r.u32(80) == UInt32(SnapshotLayout.pageSize) else { throw bad("page size", UInt64(r.u32(80)), "must be 4096") }
        let h = SnapshotHeader(kind: kind, position: r.u32(20), id: r.id(24), parent: r.id(40), base: r.id(56),
                               limit: r.u64(72), segmentCount: r.u32(84), mappingCount: r.u32(88),
                               tablesOffset: r.u64(96), tablesLength: r.u64(104), dataOffset: r.u64(112),
                               fileSize: r.u64(120), pagesRecorded: r.u64(128), tablesCRC: r.u32(136))
        guard h.limit > 0, h.limit % SnapshotLayout.pageSize == 0, h.limit <= GuestMemory.addressLimit else {
            throw bad("guest space", h.limit, "zero, unaligned or beyond 2^47")
        }
        guard h.segmentCount <= UInt32(GuestMemory.maxSegments) else { throw bad("segment count", UInt64(h.segmentCount), "more than 16") }
        guard h.mappingCount <= UInt32(GuestMemory.maxMappings) else { throw bad("mapping count", UInt64(h.mappingCount), "more than 32") }
        guard h.tablesOffset == UInt64(SnapshotLayout.headerSize) else { throw bad("tables offset", h.tablesOffset, "must follow the header") }
        guard h.tablesLength <= 1 << 40, h.dataOffset % SnapshotLayout.pageSize == 0,
              h.dataOffset >= h.tablesOffset + h.tablesLength, h.fileSize >= h.dataOffset else {
            throw bad("data offset", h.dataOffset, "not 4 KiB aligned after the tables, or past the file size")
        }
        if kind == .full {
            guard h.position == 0, h.parent == .none, h.base == h.id else { throw bad("chain position", UInt64(h.position), "a full snapshot is 0 with no parent") }
        } else {
            guard h.position > 0, h.parent != .none else { throw bad("chain position", UInt64(h.position), "a diff is 1 or more with a parent") }
        }
        guard size >= h.fileSize else { throw .truncated(path: path, size: size, needed: h.fileSize, what: "the page data") }
        var tables = [UInt8](repeating: 0, count: Int(h.tablesLength))
        let t = tables.withUnsafeMutableBytes { SnapshotIO.preadAll(fd, $0.baseAddress!, Int(h.tablesLength), h.tablesOffset) }
        guard t >= 0 else { throw .io(path: path, call: "pread", errno: Int32(-t), segment: nil, page: nil) }
        guard t == Int(h.tablesLength) else { throw .truncated(path: path, size: size, needed: h.tablesOffset + h.tablesLength, what: "the tables") }
        let tcrc = CRC32C.checksum(tables)
        guard tcrc == h.tablesCRC else { throw .checksumMismatch(path: path, what: "tables", stored: h.tablesCRC, computed: tcrc) }
        let tr = ByteReader(bytes: tables)
        let fixed = Int(h.segmentCount) * SnapshotLayout.segmentRecordSize + Int(h.mappingCount) * SnapshotLayout.mappingRecordSize
        guard fixed <= tables.count else { throw bad("tables length", h.tablesLength, "shorter than \(fixed) bytes of records") }
        var segments: [SnapshotSegmentRecord] = []
        var bitmaps: [[UInt64]] = []
        var dataEnd = h.dataOffset
        var recorded: UInt64 = 0
        for i in 0..<Int(h.segmentCount) {
            let o = i * SnapshotLayout.segmentRecordSize
            let id = Int(tr.u32(o))
            guard id < GuestMemory.maxSegments, !segments.contains(where: { $0.id == id }) else { throw bad("segment id", UInt64(id), "out of range or repeated") }
            let kindCode = tr.u32(o + 4)
            guard let backing = SnapshotLayout.backing(tr.u32(o + 8)) else { throw bad("segment \(id) backing", UInt64(tr.u32(o + 8)), "unknown") }
            let nameLength = Int(tr.u32(o + 12))
            let length = tr.u64(o + 16)
            guard length > 0, length % SnapshotLayout.pageSize == 0, length <= GuestMemory.addressLimit else { throw bad("segment \(id) length", length, "zero, unaligned or too large") }
            guard nameLength <= 63 else { throw bad("segment \(id) name length", UInt64(nameLength), "longer than 63") }
            let kind: MemorySegment.Kind
            switch kindCode {
            case 0: kind = .system
            case 1:
                let name = String(decoding: tables[(o + 48)..<(o + 48 + nameLength)], as: UTF8.self)
                do throws(GuestMemoryError) { try MemorySegment.checkName(name) } catch { throw bad("segment \(id) name length", UInt64(nameLength), "the name is not a devmem name: \(error)") }
                kind = .device(name: name)
            default: throw bad("segment \(id) kind", UInt64(kindCode), "neither sysmem (0) nor devmem (1)")
            }
            let rec = SnapshotSegmentRecord(id: id, kind: kind, backing: backing, length: length, bitmapOffset: tr.u64(o + 24),
                                            dataOffset: tr.u64(o + 32), pagesRecorded: tr.u64(o + 40))
            let bStart = rec.bitmapOffset, bLen = UInt64(rec.bitmapWords * 8)
            guard bStart >= h.tablesOffset + UInt64(fixed), bStart % 8 == 0, bStart + bLen <= h.tablesOffset + h.tablesLength else {
                throw bad("segment \(id) bitmap offset", bStart, "outside the tables")
            }
            guard rec.dataOffset == dataEnd else { throw bad("segment \(id) data offset", rec.dataOffset, "expected 0x\(String(dataEnd, radix: 16))") }
            dataEnd += length
            var words = [UInt64](repeating: 0, count: rec.bitmapWords)
            var count: UInt64 = 0
            let base = Int(bStart - h.tablesOffset)
            for w in 0..<rec.bitmapWords {
                words[w] = tr.u64(base + 8 * w)
                count += UInt64(words[w].nonzeroBitCount)
            }
            if rec.pages % 64 != 0, let last = words.last, last >> (rec.pages % 64) != 0 {
                throw bad("segment \(id) bitmap", last, "bits past the segment's last page")
            }
            guard count == rec.pagesRecorded else { throw bad("segment \(id) pages recorded", rec.pagesRecorded, "the bitmap has \(count)") }
            recorded += count
            segments.append(rec)
            bitmaps.append(words)
        }
        guard dataEnd == h.fileSize else { throw bad("file size", h.fileSize, "the segments' data ends at 0x\(String(dataEnd, radix: 16))") }
        guard recorded == h.pagesRecorded else { throw bad("pages recorded", h.pagesRecorded, "the bitmaps have \(recorded)") }
        var mappings: [SnapshotMappingRecord] = []
        for i in 0..<Int(h.mappingCount) {
            let o = Int(h.segmentCount) * SnapshotLayout.segmentRecordSize + i * SnapshotLayout.mappingRecordSize
            let m = SnapshotMappingRecord(gpa: tr.u64(o), length: tr.u64(o + 8), segmentID: Int(tr.u32(o + 24)), offset: tr.u64(o + 16),
                                          protection: GuestProtection(rawValue: UInt8(truncatingIfNeeded: tr.u32(o + 28))),
                                          wired: tr.u32(o + 32) & 1 != 0)
            guard let s = segments.first(where: { $0.id == m.segmentID }) else { throw bad("mapping \(i) segment", UInt64(m.segmentID), "no such segment in the file") }
            let (end, o1) = m.gpa.addingReportingOverflow(m.length)
            let (segEnd, o2) = m.offset.addingReportingOverflow(m.length)
            guard m.length > 0, m.gpa % SnapshotLayout.pageSize == 0, m.length % SnapshotLayout.pageSize == 0,
                  m.offset % SnapshotLayout.pageSize == 0, !o1, !o2, end <= h.limit, segEnd <= s.length, m.protection.isValid else {
                throw bad("mapping \(i) gpa", m.gpa, "unaligned, beyond the space or the segment, or bad protection")
            }
            if let last = mappings.last, last.gpa + last.length > m.gpa { throw bad("mapping \(i) gpa", m.gpa, "overlaps or is out of order") }
            mappings.append(m)
        }
        return Parsed(h: h, segments: segments, mappings: mappings, bitmaps: bitmaps)
    }
}
