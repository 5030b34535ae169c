#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Every way a vmem operation can refuse a request.
///
/// illumos panics on most of these (a bad free, a misaligned constraint); VMKit
/// throws instead, and every case names the values that were wrong so that the
/// message alone is enough to find the caller's mistake.
public enum VmemError: Error, Equatable, Hashable, Sendable {
    /// The arena name is empty or longer than ``Arena/maximumNameLength``.
    case invalidName(String)
    /// The quantum must be a non-zero power of two.
    case quantumNotPowerOfTwo(quantum: UInt64)
    /// A request for zero bytes.
    case zeroSize
    /// A size that is not a multiple of the arena's quantum.
    case sizeNotQuantumMultiple(size: UInt64, quantum: UInt64)
    /// An address-like parameter (`parameter` is `"align"`, `"phase"`,
    /// `"nocross"`, `"minaddr"`, `"maxaddr"`, `"base"`, `"address"` or
    /// `"quantumCacheMax"`, `"minimumImport"`) that is not a multiple of the quantum.
    case notQuantumAligned(parameter: String, value: UInt64, quantum: UInt64)
    /// `align` or `nocross` must be a power of two (or zero for "none").
    case notPowerOfTwo(parameter: String, value: UInt64)
    /// `phase` must be smaller than `align` (illumos: "inconsistent or invalid").
    case phaseNotBelowAlign(phase: UInt64, align: UInt64)
    /// `nocross < align`, or `roundup(phase + size, align) > nocross`: no
    /// address can ever satisfy the request.
    case overconstrained(size: UInt64, align: UInt64, phase: UInt64, nocross: UInt64)
    /// `[minaddr, maxaddr)` is empty or smaller than the request.
    case rangeCannotHoldSize(minaddr: UInt64, maxaddr: UInt64, size: UInt64)
    /// A free of an address that is not the start of a live allocation
    /// (never allocated, or already freed).
    case badFree(address: UInt64, size: UInt64)
    /// A free whose size differs from the size allocated at that address.
    case wrongSize(address: UInt64, size: UInt64, allocatedSize: UInt64)
    /// A free by the caller of a slab that a quantum cache took from the
    /// arena: the cache owns it (its objects may be in use or cached) and
    /// gives it back itself when it is wholly free.
    case slabOwnedByCache(address: UInt64, size: UInt64)
    /// A span that overlaps one the arena already has.
    case spanOverlap(base: UInt64, size: UInt64, existingStart: UInt64, existingEnd: UInt64)
    /// `base + size` (or `address + size`) does not fit in 64 bits.
    case overflow(base: UInt64, size: UInt64)
    /// No free segment satisfies the request and it may not wait.
    case exhausted(arena: String, size: UInt64)
    /// The source could not supply a span of `size` bytes.
    case importFailed(arena: String, size: UInt64)
    /// A waiting allocation reached its deadline.
    case timedOut(arena: String, size: UInt64)
    /// A waiting allocation was cancelled through its ``CancellationToken``.
    case cancelled(arena: String, size: UInt64)
    /// Failure injection (``ArenaDebugging/meanTimeBetweenFailures``) chose to fail.
    case injectedFailure(arena: String, size: UInt64)
    /// `quantumCacheMax` above 16 quanta or 2^61 bytes (``Arena/quantumCacheLimit(quantum:)``).
    case quantumCacheTooLarge(quantumCacheMax: UInt64, limit: UInt64)
    /// The operation was used on an arena that was already destroyed.
    case arenaDestroyed(arena: String)
    /// The arena cannot do this (for example xfree of memory obtained from a
    /// quantum cache through ``Arena/alloc(_:policy:fromEnd:wait:)``).
    case notSupported(String)
    /// ``Arena/verify()`` found a broken invariant; the text says which and where.
    case invariantViolated(String)
    /// A system call on the process's memory failed (``ReservedAddressRange``).
    case systemCallFailed(call: String, errno: Int32)
}

