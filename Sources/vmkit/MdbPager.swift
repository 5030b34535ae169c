#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where `vmkit mdb` sends a command's output: straight to standard output,
/// through a `--More--` pager of the terminal's height (mdb's `pager`
/// option, only when both standard input and output are a terminal), or to
/// a shell command for `::DCMD ! CMD`.
enum MdbOutput {
    /// The terminal's rows, or nil when standard output is not a terminal
    /// or does not say (a fresh pseudo-terminal reports 0).
    static func terminalRows() -> Int? {
        guard isatty(STDOUT_FILENO) != 0 else { return nil }
        var size = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_row > 1 else { return nil }
        return Int(size.ws_row)
    }

    /// Writes `text` a screen at a time: after `rows - 1` lines, `--More--`
    /// waits for a key (space: a page, return: a line, q or Ctrl-C: stop).
    static func page(_ text: String, rows: Int, out: inout StandardOutput) {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        guard lines.count > rows - 1 else { out.write(text); return }
        var shown = 0
        var budget = rows - 1
        while shown < lines.count {
            let end = min(lines.count, shown + budget)
            for line in lines[shown..<end] { out.write(line + "\n") }
            shown = end
            if shown == lines.count { break }
            out.write("--More--")
            out.flush()
            let key = readKey()
            out.write("\r        \r")
            switch key {
            case UInt8(ascii: " "): budget = rows - 1
            case UInt8(ascii: "\r"), UInt8(ascii: "\n"), UInt8(ascii: "j"): budget = 1
            default: return
            }
        }
    }

    /// One key from the terminal, without echo or waiting for a line; 0 on
    /// end of file, an interrupt or an error.
    static func readKey() -> UInt8 {
        var saved = termios()
        guard tcgetattr(STDIN_FILENO, &saved) == 0 else { return 0 }
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        tcsetattr(STDIN_FILENO, TCSANOW, &raw)
        defer { tcsetattr(STDIN_FILENO, TCSANOW, &saved) }
        var byte: UInt8 = 0
        return read(STDIN_FILENO, &byte, 1) == 1 ? byte : 0
    }

    /// `::DCMD ! CMD`: `text` on the standard input of `/bin/sh -c CMD`,
    /// whose output goes where ours does. A command that stops reading early
    /// (`head -3`) is not an error: SIGPIPE is ignored while we write.
    /// Returns the shell's exit status.
    static func pipe(_ text: String, to command: String) -> Int32 {
        let previous = signal(SIGPIPE, SIG_IGN)
        defer { signal(SIGPIPE, previous) }
        guard let stream = popen(command, "w") else { return 127 }
        _ = text.withCString { fputs($0, stream) }
        let status = pclose(stream)
        return status < 0 ? 127 : (status >> 8) & 0xff
    }
}
