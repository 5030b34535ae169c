#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Binds the calling thread to one CPU, so that the threads it creates
/// afterwards — a host address space's fault-handler thread, a C
/// baseline's handler — run on that CPU too (a new thread inherits its
/// creator's affinity).
///
/// Why a benchmark wants it: a userfaultfd round trip puts the faulting
/// thread to sleep and wakes the handler. When the two run on different
/// CPUs of a virtual machine, each wake-up of an idle virtual CPU is an exit
/// to the hypervisor, whose cost depends on the host's load from moment to
/// moment and can be several times the work of the fault itself. On one CPU
/// the round trip is two context switches, and what is timed is the code on
/// both sides. Neither is the "right" figure; `vmkit bench as --cpu N` lets
/// both be measured.
public enum CPUAffinity {
    /// CPUs this process may use now.
    public static var onlineCPUs: Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    /// Binds the calling thread to `cpu` (0-based, below 1024).
    public static func pinCallingThread(to cpu: Int) throws(HostWorkloadError) {
        guard cpu >= 0, cpu < 1024 else {
            throw .invalidArgument(name: "cpu", value: UInt64(max(cpu, 0)), reason: "must be from 0 to 1023")
        }
        var set = cpu_set_t()
        withUnsafeMutableBytes(of: &set) { bytes in
            let word = cpu / 64
            guard (word + 1) * 8 <= bytes.count else { return }
            bytes.storeBytes(of: UInt64(1) << UInt64(cpu % 64), toByteOffset: word * 8, as: UInt64.self)
        }
        // sched_setaffinity is behind _GNU_SOURCE, which the Glibc module
        // does not define: it is looked up in the C library by name.
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sched_setaffinity") else {
            throw .system(call: "dlsym", errno: ENOSYS, detail: "of sched_setaffinity")
        }
        typealias SetAffinity = @convention(c) (pid_t, Int, UnsafeRawPointer) -> Int32
        let setAffinity = unsafeBitCast(symbol, to: SetAffinity.self)
        let r = withUnsafeBytes(of: &set) { setAffinity(0, $0.count, $0.baseAddress!) }
        guard r == 0 else {
            throw .system(call: "sched_setaffinity", errno: errno, detail: "to CPU \(cpu)")
        }
    }
}
