import Foundation
import Testing

/// `vmkit mdb` driven as a user drives it: a script on standard input
/// (every walker through the pipeline into its dcmd, the lists, `::help`,
/// `! CMD`, usage errors and the exit status), then the prompt on a
/// pseudo-terminal (see MdbTerminalTests.swift). Lines are parsed and
/// checked against each other, not against stored output.
@Suite("vmkit mdb from a script")
struct MdbCommandTests {
    static let boot = ["mdb", "--physmem", "1G", "--guests", "2", "--guest-size", "16M"]

    static func mdb(_ script: String) throws -> CommandLineTests.Run {
        try CommandLineTests.run(boot, stdin: script)
    }

    static func hexLines(_ text: String) -> [UInt64] {
        text.split(separator: "\n").compactMap { UInt64($0, radix: 16) }
    }

    /// The arenas `::vmem` names, by name.
    static func arenas(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n").dropFirst() {
            let w = line.split(separator: " ")
            if w.count >= 2 { out[String(w[1])] = String(w[0]) }
        }
        return out
    }

    /// The outputs of `lines`, run in one session (the workload's threads
    /// make counts differ from boot to boot, so everything compared must
    /// come from one kernel): `::set` between them prints a separator.
    static func outputs(_ lines: [String]) throws -> [String] {
        let r = try Self.mdb(lines.joined(separator: "\n::set\n") + "\n")
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stderr)")
        let parts = r.stdout.components(separatedBy: "pager: on\n")
        #expect(parts.count == lines.count)
        return parts
    }

    static func headers(_ text: String, _ first: String) -> Int {
        text.split(separator: "\n").filter { $0.split(separator: " ").first.map(String.init) == first }.count
    }

    @Test("every walker alone and piped into its dcmd, one header per table")
    func everyWalkerThroughThePipeline() throws {
        // Arena addresses are fixed at boot; guests' vm_t come from kmem and may not be.
        let first = try Self.outputs(["::vmem"])
        let arenas = Self.arenas(first[0])
        let heap = try #require(arenas["heap"]), vmm = try #require(arenas["vmm_alloc_arena"])
        let o = try Self.outputs([
            "::vmem", "::walk vmem", "::walk vmem | ::vmem",                                        // 0-2
            "\(vmm)::walk vmem_seg | ::vmem_seg",                                                    // 3
            "\(vmm)::walk vmem_alloc", "\(vmm)::walk vmem_free", "\(vmm)::walk vmem_span",           // 4-6
            "\(vmm)::walk vmem_alloc | ::vmem_seg", "\(vmm)::walk vmem_free | ::vmem_seg",
            "\(vmm)::walk vmem_span | ::vmem_seg",                                                   // 7-9
            "\(heap)::walk vmem", "kas::walk seg | ::seg", "kas::walk seg",                          // 10-12
            "kvps+0x400::walk page | ::page", "::walk vm | ::vm",                                     // 13-14
            "::walk vm | ::memmap", "::walk dump", "::walk dump ! wc -l",                             // 15-17
        ])
        // vmem: the walk's order and the piped table are ::vmem's.
        let walked = Self.hexLines(o[1])
        #expect(walked == o[0].split(separator: "\n").dropFirst().compactMap { UInt64($0.prefix(16), radix: 16) })
        #expect(Self.headers(o[2], "ADDR") == 1 && o[2] == o[0])
        // The segment walkers partition vmem_seg's rows by type, and each feeds ::vmem_seg.
        #expect(Self.headers(o[3], "ADDR") == 1)
        let rows = o[3].split(separator: "\n").dropFirst().map { $0.split(separator: " ").map(String.init) }
        for (k, type) in ["ALLC", "FREE", "SPAN"].enumerated() {
            let tags = Self.hexLines(o[4 + k])
            #expect(tags == rows.filter { $0[1] == type }.compactMap { UInt64($0[0], radix: 16) }, "\(type)")
            let sub = o[7 + k].split(separator: "\n")
            #expect(sub.count == (tags.isEmpty ? 0 : 1 + tags.count) && sub.dropFirst().allSatisfy { $0.contains(" \(type) ") })
        }
        #expect(Self.hexLines(o[10]).first == UInt64(heap, radix: 16) && Self.hexLines(o[10]).count > 1)
        // seg, page, vm, memmap, dump.
        #expect(Self.headers(o[11], "SEG") == 1 && o[11].split(separator: "\n").count == 1 + Self.hexLines(o[12]).count)
        let pageRows = o[13].split(separator: "\n").dropFirst()
        #expect(Self.headers(o[13], "PAGE") == 1 && pageRows.count == 2 * 16 * 256, "two 16 MiB guests on KV_VVP")
        #expect(pageRows.allSatisfy { $0.hasSuffix(" inuse") })
        #expect(Self.headers(o[14], "ADDR") == 1 && o[14].split(separator: "\n").count == 3)
        #expect(Self.headers(o[15], "GPA") == 1 && o[15].split(separator: "\n").count == 3, "one mapping per 16 MiB guest")
        // With one guest, ::npt needs no -g: every mapping's GPA walked.
        let one = try CommandLineTests.run(["mdb", "--physmem", "8G", "--guests", "1", "--guest-size", "4G"],
                                           stdin: "::walk vm | ::walk memmap | ::npt\n")
        #expect(one.status == 0, "\(one.stderr)")
        let walks = one.stdout.split(separator: "\n").filter { $0.hasPrefix("guest ") }
        #expect(walks.count == 2 && walks[0].contains(" gpa 0 ") && walks[1].contains(" gpa 100000000 "), "lowmem and highmem")
        let dumpCount = Self.hexLines(o[16]).count
        #expect(dumpCount > 0 && o[17].trimmingCharacters(in: .whitespacesAndNewlines) == String(dumpCount))
    }

    @Test("::dcmds, ::walkers and ::help DCMD")
    func listsAndHelp() throws {
        let r = try Self.mdb("::dcmds\n")
        let dcmds = r.stdout.split(separator: "\n")
        let names = Set(dcmds.map { String($0.split(separator: " ")[0]) })
        #expect(names.isSuperset(of: ["vmem", "vmem_seg", "memstat", "seg", "whatis", "page", "vm", "memseg", "memmap",
                                      "npt", "walk", "walkers", "dcmds", "help", "set"]))
        #expect(dcmds.allSatisfy { $0.contains(" - ") })
        let walkers = try Self.mdb("::walkers\n").stdout.split(separator: "\n").map { String($0.split(separator: " ")[0]) }
        #expect(Set(walkers).isSuperset(of: ["seg", "vmem", "vmem_seg", "vmem_alloc", "vmem_free", "vmem_span", "page", "vm"]))
        let help = try Self.mdb("::help vmem_seg\n")
        #expect(help.status == 0 && help.stdout.contains("SYNOPSIS") && help.stdout.contains("ADDR::vmem_seg [-sv] [-c CALLER]"))
        let bad = try Self.mdb("::help nosuch\n")
        #expect(bad.status == 1 && bad.stderr.hasPrefix("mdb: "))
    }

    @Test("! CMD pipes a dcmd's output through the shell")
    func shellPipe() throws {
        let r = try Self.mdb("::vmem\n::set\n::vmem ! head -3\n::memstat ! grep -c VMM\n")
        #expect(r.status == 0, "\(r.stderr)")
        let parts = r.stdout.components(separatedBy: "pager: on\n")
        let full = parts[0].split(separator: "\n")
        let lines = parts[1].split(separator: "\n")
        #expect(full.count > 3 && lines.count == 4 && Array(lines.prefix(3)) == Array(full.prefix(3)))
        #expect(lines.last == "1")
        // The shell's own failure is the run's failure.
        let failing = try Self.mdb("::vmem ! false\n")
        #expect(failing.status == 1)
    }

    @Test("usage errors print the usage on stderr; a failed line fails the run; the session goes on",
          arguments: [("::memstat junk", "Usage: ::memstat"), ("::vmem extra", "Usage: [ADDR]::vmem"),
                      ("::dcmds -v", "Usage: ::dcmds"), ("::walk vmem extra", "Usage: [ADDR]::walk NAME"),
                      ("::set -x", "Usage: ::set"), ("::seg", "Usage: ADDR::seg")])
    func usageErrors(line: String, usage: String) throws {
        let r = try Self.mdb(line + "\n::walkers\n")
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("mdb: ") && r.stderr.contains("\n" + usage), "\(r.stderr)")
        #expect(r.stdout.contains("vmem_span"), "the next line still ran")
        let quit = try Self.mdb("::walkers\n$q\n::memstat junk\n")
        #expect(quit.status == 0, "nothing after $q runs")
    }
}
