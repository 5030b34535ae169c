#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The process-wide gate the host test targets share: a lock on one byte
/// of a file, so separate opens conflict even within one process. Every
/// host test holds it shared; the leak test holds it exclusively, so that
/// its before-and-after counts of mappings and descriptors see no other
/// host test at work.
public enum HostTestGate {
    /// The gate's file (a waiting test holds a descriptor of it).
    public static let path = "/tmp/vmkit-host-tests.lock"

    public static func run<R>(exclusive: Bool = false, _ body: () throws -> R) rethrows -> R {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o666)
        precondition(fd >= 0, "opening the test gate")
        defer { close(fd) }
        // An open-file-description lock on the byte at this process's id:
        // separate opens conflict within the process, other processes (each
        // on its own byte) never wait for this one.
        var lock = flock()
        lock.l_type = Int16(exclusive ? F_WRLCK : F_RDLCK)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = off_t(getpid())
        lock.l_len = 1
        let setLockWait: Int32 = 38  // F_OFD_SETLKW
        while fcntl(fd, setLockWait, &lock) != 0 {
            precondition(errno == EINTR, "locking the test gate: errno \(errno)")
        }
        return try body()
    }
}
