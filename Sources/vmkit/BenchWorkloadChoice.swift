import ArgumentParser

/// `--workload NAME` of the three `bench` commands: the named workload, or
/// all of them when none is named; an unknown name is a usage error that
/// lists the names.
enum BenchWorkloadChoice {
    static func chosen<W: RawRepresentable & CaseIterable>(_ name: String?) throws -> [W] where W.RawValue == String {
        guard let name else { return Array(W.allCases) }
        guard let w = W(rawValue: name) else {
            throw ValidationError("unknown workload '\(name)'; expected one of \(names(W.self))")
        }
        return [w]
    }

    /// The workload names, for the message and the option's help.
    static func names<W: RawRepresentable & CaseIterable>(_: W.Type) -> String where W.RawValue == String {
        W.allCases.map(\.rawValue).joined(separator: ", ")
    }
}
