import CHostMemory

/// The touching a workload times: one access to the first byte of each
/// 4 KiB page of a region, lowest page first, as a program meeting fresh
/// memory would make.
///
/// Each access is a plain load or store through a pointer the compiler
/// cannot see the end of, so none is removed or merged; the loops are kept
/// out of line so that what is timed is the same code on every call.
public enum PageTouch {
    /// The page size the workloads touch at.
    public static let pageSize = 4096

    /// Writes 1 to the first byte of each of `pages` pages from `base`.
    @inline(never)
    public static func write(_ base: UnsafeMutableRawPointer, pages: Int) {
        var p = base
        for _ in 0..<pages {
            p.storeBytes(of: 1, as: UInt8.self)
            p += pageSize
        }
    }

    /// ``write(_:pages:)`` timed: the nanoseconds it took.
    public static func timedWrite(_ base: UnsafeMutableRawPointer, pages: Int) -> UInt64 {
        let start = vmk_now_ns()
        write(base, pages: pages)
        return vmk_now_ns() &- start
    }

    /// Reads the first byte of each of `pages` pages from `base` and returns their sum.
    @inline(never)
    public static func read(_ base: UnsafeRawPointer, pages: Int) -> UInt64 {
        var p = base
        var sum: UInt64 = 0
        for _ in 0..<pages {
            sum &+= UInt64(p.load(as: UInt8.self))
            p += pageSize
        }
        return sum
    }
}