extension VmemError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .invalidName(let n): return "invalid arena name \"\(n)\""
        case .quantumNotPowerOfTwo(let q): return "quantum \(hex(q)) is not a power of two"
        case .zeroSize: return "size is zero"
        case .sizeNotQuantumMultiple(let s, let q): return "size \(hex(s)) is not a multiple of the quantum \(hex(q))"
        case .notQuantumAligned(let p, let v, let q): return "\(p) \(hex(v)) is not a multiple of the quantum \(hex(q))"
        case .notPowerOfTwo(let p, let v): return "\(p) \(hex(v)) is not a power of two"
        case .phaseNotBelowAlign(let p, let a): return "phase \(hex(p)) is not below align \(hex(a))"
        case .overconstrained(let s, let a, let p, let n):
            return "overconstrained: size \(hex(s)) align \(hex(a)) phase \(hex(p)) nocross \(hex(n))"
        case .rangeCannotHoldSize(let lo, let hi, let s):
            return "range [\(hex(lo)), \(hex(hi))) cannot hold size \(hex(s))"
        case .badFree(let a, let s): return "bad free: \(hex(a)) size \(hex(s)) is not allocated"
        case .wrongSize(let a, let s, let t): return "wrong size: free of \(hex(a)) with size \(hex(s)), allocated \(hex(t))"
        case .slabOwnedByCache(let a, let s):
            return "free of \(hex(a)) size \(hex(s)): a slab of the quantum caches, which only they give back"
        case .spanOverlap(let b, let s, let e0, let e1):
            return "span [\(hex(b)), +\(hex(s))) overlaps existing span [\(hex(e0)), \(hex(e1)))"
        case .overflow(let b, let s): return "\(hex(b)) + \(hex(s)) overflows 2^64"
        case .exhausted(let n, let s): return "arena \(n) exhausted: no room for \(hex(s))"
        case .importFailed(let n, let s): return "arena \(n): import of \(hex(s)) from its source failed"
        case .timedOut(let n, let s): return "arena \(n): wait for \(hex(s)) timed out"
        case .cancelled(let n, let s): return "arena \(n): wait for \(hex(s)) cancelled"
        case .injectedFailure(let n, let s): return "arena \(n): injected failure of \(hex(s))"
        case .quantumCacheTooLarge(let m, let l):
            return "quantumCacheMax \(hex(m)) exceeds \(hex(l)) (16 quanta, and at most 2^61 bytes)"
        case .arenaDestroyed(let n): return "arena \(n) was destroyed"
        case .notSupported(let s): return "not supported: \(s)"
        case .invariantViolated(let s): return s
        case let .systemCallFailed(call, e): return "\(call) failed: \(String(cString: strerror(e))) (errno \(e))"
        }
    }

    /// The short word `vmkit replay` prints for a failed free (`TAG error KIND`).
    public var kind: String {
        switch self {
        case .invalidName: return "name"
        case .quantumNotPowerOfTwo: return "quantum"
        case .zeroSize: return "zerosize"
        case .sizeNotQuantumMultiple: return "unaligned"
        case .notQuantumAligned: return "unaligned"
        case .notPowerOfTwo: return "invalid"
        case .phaseNotBelowAlign: return "invalid"
        case .overconstrained: return "overconstrained"
        case .rangeCannotHoldSize: return "range"
        case .badFree: return "unknown"
        case .wrongSize: return "wrongsize"
        case .slabOwnedByCache: return "cacheslab"
        case .spanOverlap: return "overlap"
        case .overflow: return "overflow"
        case .exhausted: return "exhausted"
        case .importFailed: return "import"
        case .timedOut: return "timeout"
        case .cancelled: return "cancelled"
        case .injectedFailure: return "injected"
        case .quantumCacheTooLarge: return "qcache"
        case .arenaDestroyed: return "destroyed"
        case .notSupported: return "notsupported"
        case .invariantViolated: return "invariant"
        case .systemCallFailed: return "system"
        }
    }
}

/// `0x`-prefixed lower-case hex, the way every vmkit message prints addresses.
@inlinable
public func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
