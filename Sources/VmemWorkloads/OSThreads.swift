import CVmemSupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Plain OS threads for the multi-threaded workloads and stress tests: each
/// runs on its own kernel thread (not a Swift task), so that "N threads on one
/// arena" means N CPUs contending, as in a kernel.
public enum OSThreads {
    /// Starts `count` threads running `body(index)`. Returns the threads
    /// started and, if one could not be, `pthread_create`'s error (0 otherwise);
    /// the caller joins what started.
    public static func start(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) -> (threads: [pthread_t], error: Int32) {
        final class Start: @unchecked Sendable {
            let body: @Sendable (Int) -> Void, index: Int
            init(_ body: @escaping @Sendable (Int) -> Void, _ index: Int) { self.body = body; self.index = index }
        }
        var threads: [pthread_t] = []
        for i in 0..<count {
            var t = pthread_t()
            let arg = Unmanaged.passRetained(Start(body, i)).toOpaque()
            let rc = pthread_create(&t, nil, { p in
                let s = Unmanaged<Start>.fromOpaque(p!).takeRetainedValue()
                s.body(s.index)
                return nil
            }, arg)
            if rc != 0 {
                Unmanaged<Start>.fromOpaque(arg).release()
                return (threads, rc)
            }
            threads.append(t)
        }
        return (threads, 0)
    }

    public static func join(_ threads: [pthread_t]) {
        for t in threads { pthread_join(t, nil) }
    }

    /// Runs `body` with the calling thread bound to CPU `cpu`, then lets it
    /// run anywhere again: per-CPU caches then hand out the same objects
    /// run after run, which a test comparing addresses needs.
    public static func onCPU<T>(_ cpu: Int, _ body: () throws -> T) rethrows -> T {
        _ = cvmem_pin_to_cpu(Int32(cpu))
        defer { _ = cvmem_unpin() }
        return try body()
    }

    /// Runs `body(index)` on `count` threads and waits for all of them.
    /// Returns `pthread_create`'s error if not all could start (0 otherwise).
    @discardableResult
    public static func run(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) -> Int32 {
        let (threads, error) = start(count, body)
        join(threads)
        return error
    }
}
