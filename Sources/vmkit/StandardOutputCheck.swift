#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A command whose output was lost must not exit 0 (`vmkit layout … >
/// /dev/full`). Output goes through two paths — `print` (C stdio's buffer)
/// and ``StandardOutput`` (raw `write`) — so both are checked once, when the
/// process exits: the stdio buffers are flushed, and a
/// failure either path recorded turns the exit status into 1.
enum StandardOutputCheck {
    private static let failedErrno = Atomic<Int32>(0)

    /// A raw write to standard output failed with `errno`.
    static func recordFailure(errno: Int32) {
        _ = failedErrno.compareExchange(expected: 0, desired: errno == 0 ? EIO : errno, ordering: .relaxed)
    }

    /// Installs the exit-time check (once, before the command runs).
    static func install() {
        atexit {
            var err = StandardOutputCheck.failedErrno.load(ordering: .relaxed)
            // A failed flush earlier in the run dropped its bytes and left
            // only the stream's error flag: read both.
            if fflush(stdout) != 0 || ferror(stdout) != 0 { err = errno == 0 ? EIO : errno }
            guard err != 0 else { return }
            let message = "vmkit: cannot write to standard output: \(String(cString: strerror(err)))\n"
            _ = message.withCString { write(STDERR_FILENO, $0, strlen($0)) }
            _exit(1)
        }
    }
}
