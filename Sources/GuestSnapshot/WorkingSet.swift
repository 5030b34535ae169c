#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The pages a lazily restored guest touched, in the order it first touched
/// them: its *working set*. Recorded by a ``LazyRestore`` (``LazyRestore/workingSet``)
/// and replayed by the next restore of the same snapshot
/// (``LazyRestore/prefetch(_:)``), so that the guest finds those pages filled
/// instead of waiting on a userfaultfd round trip for each — the
/// post-restore fault tail Firecracker's users ask to have prefetched.
///
/// Pages are named by segment id (bhyve memseg) and page within the segment,
/// so a working set applies to any restore whose chain holds the snapshot it
/// was recorded from (``snapshot``), whatever host addresses the mappings get.
///
/// On disk (``write(to:)``, all little-endian): the magic `VMKWSET1` (8
/// bytes), the version (u32, 1), 4 zero bytes, the snapshot id (high and low
/// u64), the page count (u64), one u64 per page (segment id × 2^48 + page),
/// and a CRC32C of everything before it (u32). Written to `PATH.partial`,
/// synced and renamed into place, as snapshot files are.
public struct WorkingSet: Hashable, Sendable {
    /// One page of a segment.
    public struct Page: Hashable, Sendable {
        /// The segment's id (0...15).
        public var segment: Int
        /// The page within the segment (offset / 4 KiB).
        public var page: UInt64
        public init(segment: Int, page: UInt64) {
            self.segment = segment
            self.page = page
        }
    }

    /// The snapshot file the pages were recorded from (the newest of the
    /// restored chain).
    public var snapshot: SnapshotID
    /// First touch first.
    public var pages: [Page]

    public init(snapshot: SnapshotID, pages: [Page]) {
        self.snapshot = snapshot
        self.pages = pages
    }

    /// This set, then the pages of `later` it does not hold, in `later`'s
    /// order. A restore that prefetched a set records only the pages the
    /// prefetch did not cover (the others never fault), so the set to keep
    /// for the next restore is the prefetched one merged with that.
    public func merging(_ later: WorkingSet) -> WorkingSet {
        var seen = Set(pages)
        var out = pages
        for p in later.pages where seen.insert(p).inserted { out.append(p) }
        return WorkingSet(snapshot: snapshot, pages: out)
    }

    static let magic: UInt64 = 0x3154_4553_574B_4D56          // "VMKWSET1"
    static let version: UInt32 = 1
    static let headerBytes = 40
    /// A page number takes the low 48 bits of an entry (2^48 pages of 4 KiB
    /// is far beyond the 2^47-byte guest space).
    static let pageBits: UInt64 = 48

    /// Writes the working set to `path` (replacing a file there only once
    /// the new one is complete and synced).
    public func write(to path: String) throws(GuestSnapshotError) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.headerBytes + pages.count * 8 + 4)
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
        put(Self.magic); put(Self.version); put(UInt32(0))
        put(snapshot.high); put(snapshot.low)
        put(UInt64(pages.count))
        for p in pages {
            guard (0...15).contains(p.segment) else {
                throw .corrupt(path: path, field: "segment", value: UInt64(truncatingIfNeeded: p.segment), reason: "a segment id is 0...15")
            }
            guard p.page < 1 << Self.pageBits else {
                throw .corrupt(path: path, field: "page", value: p.page, reason: "a page number is below 2^48")
            }
            put(UInt64(p.segment) << Self.pageBits | p.page)
        }
        put(CRC32C.checksum(bytes))
        let temp = path + ".partial"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io(path: temp, call: "open", errno: errno, segment: nil, page: nil) }
        let failure: GuestSnapshotError? = bytes.withUnsafeBytes { b in
            if let e = SnapshotIO.pwriteAll(fd, b.baseAddress!, b.count, 0) {
                return .io(path: temp, call: "pwrite", errno: e.errno, segment: nil, page: nil)
            }
            return fsync(fd) == 0 ? nil : .io(path: temp, call: "fsync", errno: errno, segment: nil, page: nil)
        }
        close(fd)
        if let failure { unlink(temp); throw failure }
        guard rename(temp, path) == 0 else {
            let e = errno
            unlink(temp)
            throw .io(path: path, call: "rename", errno: e, segment: nil, page: nil)
        }
    }

    /// Reads a working set written by ``write(to:)``; every field is checked
    /// and the first thing wrong is named.
    public init(contentsOf path: String) throws(GuestSnapshotError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(path: path, call: "open", errno: errno, segment: nil, page: nil) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .io(path: path, call: "fstat", errno: errno, segment: nil, page: nil) }
        let size = UInt64(st.st_size)
        guard size >= UInt64(Self.headerBytes + 4) else {
            throw .truncated(path: path, size: size, needed: UInt64(Self.headerBytes + 4), what: "working-set header")
        }
        guard size <= 1 << 34 else {
            throw .corrupt(path: path, field: "size", value: size, reason: "larger than any working set of a 2^47-byte guest")
        }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        let got = bytes.withUnsafeMutableBytes { SnapshotIO.preadAll(fd, $0.baseAddress!, $0.count, 0) }
        guard got == Int(size) else {
            if got < 0 { throw .io(path: path, call: "pread", errno: Int32(-got), segment: nil, page: nil) }
            throw .truncated(path: path, size: UInt64(got), needed: size, what: "working set (the file shrank while read)")
        }
        func get<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
            bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
        }
        let magic = get(0, UInt64.self)
        guard magic == Self.magic else {
            throw .corrupt(path: path, field: "magic", value: magic, reason: "not a VMKit working set (VMKWSET1)")
        }
        let version = get(8, UInt32.self)
        guard version == Self.version else { throw .unsupportedVersion(path: path, found: version, supported: Self.version) }
        let count = get(32, UInt64.self)
        let needed = UInt64(Self.headerBytes) + count.multipliedReportingOverflow(by: 8).partialValue + 4
        guard count <= (size - UInt64(Self.headerBytes) - 4) / 8, needed == size else {
            if count > (size - UInt64(Self.headerBytes) - 4) / 8 {
                throw .truncated(path: path, size: size, needed: needed, what: "\(count) working-set pages")
            }
            throw .corrupt(path: path, field: "size", value: size, reason: "\(count) pages need \(needed) bytes")
        }
        let stored = get(Int(size) - 4, UInt32.self)
        let computed = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[..<(Int(size) - 4)])) }
        guard stored == computed else {
            throw .checksumMismatch(path: path, what: "working set", stored: stored, computed: computed)
        }
        var pages: [Page] = []
        pages.reserveCapacity(Int(count))
        for i in 0..<Int(count) {
            let e = get(Self.headerBytes + 8 * i, UInt64.self)
            let segment = e >> Self.pageBits
            guard segment <= 15 else {
                throw .corrupt(path: path, field: "page \(i) segment", value: segment, reason: "a segment id is 0...15")
            }
            pages.append(Page(segment: Int(segment), page: e & (1 << Self.pageBits - 1)))
        }
        self.init(snapshot: SnapshotID(high: get(16, UInt64.self), low: get(24, UInt64.self)), pages: pages)
    }
}
