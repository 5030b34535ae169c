import Testing
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import AddressSpace
import HostMemory
import HostTestSupport
import VmemWorkloads
@testable import HostSegments

private typealias Kit = HostSegTestKit
private let page = HostSegTestKit.page

/// 1,000 random cycles of creating and destroying address spaces (some
/// dropped without `destroy`), mapping with every driver, touching,
/// protecting, faulting and unmapping (whole, trims, splits): afterwards the
/// process has the same lines in /proc/self/maps, the same open descriptors
/// and the same number of guard-table entries as before. Holds the host
/// test gate exclusively, so no other host test of these modules runs
/// meanwhile; a short warm-up first lets one-time allocations (the thread
/// stack cache, this thread's alternate signal stack) happen before
/// counting. Set VMKIT_SOAK=1 for 20,000 cycles.
@Suite("Host leaks: mappings, descriptors, guards")
struct HostLeakTests {
    struct Snapshot: Equatable {
        let maps: [String]
        let fds: [String]
        let guards: Int
        /// Bytes of anonymous mappings (no path): where leaked windows,
        /// signal stacks and thread stacks show even when the kernel merges
        /// a leaked mapping into a neighbour and the line count stays put.
        let anonymousBytes: UInt64

        static func take() -> Snapshot {
            let maps = ProcessMaps.lines()
            let anonymous = ProcessMaps.mappings().filter { $0.path.isEmpty }.reduce(0) { $0 + ($1.end - $1.start) }
            // Host tests waiting at the gate hold a descriptor of the gate's file.
            let fds = Kit.openDescriptors().filter { !$0.hasSuffix(HostTestGate.path) }
            return Snapshot(maps: maps, fds: fds, guards: GuardReporter.count,
                            anonymousBytes: anonymous)
        }

        func sameCounts(as other: Snapshot) -> Bool {
            // Under the address sanitizer its allocator's own mappings come
            // and go: descriptors and guards still count, and its leak
            // checker watches the heap.
            if Kit.underAddressSanitizer { return fdKinds == other.fdKinds && guards == other.guards }
            return maps.count == other.maps.count && fdKinds == other.fdKinds && guards == other.guards
                && anonymousBytes == other.anonymousBytes
        }

        /// The open descriptors as kinds, counted: `pipe`, `socket`,
        /// `anon_inode:[userfaultfd]`, a path. Other suites in the process
        /// close and reopen pipes and sockets (a spawned command's), so the
        /// same descriptor number may name a new pipe: a leak is a kind that
        /// grows, not an inode that changes.
        var fdKinds: [String] {
            fds.map { line -> String in
                let target = line.split(separator: " -> ", maxSplits: 1).last.map(String.init) ?? line
                guard let open = target.firstIndex(of: "["), target.hasSuffix("]"),
                      target[target.index(after: open) ..< target.index(before: target.endIndex)].allSatisfy(\.isNumber)
                else { return target }
                return String(target[..<open]).trimmingCharacters(in: CharacterSet(charactersIn: ":"))
            }.sorted()
        }

        func difference(from before: Snapshot) -> String {
            let added = Set(maps).subtracting(before.maps).sorted().prefix(12)
            let removed = Set(before.maps).subtracting(maps).sorted().prefix(12)
            let fdsAdded = Set(fds).subtracting(before.fds).sorted().prefix(12)
            let fdsRemoved = Set(before.fds).subtracting(fds).sorted().prefix(12)
            return "maps \(before.maps.count) -> \(maps.count), +\(Array(added)) -\(Array(removed)); "
                + "fds \(before.fds.count) -> \(fds.count), +\(Array(fdsAdded)) -\(Array(fdsRemoved)); "
                + "guards \(before.guards) -> \(guards); anonymous bytes \(before.anonymousBytes) -> \(anonymousBytes)"
        }
    }

    final class Churn {
        var rng: SplitMix64
        var spaces: [HostAddressSpace] = []
        let file: MemoryObject
        let memfd: MemoryObject
        var operations = 0
        var spacesCreated = 0
        var segmentsMapped = 0
        var unmaps = 0

        init(seed: UInt64, file: MemoryObject, memfd: MemoryObject) {
            rng = SplitMix64(seed: seed)
            self.file = file
            self.memfd = memfd
        }

        func newSpace() throws {
            spaces.append(try HostAddressSpace(windowSize: 16 << 20, faultThreads: 1 + Int(rng.below(2)),
                                               userfaultfd: !rng.chance(20)))
            spacesCreated += 1
        }

        /// One cycle: a space created or destroyed, or a segment mapped,
        /// touched, protected, faulted or unmapped in one of them.
        func cycle() throws {
            operations += 1
            if spaces.isEmpty || (spaces.count < 3 && rng.chance(8)) { return try newSpace() }
            if rng.chance(6) {
                let victim = spaces.remove(at: Int(rng.below(UInt64(spaces.count))))
                if rng.chance(70) { try victim.destroy() }  // else dropped: deinit tears it down
                return
            }
            let host = spaces[Int(rng.below(UInt64(spaces.count)))]
            let segs = host.segments
            if segs.count < 6 && (segs.isEmpty || rng.chance(55)) {
                try map(host)
                return
            }
            let seg = segs[Int(rng.below(UInt64(segs.count)))]
            let d = seg.driver as! HostSegmentDriver
            let pages = seg.size / page
            switch rng.below(5) {
            case 0:
                try host.unmap(address: seg.base, size: seg.size)
                unmaps += 1
            case 1 where pages > 2 && !(d is HostStack):
                unmaps += 1
                // Trim low or high; split in the middle where the driver allows it.
                let what = rng.below(d is HostSegHole ? 2 : 3)
                switch what {
                case 0: try host.unmap(address: seg.base, size: page)
                case 1: try host.unmap(address: seg.base + seg.size - page, size: page)
                default: try host.unmap(address: seg.base + page, size: page)
                }
            case 2 where !(d is HostSegHole) && !(d is HostStack):
                try host.setProtection(address: seg.base, size: page, protection: .read)
                try host.setProtection(address: seg.base, size: page, protection: d.maxProtection.intersection(.readWrite))
            case 3 where !(d is HostSegHole):
                let first = d is HostStack ? seg.base + (d as! HostStack).redZone : seg.base
                try host.fault(address: first, size: page, access: rng.chance(50) ? .read : .write, type: .invalid)
            default:
                touch(seg, d)
            }
        }

