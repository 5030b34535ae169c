#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import HostMemory
import Synchronization

/// A regular file whose pages are all in the page cache: the source the
/// copy workloads fill from.
///
/// Made once per workload under a directory (`/tmp` by default, a real
/// file system, so that the pages are page-cache pages of a file and not
/// shared memory), written with `pwrite`, flushed with `fdatasync` so that
/// no writeback runs while the workload is timed, then read once from end
/// to end so that every page is cached. The name is unlinked as soon as the
/// file is open: only the descriptor keeps it, and nothing is left behind
/// when the process ends, however it ends.
///
/// Page `i` of the file holds ``pattern(page:)`` in every byte, so a fill
/// can be checked by reading any byte of a page.
public final class PageCacheFile: @unchecked Sendable {
    /// The file, open read-only for mapping (its name already unlinked).
    public let object: MemoryObject
    /// Its size in bytes (a multiple of 4096).
    public let size: UInt64

    /// The byte every position of page `page` holds: never 0 (so a page of
    /// zeros is told apart), different for neighbouring pages.
    @inline(__always)
    public static func pattern(page: UInt64) -> UInt8 {
        UInt8(truncatingIfNeeded: (page &* 131) % 255) &+ 1
    }

    /// Creates, writes, flushes and reads a file of `size` bytes (a
    /// non-zero multiple of 4096) in `directory`.
    public init(size: UInt64, directory: String = "/tmp") throws(HostWorkloadError) {
        let page = HostReservation.pageSize
        guard size > 0, size % page == 0 else {
            throw .invalidArgument(name: "file size", value: size, reason: "must be a non-zero multiple of 4096")
        }
        guard size <= 1 << 40 else {
            throw .invalidArgument(name: "file size", value: size, reason: "must be at most 1 TiB")
        }
        let path = "\(directory)/vmkit-bench-as-\(getpid())-\(Self.serial.add(1, ordering: .relaxed).newValue).dat"
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .system(call: "open", errno: errno, detail: "of \(path)") }
        defer { close(fd) }
        unlink(path)
        try Self.write(fd, size, path)
        guard fdatasync(fd) == 0 else { throw .system(call: "fdatasync", errno: errno, detail: "of \(path)") }
        try Self.readThrough(fd, size, path)
        // The object opens the file again, read-only, through the descriptor
        // (the name is gone); it sees the size written.
        do throws(HostMemoryError) {
            object = try MemoryObject.file(path: "/proc/self/fd/\(fd)")
        } catch {
            throw .hostMemory(error)
        }
        self.size = size
    }

    private static let serial = Atomic<UInt64>(0)

    /// Writes the pattern in chunks of 1 MiB.
    private static func write(_ fd: Int32, _ size: UInt64, _ path: String) throws(HostWorkloadError) {
        let page = Int(HostReservation.pageSize)
        let chunk = 256 * page
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: page)
        defer { buffer.deallocate() }
        var offset: UInt64 = 0
        while offset < size {
            let n = Int(min(UInt64(chunk), size - offset))
            for p in 0..<(n / page) {
                let value = pattern(page: offset / UInt64(page) + UInt64(p))
                (buffer + p * page).initializeMemory(as: UInt8.self, repeating: value, count: page)
            }
            var done = 0
            while done < n {
                let w = pwrite(fd, buffer + done, n - done, off_t(offset) + off_t(done))
                if w < 0 && errno == EINTR { continue }
                guard w > 0 else { throw .system(call: "pwrite", errno: w < 0 ? errno : ENOSPC, detail: "of \(path) at \(offset)") }
                done += w
            }
            offset += UInt64(n)
        }
    }

    /// Reads the whole file once, so that every page is in the page cache.
    private static func readThrough(_ fd: Int32, _ size: UInt64, _ path: String) throws(HostWorkloadError) {
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: Int(HostReservation.pageSize))
        defer { buffer.deallocate() }
        var offset: UInt64 = 0
        while offset < size {
            let r = pread(fd, buffer, Int(min(UInt64(chunk), size - offset)), off_t(offset))
            if r < 0 && errno == EINTR { continue }
            guard r > 0 else { throw .system(call: "pread", errno: r < 0 ? errno : EIO, detail: "of \(path) at \(offset)") }
            offset += UInt64(r)
        }
    }
}

