internal import CGuestKVM
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One KVM memslot: a guest mapping as KVM sees it
/// (`struct kvm_userspace_memory_region`).
public struct KVMMemorySlot: Hashable, Sendable, CustomStringConvertible {
    /// The slot number (address space 0).
    public let slot: UInt32
    public let gpa: UInt64
    public let length: UInt64
    /// Where the VMM maps the same bytes.
    public let hostAddress: UInt64
    /// `KVM_MEM_READONLY`: guest writes exit as MMIO.
    public let readOnly: Bool
    /// `KVM_MEM_LOG_DIRTY_PAGES`.
    public let logsDirtyPages: Bool

    /// The `flags` word KVM is given.
    public var flags: UInt32 {
        (readOnly ? UInt32(KVM_MEM_READONLY) : 0) | (logsDirtyPages ? UInt32(KVM_MEM_LOG_DIRTY_PAGES) : 0)
    }

    public var range: Range<UInt64> { gpa ..< gpa + length }
    public var firstPage: UInt64 { gpa / 4096 }
    public var pageCount: UInt64 { length / 4096 }

    public var description: String {
        "slot \(slot) [0x\(String(gpa, radix: 16)), +0x\(String(length, radix: 16))) host 0x\(String(hostAddress, radix: 16))"
            + (readOnly ? " readonly" : "") + (logsDirtyPages ? " log-dirty" : "")
    }
}

/// A slot with the bitmaps its dirty log needs: a scratch bitmap that
/// `KVM_GET_DIRTY_LOG` fills, and every page KVM ever reported for it
/// (``KVMVirtualMachine/guestDirtyPages``). Both are `calloc`ed, so an
/// untouched part of a large slot's bitmap costs no memory.
final class KVMSlotState: @unchecked Sendable {
    let slot: KVMMemorySlot
    let words: Int
    let scratch: UnsafeMutablePointer<UInt64>
    let ever: UnsafeMutablePointer<UInt64>

    init(_ slot: KVMMemorySlot) {
        self.slot = slot
        words = Int((slot.pageCount + 63) / 64)
        scratch = calloc(max(words, 1), 8)!.assumingMemoryBound(to: UInt64.self)
        ever = calloc(max(words, 1), 8)!.assumingMemoryBound(to: UInt64.self)
    }

    deinit {
        free(scratch)
        free(ever)
    }

    /// The guest pages KVM has reported for this slot, ascending.
    var everPages: [UInt64] {
        var out: [UInt64] = []
        for w in 0..<words where ever[w] != 0 {
            var bits = ever[w]
            while bits != 0 {
                out.append(slot.firstPage + UInt64(w) * 64 + UInt64(bits.trailingZeroBitCount))
                bits &= bits - 1
            }
        }
        return out
    }
}
