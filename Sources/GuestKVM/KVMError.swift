import GuestMemory
import GuestSnapshot

/// How a KVM call is refused. Every case names the offending values; a
/// refused call leaves the VM, its slots and the guest memory as they were.
public enum KVMError: Error, Hashable, Sendable {
    /// `/dev/kvm` cannot be used: missing, no permission, or not KVM.
    case unavailable(path: String, reason: String)
    /// `KVM_GET_API_VERSION` answered something other than 12.
    case apiVersion(found: Int32, expected: Int32)
    /// The host's KVM lacks a capability this call needs.
    case missingCapability(name: String, number: Int32)
    /// An ioctl (or mmap) failed: which, and the errno.
    case system(call: String, errno: Int32)
    /// A memslot would overlap another.
    case slotsOverlap(gpa: UInt64, length: UInt64, slot: UInt32, slotGPA: UInt64, slotLength: UInt64)
    /// A memslot would cover KVM's own pages (the TSS and identity-map pages
    /// that `KVM_SET_TSS_ADDR` placed).
    case reservedRange(gpa: UInt64, length: UInt64, reservedGPA: UInt64, reservedLength: UInt64)
    /// A value that must be page aligned is not.
    case notPageAligned(what: String, value: UInt64)
    /// A memslot longer than KVM takes (2^31 - 1 pages).
    case slotTooLarge(gpa: UInt64, length: UInt64, maxLength: UInt64)
    /// Every memslot KVM offers is in use.
    case tooManySlots(limit: Int)
    /// No memslot is exactly `[gpa, gpa + length)`.
    case noSuchSlot(gpa: UInt64, length: UInt64)
    /// A vCPU id already in use, or beyond KVM's limit.
    case invalidVCPU(id: UInt32, reason: String)
    /// The dirty ring size is not a power of two between one page and KVM's maximum.
    case invalidDirtyRingSize(bytes: UInt32, max: UInt32)
    /// A VM-wide setting that KVM only takes before the first vCPU exists.
    case vcpusExist(setting: String)
    /// The guest memory refused (too large for the host, not page aligned, overlap...).
    case memory(GuestMemoryError)
    /// A payload needs more guest memory than there is, or a bad `--touch`.
    case payloadDoesNotFit(payload: String, needs: UInt64, has: UInt64)
    /// KVM kept reporting vCPU `vcpu`'s dirty ring full although every exit
    /// found nothing new and handed back all it could: KVM's count of unread
    /// entries no longer follows the ring. The pages already drained are
    /// in the VMM bitmap; the ring cannot go on.
    case dirtyRingOverflow(vcpu: UInt32, ringBytes: UInt32)
    /// A run stopped after this many exits without reaching `hlt`.
    case tooManyExits(limit: Int)
    /// The VM was closed.
    case closed
    /// A snapshot or restore call refused (see `GuestSnapshotError`).
    case snapshot(GuestSnapshotError)
    /// A memory (a restored one) whose map is not ``KVMGuestMemory``'s.
    case notABootableGuest(detail: String)
}

extension KVMError: CustomStringConvertible {
    public var description: String {
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        switch self {
        case let .unavailable(p, r): return "KVM is not usable: \(p): \(r)"
        case let .apiVersion(f, e): return "KVM API version \(f), expected \(e)"
        case let .missingCapability(n, c): return "KVM lacks \(n) (capability \(c))"
        case let .system(call, e): return "\(call) failed: \(String(cString: strerror(e))) (errno \(e))"
        case let .slotsOverlap(g, l, s, sg, sl):
            return "memslot [\(hex(g)), +\(hex(l))) overlaps slot \(s) [\(hex(sg)), +\(hex(sl)))"
        case let .reservedRange(g, l, rg, rl):
            return "memslot [\(hex(g)), +\(hex(l))) overlaps KVM's TSS/identity pages [\(hex(rg)), +\(hex(rl)))"
        case let .notPageAligned(w, v): return "\(w) \(hex(v)) is not a multiple of 4 KiB"
        case let .slotTooLarge(g, l, m): return "memslot [\(hex(g)), +\(hex(l))) is longer than KVM's \(hex(m))"
        case let .tooManySlots(n): return "all \(n) KVM memslots are in use"
        case let .noSuchSlot(g, l): return "no memslot is exactly [\(hex(g)), +\(hex(l)))"
        case let .invalidVCPU(id, r): return "vCPU \(id): \(r)"
        case let .invalidDirtyRingSize(b, m):
            return "dirty ring of \(b) bytes: must be a power of two from 4096 to \(m)"
        case let .vcpusExist(s): return "\(s) must be set before the first vCPU is created"
        case let .memory(e): return "guest memory: \(e)"
        case let .payloadDoesNotFit(p, n, h):
            return "payload \(p) needs guest memory up to \(hex(n)); the guest has \(hex(h))"
        case let .dirtyRingOverflow(v, b):
            return "vCPU \(v)'s dirty ring (\(b) bytes) overflowed in KVM: dirty pages were lost; use a larger ring or the bitmap"
        case let .tooManyExits(n): return "the guest did not halt within \(n) exits"
        case .closed: return "the VM was closed"
        case let .snapshot(e): return "snapshot: \(e)"
        case let .notABootableGuest(d): return "not a guest vmkit guest run can boot: \(d)"
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
