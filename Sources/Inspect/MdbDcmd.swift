/// One dcmd of ``MdbSession``: what `::dcmds` lists, what `::help NAME` and
/// a usage error print, and the code that runs it.
///
/// A dcmd is called once per address. Alone (`ADDR::vmem`) it is called
/// once; at the end of a pipeline (`::walk vmem | ::vmem`) once for each
/// address the walk yields, with ``MdbInvocation/loop`` set and
/// ``MdbInvocation/loopFirst`` on the first call only, so that a table
/// prints its header once and then one row per address, as mdb's
/// `DCMD_LOOP` / `DCMD_LOOPFIRST` flags arrange.
public struct MdbDcmd: Sendable {
    /// Whether the dcmd takes an address before its `::`.
    public enum AddressUse: Sendable {
        /// `::NAME` only; an address is a usage error.
        case none
        /// `::NAME` or `ADDR::NAME`.
        case optional
        /// `ADDR::NAME` only.
        case required
    }

    public let name: String
    public let address: AddressUse
    /// The options and arguments after the name, as the usage line shows them.
    public let arguments: String
    /// One line for `::dcmds`.
    public let summary: String
    /// More text for `::help NAME` (may be empty).
    public let details: String
    let run: @Sendable (MdbSession, MdbInvocation) -> MdbSession.Output

    /// The usage line, as `::help` and a usage error print it.
    public var usage: String {
        let prefix: String
        switch address {
        case .none: prefix = ""
        case .optional: prefix = "[ADDR]"
        case .required: prefix = "ADDR"
        }
        return prefix + "::" + name + (arguments.isEmpty ? "" : " " + arguments)
    }
}

/// One call of a dcmd.
public struct MdbInvocation: Sendable {
    /// The address before `::`, or the one the pipeline feeds.
    public var address: UInt64?
    /// The words after the name.
    public var arguments: [String]
    /// Called from a pipeline, once per address (`DCMD_LOOP`).
    public var loop: Bool
    /// The first call of a pipeline (`DCMD_LOOPFIRST`): print the header.
    public var loopFirst: Bool

    /// Whether a table should print its header on this call.
    public var printsHeader: Bool { !loop || loopFirst }
}

/// One walker: `[ADDR]::walk NAME` prints the addresses it yields, one per
/// line; in a pipeline they are fed to the next stage.
public struct MdbWalker: Sendable {
    public let name: String
    public let address: MdbDcmd.AddressUse
    /// One line for `::walkers`.
    public let summary: String
    let walk: @Sendable (MdbSession, UInt64?) -> Result<[UInt64], MdbSession.Output.Failure>
}
