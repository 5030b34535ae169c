import Testing
import AddressSpace
import Foundation
import Synchronization
import VmemWorkloads

@Suite("a_lock under concurrent readers and writers")
struct ConcurrencyTests {
    @Test func readersSeeConsistentSegmentsWhileAWriterMapsAndUnmaps() throws {
        let a = try makeKAS()
        let k: UInt64 = 0xFFFF_FF00_0000_0000
        // Stable segments the readers check; the writer churns others between them.
        for i in UInt64(0)..<64 { try a.attach(base: k + i << 20, size: 0x1000, driver: SegHole(name: "fixed")) }
        let done = Atomic(false)
        let failures = Atomic(0)
        let group = DispatchGroup()
        for r in 0..<3 {
            group.enter()
            Thread {
                var rng = SplitMix64(seed: UInt64(r + 1))
                while !done.load(ordering: .relaxed) {
                    let i = rng.next() % 64
                    let s = a.segat(k + i << 20 + 0x10)
                    if s?.base != k + i << 20 { failures.add(1, ordering: .relaxed) }
                    _ = a.findseg(k + i << 20 + 0x2000)
                    let inView = a.read { view in view.segat(k + i << 20)?.base }
                    if inView != k + i << 20 { failures.add(1, ordering: .relaxed) }
                }
                group.leave()
            }.start()
        }
        var rng = SplitMix64(seed: 99)
        for _ in 0..<3000 {
            let i = rng.next() % 64
            let base = k + i << 20 + 0x10_0000 - 0x8000
            if a.segat(base) == nil {
                try a.map(address: base, size: 0x4000) { _ in .created(ScriptedDriver()) }
            } else {
                try a.unmap(address: base, size: 0x4000)
            }
        }
        done.store(true, ordering: .relaxed)
        group.wait()
        #expect(failures.load(ordering: .relaxed) == 0)
        try a.verify()
    }
}
