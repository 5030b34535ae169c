import ArgumentParser

/// `--format table|json` on every command that prints a result (`layout`
/// adds `svg`); `--json` stays as the alias it always was.
enum ResultFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json

    static let help = ArgumentHelp("Output: table (for people) or json (for machines); --json is the same as --format json.",
                                   valueName: "format")
}