        func map(_ host: HostAddressSpace) throws {
            let pages = 1 + rng.below(8)
            let size = pages * page
            let seg: Segment
            switch rng.below(8) {
            case 0: seg = try host.mapAnonymous(size: size)
            case 1: seg = try host.mapFile(file, offset: rng.below(64 - pages) * page, size: size,
                                           protection: .readWrite, shared: false)
            case 2: seg = try host.mapFile(file, offset: rng.below(64 - pages) * page, size: size,
                                           protection: .readWrite, shared: true)
            case 3: seg = try host.mapDevice(memfd, offset: rng.below(64 - pages) * page, size: size)
            case 4: seg = try host.mapHole(size: size, name: "leak")
            case 5: seg = try host.mapStack(size: size, name: "leak")
            default: seg = try host.mapLazyFill(rng.chance(50) ? file : memfd, offset: rng.below(64 - pages) * page,
                                                size: size, readAhead: (1 + rng.below(4)) * page)
            }
            segmentsMapped += 1
            if rng.chance(60) { touch(seg, seg.driver as! HostSegmentDriver) }
        }

        func touch(_ seg: Segment, _ d: HostSegmentDriver) {
            guard !(d is HostSegHole) else { return }
            let first = (d as? HostStack).map { seg.base + $0.redZone } ?? seg.base
            let a = first + rng.below((seg.base + seg.size - first) / page) * page + rng.below(page)
            // Only where the driver allows it: read-only pages are read.
            let writable = (try? d.checkprot(seg, address: a & ~(page - 1), size: page,
                                             protection: Protection(.write))) != nil
            if writable { Kit.store(a, UInt8(truncatingIfNeeded: a)) } else { _ = Kit.load(a) }
        }

        func finish() throws {
            for s in spaces { try s.destroy() }
            spaces.removeAll()
        }
    }

    /// Counts before and after `cycles` cycles, equal once the process
    /// settles (up to a second); nil when equal, else what differs.
    static func measure(cycles: Int, seed: UInt64, file: MemoryObject, memfd: MemoryObject) throws -> String? {
        let before = Snapshot.take()
        let churn = Churn(seed: seed, file: file, memfd: memfd)
        for _ in 0..<cycles { try churn.cycle() }
        try churn.finish()
        #expect(churn.operations == cycles)
        #expect(churn.spacesCreated >= cycles / 40 && churn.segmentsMapped >= cycles / 5 && churn.unmaps >= cycles / 20,
                "spaces \(churn.spacesCreated), segments \(churn.segmentsMapped), unmaps \(churn.unmaps)")
        // Handler threads are joined by destroy, but a space dropped on a
        // handler thread detaches it: give stragglers a moment.
        var after = Snapshot.take()
        for _ in 0..<20 where !after.sameCounts(as: before) {
            usleep(50_000)
            after = Snapshot.take()
        }
        return after.sameCounts(as: before) ? nil : after.difference(from: before)
    }

    @Test func thousandCyclesLeaveNoMappingsDescriptorsOrGuards() throws {
        let soak = Kit.soak
        try Kit.gated(exclusive: true) {
            try GuardReporter.install()
            let (file, _) = try Kit.file(Kit.patternBytes(count: Int(64 * page), seed: 17), writable: true)
            let memfd = try Kit.memfd(Kit.patternBytes(count: Int(64 * page), seed: 18), name: "vmk-leak")
            // Warm-up: more handler threads alive at once than the churn ever
            // has (the C library's stack cache and malloc arenas reach their
            // size), then some churn.
            var many: [HostAddressSpace] = []
            for _ in 0..<4 {
                let h = try HostAddressSpace(windowSize: 16 << 20, faultThreads: 2)
                let s = try h.mapAnonymous(size: 4 * page)
                Kit.store(s.base, 1)
                many.append(h)
            }
            for h in many { try h.destroy() }
            many.removeAll()
            let warm = Churn(seed: 1, file: file, memfd: memfd)
            for _ in 0..<200 { try warm.cycle() }
            try warm.finish()

            // A leak grows with every round; what else the process does (other
            // suites' threads and buffers) comes and goes. So: up to three
            // rounds of 1,000 cycles, and one must leave everything as it was.
            var differences: [String] = []
            for round in 0..<3 {
                guard let difference = try Self.measure(cycles: soak ? 20_000 : 1_000, seed: 2 + UInt64(round),
                                                        file: file, memfd: memfd) else { break }
                differences.append("round \(round): \(difference)")
            }
            #expect(differences.count < 3, "\(differences.joined(separator: "\n"))")
        }
    }
}
