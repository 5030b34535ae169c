internal import CGuestKVM
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `/dev/kvm`: the API version check, capabilities, and the size of a vCPU's
/// shared `kvm_run` area. One per process is plenty; VMs keep theirs alive.
public final class KVMDevice: @unchecked Sendable {
    /// The API version every KVM since Linux 2.6.22 answers.
    public static let apiVersion: Int32 = 12

    /// Capability numbers (`KVM_CAP_*`) this module asks about.
    public enum Capability: Int32, CaseIterable, Sendable {
        case userMemory = 3
        case setTSSAddress = 4
        case nrMemslots = 10
        case readonlyMemory = 81
        case immediateExit = 136
        case manualDirtyLogProtect2 = 168
        case dirtyLogRing = 192
        case dirtyLogRingAcquireRelease = 223

        public var name: String {
            switch self {
            case .userMemory: "KVM_CAP_USER_MEMORY"
            case .setTSSAddress: "KVM_CAP_SET_TSS_ADDR"
            case .nrMemslots: "KVM_CAP_NR_MEMSLOTS"
            case .readonlyMemory: "KVM_CAP_READONLY_MEM"
            case .immediateExit: "KVM_CAP_IMMEDIATE_EXIT"
            case .manualDirtyLogProtect2: "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2"
            case .dirtyLogRing: "KVM_CAP_DIRTY_LOG_RING"
            case .dirtyLogRingAcquireRelease: "KVM_CAP_DIRTY_LOG_RING_ACQ_REL"
            }
        }
    }

    public let path: String
    let fd: Int32
    /// Bytes of a vCPU's `kvm_run` mapping (`KVM_GET_VCPU_MMAP_SIZE`).
    public let vcpuMapSize: Int

    /// Opens `path` and checks the API version and the capabilities every VM
    /// here relies on (user memory, TSS address, immediate exit).
    public init(path: String = "/dev/kvm") throws(KVMError) {
        let fd = vkvm_open(path)
        guard fd >= 0 else { throw .unavailable(path: path, reason: String(cString: strerror(-fd))) }
        self.path = path
        self.fd = fd
        let version = vkvm_get_api_version(fd)
        guard version == Self.apiVersion else {
            close(fd)
            if version < 0 { throw .unavailable(path: path, reason: "not a KVM device (\(String(cString: strerror(-version))))") }
            throw .apiVersion(found: version, expected: Self.apiVersion)
        }
        for cap in [Capability.userMemory, .setTSSAddress, .immediateExit] where vkvm_check_extension(fd, Int(cap.rawValue)) <= 0 {
            close(fd)
            throw .missingCapability(name: cap.name, number: cap.rawValue)
        }
        let size = vkvm_vcpu_mmap_size(fd)
        guard size > 0 else {
            close(fd)
            throw .system(call: "KVM_GET_VCPU_MMAP_SIZE", errno: -size)
        }
        vcpuMapSize = Int(size)
    }

    deinit { close(fd) }

    /// `KVM_CHECK_EXTENSION` on `/dev/kvm`: 0 when absent, else the
    /// capability's value (a count, a size, or 1).
    public func check(_ capability: Capability) -> Int {
        max(0, Int(vkvm_check_extension(fd, Int(capability.rawValue))))
    }

    /// Why KVM cannot be used here, in one line, or nil when it can.
    public static func unavailableReason(path: String = "/dev/kvm") -> String? {
        do {
            _ = try KVMDevice(path: path)
            return nil
        } catch {
            return error.description
        }
    }
}
