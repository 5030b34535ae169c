import Foundation
import Testing

/// Drives the built `vmkit` binary as a user would: exit statuses, usage
/// errors and their suggestions, `--version`, counts with suffixes, traces
/// from pipes and FIFOs, lost output, completion scripts.
@Suite("vmkit command line")
struct CommandLineTests {
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The `vmkit` next to the test bundle (SwiftPM builds it first: the
    /// test target depends on it).
    static var binary: URL {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        // The bundle may sit in `X.xctest/` or directly in the build directory.
        if dir.pathExtension == "xctest" { dir = dir.deletingLastPathComponent() }
        return dir.appendingPathComponent("vmkit")
    }

    static func run(_ arguments: [String], stdin: String? = nil, stdoutTo: FileHandle? = nil) throws -> Run {
        let p = Process()
        p.executableURL = binary
        p.arguments = arguments
        let out = Pipe(), err = Pipe()
        if let stdoutTo { p.standardOutput = stdoutTo } else { p.standardOutput = out }
        p.standardError = err
        let input = Pipe()
        p.standardInput = input
        try p.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let o = stdoutTo == nil ? out.fileHandleForReading.readDataToEndOfFile() : Data()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                   stderr: String(decoding: e, as: UTF8.self))
    }

    @Test func versionPrintsARelease() throws {
        let r = try Self.run(["--version"])
        #expect(r.status == 0)
        #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").count == 3)
    }

    @Test func unknownHelpTopicIsAUsageError() throws {
        let r = try Self.run(["help", "nonexistent"])
        #expect(r.status == 64)
        #expect(r.stderr.contains("'nonexistent' is not a command of 'vmkit'"))
        let ok = try Self.run(["help", "layout", "sweep"])
        #expect(ok.status == 0)
        #expect(ok.stdout.contains("--step"))
    }

    @Test(arguments: [(["layot"], "vmkit layout"), (["layout", "swep", "--from", "1G"], "vmkit layout sweep"),
                      (["gest", "layout"], "vmkit guest"), (["help", "bech"], "vmkit bench")])
    func typosGetASuggestion(arguments: [String], suggestion: String) throws {
        let r = try Self.run(arguments)
        #expect(r.status == 64)
        #expect(r.stderr.contains("did you mean '\(suggestion)'?"), "\(r.stderr)")
    }

    @Test func failingLayoutExitsOne() throws {
        let bad = try Self.run(["layout", "--physmem", "320G", "--model", "pre-12608"])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("layout checks failed: "))
        #expect(bad.stdout.contains("Kernel virtual address layout"), "the layout is still printed")
        let good = try Self.run(["layout", "--physmem", "64G"])
        #expect(good.status == 0)
        let sweepBad = try Self.run(["layout", "sweep", "--from", "300G", "--to", "330G", "--step", "10G", "--model", "pre-12608"])
        #expect(sweepBad.status == 1)
        let sweepGood = try Self.run(["layout", "sweep", "--from", "1G", "--to", "64G", "--step", "1G"])
        #expect(sweepGood.status == 0, "\(sweepGood.stdout)")
    }

    @Test func svgOfAFailingLayoutNamesTheCheck() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vmkit-layout-\(getpid()).svg").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try Self.run(["layout", "--physmem", "320G", "--model", "pre-12608", "--format", "svg", "-o", path])
        #expect(r.status == 1)
        #expect(r.stdout.isEmpty, "-o sends the picture to the file")
        let svg = try String(contentsOfFile: path, encoding: .utf8)
        #expect(svg.contains("class=\"failed-check\""), "the region is outlined")
        #expect(svg.contains("[1] segkpm-base-above-default: "), "the legend names the check")
        let good = try Self.run(["layout", "--physmem", "64G", "--format", "svg"])
        #expect(good.status == 0)
        #expect(!good.stdout.contains("failed-check"))
    }

    @Test func formatJSONIsTheSameAsTheJSONFlag() throws {
        for arguments in [["guest", "layout", "--mem", "1G"], ["layout", "sweep", "--from", "1G", "--to", "4G", "--step", "1G"]] {
            let flag = try Self.run(arguments + ["--json"])
            let format = try Self.run(arguments + ["--format", "json"])
            #expect(flag.status == 0 && format.status == 0)
            #expect(format.stdout.hasPrefix("{"), "\(arguments): \(format.stdout.prefix(80))")
            let table = try Self.run(arguments + ["--format", "table"])
            #expect(table.status == 0 && !table.stdout.hasPrefix("{"))
        }
        let svg = try Self.run(["guest", "layout", "--mem", "1G", "--format", "svg"])
        #expect(svg.status == 64, "svg is for layouts only")
        let arenas = try Self.run(["layout", "--physmem", "64G", "--arenas", "--format", "json"])
        #expect(arenas.status == 64)
        #expect(arenas.stderr.contains("--arenas prints mdb's ::vmem table"))
    }

    @Test func guestsThatDoNotFitAreCountedInTheUsersTerms() throws {
        let r = try Self.run(["boot", "--physmem", "16G", "--guests", "8", "--guest-size", "4G"])
        #expect(r.status == 64)
        #expect(r.stderr.contains("16 GiB of memory cannot hold 8 guests of 4 GiB: at most 3 ("), "\(r.stderr)")
        #expect(!r.stderr.contains("page_create_va"), "no internals")
        let fits = try Self.run(["boot", "--physmem", "16G", "--guests", "3", "--guest-size", "4G", "--no-workload"])
        #expect(fits.status == 0)
    }

    @Test func lostOutputIsAFailure() throws {
        let full = try #require(FileHandle(forWritingAtPath: "/dev/full"))
        let r = try Self.run(["layout", "--physmem", "1G"], stdoutTo: full)
        #expect(r.status == 1)
        #expect(r.stderr.contains("cannot write to standard output"))
    }

    @Test func countsTakeSizeSuffixes() throws {
        let r = try Self.run(["bench", "vmem", "--workload", "small", "--ops", "2k", "--warmup", "1k"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("(2048 pairs)"), "\(r.stdout)")
        let bad = try Self.run(["bench", "vmem", "--ops", "lots"])
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("'lots' is not a count"))
    }

    @Test func replayReadsAFIFOAndSaysWhyAFileCannotBeRead() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vmkit-cli-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let fifo = dir.appendingPathComponent("trace").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let writer = Thread {
            let h = FileHandle(forWritingAtPath: fifo)
            h?.write(Data("create a base=0x1000 size=64K quantum=4K\nalloc a x 8K\n".utf8))
            try? h?.close()
        }
        writer.start()
        let r = try Self.run(["replay", fifo])
        #expect(r.status == 0)
        #expect(r.stdout == "x 0x1000\n")
        let missing = try Self.run(["replay", dir.appendingPathComponent("none").path])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("No such file or directory"))
        let directory = try Self.run(["guest", "replay", dir.path])
        #expect(directory.status != 0)
        #expect(directory.stderr.contains("Is a directory"))
    }

    @Test(arguments: ["bash", "zsh", "fish"])
    func completionScriptsGenerate(shell: String) throws {
        let r = try Self.run(["--generate-completion-script", shell])
        #expect(r.status == 0)
        #expect(r.stdout.contains("layout") && r.stdout.contains("guest"))
    }
}
