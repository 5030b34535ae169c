import HostMemory
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What a VM shares with its dirty log: the VM fd, the slots with their
/// bitmaps, the vCPUs (whose rings the ring log reads), under one lock.
/// The guest memory holds the log and the log holds this, never the
/// ``KVMVirtualMachine`` itself, so there is no cycle and a log still
/// attached after its VM is gone can drain (the fd closes with this).
final class KVMVMCore: @unchecked Sendable {
    let fd: Int32
    /// Guards everything below. Taken before the guest memory's lock, never after.
    let lock = HostLock()
    /// Sorted by gpa, never overlapping.
    var slotStates: [KVMSlotState] = []
    var vcpuList: [KVMVCPU] = []
    /// Pages KVM reported for slots since deleted.
    var retiredGuestPages: [UInt64] = []

    init(fd: Int32) { self.fd = fd }

    deinit {
        vcpuList.removeAll()
        close(fd)
    }

    /// The slot state with KVM slot number `slot`. Under `lock`.
    func state(slot: UInt32) -> KVMSlotState? {
        for s in slotStates where s.slot.slot == slot { return s }
        return nil
    }
}
