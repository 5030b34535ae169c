#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CHostMemory
import Synchronization

/// A userfaultfd and the thread(s) that serve it.
///
/// Ranges registered with the service deliver their faults here instead of
/// being resolved by the kernel: the faulting thread sleeps while a handler
/// thread reads the event and calls `handler`, which answers with one of the
/// fill operations (``copy(to:from:length:wake:)``, ``zero(at:length:wake:)``,
/// ``continueMapping(at:length:wake:)``) and returns ``UserFaultAnswer/resolved``,
/// or asks for a plain wake or a refusal. A refused page is replaced by a
/// page of an empty `memfd`, so the touch gets `SIGBUS` (and the guard
/// reporter can name it).
///
/// The fd is opened with the system call, or through `/dev/userfaultfd` where
/// the system call is closed to this user; ``probe()`` says which works and
/// what features the kernel offers (write-protect and minor faults are used
/// only where offered). Handler threads poll the fd and an eventfd, so
/// ``stop()`` wakes them at once; stopping closes the fd, which lets any
/// thread still asleep in a registered range be resolved by the kernel.
public final class UserFaultService: @unchecked Sendable {
    /// The handler: called on a handler thread, once per event.
    public typealias Handler = @Sendable (UserFault, UserFaultService) -> UserFaultAnswer

    /// The features this service's fd has on.
    public let features: UserFaultFeatures
    /// How the fd was opened: `"syscall"` or `"/dev/userfaultfd"`.
    public let openedThrough: String
    let fd: Int32
    private let stopFD: Int32
    private let handler: Handler
    private var threads: [pthread_t] = []
    private let stopping = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    private let lock = HostLock()
    /// Thread ids of the handler threads, for the called-from-handler check.
    private var handlerThreadIDs: [pid_t] = []
    let eventCount = Atomic<UInt64>(0)
    let refusalCount = Atomic<UInt64>(0)
    private let refusalObject: MemoryObject?

    /// Whether userfaultfd can be used, and the features offered; or why not.
    public static func probe() -> Result<UserFaultFeatures, HostMemoryError> {
        var how: Int32 = 0
        let fd = vmk_uffd_open(&how)
        guard fd >= 0 else { return .failure(unavailable(-fd, how)) }
        var features: UInt64 = 0
        var ioctls: UInt64 = 0
        let r = vmk_uffd_handshake(fd, ~0, &features, &ioctls)
        guard r >= 0 else { return .failure(.userfaultfdUnavailable(reason: "UFFDIO_API: \(HostMemoryError.errnoName(-r))")) }
        close(r)
        return .success(UserFaultFeatures(rawValue: features))
    }

    static func unavailable(_ e: Int32, _ how: Int32) -> HostMemoryError {
        let reason: String
        switch e {
        case EPERM, EACCES:
            reason = "not permitted (\(HostMemoryError.errnoName(e))): run as root, or set vm.unprivileged_userfaultfd=1, or give access to /dev/userfaultfd"
        case ENOSYS, ENOENT:
            reason = "the kernel has no userfaultfd (\(HostMemoryError.errnoName(e)))"
        default:
            reason = "\(how == 1 ? "userfaultfd()" : "/dev/userfaultfd") failed with \(HostMemoryError.errnoName(e))"
        }
        return .userfaultfdUnavailable(reason: reason)
    }

    /// Opens a userfaultfd with every feature the kernel offers that the
    /// service uses, and starts `threads` handler threads (1 to 64).
    public init(threads: Int = 1, handler: @escaping Handler) throws(HostMemoryError) {
        guard (1...64).contains(threads) else {
            throw .invalidArgument(name: "handler threads", value: UInt64(max(threads, 0)), reason: "must be 1 to 64")
        }
        var how: Int32 = 0
        var fd = vmk_uffd_open(&how)
        guard fd >= 0 else { throw Self.unavailable(-fd, how) }
        openedThrough = how == 1 ? "syscall" : "/dev/userfaultfd"
        let wanted = UserFaultFeatures([.writeProtect, .missingShmem, .threadID, .minorShmem, .writeProtectShmem])
        var features: UInt64 = 0
        var ioctls: UInt64 = 0
        fd = vmk_uffd_handshake(fd, wanted.rawValue, &features, &ioctls)
        guard fd >= 0 else { throw .userfaultfdUnavailable(reason: "UFFDIO_API: \(HostMemoryError.errnoName(-fd))") }
        let stop = vmk_eventfd()
        guard stop >= 0 else {
            close(fd)
            throw .system(call: "eventfd", errno: -stop, detail: "for the fault service's stop signal")
        }
        self.fd = fd
        self.stopFD = stop
        self.features = UserFaultFeatures(rawValue: features)
        self.handler = handler
        // An empty memfd: a shared mapping of it raises SIGBUS on any touch.
        refusalObject = try? MemoryObject.memfd(name: "vmkit-refused", size: 0, sealable: false)
        for _ in 0..<threads {
            do throws(HostMemoryError) {
                try startThread()
            } catch {
                stopNow()
                throw error
            }
        }
    }

    deinit { stopNow() }

