import Testing
import VmemWorkloads
import KernelLayout
import PhysicalMemory
@testable import ModelKernel

/// A booted model kernel driven with numbers drawn to hurt: kmem, ZIO and
/// VMM allocations of every size (zero, unaligned, larger than memory),
/// frees of addresses it never gave out or with the wrong size, double
/// frees, touches of any address, `::whatis` anywhere, file reads past 2^64.
/// Each call succeeds or throws a `ModelKernelError`; nothing traps, and the
/// kernel's `verify()` holds at the end and every 500 steps.
@Suite struct HostileCallsTests {
    struct Draw {
        var rng: SplitMix64
        init(state: UInt64) { rng = SplitMix64(seed: state) }
        mutating func next() -> UInt64 { rng.next() }
        mutating func number() -> UInt64 {
            switch next() % 6 {
            case 0: return [0, 1, 0xFFF, 0x1000, .max, .max - 0xFFF, 1 << 47, 1 << 63][Int(next() % 8)]
            case 1: return next()
            case 2: return 0xFFFF_FE00_0000_0000 &+ (next() % (1 << 36))
            default: return (1 + next() % 64) << [4, 12, 14, 16][Int(next() % 4)]
            }
        }
    }

    @Test func hostileCallsNeverTrap() throws {
        let k = try ModelKernel(model: .post12608, physmem: 1 << 30)
        var d = Draw(state: 0x5EED)
        var live: [(kind: Int, address: UInt64, size: UInt64)] = []
        var stacks: [KernelStack] = []
        let file = try k.makeFile(name: "hostile")
        var ok = 0, refused = 0
        for step in 0..<2_000 {
            do {
                switch d.next() % 10 {
                case 0, 1:
                    let kind = Int(d.next() % 3), size = d.number()
                    let a = try [k.kmemAlloc, k.zioBufAlloc, k.vmmAlloc][kind](size)
                    live.append((kind, a, size))
                case 2:
                    if !live.isEmpty && d.next() % 4 != 0 {
                        let (kind, a, s) = live.remove(at: Int(d.next() % UInt64(live.count)))
                        try [k.kmemFree, k.zioBufFree, k.vmmFree][kind](a, s)
                    } else {
                        try [k.kmemFree, k.zioBufFree, k.vmmFree][Int(d.next() % 3)](d.number(), d.number())
                    }
                case 3:
                    // Double frees and wrong sizes of real allocations.
                    if let (kind, a, s) = live.randomElement() {
                        try [k.kmemFree, k.zioBufFree, k.vmmFree][kind](a, d.next() % 2 == 0 ? s : d.number())
                        live.removeAll { $0.address == a && $0.kind == kind }
                    }
                case 4:
                    if stacks.count < 32 && d.next() % 2 == 0 { stacks.append(try k.allocateStack()) }
                    else if let s = stacks.popLast() { try k.freeStack(s) }
                case 5: _ = try k.touch(d.number(), access: [.read, .write, .execute][Int(d.next() % 3)])
                case 6: try k.readFile(file, offset: d.number(), length: d.number() % (1 << 18), free: d.next() % 2 == 0)
                case 7: _ = k.whatis(d.number())
                default: _ = k.segment(containing: d.number())
                }
                ok += 1
            } catch {
                refused += 1
            }
            if step % 500 == 499 { try k.verify() }
        }
        try k.verify()
        #expect(ok > 200 && refused > 200, "ok \(ok) refused \(refused)")
        // A free of 2^51 bytes that is no allocation: the soft-lock check
        // before it used to visit every page address of the range (2^39 of
        // them), which this test found as a hang.
        let clock = ContinuousClock(), start = clock.now
        #expect(throws: ModelKernelError.self) { try k.kmemFree(0xFFFF_FE00_0000_0000, size: 1 << 51) }
        #expect(clock.now - start < .seconds(5))
    }
}
