import CGuestWorkloads
import GuestMemory
import HostWorkloads

/// A read-write hold of one page and its release (bhyve `vm_gpa_hold` /
/// `vm_gpa_release`, illumos `vmc_hold` / `vmp_release`), over a cycle of
/// 4096 random pages of a one-mapping guest; the release marks the page
/// dirty (the bits stay set after the first round: the common case).
/// Nothing is populated: a hold checks and pins, it does not touch.
public final class HoldReleaseWorkload {
    public let holds: Int
    public let memory: GuestMemory
    let pages: [UInt64]

    public init(holds: Int, guestSize: UInt64 = 64 << 20, seed: UInt64 = 7) throws(GuestWorkloadError) {
        try GuestWorkloadError.checkCount("holds", holds, maximum: 1_000_000_000)
        try GuestWorkloadError.checkSize("hold guest size", guestSize, minimum: GuestMemory.pageSize, maximum: 3 << 30)
        self.holds = holds
        do throws(GuestMemoryError) {
            memory = try GuestMemory.standard(size: guestSize)
        } catch {
            throw .guest(error)
        }
        var rng = SplitMix64(seed: seed)
        pages = (0..<4096).map { _ in UInt64.random(in: 0..<(guestSize / GuestMemory.pageSize), using: &rng) * GuestMemory.pageSize }
    }

    /// `count` hold + release pairs; the nanoseconds.
    public func holdRelease(_ count: Int) throws(GuestWorkloadError) -> UInt64 {
        let memory = memory
        let t0 = vgw_now_ns()
        var left = count
        do throws(GuestMemoryError) {
            while left > 0 {
                for g in pages.prefix(left) {
                    let h = try memory.hold(g, .readWrite)
                    h.release()
                }
                left -= min(left, pages.count)
            }
        } catch {
            throw .guest(error)
        }
        return vgw_now_ns() &- t0
    }

    public func run(repeats: Int, warmup: Int = 1,
                    progress: (Int, Int) -> Void = { _, _ in }) throws(GuestWorkloadError) -> TimingSamples {
        let stash = Stash()
        return try GuestWorkloadError.rounds([
            .init("hold-release", opsPerRepeat: holds) { () throws(HostWorkloadError) -> UInt64 in
                do throws(GuestWorkloadError) { return try self.holdRelease(self.holds) } catch { throw stash.fail(error) }
            },
        ], repeats: repeats, warmup: warmup, stash: stash, progress: progress)[0]
    }
}
