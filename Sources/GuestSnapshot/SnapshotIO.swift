#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The system calls a snapshot makes on its files, each looping over short
/// transfers and `EINTR` and failing with the errno and what it was doing.
enum SnapshotIO {
    /// `SEEK_DATA` / `SEEK_HOLE` (Linux values; not every libc header names them).
    static let seekData: Int32 = 3
    static let seekHole: Int32 = 4

    /// Writes all of `[buffer, buffer + count)` at `offset`; on failure
    /// returns the errno and how many bytes had been written.
    static func pwriteAll(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int, _ offset: UInt64) -> (errno: Int32, done: Int)? {
        var done = 0
        while done < count {
            let n = pwrite(fd, buffer + done, count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                return (errno, done)
            }
            // A zero-byte write of a non-zero count: the device took nothing.
            if n == 0 { return (ENOSPC, done) }
            done += n
        }
        return nil
    }

    /// Reads `count` bytes at `offset` into `buffer`; returns the bytes read
    /// (short only at end of file), or minus the errno.
    static func preadAll(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int, _ offset: UInt64) -> Int {
        var done = 0
        while done < count {
            let n = pread(fd, buffer + done, count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                return -Int(errno)
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// The byte ranges of `fd` in `[0, size)` that hold data (`SEEK_DATA` /
    /// `SEEK_HOLE`), page aligned outwards. Nil if the file system cannot say.
    static func dataRanges(_ fd: Int32, size: UInt64) -> [Range<UInt64>]? {
        var out: [Range<UInt64>] = []
        var at: off_t = 0
        while UInt64(at) < size {
            let d = lseek(fd, at, seekData)
            if d < 0 {
                if errno == ENXIO { break }
                return nil
            }
            var h = lseek(fd, d, seekHole)
            if h < 0 { h = off_t(size) }
            let lo = UInt64(d) & ~(SnapshotLayout.pageSize - 1)
            let hi = min(SnapshotLayout.alignUp(UInt64(h), SnapshotLayout.pageSize), size)
            if lo < hi { out.append(lo ..< hi) }
            at = h
        }
        return out
    }

    /// Whether the 4 KiB page at `p` is all zero (eight words at a time).
    @inline(__always)
    static func isZeroPage(_ p: UnsafeRawPointer) -> Bool {
        let w = p.assumingMemoryBound(to: UInt64.self)
        var i = 0
        while i < 512 {
            if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7]) != 0 { return false }
            i += 8
        }
        return true
    }

    /// Allocated bytes of a file (`st_blocks * 512`).
    static func allocatedBytes(_ fd: Int32) -> UInt64? {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        return UInt64(st.st_blocks) * 512
    }

    /// Monotonic nanoseconds.
    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
