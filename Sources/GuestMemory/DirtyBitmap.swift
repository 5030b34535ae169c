import CGuestMemory
import HostMemory
import Synchronization

/// One bit per page of a segment, set by every VMM write (copies, atomic
/// stores, writable holds) and cleared only by a harvest.
///
/// **Double-buffered, as KVM's dirty log is.** Writers set bits in the
/// *active* buffer with an atomic fetch-or (skipped when the bits are set
/// already). A harvest of (most of) the segment does not clear the bits word
/// by word — 130,000 locked instructions for a 64 GiB guest 1 % dirty — but
/// swaps a zeroed buffer in (one atomic exchange) and takes the old one
/// whole as its result. A writer that read the old buffer's address just
/// before the swap re-reads the active address after marking and marks the
/// new buffer too, so no write is lost: it is in the buffer harvested or in
/// the one that is now active (or in both, and then reported once more —
/// the only imprecision, and only for a write racing a harvest).
///
/// A taken buffer is zeroed and kept as a spare when the harvest is
/// released; a harvest of a small part of the segment takes its words with
/// fetch-and on the active buffer instead. Buffers are `AnonymousMemory`
/// (no swap reserved), so a bitmap costs memory only where pages
/// were marked: a 128 TiB segment's 4 GiB of bits is free until written.
public final class DirtyBitmap: @unchecked Sendable {
    /// Pages covered.
    public let pages: UInt64
    let wordCount: Int
    private let byteCount: Int
    /// The address of the active buffer's first word.
    private let active = Atomic<UInt>(0)
    /// Zeroed buffers ready to be swapped in, and every buffer made (freed
    /// in deinit); under `poolLock`.
    private var spares: [UnsafeMutablePointer<UInt64>] = []
    /// (A buffer's mapping is nil when it is on the heap.)
    private var made: [(words: UnsafeMutablePointer<UInt64>, mapping: AnonymousMemory?)] = []
    private let poolLock = RWLock()

    init(pages: UInt64) {
        self.pages = pages
        wordCount = Int((pages + 63) / 64)
        byteCount = max(wordCount, 1) * 8
        active.store(UInt(bitPattern: makeBuffer()), ordering: .releasing)
    }

    deinit {
        // Mapped buffers go with their mappings; only heap ones are freed by hand.
        for (w, mapping) in made where mapping == nil { w.deallocate() }
    }

    /// A zeroed buffer: anonymous memory (no swap reserved), the heap if the host refuses.
    private func makeBuffer() -> UnsafeMutablePointer<UInt64> {
        let words: UnsafeMutablePointer<UInt64>
        let mapping = try? AnonymousMemory(length: UInt64(byteCount))
        if let mapping {
            words = mapping.base.bindMemory(to: UInt64.self, capacity: max(wordCount, 1))
        } else {
            words = .allocate(capacity: max(wordCount, 1))
            words.initialize(repeating: 0, count: max(wordCount, 1))
        }
        poolLock.writing { made.append((words, mapping)) }
        return words
    }

    /// The active buffer (writers mark it; a swap replaces it).
    @inline(__always)
    var words: UnsafeMutablePointer<UInt64> {
        UnsafeMutablePointer(bitPattern: active.load(ordering: .acquiring))!
    }

    @inline(__always)
    static func atomic(_ word: UnsafeMutablePointer<UInt64>) -> UnsafeMutablePointer<Atomic<UInt64>> {
        UnsafeMutableRawPointer(word).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// Sets `mask` in word `w` of the active buffer — and again in the new
    /// one if a harvest swapped buffers meanwhile, so the write is never
    /// lost with the buffer the harvest took.
    @inline(__always)
    func markWord(_ w: Int, _ mask: UInt64) {
        var b = active.load(ordering: .acquiring)
        while true {
            let a = Self.atomic(UnsafeMutablePointer<UInt64>(bitPattern: b)! + w)
            // Skip the locked RMW when the bits are set already (the common case of repeated writes).
            if a.pointee.load(ordering: .relaxed) & mask != mask {
                a.pointee.bitwiseOr(mask, ordering: .acquiringAndReleasing)
            }
            let now = active.load(ordering: .acquiring)
            if now == b { return }
            b = now
        }
    }

    /// Marks page `page` dirty (it must be below ``pages``).
    @inline(__always)
    func markPage(_ page: UInt64) {
        markWord(Int(truncatingIfNeeded: page >> 6), UInt64(1) << (page & 63))
    }

    /// Marks pages `[first, first + count)` dirty.
    func mark(first: UInt64, count: UInt64) {
        var p = first
        let end = min(first + count, pages)
        while p < end {
            let lo = p % 64
            let n = min(64 - lo, end - p)
            markWord(Int(p / 64), n == 64 ? ~UInt64(0) : ((UInt64(1) << n) - 1) << lo)
            p += n
        }
    }

    /// Whether page `page` is dirty (in the active buffer: a page taken by
    /// an open harvest is not, until that harvest is aborted).
    public func isDirty(_ page: UInt64) -> Bool {
        guard page < pages else { return false }
        return Self.atomic(words + Int(page / 64)).pointee.load(ordering: .acquiring) & (UInt64(1) << (page % 64)) != 0
    }

    /// The bits of `mask` in word `w` of the active buffer that are set;
    /// clears them too when `clear` (one fetch-and).
    func take(word w: Int, mask: UInt64, clear: Bool) -> UInt64 {
        let a = Self.atomic(words + w)
        let seen = a.pointee.load(ordering: .acquiring) & mask
        guard clear, seen != 0 else { return seen }
        return a.pointee.bitwiseAnd(~mask, ordering: .acquiringAndReleasing).oldValue & mask
    }

    /// Swaps a zeroed buffer in and returns the one writers marked until
    /// now: its bits are the caller's (who gives back any it does not want
    /// with ``giveBack(_:word:mask:)`` and returns the buffer with
    /// ``recycle(_:)``).
    func swapBuffers() -> UnsafeMutablePointer<UInt64> {
        let fresh = poolLock.writing { spares.popLast() } ?? makeBuffer()
        return UnsafeMutablePointer(bitPattern: active.exchange(UInt(bitPattern: fresh), ordering: .acquiringAndReleasing))!
    }

    /// Moves the bits of `mask` in word `w` of a taken buffer back to the
    /// active one (they were not the harvest's to take).
    func giveBack(_ buffer: UnsafeMutablePointer<UInt64>, word w: Int, mask: UInt64) {
        let a = Self.atomic(buffer + w)
        guard a.pointee.load(ordering: .relaxed) & mask != 0 else { return }
        let bits = a.pointee.bitwiseAnd(~mask, ordering: .acquiringAndReleasing).oldValue & mask
        if bits != 0 { markWord(w, bits) }
    }

    /// Zeroes a buffer from ``swapBuffers()`` and keeps it as the next spare.
    func recycle(_ buffer: UnsafeMutablePointer<UInt64>) {
        vgm_zero_words(buffer, max(wordCount, 1))
        poolLock.writing { spares.append(buffer) }
    }

    /// The dirty pages in `[first, first + count)`, ascending.
    public func dirtyPages(first: UInt64 = 0, count: UInt64? = nil) -> [UInt64] {
        let end = min(first &+ (count ?? pages), pages)
        var out: [UInt64] = []
        var p = first
        let b = words
        while p < end {
            let w = Int(p / 64)
            var bits = Self.atomic(b + w).pointee.load(ordering: .acquiring) >> (p % 64)
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
