/// `KPD_*`: how a segkp resource is made (`vm/seg_kp.h`, address-space.md §3.7).
public struct SegKpFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `KPD_ZERO` (0x01): zero-fill.
    public static let zero = SegKpFlags(rawValue: 0x01)
    /// `KPD_LOCKED` (0x02): keep the pages locked in memory.
    public static let locked = SegKpFlags(rawValue: 0x02)
    /// `KPD_NO_ANON` (0x04): no swap reservation; pages on `kvps[KV_KVP]`.
    /// Only valid with `KPD_LOCKED`.
    public static let noAnon = SegKpFlags(rawValue: 0x04)
    /// `KPD_HASREDZONE` (0x08): an unmapped page below the resource.
    public static let hasRedZone = SegKpFlags(rawValue: 0x08)
    /// `KPD_NOWAIT` (0x10): do not wait for resources (the model never waits).
    public static let noWait = SegKpFlags(rawValue: 0x10)
    /// `KPD_WRITEDIRTY` (0x20)
    public static let writeDirty = SegKpFlags(rawValue: 0x20)
    /// `KPD_HASAMP` (0x40): the caller supplies the anon map (not modelled).
    public static let hasAnonMap = SegKpFlags(rawValue: 0x40)

    /// What `thread_create` asks of the `segkp_thread` cache.
    public static let threadStack: SegKpFlags = [.hasRedZone, .locked, .noAnon]
    /// What an LWP stack asks (`segkp_lwp`): anon-backed, so its pages are "Anon".
    public static let lwpStack: SegKpFlags = [.noWait, .hasRedZone, .locked]

    public var description: String {
        let names: [(SegKpFlags, String)] = [(.zero, "KPD_ZERO"), (.locked, "KPD_LOCKED"), (.noAnon, "KPD_NO_ANON"),
                                             (.hasRedZone, "KPD_HASREDZONE"), (.noWait, "KPD_NOWAIT"),
                                             (.writeDirty, "KPD_WRITEDIRTY"), (.hasAnonMap, "KPD_HASAMP")]
        let set = names.filter { contains($0.0) }.map(\.1)
        return set.isEmpty ? "0" : set.joined(separator: "|")
    }
}

/// One segkp resource (`struct segkp_data`).
public struct SegKpResource: Hashable, Sendable {
    /// `kp_base`: the first page, which is the red zone when there is one.
    public var base: UInt64
    /// `kp_len`: including the red zone.
    public var length: UInt64
    public var flags: SegKpFlags
    /// `kp_cookie`: the cache it returns to, or -1.
    public var cookie: Int
    /// `kp_anon_idx`: the first anon slot (pages of anon-backed resources
    /// are named on the swapfs vnode at slot × 4096).
    public var anonIndex: UInt64
    /// Whether the pages are currently locked (`KPD_LOCKED` in `kp_flags`,
    /// which `F_SOFTLOCK` / `F_SOFTUNLOCK` set and clear).
    public var isLocked: Bool { flags.contains(.locked) }

    /// `stom()`: what the caller gets, the first mapped address.
    public var mappedBase: UInt64 { flags.contains(.hasRedZone) ? base + 4096 : base }
    /// `SEGKP_MAPLEN()`: the mapped length.
    public var mappedLength: UInt64 { flags.contains(.hasRedZone) ? length - 4096 : length }
    /// The red-zone page, if any (x86 stacks grow down: it is page 0).
    public var redZone: Range<UInt64>? { flags.contains(.hasRedZone) ? base ..< base + 4096 : nil }

    public func contains(_ address: UInt64) -> Bool { address >= base && address - base < length }
}
