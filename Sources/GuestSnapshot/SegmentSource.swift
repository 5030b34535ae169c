#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import GuestMemory
import HostMemory

/// Where a snapshot reads a segment's bytes: the guest's own host window
/// where a readable mapping covers the page (already populated by whoever
/// wrote it, so reading costs no page fault), else a private read-only view
/// of the segment's memfd (for ranges no mapping covers). Anonymous memory
/// exists only where mapped: the window is all there is. Only pages that
/// hold data are read (`SEEK_DATA`, the dirty harvest), so a read never
/// allocates a page behind a hole.
struct SegmentSource {
    /// `mapping.base`, kept here so that reaching a page needs no second load.
    private let view: UnsafeRawPointer?
    private let mapping: FileMapping?
    private let length: UInt64
    private let fd: Int32
    /// (first segment page, end page, host address of the first), by first page.
    private let windows: [(UInt64, UInt64, UInt64)]

    init(_ segment: MemorySegment, _ mappings: [GuestMapping], path: String) throws(GuestSnapshotError) {
        length = segment.length
        windows = mappings.filter { $0.segmentID == segment.id && !$0.protection.isDisjoint(with: [.read, .execute]) }.map {
            ($0.offset / SnapshotLayout.pageSize, ($0.offset + $0.length) / SnapshotLayout.pageSize, $0.hostAddress)
        }.sorted { $0.0 < $1.0 }
        fd = segment.object.fd
        if fd >= 0 {
            do throws(HostMemoryError) {
                mapping = try FileMapping(fd: fd, length: length, access: .readOnly)
            } catch {
                throw .io(path: path, call: "mmap of segment \(segment.id)", errno: error.errnoValue, segment: segment.id, page: nil)
            }
            view = mapping?.base
        } else {
            mapping = nil
            view = nil
        }
    }

    /// The end of the source's use: `view` must not be read after it. (The
    /// mapping goes with the last copy of the source; this keeps it at least
    /// until here, so a pointer read through `view` never outlives it.)
    func close() {
        withExtendedLifetime(mapping) {}
    }

    /// The bytes of segment page `p`, or nil where they do not exist (an
    /// anonymous segment's unmapped range).
    @inline(__always)
    func address(ofPage p: UInt64) -> UnsafeRawPointer? {
        for (lo, hi, host) in windows where p >= lo && p < hi {
            return UnsafeRawPointer(bitPattern: UInt(host + (p - lo) * SnapshotLayout.pageSize))
        }
        if let view { return view + Int(p * SnapshotLayout.pageSize) }
        return nil
    }

    /// Byte ranges of the segment that may hold data: a memfd's data extents
    /// (`SEEK_DATA`/`SEEK_HOLE`), an anonymous segment's mapped ranges.
    func candidateRanges() -> [Range<UInt64>] {
        if fd >= 0 { return SnapshotIO.dataRanges(fd, size: length) ?? [0 ..< length] }
        return windows.map { ($0.0 * SnapshotLayout.pageSize) ..< ($0.1 * SnapshotLayout.pageSize) }
    }
}
