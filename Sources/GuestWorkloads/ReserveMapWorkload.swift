#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CGuestWorkloads
import GuestMemory
import HostWorkloads

/// A standard guest (`GuestMemory.standard(size:)`: the host window with
/// its guards, the sysmem memfd, lowmem and highmem mapped, the dirty
/// bitmap) made and, untimed, destroyed: ns per guest. Nothing is
/// populated; ``residentGrowth(touching:)`` shows what memory it costs.
public final class ReserveMapWorkload {
    public let guestSize: UInt64
    public let guests: Int

    /// `guestSize` a multiple of 4096 up to 1 TiB; `guests` per repeat 1 to 10^6.
    public init(guestSize: UInt64, guests: Int) throws(GuestWorkloadError) {
        try GuestWorkloadError.checkSize("guest size", guestSize, minimum: GuestMemory.pageSize, maximum: 1 << 40)
        try GuestWorkloadError.checkCount("guests", guests, maximum: 1_000_000)
        self.guestSize = guestSize
        self.guests = guests
    }

    /// One guest made (timed) and destroyed (untimed).
    public func reserveAndMap() throws(GuestWorkloadError) -> UInt64 {
        let t0 = vgw_now_ns()
        let memory: GuestMemory
        do throws(GuestMemoryError) { memory = try GuestMemory.standard(size: guestSize) } catch { throw .guest(error) }
        let ns = vgw_now_ns() &- t0
        do throws(GuestMemoryError) { try memory.destroy() } catch { throw .guest(error) }
        return ns
    }

    public func run(repeats: Int, warmup: Int = 1,
                    progress: (Int, Int) -> Void = { _, _ in }) throws(GuestWorkloadError) -> TimingSamples {
        let stash = Stash()
        return try GuestWorkloadError.rounds([
            .init("reserve-map", opsPerRepeat: guests) { () throws(HostWorkloadError) -> UInt64 in
                var ns: UInt64 = 0
                do throws(GuestWorkloadError) {
                    for _ in 0..<self.guests { ns &+= try self.reserveAndMap() }
                } catch {
                    throw stash.fail(error)
                }
                return ns
            },
        ], repeats: repeats, warmup: warmup, stash: stash, progress: progress)[0]
    }

    /// Resident bytes of this process (`/proc/self/statm`, second field), nil where unreadable.
    public static func residentBytes() -> UInt64? {
        let fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        let fields = String(decoding: buffer[0..<n], as: UTF8.self).split(separator: " ")
        guard fields.count >= 2, let pages = UInt64(fields[1]) else { return nil }
        return pages * UInt64(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Resident growth of one guest: after it is made (nothing touched), and
    /// after a byte is written to each of `pages` consecutive pages from
    /// GPA 1 MiB (the bitmap words they set included).
    public func residentGrowth(touching pages: Int) throws(GuestWorkloadError) -> (mapped: Int64, touched: Int64) {
        try GuestWorkloadError.checkCount("pages touched", pages, maximum: Int(min(guestSize / GuestMemory.pageSize, 1 << 20)))
        let before = Self.residentBytes() ?? 0
        let memory: GuestMemory
        do throws(GuestMemoryError) { memory = try GuestMemory.standard(size: guestSize) } catch { throw .guest(error) }
        let mapped = Self.residentBytes() ?? 0
        let start: UInt64 = guestSize >= (2 << 20) + UInt64(pages) * GuestMemory.pageSize ? 1 << 20 : 0
        do throws(GuestMemoryError) {
            for i in 0..<UInt64(pages) { try memory.write(start + i * GuestMemory.pageSize, [1]) }
        } catch {
            throw .guest(error)
        }
        let touched = Self.residentBytes() ?? 0
        do throws(GuestMemoryError) { try memory.destroy() } catch { throw .guest(error) }
        return (Int64(mapped) - Int64(before), Int64(touched) - Int64(before))
    }
}
