import AddressSpace
import CHostMemory
import HostMemory
import HostSegments

/// `as_segat` in an address space of many segments (10,000 by default)
/// with the last-segment hint missing: ns per lookup.
///
/// A host address space is given ``segments`` anonymous segments of one
/// page each, one after another from the window's base (untimed; nothing is
/// touched, so no page is filled). The hint (`a_seglast`) is pointed at the
/// first segment with `as_findseg`, and every lookup asks for an address in
/// another one: `segat` takes the lock as reader, checks the hint, misses,
/// and searches the tree. `segat` does not move the hint, which is checked
/// after each repeat, as is the count of lookups that found a segment.
///
/// A second figure takes the lock once around a whole repeat of lookups
/// (`ReadView.segat`), as illumos callers hold `a_lock` around `as_segat`:
/// the difference is what the lock costs per lookup.
///
/// The addresses are a ring of 65,536 drawn before timing (segments other
/// than the first, chosen by a splitmix64 stream seeded with 42, at a
/// random byte of the page), so that successive lookups go to segments far
/// apart and the tree's walk is not the same path each time.
public final class SegatWorkload {
    /// Segments in the address space.
    public let segments: Int
    /// Lookups timed per repeat.
    public let lookups: Int
    /// The host address space.
    public let host: HostAddressSpace
    private let addresses: UnsafeMutablePointer<UInt64>
    private let first: Segment
    static let ring = 1 << 16

    /// `segments` from 2 to 200,000; `lookups` from 1 to 10^9.
    public init(segments: Int = 10_000, lookups: Int = 100_000) throws(HostWorkloadError) {
        try HostWorkloadError.checkCount("segments", segments, minimum: 2, maximum: 200_000)
        try HostWorkloadError.checkCount("lookups", lookups, maximum: 1_000_000_000)
        self.segments = segments
        self.lookups = lookups
        let page = _HostSetup.page
        let h = try _HostSetup.addressSpace(for: UInt64(segments) * page, userfaultfd: false)
        let base = h.reservation.base
        var firstSegment: Segment? = nil
        do throws(HostSegmentError) {
            for i in 0..<segments {
                let s = try h.mapAnonymous(size: page, at: base + UInt64(i) * page)
                if i == 0 { firstSegment = s }
            }
        } catch {
            try? h.destroy()
            throw .host(error)
        }
        guard let firstSegment else {
            throw .invalidArgument(name: "segments", value: UInt64(segments), reason: "none was mapped")
        }
        let ring = UnsafeMutablePointer<UInt64>.allocate(capacity: Self.ring)
        var state: UInt64 = 42
        for i in 0..<Self.ring {
            let r = Self.splitmix64(&state)
            let index = 1 + r % UInt64(segments - 1)
            ring[i] = base + index * page + (r >> 52)
        }
        // Each address lies in the segment it was drawn for (checked once, untimed).
        for i in 0..<min(Self.ring, 4096) {
            let want = ring[i] & ~(page - 1)
            let got = h.space.segat(ring[i])?.base
            guard got == want else {
                let address = ring[i]
                ring.deallocate()
                try? h.destroy()
                throw .wrongContents(workload: "segat (lookup \(i) at 0x\(String(address, radix: 16)))",
                                     page: address / page, expected: want, found: got ?? 0)
            }
        }
        host = h
        first = firstSegment
        addresses = ring
    }

    deinit {
        addresses.deallocate()
        try? host.destroy()
    }

    private static func splitmix64(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Points the hint at the first segment, which no lookup asks for.
    public func missTheHint() {
        _ = host.space.findseg(first.base)
    }

    /// `count` lookups along the ring; returns the nanoseconds and how many found a segment.
    public func lookUp(_ count: Int) -> (nanoseconds: UInt64, found: Int) {
        let space = host.space
        let mask = Self.ring - 1
        var found = 0
        let start = vmk_now_ns()
        for i in 0..<count {
            if space.segat(addresses[i & mask]) != nil { found &+= 1 }
        }
        return (vmk_now_ns() &- start, found)
    }

    /// `count` borrowed lookups (`AddressSpace.withSegment(at:_:)`: the slot
    /// lock taken and dropped by each, no reference taken on the segment).
    public func lookUpBorrowed(_ count: Int) -> (nanoseconds: UInt64, found: Int) {
        let space = host.space
        let mask = Self.ring - 1
        var found = 0
        let start = vmk_now_ns()
        for i in 0..<count {
            if space.withSegment(at: addresses[i & mask], { $0 != nil }) { found &+= 1 }
        }
        return (vmk_now_ns() &- start, found)
    }

    /// `count` lookups along the ring with the lock taken once around them
    /// all, as illumos callers hold `a_lock` around `as_segat`: the lookup
    /// alone. Returns the nanoseconds and how many found a segment.
    public func lookUpHoldingLock(_ count: Int) -> (nanoseconds: UInt64, found: Int) {
        let mask = Self.ring - 1
        let addresses = self.addresses
        return host.space.read { view in
            var found = 0
            let start = vmk_now_ns()
            for i in 0..<count {
                if view.segat(addresses[i & mask]) != nil { found &+= 1 }
            }
            return (vmk_now_ns() &- start, found)
        }
    }

    /// One repeat: the hint set aside, ``lookups`` lookups timed (each
    /// taking the lock, or all under one hold of it), then the checks.
    public func measure(holdingLock: Bool = false, borrowed: Bool = false) throws(HostWorkloadError) -> UInt64 {
        missTheHint()
        let (ns, found) = holdingLock ? lookUpHoldingLock(lookups) : borrowed ? lookUpBorrowed(lookups) : lookUp(lookups)
        guard found == lookups else {
            throw .wrongContents(workload: "segat (lookups that found a segment)", page: 0,
                                 expected: UInt64(lookups), found: UInt64(found))
        }
        guard host.space.lastSegmentHint === first else {
            throw .wrongContents(workload: "segat (the hint moved)", page: 0, expected: first.base,
                                 found: host.space.lastSegmentHint?.base ?? 0)
        }
        return ns
    }

    /// What one run measured.
    public struct Result: Hashable, Sendable {
        /// `AddressSpace.segat`: the lock taken and dropped by each lookup.
        public let segat: TimingSamples
        /// `ReadView.segat` with the lock held around the whole repeat.
        public let segatLockHeld: TimingSamples
        /// `AddressSpace.withSegment(at:_:)`: each lookup takes the lock, the segment is borrowed.
        public let segatBorrowed: TimingSamples
    }

    /// The three ways turn about: `warmup` untimed rounds, then `repeats` timed.
    public func run(repeats: Int, warmup: Int = 1,
                    progress: (Int, Int) -> Void = { _, _ in }) throws(HostWorkloadError) -> Result {
        let rounds = try InterleavedRounds([
            .init("segat", opsPerRepeat: lookups) { () throws(HostWorkloadError) in try self.measure() },
            .init("segat.lock-held", opsPerRepeat: lookups) { () throws(HostWorkloadError) in
                try self.measure(holdingLock: true)
            },
            .init("segat.borrowed", opsPerRepeat: lookups) { () throws(HostWorkloadError) in
                try self.measure(borrowed: true)
            },
        ], repeats: repeats, warmup: warmup)
        let s = try rounds.run(progress: progress)
        return Result(segat: s[0], segatLockHeld: s[1], segatBorrowed: s[2])
    }
}
