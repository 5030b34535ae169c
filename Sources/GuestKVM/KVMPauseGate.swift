internal import CGuestKVM
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// FreeBSD's rule for changing the guest map: every vCPU frozen. A vCPU
/// passes the gate on the way into `KVM_RUN` and back out; a map change
/// closes the gate, kicks each vCPU that is inside (`immediate_exit` set
/// first, then a signal whose handler does nothing, so `KVM_RUN` returns
/// `EINTR` whether the vCPU was already in the kernel or about to enter),
/// waits until none is, changes the slots, and opens the gate again.
///
/// `immediate_exit` is written before the signal and under the gate's
/// mutex, and the vCPU marks itself inside under the same mutex before it
/// enters, so a kick can never fall between the vCPU's check and its entry.
final class KVMPauseGate: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Pause requests outstanding (they nest).
    private var pauses = 0
    private var closed = false
    /// The vCPUs inside `KVM_RUN` (or about to enter), with their threads.
    private var inside: [(vcpu: ObjectIdentifier, run: UnsafeMutablePointer<kvm_run>, thread: pthread_t)] = []

    /// The kick's signal, with its do-nothing handler installed once per process.
    static let kickSignal: Int32 = {
        let signo = vkvm_kick_signal()
        _ = vkvm_install_kick_handler(signo)
        return signo
    }()

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
        _ = Self.kickSignal
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        cond.deallocate()
    }

    /// Waits while the gate is closed, then records the caller as inside.
    func enter(_ vcpu: ObjectIdentifier, run: UnsafeMutablePointer<kvm_run>) throws(KVMError) {
        vkvm_unblock_kick(Self.kickSignal)
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while pauses > 0 && !closed { pthread_cond_wait(cond, mutex) }
        if closed { throw .closed }
        inside.append((vcpu, run, vkvm_self()))
    }

    /// Records the caller as out of `KVM_RUN` and clears its `immediate_exit`.
    func leave(_ vcpu: ObjectIdentifier, run: UnsafeMutablePointer<kvm_run>) {
        pthread_mutex_lock(mutex)
        vkvm_run_set_immediate_exit(run, 0)
        inside.removeAll { $0.vcpu == vcpu }
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
    }

    /// Runs `body` with every vCPU out of `KVM_RUN` and held at the gate.
    func paused<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        pauses += 1
        while !inside.isEmpty {
            for v in inside {
                vkvm_run_set_immediate_exit(v.run, 1)
                _ = vkvm_kick(v.thread, Self.kickSignal)
            }
            // Re-kick after a while: a signal taken just before entry is
            // covered by immediate_exit, this only guards against surprises.
            var deadline = timespec()
            clock_gettime(CLOCK_REALTIME, &deadline)
            deadline.tv_nsec += 10_000_000
            if deadline.tv_nsec >= 1_000_000_000 { deadline.tv_sec += 1; deadline.tv_nsec -= 1_000_000_000 }
            pthread_cond_timedwait(cond, mutex, &deadline)
        }
        pthread_mutex_unlock(mutex)
        defer {
            pthread_mutex_lock(mutex)
            pauses -= 1
            pthread_cond_broadcast(cond)
            pthread_mutex_unlock(mutex)
        }
        return try body()
    }

    /// Refuses every later entry (the VM is closing); kicks those inside.
    func close() {
        pthread_mutex_lock(mutex)
        closed = true
        for v in inside {
            vkvm_run_set_immediate_exit(v.run, 1)
            _ = vkvm_kick(v.thread, Self.kickSignal)
        }
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
    }

    /// How many vCPUs are inside `KVM_RUN` now (for tests).
    var insideCount: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return inside.count
    }
}
