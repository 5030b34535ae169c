import HostMemory
import Synchronization

/// One memory segment (bhyve `vm_alloc_memseg`): system memory without a
/// name, or device memory with one (`bootrom`, `framebuffer`), backed by a
/// host `MemoryObject` and carrying the VMM's dirty bitmap.
public final class MemorySegment: @unchecked Sendable {
    /// What a segment is.
    public enum Kind: Hashable, Sendable, CustomStringConvertible {
        /// System memory (guest RAM): kept across a reset.
        case system
        /// Named device memory: its mappings are dropped on a reset.
        case device(name: String)

        public var description: String {
            switch self {
            case .system: return "sysmem"
            case .device(let n): return "devmem \"\(n)\""
            }
        }
    }

    /// Where a segment's bytes live on the host.
    public enum Backing: Hashable, Sendable {
        /// A `memfd` (the default): shareable with another process through its
        /// descriptor, and mappable at several guest-physical addresses.
        case memfd
        /// A `memfd` of 2 MiB huge pages (`MFD_HUGETLB`); fails where the host
        /// has none reserved.
        case memfdHugePages
        /// Anonymous memory: no descriptor; a range can be mapped at one
        /// guest-physical address at a time, and its bytes go with its mapping.
        case anonymous
    }

    /// 0...15.
    public let id: Int
    public let kind: Kind
    /// Bytes, a non-zero multiple of the page size.
    public let length: UInt64
    public let backing: Backing
    /// The host object mapped into the guest's reservation.
    public let object: MemoryObject
    /// The VMM's writes, one bit per page.
    public let dirty: DirtyBitmap
    /// What the guest's ``GuestPageProvider`` gave this (system) segment, if any.
    public let pageBacking: GuestPageBacking?
    let pageProvider: (any GuestPageProvider)?
    let backingReleased = Atomic<Bool>(false)

    init(id: Int, kind: Kind, length: UInt64, backing: Backing,
         provider: (any GuestPageProvider)? = nil, provided: GuestPageBacking? = nil) throws(GuestMemoryError) {
        self.id = id
        self.kind = kind
        self.length = length
        self.backing = backing
        self.pageProvider = provider
        self.pageBacking = provided
        let label: String = switch kind {
        case .system: "vmkit-sysmem-\(id)"
        case .device(let n): "vmkit-devmem-\(n)"
        }
        if let given = provided?.object {
            guard given.size >= length else {
                throw .host(.objectTooShort(object: given.name, objectSize: given.size, offset: 0, length: length))
            }
            object = given
            dirty = DirtyBitmap(pages: length / GuestMemory.pageSize)
            return
        }
        do {
            switch backing {
            case .anonymous: object = MemoryObject.anonymous(size: length)
            case .memfd: object = try MemoryObject.memfd(name: label, size: length, sealable: true)
            case .memfdHugePages:
                object = try MemoryObject.memfd(name: label, size: length, sealable: true, hugePages: true)
            }
        } catch {
            throw .host(error)
        }
        dirty = DirtyBitmap(pages: length / GuestMemory.pageSize)
    }

    deinit { releaseProvidedBacking() }

    /// Whether this is system memory.
    public var isSystem: Bool { kind == .system }

    /// The devmem name, nil for sysmem.
    public var name: String? {
        if case .device(let n) = kind { return n }
        return nil
    }

    /// Checks a devmem name: non-empty, at most 63 bytes, `[A-Za-z0-9._-]`.
    public static func checkName(_ name: String) throws(GuestMemoryError) {
        guard !name.isEmpty else { throw .invalidSegmentName(name: name, reason: "empty") }
        guard name.utf8.count <= 63 else {
            throw .invalidSegmentName(name: name, reason: "\(name.utf8.count) bytes, longer than 63")
        }
        for b in name.utf8 {
            let ok = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || b == 0x2E || b == 0x5F || b == 0x2D
            guard ok else {
                throw .invalidSegmentName(name: name, reason: "byte 0x\(String(b, radix: 16)) is not in [A-Za-z0-9._-]")
            }
        }
    }
}
