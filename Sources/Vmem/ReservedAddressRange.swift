#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A range of this process's address space, reserved with no access, whose
/// pages are committed as an arena hands them out: what illumos's `heap`
/// arena and segkmem are to the kernel, for arenas whose addresses must be
/// memory (``TagBacking/memory``).
///
/// An arena over `[base, base + size)` manages the addresses alone; the
/// source made by ``committingSource(from:)`` takes spans from it and
/// commits their pages (illumos `segkmem_alloc`), and on release decommits
/// them (the pages go back to the system) and frees the span. Committed
/// pages read as zero until written. The reservation is released when the
/// object goes; the arenas over it must go first.
public final class ReservedAddressRange: @unchecked Sendable {
    public let base: UInt64
    public let size: UInt64
    /// The system page size: the unit of commit and decommit.
    public static let pageSize = UInt64(sysconf(Int32(_SC_PAGESIZE)))

    /// Reserves `size` bytes (a multiple of the page size) of address space
    /// without memory behind it.
    public init(size: UInt64) throws(VmemError) {
        let page = Self.pageSize
        guard size != 0 else { throw .zeroSize }
        guard size % page == 0 else { throw .sizeNotQuantumMultiple(size: size, quantum: page) }
        guard size <= UInt64(Int.max) else { throw .overflow(base: 0, size: size) }
        #if canImport(Darwin)
        let flags = MAP_PRIVATE | MAP_ANON
        #else
        let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE
        #endif
        guard let p = mmap(nil, Int(size), PROT_NONE, flags, -1, 0), p != MAP_FAILED else {
            throw .systemCallFailed(call: "mmap reserving \(size) bytes", errno: errno)
        }
        base = UInt64(UInt(bitPattern: p))
        self.size = size
    }

    deinit { munmap(UnsafeMutableRawPointer(bitPattern: UInt(base)), Int(size)) }

    /// Whether `[address, address + length)` lies in the range on page boundaries.
    func covers(_ address: UInt64, _ length: UInt64) -> Bool {
        let page = Self.pageSize
        return address % page == 0 && length % page == 0 && address >= base
            && length <= size && address - base <= size - length
    }

    /// Makes `[address, address + length)` readable and writable.
    public func commit(_ address: UInt64, _ length: UInt64) throws(VmemError) {
        guard covers(address, length) else { throw .badFree(address: address, size: length) }
        guard length > 0 else { return }
        if mprotect(UnsafeMutableRawPointer(bitPattern: UInt(address)), Int(length), PROT_READ | PROT_WRITE) != 0 {
            throw .systemCallFailed(call: "mprotect committing \(length) bytes at 0x\(String(address, radix: 16))", errno: errno)
        }
    }

    /// Gives the pages of `[address, address + length)` back to the system
    /// and makes the range inaccessible again.
    public func decommit(_ address: UInt64, _ length: UInt64) {
        guard covers(address, length), length > 0 else { return }
        let p = UnsafeMutableRawPointer(bitPattern: UInt(address))
        _ = madvise(p, Int(length), MADV_DONTNEED)
        _ = mprotect(p, Int(length), PROT_NONE)
    }

    /// A source that takes spans from `arena` (an arena over this range's
    /// addresses) and commits them; its release decommits and frees.
    public func committingSource(from arena: Arena) -> ArenaSource {
        ArenaSource.arena(arena, import: { [self] (size, align) throws(VmemError) in
            let a = try arena.allocSpan(size, align: align)
            do throws(VmemError) { try commit(a, size) } catch {
                arena.freeSpan(a, size: size)
                throw .importFailed(arena: arena.name, size: size)
            }
            return (a, size)
        }, release: { [self] base, size in
            decommit(base, size)
            arena.freeSpan(base, size: size)
        })
    }
}
