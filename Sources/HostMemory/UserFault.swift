/// One page fault delivered by userfaultfd.
public struct UserFault: Hashable, Sendable {
    /// The faulting address (the kernel gives the page's address unless
    /// exact addresses were asked for).
    public let address: UInt64
    /// The access was a write.
    public let isWrite: Bool
    /// A write to a write-protected page (WP mode).
    public let isWriteProtect: Bool
    /// The page is in the page cache but not mapped (MINOR mode).
    public let isMinor: Bool
    /// The faulting thread's id, where the kernel reports it (0 otherwise).
    public let thread: UInt32

    public init(address: UInt64, isWrite: Bool, isWriteProtect: Bool = false, isMinor: Bool = false,
                thread: UInt32 = 0) {
        self.address = address
        self.isWrite = isWrite
        self.isWriteProtect = isWriteProtect
        self.isMinor = isMinor
        self.thread = thread
    }

    /// The page holding the address.
    public var page: UInt64 { address & ~(HostReservation.pageSize - 1) }
}

/// What a fault handler did with a fault.
public enum UserFaultAnswer: Hashable, Sendable {
    /// The handler filled the page (copy, zero page or continue), which woke
    /// the faulting thread.
    case resolved
    /// Nothing to fill: wake the thread so it retries the access (after an
    /// unmap it then meets the `PROT_NONE` reservation).
    case wake
    /// Refuse: the faulting thread gets `SIGBUS`.
    case refuse
}

/// Registration modes (`UFFDIO_REGISTER_MODE_*`).
public struct UserFaultModes: OptionSet, Hashable, Sendable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    /// Faults on pages that are not there.
    public static let missing = UserFaultModes(rawValue: 1)
    /// Writes to write-protected pages.
    public static let writeProtect = UserFaultModes(rawValue: 2)
    /// Faults on shared-memory pages present in the page cache but not mapped.
    public static let minor = UserFaultModes(rawValue: 4)
}

/// What the kernel's userfaultfd offers, detected at run time.
public struct UserFaultFeatures: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    /// Write-protect mode on anonymous memory.
    public static let writeProtect = UserFaultFeatures(rawValue: 1 << 0)
    /// Missing mode on shared memory.
    public static let missingShmem = UserFaultFeatures(rawValue: 1 << 5)
    public static let sigbus = UserFaultFeatures(rawValue: 1 << 7)
    /// The faulting thread's id in each event.
    public static let threadID = UserFaultFeatures(rawValue: 1 << 8)
    /// Minor mode on shared memory (answered with `UFFDIO_CONTINUE`).
    public static let minorShmem = UserFaultFeatures(rawValue: 1 << 10)
    /// Write-protect mode on shared memory and hugetlbfs.
    public static let writeProtectShmem = UserFaultFeatures(rawValue: 1 << 12)

    public var description: String {
        var names: [String] = ["missing"]
        if contains(.writeProtect) { names.append("wp") }
        if contains(.minorShmem) { names.append("minor") }
        if contains(.missingShmem) { names.append("shmem") }
        if contains(.writeProtectShmem) { names.append("wp-shmem") }
        return names.joined(separator: ",")
    }
}
