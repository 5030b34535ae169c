#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import GuestMemory
import HostMemory
import Synchronization

/// What a lazy restore's fault handler reads: the registered host windows
/// (one per mapping, sorted), the chain with each file mapped read-only, and
/// the counters. Immutable after init but for atomics, so any number of
/// handler threads share it without a lock.
final class LazyFaultTable: @unchecked Sendable {
    struct Window {
        /// Host range registered.
        let host: UInt64
        let end: UInt64
        /// Index of the segment in the chain's (and the memory's) segment order.
        let segmentIndex: Int
        /// Segment page under `host`.
        let firstPage: UInt64
    }

    let windows: [Window]
    let chain: SnapshotChain
    /// The memory's segment ids, by segment index.
    let segmentIDs: [Int]
    private let bases: [UnsafeRawPointer]
    private let segmentPages: [UInt64]
    /// Per segment, one bit per page filled (by a fault or a prefetch).
    private let servedBits: [UnsafeMutablePointer<Atomic<UInt64>>]
    private let servedWords: [Int]
    private let zeroPage: UnsafeMutableRawPointer
    private let zeroPageWorks = Atomic<Bool>(true)

    let served = Atomic<UInt64>(0)
    let zeroFills = Atomic<UInt64>(0)
    let bytes = Atomic<UInt64>(0)
    let duplicates = Atomic<UInt64>(0)
    let refused = Atomic<UInt64>(0)
    let servedTwice = Atomic<UInt64>(0)
    let prefetched = Atomic<UInt64>(0)

    /// The pages faults filled, in the order they were filled: one word per
    /// fill (bit 63 set, segment index × 2^48 + page), 0 while a fill that
    /// has taken its place is still storing it. A page is filled once, so
    /// the window pages bound the count; the words are anonymous memory,
    /// committed only as far as faults reach.
    private let fillLog: UnsafeMutablePointer<Atomic<UInt64>>
    private let fillLogCapacity: Int
    private let fillLogMemory: AnonymousMemory?
    private let fillLogCount = Atomic<Int>(0)

