import Synchronization
import HostMemory

/// One bit per page, set atomically: which pages a lazy-fill segment has
/// claimed for filling. Claiming is a fetch-or, so among threads that race
/// for a page exactly one wins and copies it. Indexed from the segment's
/// original base, shared by the halves of a split.
final class _PageBitmap: @unchecked Sendable {
    private let words: UnsafeMutablePointer<Atomic<UInt64>>
    private let wordCount: Int
    let pages: Int

    init(pages: Int) {
        self.pages = pages
        wordCount = (pages + 63) / 64
        words = .allocate(capacity: max(wordCount, 1))
        for i in 0..<max(wordCount, 1) { (words + i).initialize(to: Atomic<UInt64>(0)) }
    }

    deinit {
        words.deinitialize(count: max(wordCount, 1))
        words.deallocate()
    }

    /// Sets bit `i`; true when this call set it (nobody had claimed it).
    @inline(__always)
    func claim(_ i: Int) -> Bool {
        let bit = UInt64(1) << UInt64(i & 63)
        return words[i >> 6].bitwiseOr(bit, ordering: .acquiringAndReleasing).oldValue & bit == 0
    }

    /// Clears bit `i` (a fill that failed gives its claim back).
    func release(_ i: Int) {
        words[i >> 6].bitwiseAnd(~(UInt64(1) << UInt64(i & 63)), ordering: .releasing)
    }

    func isSet(_ i: Int) -> Bool { words[i >> 6].load(ordering: .acquiring) & (UInt64(1) << UInt64(i & 63)) != 0 }

    /// Bits set in `[first, first + count)`.
    func count(from first: Int, _ count: Int) -> Int {
        var n = 0
        for i in first ..< first + count where isSet(i) { n += 1 }
        return n
    }
}
