#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A read-only view of part of a memory object, mapped shared somewhere
/// outside any reservation: the source a lazy-fill driver copies pages
/// from (the page cache, with no copy into a buffer first).
public final class ObjectView: @unchecked Sendable {
    /// Where the view starts.
    public let base: UnsafeRawPointer
    /// Its length in bytes.
    public let length: UInt64
    /// The object it views, kept alive as long as the view.
    public let object: MemoryObject

    /// Maps `[offset, offset + length)` of `object` read-only.
    public init(_ object: MemoryObject, offset: UInt64, length: UInt64) throws(HostMemoryError) {
        guard length > 0 else { throw .zeroLength(address: offset) }
        guard object.kind != .anonymous else {
            throw .invalidArgument(name: "object", value: 0, reason: "anonymous memory has nothing to view")
        }
        try object.checkMappable(offset: offset, length: length, protection: .read, shared: true)
        let r = mmap(nil, Int(length), PROT_READ, MAP_SHARED, object.fd, off_t(offset))
        guard let r, r != MAP_FAILED else {
            throw .system(call: "mmap", errno: errno, detail: "of a view of \(object.name) at \(offset), \(length) bytes")
        }
        base = UnsafeRawPointer(r)
        self.length = length
        self.object = object
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), Int(length)) }
}
