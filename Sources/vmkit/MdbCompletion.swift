import Inspect

extension MdbSession {
    /// What tab completion offers for `word`, given the line before it: a
    /// walker's name after `::walk`, a dcmd's name (`::vm`, `::vmem`, ...)
    /// anywhere else, taken from the session's own tables so that a new
    /// dcmd or walker is offered as soon as it exists.
    static func completions(before: String, word: String) -> [String] {
        let previous = before.split(whereSeparator: { $0 == " " || $0 == "\t" }).last.map(String.init) ?? ""
        if previous.hasSuffix("::walk") {
            return walkers.map(\.name).filter { $0.hasPrefix(word) }
        }
        if previous.hasSuffix("::help") {
            return dcmds.map(\.name).filter { $0.hasPrefix(word) }
        }
        // `ADDR::vm` completes after the address: keep what precedes the `::`.
        let split = word.range(of: "::")
        let head = split.map { String(word[..<$0.lowerBound]) } ?? ""
        let words = dcmds.map { head + "::" + $0.name } + (head.isEmpty ? ["$q"] : [])
        return words.filter { $0.hasPrefix(word) }.sorted()
    }
}
