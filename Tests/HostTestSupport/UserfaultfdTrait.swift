import Testing
import HostMemory
#if canImport(Glibc)
import Glibc
#endif

extension Trait where Self == ConditionTrait {
    /// Runs the suite where userfaultfd works, and always as root: this
    /// machine and CI run as root with /dev/userfaultfd, so there a missing
    /// userfaultfd fails the tests instead of skipping them. Elsewhere (not
    /// root, `vm.unprivileged_userfaultfd=0`) the suite is skipped, and the
    /// fallback suite still runs.
    public static var userfaultfdOrRoot: Self {
        .enabled("userfaultfd is not available to this user: \(UserFaultAvailability.reason ?? "")") {
            UserFaultAvailability.reason == nil || getuid() == 0
        }
    }
}

public enum UserFaultAvailability {
    /// Why userfaultfd cannot be used here, or nil when it can.
    public static let reason: String? = {
        if case .failure(let e) = UserFaultService.probe() { return e.description }
        return nil
    }()
}
