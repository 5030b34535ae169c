import Testing
import VmemWorkloads
import PhysicalMemory

/// The page calls with numbers drawn to hurt: frame numbers past the end,
/// in holes and near 2^64, unaligned and huge offsets, page counts that
/// overflow, locks taken and dropped out of order, released vnodes and the
/// kernel's own. Each call succeeds or throws a `PhysicalMemoryError`,
/// nothing traps, and `verify()` holds after every step.
@Suite struct HostileInputTests {
    struct Draw {
        var rng: SplitMix64
        init(state: UInt64) { rng = SplitMix64(seed: state) }
        mutating func next() -> UInt64 { rng.next() }
        mutating func number() -> UInt64 {
            switch next() % 5 {
            case 0: return [0, 1, .max, .max - 1, 1 << 63, 1 << 52, 0xFFF, 0x1000][Int(next() % 8)]
            case 1: return next()
            default: return next() % 600
            }
        }
    }

    @Test(arguments: [false, true])
    func hostileCallsNeverTrap(_ backed: Bool) throws {
        // Two banks with a hole between them, and 64 frames beyond physmem.
        let pm = try PhysicalMemory(memoryList: [FrameRange(lower: 0, upper: 256), FrameRange(lower: 320, upper: 576)],
                                    physmem: 448,
                                    backing: backed ? .hostMemory : .metadataOnly)
        var d = Draw(state: backed ? 7 : 8)
        var vnodes = [Vnode.kvp, Vnode.zvp, Vnode.unusedPages]
        var ok = 0, refused = 0
        for _ in 0..<1_500 {
            let vnode = vnodes[Int(d.next() % UInt64(vnodes.count))]
            do {
                switch d.next() % 14 {
                case 0: vnodes.append(try pm.makeVnode([.swapfs, .exec, .file][Int(d.next() % 3)], name: "v\(d.next() % 100)"))
                case 1: try pm.releaseVnode(vnode)
                case 2, 3: _ = try pm.pageCreate(vnode: vnode, offset: d.number() << (d.next() % 2 == 0 ? 12 : 0))
                case 4: _ = try pm.pageCreate(vnode: vnode, offset: d.number() << 12, pageCount: d.number(),
                                              flags: d.next() % 2 == 0 ? .exclusive : [.exclusive, .physicallyContiguous])
                case 5: _ = try pm.pageCreate(at: d.number(), vnode: vnode, offset: d.number() << 12)
                case 6: try pm.pageDestroy(d.number())
                case 7: try pm.pageFree(d.number(), dontNeed: d.next() % 2 == 0)
                case 8: _ = try pm.pageLookup(vnode: vnode, offset: d.number() << 12, lock: d.next() % 2 == 0 ? .shared : .exclusive)
                case 9: _ = try pm.pageTryLock(d.number(), d.next() % 2 == 0 ? .shared : .exclusive)
                case 10: try pm.pageUnlock(d.number())
                case 11:
                    switch d.next() % 4 {
                    case 0: _ = try pm.addLockCount(d.number())
                    case 1: _ = try pm.removeLockCount(d.number())
                    case 2: try pm.setLockCount(d.number(), to: UInt16(truncatingIfNeeded: d.next()))
                    default: _ = try pm.adjustCowCount(d.number(), by: Int(truncatingIfNeeded: d.next() % 5) - 2)
                    }
                case 12:
                    _ = try pm.page(d.number()); _ = try pm.isFree(d.number())
                    _ = try pm.memstatCategory(of: d.number()); _ = try pm.pageCount(of: vnode)
                default:
                    if d.next() % 2 == 0 {
                        try pm.write([1, 2, 3], to: d.number(), at: Int(truncatingIfNeeded: d.number()))
                    } else {
                        _ = try pm.read(d.number(), at: Int(truncatingIfNeeded: d.number()), count: Int(truncatingIfNeeded: d.number()))
                    }
                }
                ok += 1
            } catch is PhysicalMemoryError {
                refused += 1
            }
            try pm.verify()
        }
        #expect(ok > 150 && refused > 150, "ok \(ok) refused \(refused)")
        _ = pm.memstat()
    }
}
