import ArgumentParser

/// What ArgumentParser leaves to us about command names: `vmkit help X`
/// for an unknown X prints the root help and exits 0, and a mistyped
/// subcommand gets no suggestion. Both are checked here, before parsing,
/// by walking the words of the command line down the subcommand tree.
enum CommandPath {
    /// A message for an unknown subcommand (with a suggestion when one is
    /// close), or nil when the words name real commands as far as they go.
    static func check(_ arguments: [String], root: ParsableCommand.Type) -> String? {
        var words = arguments[...]
        let isHelp = words.first == "help"
        if isHelp { words = words.dropFirst() }
        var command = root
        var path = [name(of: root)]
        for word in words {
            if word.hasPrefix("-") {
                // Options end the command words (`vmkit layout --physmem 1G`).
                if isHelp { return nil }
                break
            }
            let children = command.configuration.subcommands
            guard !children.isEmpty else { break }
            if let child = children.first(where: { name(of: $0) == word || $0.configuration.aliases.contains(word) }) {
                command = child
                path.append(word)
                continue
            }
            // A default subcommand takes positional words as its own
            // arguments, so only a near miss of a name is an error there.
            let names = children.map(name(of:))
            let near = suggestions(for: word, among: names)
            if command.configuration.defaultSubcommand != nil && near.isEmpty && !isHelp { break }
            let pathText = path.joined(separator: " ")
            var message = "'\(word)' is not a command of '\(pathText)'"
            if let first = near.first {
                message += "; did you mean '\(pathText) \(first)'?"
            } else {
                message += " (commands: \(names.joined(separator: ", ")))"
            }
            return message
        }
        return nil
    }

    static func name(of command: ParsableCommand.Type) -> String {
        command.configuration.commandName ?? String(describing: command).lowercased()
    }

    /// Names within edit distance 2 of `word` (or that it is a prefix of), closest first.
    static func suggestions(for word: String, among names: [String]) -> [String] {
        let scored = names.compactMap { name -> (String, Int)? in
            if name.hasPrefix(word) && word.count >= 2 { return (name, 0) }
            let d = editDistance(Array(word), Array(name))
            return d <= 2 ? (name, d) : nil
        }
        return scored.sorted { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }.map(\.0)
    }

    /// Levenshtein distance with adjacent transpositions counted as one edit.
    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var d = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[a.count][b.count]
    }
}
