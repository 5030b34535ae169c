import Testing
import VmemWorkloads
import Synchronization
import CVmemSupport
@testable import Vmem

/// The user bytes of a checked quantum cache, one line per CPU slot (see
/// `SlabRecord`): where each CPU writes, that a free on another CPU still
/// finds an object's byte, and that verify catches a byte set twice.
@Suite("Quantum-cache user lines")
struct CacheUserLineTests {
    /// Slabs from a bump pointer, never given back to anyone.
    private static func bumpBackend() -> QuantumCacheBackend {
        let next = Box(0x40_0000)
        return QuantumCacheBackend(
            allocSlab: { size, align in
                let a = next.value.wrappingAdd(size, ordering: .relaxed).oldValue
                return a % align == 0 ? a : nil
            },
            freeSlab: { _, _ in })
    }

    private final class Box: Sendable {
        let value: Atomic<UInt64>
        init(_ v: UInt64) { value = Atomic(v) }
    }

    /// Whether this thread can be bound to CPU 0 and to CPU 1 (it is left
    /// unbound).
    private static func canRunOnCPUsZeroAndOne() -> Bool {
        defer { _ = cvmem_unpin() }
        return cvmem_cpu_count() >= 2 && cvmem_pin_to_cpu(0) == 0 && cvmem_pin_to_cpu(1) == 0
    }

    /// The record of the slab holding `address`.
    private static func record(_ cache: QuantumCache, _ address: UInt64) -> UnsafeMutablePointer<SlabRecord>? {
        cache.slabs.pointee.directory.lookup(base: cache.geometry.slabBase(address))
    }

    /// Which lines have object `address`'s byte set.
    private static func linesSet(_ cache: QuantumCache, _ address: UInt64) -> [Int] {
        guard let r = record(cache, address), let i = cache.geometry.objectIndex(address) else { return [-1] }
        return (0..<cache.slabs.pointee.stateLines).filter {
            r.userState(i, line: $0).pointee.load(ordering: .relaxed) != 0
        }
    }

    /// CPU `c` writes line `c`; an object allocated on CPU 0 and freed on
    /// CPU 1 is taken back there (its byte cleared in line 0), and freeing
    /// it again is refused on either CPU.
    @Test(.enabled(if: Self.canRunOnCPUsZeroAndOne(), "needs CPUs 0 and 1 to bind to"))
    func objectAllocatedOnOneCPUFreedOnAnother() throws {
        let cache = QuantumCache(objectSize: 64, slabSize: 1024, cpuCount: 2, magazineRounds: 4,
                                 backend: Self.bumpBackend())
        #expect(cache.slabs.pointee.stateLines == 2)
        let onZero = try OSThreads.onCPU(0) { try (0..<10).map { _ in try #require(cache.alloc()) } }
        for a in onZero { #expect(Self.linesSet(cache, a) == [0], "allocated on CPU 0: \(a)") }
        try OSThreads.onCPU(1) {
            for a in onZero {
                #expect(cache.free(a), "freed on CPU 1: \(a)")
                #expect(Self.linesSet(cache, a).isEmpty)
            }
            #expect(!cache.free(onZero[0]), "double free on the freeing CPU")
            let b = try #require(cache.alloc())
            #expect(Self.linesSet(cache, b) == [1], "allocated on CPU 1")
            #expect(cache.free(b))
        }
        OSThreads.onCPU(0) { #expect(!cache.free(onZero[1]), "double free on the allocating CPU") }
        let s = cache.statistics
        #expect(s.allocs == 11 && s.frees == 11 && s.badFrees == 2 && s.objectsInUse == 0)
        #expect(cache.verify() == nil)
        cache.drain()
    }

    /// The lines of different CPUs are a page apart, and none shares a
    /// 128-byte line pair (what x86 fetches together) with a record's key.
    @Test func linesOfDifferentCPUsAreAPageApart() throws {
        let cache = QuantumCache(objectSize: 64, slabSize: 1024, cpuCount: 3, magazineRounds: 4,
                                 backend: Self.bumpBackend())
        let a = try #require(cache.alloc())
        let r = try #require(Self.record(cache, a))
        let key = UInt(bitPattern: r.key)
        #expect(cache.slabs.pointee.stateLines == 3)
        for line in 0..<3 {
            let p = UInt(bitPattern: r.userState(0, line: line))
            #expect(p % 64 == 0, "line \(line) starts a cache line")
            #expect(p == UInt(bitPattern: r.userState(0)) + UInt(line * 4096))
            #expect(p / 128 != key / 128, "line \(line) pairs with the key's line")
            #expect(cache.slabs.pointee.stateLineOffset(line) == line * 4096)
        }
        #expect(cache.free(a))
        cache.drain()
    }

    /// Past eight CPU slots, slots share the eight lines.
    @Test func slotsBeyondEightShareLines() {
        let cache = QuantumCache(objectSize: 64, slabSize: 1024, cpuCount: 12,
                                 backend: Self.bumpBackend())
        #expect(cache.slabs.pointee.stateLines == 8)
        #expect(cache.cpus[9].pointee.stateOffset == 1 * 4096)
        #expect(cache.cpus[7].pointee.stateOffset == 7 * 4096)
    }

    /// An object marked allocated in two lines at once is caught by verify.
    @Test func byteSetInTwoLinesIsCaught() throws {
        let cache = QuantumCache(objectSize: 64, slabSize: 1024, cpuCount: 2, magazineRounds: 4,
                                 backend: Self.bumpBackend())
        let a = try #require(cache.alloc())
        #expect(cache.verify() == nil)
        let r = try #require(Self.record(cache, a))
        let i = try #require(cache.geometry.objectIndex(a))
        let set = Self.linesSet(cache, a)
        #expect(set.count == 1)
        let other = set == [0] ? 1 : 0
        r.userState(i, line: other).pointee.store(1, ordering: .relaxed)
        let failure = try #require(cache.verify())
        #expect(failure.contains("two CPU lines"), "\(failure)")
        r.userState(i, line: other).pointee.store(0, ordering: .relaxed)
        #expect(cache.verify() == nil)
        #expect(cache.free(a))
        cache.drain()
    }
}
