import ArgumentParser
import Vmem

/// Counts on the command line (`--ops 200k`, `--pages 0x1000`) take the same
/// forms as sizes: decimal, `0x` hex, and the binary suffixes K, M, G, T
/// (`200k` is 204,800), so that every number of every command reads alike.
enum CountArgument {
    static func parse(_ text: String) throws -> Int {
        let value: UInt64
        do {
            value = try SizeParser.parse(text)
        } catch {
            throw ValidationError("'\(text)' is not a count: \(error)")
        }
        guard value <= UInt64(Int.max) else { throw ValidationError("count '\(text)' is too large") }
        return Int(value)
    }
}
