import HostMemory

/// How a guest-memory call is refused. Every case names the offending
/// values; ``kind`` folds the cases into bhyve's four answers (`invalid`,
/// `exists`, `nospace`, `fault`: guest-memory.md §7). A refused call changes
/// nothing of the guest.
public enum GuestMemoryError: Error, Hashable, Sendable {
    // Segments (vm_alloc_memseg).
    /// A segment id outside 0...15.
    case invalidSegmentID(Int)
    /// A segment length that is zero, not page aligned, or larger than the guest space.
    case invalidSegmentLength(id: Int, length: UInt64)
    /// A devmem name that is empty, longer than 63 bytes, or not `[A-Za-z0-9._-]`.
    case invalidSegmentName(name: String, reason: String)
    /// The id is taken by an identical segment (`EEXIST`).
    case segmentExists(id: Int)
    /// The id is taken by a different segment (`EINVAL`).
    case segmentConflict(id: Int, existing: String, requested: String)
    /// The devmem name is used by another id.
    case segmentNameInUse(name: String, id: Int)
    /// No segment has this id.
    case noSuchSegment(id: Int)

    // Mappings (vm_mmap_memseg / vm_munmap_memseg).
    /// A value that must be a multiple of the page size is not.
    case notPageAligned(what: String, value: UInt64)
    /// A length of zero where bytes are needed.
    case zeroLength(gpa: UInt64)
    /// Protection bits outside r/w/x, or none.
    case invalidProtection(rawValue: UInt8)
    /// `[offset, offset + length)` is not inside the segment.
    case rangeBeyondSegment(id: Int, offset: UInt64, length: UInt64, segmentLength: UInt64)
    /// Every mapping slot is taken (`ENOSPC`).
    case tooManyMappings(limit: Int)
    /// `gpa + length` passes the guest-physical space.
    case beyondGuestSpace(gpa: UInt64, length: UInt64, limit: UInt64)
    /// The range overlaps an existing mapping.
    case overlap(gpa: UInt64, length: UInt64, mappedGPA: UInt64, mappedLength: UInt64)
    /// Two mappings of the same anonymous segment range: anonymous memory has
    /// no descriptor, so it cannot appear at two places (use a memfd segment).
    case anonymousAlias(id: Int, offset: UInt64, length: UInt64, mappedGPA: UInt64)
    /// `munmap` of a (gpa, length) that is not exactly one mapping.
    case noSuchMapping(gpa: UInt64, length: UInt64)
    /// The mapping still has page holds outstanding.
    case mappingHeld(gpa: UInt64, length: UInt64, holds: Int)

    // Access (vm_map_gpa, copies, atomics, holds).
    /// `gpa + length` passes 2^64.
    case rangeWraps(gpa: UInt64, length: UInt64)
    /// `gpa` is in no mapping.
    case unmapped(gpa: UInt64)
    /// The mapping at `gpa` does not give the rights asked for.
    case protectionDenied(gpa: UInt64, requested: GuestProtection, mapped: GuestProtection)
    /// The range leaves the one mapping it must lie in (translate, atomics).
    case crossesMapping(gpa: UInt64, length: UInt64, mappingGPA: UInt64, mappingLength: UInt64)
    /// An atomic access not naturally aligned.
    case misaligned(gpa: UInt64, size: Int)
    /// An atomic access of a width other than 1, 2, 4 or 8 bytes.
    case invalidAccessSize(Int)
    /// A byte count below zero.
    case negativeCount(Int)
    /// A page hold whose range leaves its page.
    case crossesPage(gpa: UInt64, length: UInt64)
    /// The guest memory was destroyed.
    case destroyed

    /// The host refused (reservation, memfd, mmap).
    case host(HostMemoryError)
    /// The nested page table refused (its table frames ran out): the
    /// table's own error, as text.
    case nestedTable(String)
    /// An attached dirty log (KVM's) could not be drained: its name and why.
    /// The pages it held stay in it for the next harvest.
    case dirtyLogFailed(log: String, reason: String)
    /// A packed host window (``GuestMemory/HostLayout/packed(windowBytes:)``)
    /// of `windowBytes` has no room left for this mapping and its guard.
    case hostWindowFull(gpa: UInt64, length: UInt64, windowBytes: UInt64)
    /// A packed host window size that is 0 or not below 2^47.
    case invalidHostWindow(bytes: UInt64)

    /// bhyve's answer for this refusal.
    public enum Kind: String, Hashable, Sendable {
        case invalid, exists, nospace, fault
    }

