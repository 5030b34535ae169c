import HostMemory

/// A mapping's rights, or the rights an access needs: a subset of read,
/// write, execute, numbered like `PROT_*` (and EPT bits 0–2).
public struct GuestProtection: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let read = GuestProtection(rawValue: 1)
    public static let write = GuestProtection(rawValue: 2)
    public static let execute = GuestProtection(rawValue: 4)
    public static let readWrite: GuestProtection = [.read, .write]
    public static let all: GuestProtection = [.read, .write, .execute]

    /// Parses `r`, `rw`, `rx`, `rwx`, `w`, `wx`, `x` (letters in that order).
    public init?(_ word: String) {
        var p: GuestProtection = []
        var last = 0
        for c in word {
            let (bit, rank): (GuestProtection, Int) = switch c {
            case "r": (.read, 1)
            case "w": (.write, 2)
            case "x": (.execute, 3)
            default: ([], 0)
            }
            guard rank > last else { return nil }
            last = rank
            p.insert(bit)
        }
        guard !p.isEmpty else { return nil }
        self = p
    }

    /// Non-empty and within r|w|x.
    public var isValid: Bool { rawValue != 0 && rawValue & ~7 == 0 }

    /// `rwx`, `r--`.
    public var description: String {
        (contains(.read) ? "r" : "-") + (contains(.write) ? "w" : "-") + (contains(.execute) ? "x" : "-")
    }

    /// The word §7 prints: `rw`, `rx`.
    public var word: String {
        (contains(.read) ? "r" : "") + (contains(.write) ? "w" : "") + (contains(.execute) ? "x" : "")
    }

    /// How the VMM's own view is mapped: read and write as the guest has
    /// them; execute is a guest right only (the host never runs guest code)
    /// but gives a read view, since the VMM fetches instructions to emulate.
    var hostProtection: HostProtection {
        var h: HostProtection = []
        if contains(.read) || contains(.execute) { h.insert(.read) }
        if contains(.write) { h.insert(.write) }
        return h
    }
}