    /// Events read so far.
    public var eventsRead: UInt64 { eventCount.load(ordering: .relaxed) }
    /// Faults refused so far.
    public var refusals: UInt64 { refusalCount.load(ordering: .relaxed) }
    /// Whether ``stop()`` has run.
    public var isStopped: Bool { stopped.load(ordering: .acquiring) }

    // MARK: Registration

    /// Sends faults of `[address, address + length)` to this service.
    public func register(at address: UInt64, length: UInt64, modes: UserFaultModes) throws(HostMemoryError) {
        try checkRunning()
        var ioctls: UInt64 = 0
        let r = vmk_uffd_register(fd, address, length, modes.rawValue, &ioctls)
        guard r == 0 else {
            throw .system(call: "UFFDIO_REGISTER", errno: -r, detail: Self.range(address, length) + " modes \(modes.rawValue)")
        }
    }

    /// Stops sending faults of the range here.
    public func unregister(at address: UInt64, length: UInt64) throws(HostMemoryError) {
        try checkRunning()
        let r = vmk_uffd_unregister(fd, address, length)
        guard r == 0 else { throw .system(call: "UFFDIO_UNREGISTER", errno: -r, detail: Self.range(address, length)) }
    }

    // MARK: Answers

    /// What a fill found.
    public enum FillResult: Hashable, Sendable {
        /// Every byte was filled.
        case filled
        /// A page in the range was already there; `bytes` were filled before it.
        case alreadyPresent(bytes: UInt64)
    }

    /// `UFFDIO_COPY`: copies `length` bytes from `source` to the pages at
    /// `address` and wakes the threads waiting on them.
    @discardableResult
    public func copy(to address: UInt64, from source: UnsafeRawPointer, length: UInt64,
                     wake: Bool = true) throws(HostMemoryError) -> FillResult {
        try fill("UFFDIO_COPY", address, length) { a, l, done in
            vmk_uffd_copy(fd, a, source + Int(a - address), l, wake ? 0 : 1, done)
        }
    }

    /// `UFFDIO_ZEROPAGE`: maps the zero page (anonymous) or a zeroed page.
    @discardableResult
    public func zero(at address: UInt64, length: UInt64, wake: Bool = true) throws(HostMemoryError) -> FillResult {
        try fill("UFFDIO_ZEROPAGE", address, length) { a, l, done in vmk_uffd_zeropage(fd, a, l, wake ? 0 : 1, done) }
    }

    /// `UFFDIO_CONTINUE`: maps the page-cache pages already there (minor faults).
    @discardableResult
    public func continueMapping(at address: UInt64, length: UInt64,
                                wake: Bool = true) throws(HostMemoryError) -> FillResult {
        try fill("UFFDIO_CONTINUE", address, length) { a, l, done in vmk_uffd_continue(fd, a, l, wake ? 0 : 1, done) }
    }

    /// `UFFDIO_WAKE`: lets the threads waiting on the range retry.
    public func wake(at address: UInt64, length: UInt64) throws(HostMemoryError) {
        let r = vmk_uffd_wake(fd, address, length)
        guard r == 0 else { throw .system(call: "UFFDIO_WAKE", errno: -r, detail: Self.range(address, length)) }
    }

    /// `UFFDIO_WRITEPROTECT`: sets or clears write protection (WP mode).
    public func writeProtect(at address: UInt64, length: UInt64, protect: Bool) throws(HostMemoryError) {
        guard features.contains(.writeProtect) else {
            throw .userfaultfdUnavailable(reason: "this kernel offers no write-protect mode")
        }
        let r = vmk_uffd_writeprotect(fd, address, length, protect ? 1 : 0)
        guard r == 0 else { throw .system(call: "UFFDIO_WRITEPROTECT", errno: -r, detail: Self.range(address, length)) }
    }

    /// Refuses the fault at `page`: maps an empty object's page there (any
    /// touch raises `SIGBUS`) and wakes the thread.
    public func refuse(page: UInt64) throws(HostMemoryError) {
        refusalCount.add(1, ordering: .relaxed)
        if let object = refusalObject {
            let r = mmap(UnsafeMutableRawPointer(bitPattern: UInt(page)), Int(HostReservation.pageSize),
                         PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, object.fd, 0)
            guard let r, r != MAP_FAILED else {
                throw .system(call: "mmap", errno: errno, detail: "of the refusal page at 0x\(String(page, radix: 16))")
            }
        }
        try? wake(at: page, length: HostReservation.pageSize)
    }

