/// Which kernel's layout rules to apply.
///
/// * ``post12608``: amd64 after illumos 12608/12609 (2020): `segkvmm` at 4x
///   physmem, the 8x large-memory rule, memory DR disabled.
/// * ``pre12608``: amd64 before 12608: the old 4x rule with its
///   miscalculation, and memory DR through `plat_dr_physmax`.
/// * ``i386``: the 32-bit kernel: kernelbase moves down as valloc grows, no
///   kpm, and `segkp` is an arena importing from `heap`.
public enum LayoutModel: String, CaseIterable, Sendable, Hashable {
    case post12608 = "post-12608"
    case pre12608 = "pre-12608"
    case i386 = "i386"

    /// The model named `name` (`post-12608`, `pre-12608` or `i386`; case is
    /// ignored).
    public init(parsing name: String) throws(LayoutError) {
        let lowered = name.lowercased()
        guard let model = LayoutModel(rawValue: lowered) else {
            throw .unknownModel(name)
        }
        self = model
    }

    /// The name used on the command line and in JSON.
    public var name: String { rawValue }

    /// Whether this is one of the two amd64 models.
    public var isAMD64: Bool { self != .i386 }
}
