/// A run of consecutive swept configurations that fail the same check.
public struct SweepViolation: Sendable, Hashable {
    public var check: LayoutCheck
    /// physmem of the first and last failing configuration (inclusive).
    public var from: UInt64
    public var to: UInt64
    /// How many configurations the run holds.
    public var count: UInt64

    public init(check: LayoutCheck, from: UInt64, to: UInt64, count: UInt64) {
        self.check = check
        self.from = from
        self.to = to
        self.count = count
    }
}

/// What a sweep found.
public struct SweepResult: Sendable, Hashable {
    public var model: LayoutModel
    /// Layouts computed and checked.
    public var layouts: UInt64
    /// Runs of failures, ordered by `from`, then by check.
    public var violations: [SweepViolation]
    /// Wall-clock time, filled in by whoever timed the run.
    public var seconds: Double

    /// Failures summed over all runs: one per (check, configuration) pair.
    public var violatingLayoutChecks: UInt64 { violations.reduce(0) { $0 + $1.count } }

    /// `{"model": …, "layouts": …, "seconds": …, "violations": [{"check", "from", "to", "count"}]}`.
    public func json() -> String {
        let items = violations.map { v in
            JSONText.object([
                ("check", JSONText.string(v.check.name)), ("from", JSONText.hex(v.from)),
                ("to", JSONText.hex(v.to)), ("count", String(v.count)),
            ])
        }
        return "{" + [
            "\"model\": " + JSONText.string(model.name),
            "\"layouts\": \(layouts)",
            "\"seconds\": " + JSONText.seconds(seconds),
            "\"violations\": [" + items.joined(separator: ", ") + "]",
        ].joined(separator: ", ") + "}\n"
    }

    /// One line per violation run, human-readable.
    public func violationLines() -> [String] {
        violations.map { v in
            "\(v.check.name): physmem \(Hex.lower(v.from)) (\(HumanSize.format(v.from))) .. \(Hex.lower(v.to)) (\(HumanSize.format(v.to))), \(v.count) layout\(v.count == 1 ? "" : "s")"
        }
    }

    /// The closing one-line summary: layouts computed, violations, time.
    public func summary() -> String {
        let runs = violations.count
        return "\(model.name): \(layouts) layouts computed, \(runs) violation range\(runs == 1 ? "" : "s") (\(violatingLayoutChecks) failing layout checks) in \(JSONText.seconds(seconds)) s"
    }
}

/// Computes and checks every layout for physmem = from, from + step, … ≤ to,
/// grouping consecutive failures of each check into ranges.
///
/// Each configuration is the template with `physmem` replaced and `physmax`
/// equal to it (contiguous memory); every other tunable is kept.
public struct LayoutSweep: Sendable {
    public var template: LayoutConfiguration
    public var from: UInt64
    public var to: UInt64
    public var step: UInt64

    /// Validates the range and the template at both ends.
    public init(template: LayoutConfiguration, from: UInt64, to: UInt64, step: UInt64) throws(LayoutError) {
        if step == 0 { throw .zeroStep }
        if from > to { throw .emptySweep(from: from, to: to) }
        var first = template
        first.physmem = from
        first.physmax = nil
        try first.validate()
        var last = template
        last.physmem = to
        last.physmax = nil
        try last.validate()
        self.template = template
        self.from = from
        self.to = to
        self.step = step
    }

    /// How many layouts the sweep computes.
    public var count: UInt64 { (to - from) / step + 1 }

    /// Runs the sweep. `progress(done, total)` is called about a hundred
    /// times, and once at the end.
    public func run(progress: (UInt64, UInt64) -> Void = { _, _ in }) -> SweepResult {
        let total = count
        let reportEvery = max(1, total / 100)
        // Per check: the open run (first physmem, last physmem, length).
        var open: [(from: UInt64, to: UInt64, count: UInt64)?] = Array(repeating: nil, count: LayoutCheck.allCases.count)
        var closed: [SweepViolation] = []
        let checks = LayoutCheck.allCases
        var configuration = template
        configuration.physmax = nil
        var physmem = from
        var done: UInt64 = 0
        while true {
            configuration.physmem = physmem
            // Validated at both ends; every value in between is valid too.
            let failed: LayoutCheckSet
            do {
                failed = try Layout(configuration).failedChecks
            } catch {
                failed = LayoutCheckSet()
            }
            for (index, check) in checks.enumerated() {
                if failed.contains(check) {
                    if let run = open[index] {
                        open[index] = (run.from, physmem, run.count + 1)
                    } else {
                        open[index] = (physmem, physmem, 1)
                    }
                } else if let run = open[index] {
                    closed.append(SweepViolation(check: check, from: run.from, to: run.to, count: run.count))
                    open[index] = nil
                }
            }
            done += 1
            if done % reportEvery == 0 { progress(done, total) }
            let (next, overflow) = physmem.addingReportingOverflow(step)
            if overflow || next > to { break }
            physmem = next
        }
        for (index, check) in checks.enumerated() {
            if let run = open[index] {
                closed.append(SweepViolation(check: check, from: run.from, to: run.to, count: run.count))
            }
        }
        if done % reportEvery != 0 { progress(done, total) }
        let order = Dictionary(uniqueKeysWithValues: checks.enumerated().map { ($1, $0) })
        closed.sort { a, b in
            a.from != b.from ? a.from < b.from : order[a.check, default: 0] < order[b.check, default: 0]
        }
        return SweepResult(model: template.model, layouts: done, violations: closed, seconds: 0)
    }
}
