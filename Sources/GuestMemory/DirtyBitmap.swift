#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CGuestMemory

/// One bit per page of a segment, set by every VMM write (copies, atomic
/// stores, writable holds) and cleared only by a harvest — with atomic
/// fetch-or / fetch-and, so marking never takes a lock and a harvest clears
/// exactly the bits it returns (a bit set after the fetch-and stays set for
/// the next harvest).
public final class DirtyBitmap: @unchecked Sendable {
    /// Pages covered.
    public let pages: UInt64
    let wordCount: Int
    let words: UnsafeMutablePointer<UInt64>

    private let byteCount: Int

    /// The words come from anonymous memory with no swap reserved, so a
    /// bitmap costs memory only where pages were marked: a 128 TiB segment's
    /// 4 GiB of bits is free until written, and making it is one `mmap`.
    init(pages: UInt64) {
        self.pages = pages
        wordCount = Int((pages + 63) / 64)
        byteCount = max(wordCount, 1) * 8
        let raw = mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        if let raw, raw != MAP_FAILED {
            words = raw.bindMemory(to: UInt64.self, capacity: max(wordCount, 1))
        } else {
            // No address space for it: fall back to the heap (zeroed).
            words = .allocate(capacity: max(wordCount, 1))
            words.initialize(repeating: 0, count: max(wordCount, 1))
            heap = true
        }
    }

    private var heap = false

    deinit {
        if heap { words.deallocate() } else { munmap(words, byteCount) }
    }

    /// Marks pages `[first, first + count)` dirty.
    func mark(first: UInt64, count: UInt64) {
        var p = first
        let end = min(first + count, pages)
        while p < end {
            let w = Int(p / 64)
            let lo = p % 64
            let n = min(64 - lo, end - p)
            let mask = n == 64 ? ~UInt64(0) : ((UInt64(1) << n) - 1) << lo
            // Skip the locked RMW when the bits are set already (the common case of repeated writes).
            if vgm_load64(words + w) & mask != mask { _ = vgm_fetch_or64(words + w, mask) }
            p += n
        }
    }

    /// Whether page `page` is dirty.
    public func isDirty(_ page: UInt64) -> Bool {
        guard page < pages else { return false }
        return vgm_load64(words + Int(page / 64)) & (UInt64(1) << (page % 64)) != 0
    }

    /// The bits of `mask` in word `w` that are set; clears them too when `clear`.
    func take(word w: Int, mask: UInt64, clear: Bool) -> UInt64 {
        clear ? vgm_fetch_and64(words + w, ~mask) & mask : vgm_load64(words + w) & mask
    }

    /// The dirty pages in `[first, first + count)`, ascending.
    public func dirtyPages(first: UInt64 = 0, count: UInt64? = nil) -> [UInt64] {
        let end = min(first &+ (count ?? pages), pages)
        var out: [UInt64] = []
        var p = first
        while p < end {
            let w = Int(p / 64)
            var bits = vgm_load64(words + w) >> (p % 64)
            let base = p
            let limit = min(64 - p % 64, end - p)
            while bits != 0 {
                let i = UInt64(bits.trailingZeroBitCount)
                if i >= limit { break }
                out.append(base + i)
                bits &= bits - 1
            }
            p += limit
        }
        return out
    }
}
