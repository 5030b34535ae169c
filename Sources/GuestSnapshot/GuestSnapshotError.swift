import GuestMemory
import HostMemory

/// How a snapshot or restore call is refused. Every case names the file and
/// the offending values. A refused restore has changed no guest memory; a
/// refused snapshot has left every page it did not commit dirty.
public enum GuestSnapshotError: Error, Hashable, Sendable {
    // Reading a file.
    /// The file is shorter than its header or tables say it must be.
    case truncated(path: String, size: UInt64, needed: UInt64, what: String)
    /// The first eight bytes are not `VMKSNAP\0`.
    case badMagic(path: String, found: UInt64)
    /// A format version this code does not read.
    case unsupportedVersion(path: String, found: UInt32, supported: UInt32)
    /// A checksum over the header or the tables does not match.
    case checksumMismatch(path: String, what: String, stored: UInt32, computed: UInt32)
    /// A header or table value that cannot be (an id out of range, a table
    /// reaching past its area, a mapping beyond its segment).
    case corrupt(path: String, field: String, value: UInt64, reason: String)

    // Chains.
    /// A chain must start with a full snapshot; this one is a diff (or a
    /// diff position was given a full snapshot).
    case chainMustStartWithFull(path: String, kind: String)
    /// A diff whose parent is not the file before it in the chain.
    case wrongBase(path: String, parent: SnapshotID, expected: SnapshotID)
    /// A diff at the wrong place in the chain.
    case outOfOrder(path: String, position: UInt32, expected: UInt32)
    /// Two files of one chain describe different segments.
    case chainSegmentsDiffer(path: String, detail: String)
    /// An empty list of files.
    case emptyChain

    // Memory.
    /// The memory's map is not the snapshot's: `detail` names the first
    /// difference (segment or mapping, file's value against memory's).
    case mapMismatch(path: String, detail: String)
    /// A restore into memory that is not fresh (see the module article's
    /// rule): `reason` names what was found.
    case memoryNotFresh(reason: String)
    /// A diff asked for with no snapshot before it (take a full one first,
    /// or continue from a restored chain).
    case noBaseSnapshot
    /// A segment this operation cannot handle as asked (an anonymous segment
    /// mapped without write rights in an eager restore; one that is not
    /// mapped, whose bytes therefore do not exist).
    case unsupportedSegment(id: Int, reason: String)
    /// The guest-memory call failed.
    case memory(GuestMemoryError)
    /// The host-memory call failed (the userfaultfd service).
    case host(HostMemoryError)

    // Writing.
    /// A system call on a snapshot file failed; `page` names the segment page
    /// being written (nil when none was).
    case io(path: String, call: String, errno: Int32, segment: Int?, page: UInt64?)
    /// Lazy restore cannot run here (no userfaultfd, no shared-memory missing mode).
    case lazyUnavailable(reason: String)
    /// A working set that does not fit this restore: recorded from a
    /// snapshot not in the chain, or naming a segment or page the chain
    /// does not have.
    case workingSetMismatch(snapshot: SnapshotID, reason: String)
}

extension GuestSnapshotError: CustomStringConvertible {
    public var description: String {
        switch self {
        case let .truncated(p, size, needed, what):
            return "\(p): truncated: \(size) bytes, \(what) needs \(needed)"
        case let .badMagic(p, found):
            return "\(p): not a VMKit snapshot (magic 0x\(String(found, radix: 16)))"
        case let .unsupportedVersion(p, found, supported):
            return "\(p): format version \(found), this build reads \(supported)"
        case let .checksumMismatch(p, what, stored, computed):
            return "\(p): \(what) checksum 0x\(String(stored, radix: 16)) stored, 0x\(String(computed, radix: 16)) computed"
        case let .corrupt(p, field, value, reason):
            return "\(p): \(field) = 0x\(String(value, radix: 16)): \(reason)"
        case let .chainMustStartWithFull(p, kind):
            return "\(p): a chain starts with a full snapshot, this is a \(kind)"
        case let .wrongBase(p, parent, expected):
            return "\(p): diff of \(parent), but the file before it is \(expected)"
        case let .outOfOrder(p, position, expected):
            return "\(p): diff number \(position) given at place \(expected)"
        case let .chainSegmentsDiffer(p, detail):
            return "\(p): segments differ from the base: \(detail)"
        case .emptyChain:
            return "no snapshot files given"
        case let .mapMismatch(p, detail):
            return "\(p): taken of a different memory map: \(detail)"
        case let .memoryNotFresh(reason):
            return "restore refused: the memory is not fresh (\(reason))"
        case .noBaseSnapshot:
            return "a diff snapshot needs a full snapshot (or a restored chain) before it"
        case let .unsupportedSegment(id, reason):
            return "segment \(id): \(reason)"
        case let .memory(e):
            return "guest memory: \(e)"
        case let .host(e):
            return "host memory: \(e)"
        case let .io(p, call, e, seg, page):
            let at = seg.map { s in " at segment \(s) page \(page ?? 0) (offset 0x\(String((page ?? 0) * 4096, radix: 16)))" } ?? ""
            return "\(p): \(call) failed with errno \(e)\(at)"
        case let .lazyUnavailable(reason):
            return "lazy restore unavailable: \(reason)"
        case let .workingSetMismatch(id, reason):
            return "working set of snapshot \(id) does not fit this restore: \(reason)"
        }
    }
}
