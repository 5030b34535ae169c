import GuestMemory

/// Where everything of one snapshot goes in its file, and which segment
/// pages it records: the tables (segment records, mapping records, one page
/// bitmap per segment) after the 256-byte header, then the page data, 4 KiB
/// aligned, each segment's pages at `dataOffset + page * 4096` — so the file
/// is as long as the memory and every page not written is a hole.
struct SnapshotPlan {
    let segments: [MemorySegment]
    let mappings: [GuestMapping]
    private(set) var bitmaps: [[UInt64]]
    let bitmapOffsets: [UInt64]
    let dataOffsets: [UInt64]
    let dataOffset: UInt64
    let fileSize: UInt64
    let tablesLength: Int

    init(segments: [MemorySegment], mappings: [GuestMapping]) {
        self.segments = segments
        self.mappings = mappings
        bitmaps = segments.map { [UInt64](repeating: 0, count: Int(($0.length / SnapshotLayout.pageSize + 63) / 64)) }
        var at = UInt64(SnapshotLayout.headerSize + segments.count * SnapshotLayout.segmentRecordSize
            + mappings.count * SnapshotLayout.mappingRecordSize)
        var offsets: [UInt64] = []
        for b in bitmaps {
            offsets.append(at)
            at += UInt64(b.count * 8)
        }
        bitmapOffsets = offsets
        tablesLength = Int(at) - SnapshotLayout.headerSize
        dataOffset = SnapshotLayout.alignUp(at, SnapshotLayout.pageSize)
        var d = dataOffset
        var data: [UInt64] = []
        for s in segments {
            data.append(d)
            d += s.length
        }
        dataOffsets = data
        fileSize = d
    }

    mutating func setBit(segment i: Int, page p: UInt64) {
        bitmaps[i][Int(p / 64)] |= UInt64(1) << (p % 64)
    }

    /// Records the segment pages behind `guestPages` (gpa >> 12, ascending):
    /// an aliased page reported at two addresses is recorded once.
    mutating func markDirty(_ guestPages: [UInt64]) {
        let index = Dictionary(uniqueKeysWithValues: segments.enumerated().map { ($0.element.id, $0.offset) })
        var m = 0
        for page in guestPages {
            let gpa = page * SnapshotLayout.pageSize
            while m < mappings.count, mappings[m].gpa + mappings[m].length <= gpa { m += 1 }
            guard m < mappings.count, gpa >= mappings[m].gpa, let i = index[mappings[m].segmentID] else { continue }
            setBit(segment: i, page: (gpa - mappings[m].gpa + mappings[m].offset) / SnapshotLayout.pageSize)
        }
    }

    func recorded(segment i: Int) -> UInt64 { bitmaps[i].reduce(0) { $0 + UInt64($1.nonzeroBitCount) } }

    var totalRecorded: UInt64 { segments.indices.reduce(0) { $0 + recorded(segment: $1) } }

    /// The tables as written at offset 256 (the header's checksum covers them).
    func encodeTables() -> [UInt8] {
        var b = ByteWriter(count: tablesLength)
        for (i, s) in segments.enumerated() {
            let o = i * SnapshotLayout.segmentRecordSize
            b.u32(o, UInt32(s.id))
            b.u32(o + 4, SnapshotLayout.kindCode(s.kind))
            b.u32(o + 8, SnapshotLayout.backingCode(s.backing))
            let name = Array((s.name ?? "").utf8)
            b.u32(o + 12, UInt32(name.count))
            b.u64(o + 16, s.length)
            b.u64(o + 24, bitmapOffsets[i])
            b.u64(o + 32, dataOffsets[i])
            b.u64(o + 40, recorded(segment: i))
            for (k, c) in name.enumerated() { b.bytes[o + 48 + k] = c }
        }
        let mBase = segments.count * SnapshotLayout.segmentRecordSize
        for (i, m) in mappings.enumerated() {
            let o = mBase + i * SnapshotLayout.mappingRecordSize
            b.u64(o, m.gpa)
            b.u64(o + 8, m.length)
            b.u64(o + 16, m.offset)
            b.u32(o + 24, UInt32(m.segmentID))
            b.u32(o + 28, UInt32(m.protection.rawValue))
            b.u32(o + 32, m.wired ? 1 : 0)
        }
        for (i, words) in bitmaps.enumerated() {
            let o = Int(bitmapOffsets[i]) - SnapshotLayout.headerSize
            for (w, word) in words.enumerated() { b.u64(o + 8 * w, word) }
        }
        return b.bytes
    }
}
