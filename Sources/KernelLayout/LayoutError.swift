import Vmem
/// Why a layout (or a sweep of layouts) cannot be computed from a
/// configuration. Every case names the offending value.
///
/// A layout that *can* be computed but breaks an invariant (a heap too small,
/// an address that wraps past 2^64) is not an error: it is a layout whose
/// ``Layout/failedChecks`` say so.
public enum LayoutError: Error, Hashable, Sendable {
    /// A size that must be at least one page is smaller (`physmem`, `toxic-size`).
    case zeroSize(name: String, value: UInt64)
    /// `physmax` (the end of physical memory) lies below `physmem`.
    case physmaxBelowPhysmem(physmax: UInt64, physmem: UInt64)
    /// A value outside the range the model can represent.
    case outOfRange(name: String, value: UInt64, minimum: UInt64, maximum: UInt64)
    /// A tunable the kernel keeps in pages, given as bytes that are not a whole number of pages.
    case unaligned(name: String, value: UInt64, alignment: UInt64)
    /// A model name other than `post-12608`, `pre-12608`, `i386`.
    case unknownModel(String)
    /// A SIZE argument that does not parse.
    case unparsableSize(name: String, text: String, reason: SizeParseError)
    /// A sweep with a step of 0.
    case zeroStep
    /// A sweep whose `from` lies above its `to`.
    case emptySweep(from: UInt64, to: UInt64)
}

extension LayoutError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .zeroSize(let name, let value):
            return "\(name) \(Hex.lower(value)) is smaller than one 4 KiB page"
        case .physmaxBelowPhysmem(let physmax, let physmem):
            return "physmax \(Hex.lower(physmax)) is below physmem \(Hex.lower(physmem))"
        case .outOfRange(let name, let value, let minimum, let maximum):
            return "\(name) \(Hex.lower(value)) is outside [\(Hex.lower(minimum)), \(Hex.lower(maximum))]"
        case .unaligned(let name, let value, let alignment):
            return "\(name) \(Hex.lower(value)) is not a multiple of \(Hex.lower(alignment))"
        case .unknownModel(let name):
            return "unknown model '\(name)' (expected one of: "
                + LayoutModel.allCases.map(\.name).joined(separator: ", ") + ")"
        case .unparsableSize(let name, _, let reason):
            return "\(name): \(reason)"
        case .zeroStep:
            return "sweep step must not be 0"
        case .emptySweep(let from, let to):
            return "sweep from \(Hex.lower(from)) is above to \(Hex.lower(to))"
        }
    }
}