    /// `invalid`, `exists`, `nospace` or `fault`, as §7 prints them.
    public var kind: Kind {
        switch self {
        case .segmentExists, .segmentNameInUse: return .exists
        case .tooManyMappings: return .nospace
        case .beyondGuestSpace, .overlap, .anonymousAlias, .rangeWraps, .unmapped, .protectionDenied,
             .crossesMapping, .misaligned, .crossesPage, .destroyed, .host, .nestedTable, .dirtyLogFailed,
             .hostWindowFull:
            return .fault
        case .invalidSegmentID, .invalidSegmentLength, .invalidSegmentName, .segmentConflict, .noSuchSegment,
             .notPageAligned, .zeroLength, .invalidProtection, .rangeBeyondSegment, .noSuchMapping,
             .mappingHeld, .invalidAccessSize, .negativeCount, .invalidHostWindow:
            return .invalid
        }
    }
}

extension GuestMemoryError: CustomStringConvertible {
    public var description: String {
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        switch self {
        case let .invalidSegmentID(id): return "segment id \(id) is outside 0...\(GuestMemory.maxSegments - 1)"
        case let .invalidSegmentLength(id, l):
            return "segment \(id): length \(hex(l)) must be a non-zero multiple of the page size within the guest space"
        case let .invalidSegmentName(n, r): return "devmem name \"\(n)\": \(r)"
        case let .segmentExists(id): return "segment \(id) already exists"
        case let .segmentConflict(id, e, r): return "segment \(id) exists as \(e), not \(r)"
        case let .segmentNameInUse(n, id): return "devmem name \"\(n)\" is used by segment \(id)"
        case let .noSuchSegment(id): return "no segment \(id)"
        case let .notPageAligned(w, v): return "\(w) \(hex(v)) is not a multiple of the page size"
        case let .zeroLength(g): return "a range of 0 bytes at \(hex(g))"
        case let .invalidProtection(r): return "protection \(hex(UInt64(r))) is not a non-empty subset of rwx"
        case let .rangeBeyondSegment(id, o, l, s):
            return "[\(hex(o)), +\(hex(l))) is not inside segment \(id) of \(hex(s)) bytes"
        case let .tooManyMappings(n): return "all \(n) mappings are in use"
        case let .beyondGuestSpace(g, l, lim): return "[\(hex(g)), +\(hex(l))) passes the guest space end \(hex(lim))"
        case let .overlap(g, l, mg, ml):
            return "[\(hex(g)), +\(hex(l))) overlaps the mapping [\(hex(mg)), +\(hex(ml)))"
        case let .anonymousAlias(id, o, l, mg):
            return "anonymous segment \(id) [\(hex(o)), +\(hex(l))) is already mapped at \(hex(mg))"
        case let .noSuchMapping(g, l): return "no mapping is exactly [\(hex(g)), +\(hex(l)))"
        case let .mappingHeld(g, l, h): return "the mapping [\(hex(g)), +\(hex(l))) has \(h) page holds"
        case let .rangeWraps(g, l): return "[\(hex(g)), +\(hex(l))) wraps past 2^64"
        case let .unmapped(g): return "guest-physical \(hex(g)) is not mapped"
        case let .protectionDenied(g, r, m): return "\(hex(g)) is mapped \(m), the access needs \(r)"
        case let .crossesMapping(g, l, mg, ml):
            return "[\(hex(g)), +\(hex(l))) leaves the mapping [\(hex(mg)), +\(hex(ml)))"
        case let .misaligned(g, s): return "a \(s)-byte atomic access at \(hex(g)) is not aligned"
        case let .invalidAccessSize(s): return "an atomic access of \(s) bytes (1, 2, 4 or 8 only)"
        case let .negativeCount(n): return "a count of \(n) bytes"
        case let .crossesPage(g, l): return "a hold of [\(hex(g)), +\(hex(l))) crosses a page boundary"
        case .destroyed: return "the guest memory was destroyed"
        case let .host(e): return "host: \(e)"
        case let .nestedTable(e): return "nested page table: \(e)"
        case let .dirtyLogFailed(l, r): return "dirty log \(l) could not be drained: \(r)"
        case let .hostWindowFull(g, l, w):
            return "no room for [\(hex(g)), +\(hex(l))) and its guard in the packed host window of \(hex(w)) bytes"
        case let .invalidHostWindow(b): return "a packed host window of \(hex(b)) bytes (1 page up to below 2^47)"
        }
    }
}
