import Foundation
import Synchronization
import Testing
import Vmem

/// `ArenaFlags.constrainedImport` (vmem.md §3: "an arena flag may allow them
/// to [import], beyond illumos"). Its placement is not part of the exact
/// model, but an import that cannot serve the constraints must neither stay
/// in the arena as a wholly free imported span nor loop forever.
@Suite struct ConstrainedImportTests {
    func pair() throws -> (parent: Arena, child: Arena) {
        let parent = try Arena(name: "parent", base: 0x100_0000, size: 0x100_0000, quantum: 0x1000)
        let child = try Arena(name: "child", quantum: 0x1000, source: .arena(parent), flags: [.constrainedImport])
        return (parent, child)
    }

    @Test func importThatSatisfiesTheConstraintsIsUsed() throws {
        let (parent, child) = try pair()
        // The parent hands out its lowest addresses first: [0x1000000, ...).
        let a = try child.xalloc(0x1000, nocross: 0x10000, minaddr: 0x100_0000, maxaddr: 0x200_0000)
        #expect(a >= 0x100_0000 && a < 0x200_0000)
        #expect(child.statistics.importCount == 1)
        try child.free(a, size: 0x1000)
        #expect(parent.size(.allocated) == 0)
        try child.verify()
    }

    /// The parent returns a span outside [minaddr, maxaddr): the request must
    /// fail and the useless span must go back, not stay as a wholly free
    /// imported span (which verify() itself reports as a broken invariant).
    @Test func uselessImportIsGivenBack() throws {
        let (parent, child) = try pair()
        #expect(throws: (any Error).self) { try child.xalloc(0x1000, minaddr: 0x50_0000, maxaddr: 0x60_0000) }
        #expect(parent.size(.allocated) == 0)
        #expect(child.size(.total) == 0)
        try child.verify()
    }

    /// A free segment big enough for `size + align - quantum` but outside the
    /// constraints once made the import path give the fresh span back and
    /// retry forever (the "someone freed enough meanwhile" test ignored the
    /// constraints).
    @Test func bigFreeSegmentOutsideTheConstraintsDoesNotLivelock() throws {
        let parent = try Arena(name: "parent", base: 0x100_0000, size: 0x100_0000, quantum: 0x1000)
        let child = try Arena(name: "child", base: 0x10_0000, size: 0x10_0000, quantum: 0x1000,
                              source: .arena(parent), flags: [.constrainedImport])
        // On its own thread, so that a regression fails here instead of hanging the run.
        let done = DispatchSemaphore(value: 0)
        let outcome = Mutex<Result<UInt64, VmemError>?>(nil)
        Thread {
            let r = Result { () throws(VmemError) in try child.xalloc(0x1000, minaddr: 0x50_0000, maxaddr: 0x60_0000) }
            outcome.withLock { $0 = r }
            done.signal()
        }.start()
        guard done.wait(timeout: .now() + 20) == .success else {
            Issue.record("xalloc with constrainedImport did not return within 20 s (import/release livelock)")
            return
        }
        #expect(throws: (any Error).self) { try outcome.withLock { $0 }!.get() }
        #expect(parent.size(.allocated) == 0)
        try child.verify()
    }

    /// Second livelock: the constrained search with instant fit starts above
    /// the might-fit list (vmem.md §2), but the "did room appear meanwhile?"
    /// test after the import searches with first fit, which does look at the
    /// might-fit list. A segment there that satisfies the constraints makes
    /// every import go straight back and the instant-fit search miss it again,
    /// forever (850,000 imports in 2 s). Disabled: the spinning thread could
    /// not be stopped. Expected: the request fails (as the same request
    /// without the flag does) or is served, but returns.
    @Test
    func roomOnlyOnTheMightFitListDoesNotLivelock() throws {
        let parent = try Arena(name: "parent", base: 0x100_0000, size: 0x100_0000, quantum: 0x1000)
        let child = try Arena(name: "child", quantum: 0x1000, source: .arena(parent), flags: [.constrainedImport])
        try child.add(base: 0x10_0000, size: 0x3000)     // list 13, inside [minaddr, maxaddr)
        try child.add(base: 0x20_0000, size: 0x10_0000)  // list 20, outside
        let done = DispatchSemaphore(value: 0)
        Thread {
            _ = try? child.xalloc(0x3000, minaddr: 0x10_0000, maxaddr: 0x10_3000)   // highbit(0x3000) = 14
            done.signal()
        }.start()
        if done.wait(timeout: .now() + 20) != .success {
            Issue.record("xalloc did not return within 20 s (import/release livelock)")
        }
        #expect(parent.statistics.allocCount < 100)
    }
}