    /// Runs a fill ioctl over the range. A fill that stops part-way (most
    /// often at a page already there) fails with `EAGAIN` and says how much
    /// it did, not why it stopped: it is run again from there, so that a
    /// present page comes back as `alreadyPresent` with the bytes before it.
    /// A range that reaches from one host mapping into another (a protection
    /// change or an `mlock` split the segment's mapping, a refused page sits
    /// in it) fails whole with `ENOENT`: it is then filled a page at a time,
    /// and a page that belongs to no registered mapping ends the fill as if
    /// it were present.
    private func fill(_ call: String, _ address: UInt64, _ length: UInt64,
                      _ ioctl: (UInt64, UInt64, UnsafeMutablePointer<Int64>) -> Int32) throws(HostMemoryError) -> FillResult {
        let pageSize = HostReservation.pageSize
        var filled: UInt64 = 0
        var pageAtATime = false
        while true {
            let len = pageAtATime ? pageSize : length - filled
            var done: Int64 = 0
            let r = ioctl(address + filled, len, &done)
            if r == 0 {
                filled += len
                if filled >= length { return .filled }
                continue
            }
            if r == -EEXIST { return .alreadyPresent(bytes: filled + UInt64(max(done, 0))) }
            if r == -EAGAIN, done > 0, UInt64(done) < len {
                filled += UInt64(done)
                continue
            }
            if r == -ENOENT, done <= 0 {
                if !pageAtATime, len > pageSize {
                    pageAtATime = true
                    continue
                }
                if filled > 0 { return .alreadyPresent(bytes: filled) }
            }
            throw .system(call: call, errno: -r, detail: Self.range(address, length))
        }
    }

    static func range(_ a: UInt64, _ l: UInt64) -> String {
        "of [0x\(String(a, radix: 16)), +0x\(String(l, radix: 16)))"
    }

    // MARK: Threads

    private func checkRunning() throws(HostMemoryError) {
        guard !stopping.load(ordering: .acquiring) else { throw .destroyed(what: "the fault service") }
    }

    /// Whether the calling thread is one of this service's handler threads.
    public var isHandlerThread: Bool {
        let me = vmk_gettid()
        return lock.withLock { handlerThreadIDs.contains(me) }
    }

    /// Stops the handler threads and closes the fd. Refused from a handler
    /// thread (it would wait for itself). Idempotent.
    public func stop() throws(HostMemoryError) {
        if isHandlerThread { throw .calledFromHandler(operation: "UserFaultService.stop") }
        stopNow()
    }

    private func stopNow() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        _ = vmk_eventfd_signal(stopFD)
        let joined = lock.withLock { threads }
        let me = pthread_self()
        for t in joined {
            // The last reference may be dropped on a handler thread itself.
            if pthread_equal(t, me) != 0 { pthread_detach(t) } else { pthread_join(t, nil) }
        }
        close(fd)
        close(stopFD)
        stopped.store(true, ordering: .releasing)
    }

    private func startThread() throws(HostMemoryError) {
        let box = Unmanaged.passRetained(_ServiceBox(self))
        var thread = pthread_t()
        let r = pthread_create(&thread, nil, { raw in
            UserFaultService.serve(Unmanaged<_ServiceBox>.fromOpaque(raw!).takeRetainedValue())
            return nil
        }, box.toOpaque())
        guard r == 0 else {
            box.release()
            throw .system(call: "pthread_create", errno: r, detail: "for a fault handler thread")
        }
        lock.withLock { threads.append(thread) }
    }

    /// A handler thread's loop. It holds the service strongly only while it
    /// handles events, never while it sleeps in `poll`: a service dropped by
    /// its owner deinitialises, which signals the stop fd and joins.
    private static func serve(_ box: _ServiceBox) {
        _ = vmk_guard_altstack()
        // The stack would outlive the thread (64 KiB per handler thread ever started).
        defer { _ = vmk_guard_altstack_release() }
        let fd: Int32
        let stopFD: Int32
        do {
            guard let service = box.service else { return }
            fd = service.fd
            stopFD = service.stopFD
            let me = vmk_gettid()
            service.lock.withLock { service.handlerThreadIDs.append(me) }
        }
        let events = UnsafeMutablePointer<vmk_uffd_event>.allocate(capacity: 16)
        defer { events.deallocate() }
        while box.service != nil {
            let ready = vmk_uffd_poll(fd, stopFD, -1)
            if ready < 0 || ready & 2 != 0 { return }
            guard let service = box.service, !service.stopping.load(ordering: .acquiring) else { return }
            service.drain(events)
        }
    }

    /// Reads the queued events and hands each page fault to the handler.
    private func drain(_ events: UnsafeMutablePointer<vmk_uffd_event>) {
        let n = vmk_uffd_read(fd, events, 16)
        guard n > 0 else { return }
        eventCount.add(UInt64(n), ordering: .relaxed)
        for i in 0..<Int(n) where events[i].kind == 1 {
            let e = events[i]
            let fault = UserFault(address: e.address, isWrite: e.flags & UInt64(VMK_UFFD_FLAG_WRITE) != 0,
                                  isWriteProtect: e.flags & UInt64(VMK_UFFD_FLAG_WP) != 0,
                                  isMinor: e.flags & UInt64(VMK_UFFD_FLAG_MINOR) != 0, thread: e.thread)
            switch handler(fault, self) {
            case .resolved: break
            case .wake: try? wake(at: fault.page, length: HostReservation.pageSize)
            case .refuse: try? refuse(page: fault.page)
            }
        }
    }
}

/// Hands the service to a new thread without keeping it alive: a service
/// nobody holds any more stops in its deinit.
private final class _ServiceBox {
    weak var service: UserFaultService?
    init(_ s: UserFaultService) { service = s }
}