    init(chain: SnapshotChain, bases: [UnsafeRawPointer], segments: [MemorySegment], mappings: [GuestMapping]) {
        self.chain = chain
        self.bases = bases
        let index = Dictionary(uniqueKeysWithValues: segments.enumerated().map { ($0.element.id, $0.offset) })
        windows = mappings.compactMap { m in
            index[m.segmentID].map { Window(host: m.hostAddress, end: m.hostAddress + m.length, segmentIndex: $0,
                                            firstPage: m.offset / SnapshotLayout.pageSize) }
        }.sorted { $0.host < $1.host }
        segmentPages = segments.map { $0.length / SnapshotLayout.pageSize }
        servedWords = segmentPages.map { Int(($0 + 63) / 64) }
        servedBits = servedWords.map { n in
            let p = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: max(n, 1))
            for i in 0..<max(n, 1) { (p + i).initialize(to: Atomic<UInt64>(0)) }
            return p
        }
        zeroPage = .allocate(byteCount: Int(SnapshotLayout.pageSize), alignment: Int(SnapshotLayout.pageSize))
        zeroPage.initializeMemory(as: UInt8.self, repeating: 0, count: Int(SnapshotLayout.pageSize))
        segmentIDs = segments.map(\.id)
        let capacity = max(1, windows.reduce(0) { $0 + Int(($1.end - $1.host) / SnapshotLayout.pageSize) })
        fillLogCapacity = capacity
        if let m = try? AnonymousMemory(length: UInt64(capacity) * 8) {
            fillLogMemory = m
            fillLog = m.base.bindMemory(to: Atomic<UInt64>.self, capacity: capacity)
        } else {
            fillLogMemory = nil
            fillLog = .allocate(capacity: capacity)
            for i in 0..<capacity { (fillLog + i).initialize(to: Atomic<UInt64>(0)) }
        }
    }

    deinit {
        for (p, n) in zip(servedBits, servedWords) {
            _ = (p as UnsafeMutablePointer<Atomic<UInt64>>).deinitialize(count: max(n, 1))
            p.deallocate()
        }
        zeroPage.deallocate()
        if fillLogMemory == nil {
            _ = fillLog.deinitialize(count: fillLogCapacity)
            fillLog.deallocate()
        }
    }

    /// Appends a fill by a fault to the log.
    @inline(__always)
    private func logFill(_ i: Int, _ page: UInt64) {
        let k = fillLogCount.wrappingAdd(1, ordering: .relaxed).oldValue
        guard k < fillLogCapacity else { return }
        fillLog[k].store(1 << 63 | UInt64(i) << WorkingSet.pageBits | page, ordering: .releasing)
    }

    /// The pages faults filled so far, in fill order, as (segment index, page).
    func faultedPages() -> [(index: Int, page: UInt64)] {
        let n = min(fillLogCount.load(ordering: .acquiring), fillLogCapacity)
        var out: [(index: Int, page: UInt64)] = []
        out.reserveCapacity(n)
        for k in 0..<n {
            let e = fillLog[k].load(ordering: .acquiring)
            // Still being stored by its fault: it is a page of the set all the same, next time.
            guard e != 0 else { continue }
            out.append((Int((e & ~(1 << 63)) >> WorkingSet.pageBits), e & (1 << WorkingSet.pageBits - 1)))
        }
        return out
    }

    /// The window holding host address `a` (binary search; at most 32).
    @inline(__always)
    private func window(containing a: UInt64) -> Window? {
        var lo = 0, hi = windows.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if windows[mid].host <= a { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0, a < windows[lo - 1].end else { return nil }
        return windows[lo - 1]
    }

    /// The bytes of the newest version of segment page `page`, or nil (zero).
    @inline(__always)
    private func source(_ i: Int, _ page: UInt64) -> UnsafeRawPointer? {
        guard let f = chain.source(segmentIndex: i, page: page) else { return nil }
        return bases[f] + Int(chain.files[f].segments[i].dataOffset + page * SnapshotLayout.pageSize)
    }

    /// Records that segment page `page` was filled; counts a second fill.
    @inline(__always)
    private func markServed(_ i: Int, _ page: UInt64) {
        let bit = UInt64(1) << (page % 64)
        let old = servedBits[i][Int(page / 64)].bitwiseOr(bit, ordering: .relaxed).oldValue
        if old & bit != 0 { servedTwice.add(1, ordering: .relaxed) }
    }

    @inline(__always)
    private func isServed(_ i: Int, _ page: UInt64) -> Bool {
        servedBits[i][Int(page / 64)].load(ordering: .relaxed) & (UInt64(1) << (page % 64)) != 0
    }

    /// A zero page at `a`: `UFFDIO_ZEROPAGE`, or a copy of zeros where the
    /// kernel refuses that for the mapping.
    private func zeroFill(_ a: UInt64, _ service: UserFaultService) throws(HostMemoryError) -> UserFaultService.FillResult {
        if zeroPageWorks.load(ordering: .relaxed) {
            do throws(HostMemoryError) {
                return try service.zero(at: a, length: SnapshotLayout.pageSize, wake: false)
            } catch {
                zeroPageWorks.store(false, ordering: .relaxed)
            }
        }
        return try service.copy(to: a, from: zeroPage, length: SnapshotLayout.pageSize, wake: false)
    }

    /// The fault handler: one page, its newest version or zeros, filled
    /// without waking; the service wakes the thread after the counters moved.
    func serve(_ fault: UserFault, _ service: UserFaultService) -> UserFaultAnswer {
        let a = fault.page
        guard let w = window(containing: a) else { return .refuse }
        let page = w.firstPage + (a - w.host) / SnapshotLayout.pageSize
        let result: UserFaultService.FillResult
        let src = source(w.segmentIndex, page)
        do throws(HostMemoryError) {
            if let src {
                result = try service.copy(to: a, from: src, length: SnapshotLayout.pageSize, wake: false)
            } else {
                result = try zeroFill(a, service)
            }
        } catch {
            refused.add(1, ordering: .relaxed)
            return .refuse
        }
        switch result {
        case .filled:
            served.add(1, ordering: .relaxed)
            if src != nil { bytes.add(SnapshotLayout.pageSize, ordering: .relaxed) } else { zeroFills.add(1, ordering: .relaxed) }
            markServed(w.segmentIndex, page)
            logFill(w.segmentIndex, page)
            // Counted before the toucher runs on, so whoever it tells sees the count.
            return .wake
        case .alreadyPresent:
            duplicates.add(1, ordering: .relaxed)
            return .wake
        }
    }

    /// Copies, into the memfd of segment `i`, the recorded pages no window
    /// covers; returns how many.
    func copyUnmapped(segmentIndex i: Int, segment s: MemorySegment, path: String) throws(GuestSnapshotError) -> UInt64 {
        var covered: [(UInt64, UInt64)] = windows.filter { $0.segmentIndex == i }
            .map { ($0.firstPage, $0.firstPage + ($0.end - $0.host) / SnapshotLayout.pageSize) }
        covered.sort { $0.0 < $1.0 }
        var count: UInt64 = 0
        var p: UInt64 = 0
        var c = 0
        while p < segmentPages[i] {
            while c < covered.count, covered[c].1 <= p { c += 1 }
            if c < covered.count, covered[c].0 <= p {
                p = covered[c].1
                continue
            }
            let stop = c < covered.count ? covered[c].0 : segmentPages[i]
            while p < stop {
                if let src = source(i, p) {
                    if let e = SnapshotIO.pwriteAll(s.object.fd, src, Int(SnapshotLayout.pageSize), p * SnapshotLayout.pageSize) {
                        throw .io(path: path, call: "pwrite into segment \(s.id)", errno: e.errno, segment: s.id, page: p)
                    }
                    count += 1
                }
                p += 1
            }
        }
        return count
    }

    /// The window through which segment `i`'s page `page` is filled (the
    /// first that maps it; on a memfd an alias sees the same page), or nil
    /// when no mapping covers it (such pages were copied at the restore).
    private func window(segment i: Int, page: UInt64) -> Window? {
        windows.first { $0.segmentIndex == i && page >= $0.firstPage && page < $0.firstPage + ($0.end - $0.host) / SnapshotLayout.pageSize }
    }

    /// Fills, in the given order, the listed pages that are not filled yet:
    /// each run of consecutive pages that one window maps and one file holds
    /// (or no file: zeros) in one `UFFDIO_COPY` (`UFFDIO_ZEROPAGE`), waking
    /// any thread already waiting on them. A page a fault fills meanwhile
    /// ends the run there (the kernel reports it present) and is skipped.
    /// Returns the pages this call filled.
    func prefetch(_ pages: [(index: Int, page: UInt64)], _ service: UserFaultService) throws(HostMemoryError) -> UInt64 {
        let size = SnapshotLayout.pageSize
        var filled: UInt64 = 0
        var k = 0
        while k < pages.count {
            let (i, first) = pages[k]
            guard !isServed(i, first), let w = window(segment: i, page: first) else { k += 1; continue }
            let file = chain.source(segmentIndex: i, page: first)
            var n = 1
            let windowPages = w.firstPage + (w.end - w.host) / size
            while k + n < pages.count, pages[k + n].index == i, pages[k + n].page == first + UInt64(n),
                  first + UInt64(n) < windowPages, !isServed(i, first + UInt64(n)),
                  chain.source(segmentIndex: i, page: first + UInt64(n)) == file {
                n += 1
            }
            let host = w.host + (first - w.firstPage) * size
            let length = UInt64(n) * size
            let result: UserFaultService.FillResult
            if let file {
                let src = bases[file] + Int(chain.files[file].segments[i].dataOffset + first * size)
                result = try service.copy(to: host, from: src, length: length)
            } else if zeroPageWorks.load(ordering: .relaxed), let r = try? service.zero(at: host, length: length) {
                result = r
            } else {
                // Zeros one page at a time from the zero page (the kernel refused UFFDIO_ZEROPAGE here).
                zeroPageWorks.store(false, ordering: .relaxed)
                var done: UInt64 = 0
                var present = false
                while done < length {
                    if case .alreadyPresent = try service.copy(to: host + done, from: zeroPage, length: size) { present = true; break }
                    done += size
                }
                result = present ? .alreadyPresent(bytes: done) : .filled
            }
            let count: Int
            switch result {
            case .filled: count = n
            case .alreadyPresent(let bytes): count = Int(bytes / size)
            }
            for j in 0..<count { markServed(i, first + UInt64(j)) }
            prefetched.add(UInt64(count), ordering: .relaxed)
            filled += UInt64(count)
            // Past the run, or past the page found present.
            k += count < n ? count + 1 : n
        }
        return filled
    }

    /// Copies every recorded page of every window that is not filled yet.
    func fetchAll(_ service: UserFaultService) throws(HostMemoryError) {
        for w in windows {
            let i = w.segmentIndex
            let pages = (w.end - w.host) / SnapshotLayout.pageSize
            var k: UInt64 = 0
            while k < pages {
                let page = w.firstPage + k
                // Whole words with no page in any file: skip them.
                if page % 64 == 0, k + 64 <= pages, chain.files.allSatisfy({ $0.bitmaps[i][Int(page / 64)] == 0 }) {
                    k += 64
                    continue
                }
                if !isServed(i, page), let src = source(i, page) {
                    switch try service.copy(to: w.host + k * SnapshotLayout.pageSize, from: src, length: SnapshotLayout.pageSize) {
                    case .filled:
                        prefetched.add(1, ordering: .relaxed)
                        markServed(i, page)
                    case .alreadyPresent:
                        break
                    }
                }
                k += 1
            }
        }
    }
}
