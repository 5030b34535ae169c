/// Every way a page-table operation can refuse a request; each case names the
/// values that were wrong.
public enum PageTableError: Error, Hashable, Sendable {
    /// An x86-64 virtual address whose bits 63..47 are not all equal.
    case nonCanonicalAddress(UInt64)
    /// A guest-physical address at or above `limit` (2^48 for a 4-level nested table).
    case addressOutOfRange(UInt64, limit: UInt64)
    /// A virtual address not aligned to the page size asked for.
    case misalignedAddress(UInt64, size: PageSize)
    /// A physical address not aligned to the page size asked for.
    case misalignedPhysicalAddress(UInt64, size: PageSize)
    /// A physical address an entry cannot hold (2^52 and above).
    case physicalAddressOutOfRange(UInt64)
    /// A length of zero or not a multiple of 4 KiB.
    case invalidLength(UInt64)
    /// `address + length` passes the end of the address space.
    case rangeOverflow(address: UInt64, length: UInt64)
    /// Something is mapped there already; `existing` is its page size.
    case alreadyMapped(address: UInt64, existing: PageSize)
    /// The format has no leaf of this size.
    case pageSizeNotSupported(PageSize, format: String)
    /// The format cannot express these attributes.
    case attributesNotRepresentable(format: String, reason: String)
    /// The frame allocator could not supply a table.
    case tableAllocationFailed(String)
}

extension PageTableError: CustomStringConvertible {
    public var description: String {
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        switch self {
        case .nonCanonicalAddress(let a): return "page tables: \(hex(a)) is not canonical"
        case let .addressOutOfRange(a, l): return "page tables: \(hex(a)) is not below \(hex(l))"
        case let .misalignedAddress(a, s): return "page tables: \(hex(a)) is not \(s) aligned"
        case let .misalignedPhysicalAddress(a, s): return "page tables: physical \(hex(a)) is not \(s) aligned"
        case .physicalAddressOutOfRange(let a): return "page tables: physical \(hex(a)) needs more than 52 bits"
        case .invalidLength(let l): return "page tables: length \(hex(l)) is zero or not a 4K multiple"
        case let .rangeOverflow(a, l): return "page tables: \(hex(a)) + \(hex(l)) overflows"
        case let .alreadyMapped(a, s): return "page tables: \(hex(a)) is already mapped (\(s))"
        case let .pageSizeNotSupported(s, f): return "page tables: \(f) has no \(s) leaves"
        case let .attributesNotRepresentable(f, r): return "page tables: \(f) cannot express \(r)"
        case .tableAllocationFailed(let s): return "page tables: no frame for a table: \(s)"
        }
    }
}
