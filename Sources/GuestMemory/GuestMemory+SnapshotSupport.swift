// Read-only accessors for GuestSnapshot (no behaviour of the existing code changes).

extension GuestMemory {
    /// The names of the dirty logs attached (``attachDirtyLog(_:)``): a
    /// memory with one attached has a hypervisor (KVM) writing into it, which
    /// a snapshot restore treats as running.
    public var attachedDirtyLogNames: [String] {
        lock.reading { dirtyLogs.map(\.dirtyLogName) }
    }

    /// Whether ``destroy()`` has run.
    public var isDestroyed: Bool { lock.reading { isDestroyedFlag } }
}
