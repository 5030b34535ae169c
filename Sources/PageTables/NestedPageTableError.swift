/// Every way a ``NestedPageTable`` operation can refuse a request; each case
/// names the values that were wrong. Nothing changes on a refused call.
public enum NestedPageTableError: Error, Hashable, Sendable {
    /// The underlying table refused (alignment, range, attributes, frames).
    case table(PageTableError)
    /// `[gpa, gpa + length)` overlaps the mapping that starts at `existing`.
    case overlapsMapping(gpa: UInt64, length: UInt64, existing: UInt64)
    /// A harvest over more than `limit` bytes (illumos: 1 GiB per call).
    case rangeTooLarge(length: UInt64, limit: UInt64)
    /// A client capacity that is not 1...4096.
    case invalidCapacity(Int)
}

extension NestedPageTableError: CustomStringConvertible {
    public var description: String {
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        switch self {
        case .table(let e): return "nested " + e.description
        case let .overlapsMapping(g, l, x):
            return "nested page tables: [\(hex(g)), +\(hex(l))) overlaps the mapping at \(hex(x))"
        case let .rangeTooLarge(l, lim): return "nested page tables: length \(hex(l)) is above \(hex(lim))"
        case .invalidCapacity(let c): return "nested page tables: TLB capacity \(c) is not 1...4096"
        }
    }
}
