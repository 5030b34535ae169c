import GuestMemory

/// Full or diff.
public enum SnapshotKind: UInt32, Hashable, Sendable, CustomStringConvertible {
    /// Every non-zero page of every segment.
    case full = 1
    /// The pages dirty since the snapshot before it.
    case diff = 2

    public var description: String { self == .full ? "full" : "diff" }
}

/// One segment as a snapshot file records it: what it is (id, kind, name,
/// length, backing) and where its bitmap and page data lie in the file.
public struct SnapshotSegmentRecord: Hashable, Sendable {
    public let id: Int
    public let kind: MemorySegment.Kind
    public let backing: MemorySegment.Backing
    /// Bytes, a non-zero multiple of 4 KiB.
    public let length: UInt64
    /// File offset of the page bitmap (one bit per segment page, u64 words, little-endian).
    public let bitmapOffset: UInt64
    /// File offset of segment page 0 (4 KiB aligned); page `p` is at `dataOffset + p * 4096`.
    public let dataOffset: UInt64
    /// Pages whose bit is set.
    public let pagesRecorded: UInt64

    public var pages: UInt64 { length / GuestMemory.pageSize }
    var bitmapWords: Int { Int((pages + 63) / 64) }

    /// The same segment (id, kind, backing, length), wherever its data lies.
    func sameSegment(_ o: SnapshotSegmentRecord) -> Bool {
        id == o.id && kind == o.kind && backing == o.backing && length == o.length
    }
}

/// One mapping as a snapshot file records it.
public struct SnapshotMappingRecord: Hashable, Sendable, CustomStringConvertible {
    public let gpa: UInt64
    public let length: UInt64
    public let segmentID: Int
    public let offset: UInt64
    public let protection: GuestProtection
    public let wired: Bool

    public init(gpa: UInt64, length: UInt64, segmentID: Int, offset: UInt64, protection: GuestProtection, wired: Bool) {
        self.gpa = gpa
        self.length = length
        self.segmentID = segmentID
        self.offset = offset
        self.protection = protection
        self.wired = wired
    }

    init(_ m: GuestMapping) {
        self.init(gpa: m.gpa, length: m.length, segmentID: m.segmentID, offset: m.offset,
                  protection: m.protection, wired: m.wired)
    }

    public var description: String {
        "map 0x\(String(gpa, radix: 16)) 0x\(String(length, radix: 16)) seg=\(segmentID) "
            + "off=0x\(String(offset, radix: 16)) prot=\(protection.word)\(wired ? " wired" : "")"
    }
}

/// The fixed layout of a snapshot file (the module article gives it as a
/// table; this is the one place that knows the offsets).
enum SnapshotLayout {
    /// `VMKSNAP\0` read as a little-endian u64.
    static let magic: UInt64 = 0x0050_414E_534B_4D56
    static let version: UInt32 = 1
    static let headerSize = 256
    static let segmentRecordSize = 128
    static let mappingRecordSize = 48
    static let pageSize: UInt64 = 4096
    /// Offset of the header checksum (covers bytes [0, 252)).
    static let headerCRCOffset = 252

    static func alignUp(_ v: UInt64, _ a: UInt64) -> UInt64 { (v + a - 1) & ~(a - 1) }

    static func kindCode(_ k: MemorySegment.Kind) -> UInt32 { k == .system ? 0 : 1 }
    static func backingCode(_ b: MemorySegment.Backing) -> UInt32 {
        switch b {
        case .memfd: 0
        case .memfdHugePages: 1
        case .anonymous: 2
        }
    }
    static func backing(_ code: UInt32) -> MemorySegment.Backing? {
        switch code {
        case 0: .memfd
        case 1: .memfdHugePages
        case 2: .anonymous
        default: nil
        }
    }
}

/// The decoded header.
struct SnapshotHeader: Hashable, Sendable {
    var kind: SnapshotKind
    var position: UInt32
    var id: SnapshotID
    var parent: SnapshotID
    var base: SnapshotID
    var limit: UInt64
    var segmentCount: UInt32
    var mappingCount: UInt32
    var tablesOffset: UInt64
    var tablesLength: UInt64
    var dataOffset: UInt64
    var fileSize: UInt64
    var pagesRecorded: UInt64
    var tablesCRC: UInt32

    func encode() -> [UInt8] {
        var b = ByteWriter(count: SnapshotLayout.headerSize)
        b.u64(0, SnapshotLayout.magic)
        b.u32(8, SnapshotLayout.version)
        b.u32(12, UInt32(SnapshotLayout.headerSize))
        b.u32(16, kind.rawValue)
        b.u32(20, position)
        b.id(24, id)
        b.id(40, parent)
        b.id(56, base)
        b.u64(72, limit)
        b.u32(80, UInt32(SnapshotLayout.pageSize))
        b.u32(84, segmentCount)
        b.u32(88, mappingCount)
        b.u32(92, 0)
        b.u64(96, tablesOffset)
        b.u64(104, tablesLength)
        b.u64(112, dataOffset)
        b.u64(120, fileSize)
        b.u64(128, pagesRecorded)
        b.u32(136, tablesCRC)
        let crc = b.bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<SnapshotLayout.headerCRCOffset])) }
        b.u32(SnapshotLayout.headerCRCOffset, crc)
        return b.bytes
    }
}

/// Little-endian stores into a byte array.
struct ByteWriter {
    var bytes: [UInt8]
    init(count: Int) { bytes = [UInt8](repeating: 0, count: count) }
    mutating func u32(_ at: Int, _ v: UInt32) {
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: v.littleEndian, toByteOffset: at, as: UInt32.self) }
    }
    mutating func u64(_ at: Int, _ v: UInt64) {
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: v.littleEndian, toByteOffset: at, as: UInt64.self) }
    }
    mutating func id(_ at: Int, _ v: SnapshotID) {
        u64(at, v.high)
        u64(at + 8, v.low)
    }
}

/// Little-endian loads from a byte array.
struct ByteReader {
    let bytes: [UInt8]
    func u32(_ at: Int) -> UInt32 {
        bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
    }
    func u64(_ at: Int) -> UInt64 {
        bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
    }
    func id(_ at: Int) -> SnapshotID { SnapshotID(high: u64(at), low: u64(at + 8)) }
}
