import Foundation
import GuestKVM
import Testing

/// Whether the vCPU parts can run. As root with `/dev/kvm` present a KVM
/// failure fails the test (CI has KVM); otherwise the reason is printed and
/// only the vCPU part is skipped.
enum KVMTestSupport {
    static let unavailableReason: String? = KVMDevice.unavailableReason()

    static var mustHaveKVM: Bool { getuid() == 0 && FileManager.default.fileExists(atPath: "/dev/kvm") }

    /// True when the vCPU part should run; records a failure when KVM is
    /// expected here and does not work.
    static func kvmUsable(_ what: String) -> Bool {
        guard let reason = unavailableReason else { return true }
        if mustHaveKVM {
            Issue.record("KVM should work here (root, /dev/kvm present) but: \(reason)")
        } else {
            print("skipping the vCPU part of \(what): \(reason)")
        }
        return false
    }
}
