import Foundation
import Testing

/// `vmkit guest run` with snapshots, run as a user would: the built binary,
/// its `--json`, and its usage errors.
@Suite("vmkit guest run --snapshot/--restore")
struct GuestRunSnapshotCommandTests {
    static func json(_ r: CommandLineTests.Run) throws -> [String: Any] {
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
        return try #require(object as? [String: Any])
    }

    static func pages(_ o: [String: Any], _ key: String) -> [Int] { (o[key] as? [Int]) ?? [] }

    @Test("pattern + full snapshot, then a lazy restore running checksum + a diff: the same sum, faults, one page")
    func snapshotThenLazyRestore() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vmkit-run-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = dir + "/base", diff = dir + "/d1"
        let first = try Self.json(CommandLineTests.run(["guest", "run", "--mem", "16M", "--payload", "pattern",
                                                        "--touch", "64K", "--snapshot", base, "--json"]))
        let snapshot = try #require(first["snapshot"] as? [String: Any])
        #expect(snapshot["kind"] as? String == "full")
        #expect(snapshot["file"] as? String == base)
        #expect((snapshot["pagesWritten"] as? Int ?? 0) >= 16)
        #expect(first["restore"] is NSNull)
        let kvm = first["kvm"] as? Bool == true
        if kvm {
            // The guest wrote 1 MiB .. 1 MiB + 64 KiB: pages 256-271 in KVM's log.
            #expect(Set(256 ..< 272).isSubset(of: Self.pages(first, "guestDirtyPages")))
            let exits = try #require(first["exits"] as? [[String: Any]])
            let report = try #require(exits.first { $0["reason"] as? String == "io" })
            #expect(report["port"] as? Int == 0x30)
            #expect(report["direction"] as? String == "out")
            #expect(exits.last?["reason"] as? String == "hlt")
        } else {
            print("vCPU part skipped: \(first["kvmUnavailable"] ?? "")")
        }

        let second = try Self.json(CommandLineTests.run(["guest", "run", "--payload", "checksum", "--touch", "64K",
                                                         "--restore", base, "--lazy", "--snapshot", diff, "--diff", "--json"]))
        #expect(second["mem"] as? String == "0x1000000")
        let restore = try #require(second["restore"] as? [String: Any])
        #expect(restore["lazy"] as? Bool == true)
        #expect(restore["files"] as? [String] == [base])
        #expect(restore["codeReloaded"] as? Bool == true)
        #expect(restore["ms"] is Double)
        let faults = restore["faults"] as? Int ?? -1
        let d = try #require(second["snapshot"] as? [String: Any])
        #expect(d["kind"] as? String == "diff")
        #expect(d["position"] as? Int == 1)
        if kvm {
            #expect(second["guestChecksum"] as? Int == first["guestChecksum"] as? Int)
            #expect(second["guestChecksum"] as? Int != nil)
            // 16 data pages, page 1, a few table pages: not the 4,096 of RAM.
            #expect(faults >= 17 && faults <= 40, "faults \(faults)")
            // checksum only reads: KVM's log is empty; the VMM wrote page 1.
            #expect(Self.pages(second, "guestDirtyPages").isEmpty)
            #expect(Self.pages(second, "dirtyPages") == [1])
            #expect(d["pagesRecorded"] as? Int == 1)
        } else {
            // Only the VMM's reload of page 1 touched the memory.
            #expect(faults >= 1 && faults <= 4, "faults \(faults)")
        }
    }

    @Test("a lazy restore records its working set; the next one prefetches it and the guest's touches no longer fault")
    func workingSetRecordedThenPrefetched() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vmkit-ws-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = dir + "/base", ws = dir + "/ws"
        let first = try Self.json(CommandLineTests.run(["guest", "run", "--mem", "16M", "--payload", "pattern",
                                                        "--touch", "64K", "--snapshot", base, "--json"]))
        let recorded = try Self.json(CommandLineTests.run(["guest", "run", "--payload", "checksum", "--touch", "64K",
                                                           "--restore", base, "--lazy", "--record-working-set", ws, "--json"]))
        let r1 = try #require(recorded["restore"] as? [String: Any])
        let faults1 = r1["faults"] as? Int ?? -1
        #expect(r1["workingSetPages"] as? Int == faults1, "every fault is one page of the set: \(r1)")
        #expect(r1["prefetched"] == nil)
        let replayed = try Self.json(CommandLineTests.run(["guest", "run", "--payload", "checksum", "--touch", "64K",
                                                           "--restore", base, "--lazy", "--prefetch", ws, "--json"]))
        let r2 = try #require(replayed["restore"] as? [String: Any])
        let prefetched = r2["prefetched"] as? Int ?? -1
        let faults2 = r2["faults"] as? Int ?? -1
        #expect(r2["prefetchMs"] is Double)
        // The pages faulted before the prefetch (the VMM's resume checks) are
        // the only faults left; the set's other pages were filled by it.
        #expect(prefetched + faults2 == faults1, "prefetched \(prefetched), faults \(faults2), first run \(faults1)")
        #expect(faults2 <= 4 && prefetched >= faults1 - 4)
        // Recording while prefetching keeps the whole set: the prefetched one, then what it missed.
        let again = dir + "/ws2"
        let r4 = try #require(try Self.json(CommandLineTests.run(["guest", "run", "--payload", "checksum", "--touch", "64K",
                                                                   "--restore", base, "--lazy", "--prefetch", ws,
                                                                   "--record-working-set", again, "--json"]))["restore"] as? [String: Any])
        #expect(r4["workingSetPages"] as? Int == faults1, "\(r4)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: again)) == Data(contentsOf: URL(fileURLWithPath: ws)),
                "the same pages in the same order: the same file")
        if first["kvm"] as? Bool == true {
            #expect(faults1 >= 17, "the guest's 16 data pages fault in the first run: \(faults1)")
            #expect(replayed["guestChecksum"] as? Int == first["guestChecksum"] as? Int)
        }
        // On a thread of its own while the guest runs: every page of the set
        // is filled once, by the prefetch or by a fault, and the sum is the same.
        let background = try Self.json(CommandLineTests.run(["guest", "run", "--payload", "checksum", "--touch", "64K",
                                                             "--restore", base, "--lazy", "--prefetch", ws,
                                                             "--background-prefetch", "--json"]))
        let r3 = try #require(background["restore"] as? [String: Any])
        let p3 = r3["prefetched"] as? Int ?? -1, f3 = r3["faults"] as? Int ?? -1
        #expect(p3 >= 0 && p3 + f3 == faults1, "prefetched \(p3), faults \(f3), first run \(faults1)")
        #expect(r3["prefetchMs"] is Double)
        if first["kvm"] as? Bool == true {
            #expect(background["guestChecksum"] as? Int == first["guestChecksum"] as? Int)
        }
        let e3 = try CommandLineTests.run(["guest", "run", "--payload", "checksum", "--touch", "64K", "--restore", base,
                                           "--lazy", "--background-prefetch"])
        #expect(e3.status == 64 && e3.stderr.contains("--background-prefetch needs --prefetch"))
        // Without --lazy there is nothing to record or prefetch into.
        let e = try CommandLineTests.run(["guest", "run", "--payload", "checksum", "--touch", "64K", "--restore", base, "--prefetch", ws])
        #expect(e.status == 64 && e.stderr.contains("--prefetch needs --lazy"))
        let e2 = try CommandLineTests.run(["guest", "run", "--payload", "checksum", "--touch", "64K", "--restore", base,
                                           "--record-working-set", ws])
        #expect(e2.status == 64 && e2.stderr.contains("--record-working-set needs --lazy"))
        // A damaged set is refused with the file named, exit status 1.
        try Data(repeating: 0x41, count: 64).write(to: URL(fileURLWithPath: ws))
        let bad = try CommandLineTests.run(["guest", "run", "--payload", "checksum", "--touch", "64K", "--restore", base,
                                            "--lazy", "--prefetch", ws])
        #expect(bad.status == 1 && bad.stderr.contains(ws) && bad.stderr.contains("not a VMKit working set"), "\(bad.stderr)")
    }

    @Test("--diff without --restore, --lazy without --restore, no --mem: usage errors that say why")
    func usageErrors() throws {
        let d = try CommandLineTests.run(["guest", "run", "--mem", "1M", "--payload", "realmode", "--snapshot", "/tmp/x", "--diff"])
        #expect(d.status == 64)
        #expect(d.stderr.contains("--diff needs --restore"))
        let l = try CommandLineTests.run(["guest", "run", "--mem", "1M", "--payload", "realmode", "--lazy"])
        #expect(l.status == 64)
        #expect(l.stderr.contains("--lazy needs --restore"))
        let m = try CommandLineTests.run(["guest", "run", "--payload", "realmode"])
        #expect(m.status == 64)
        #expect(m.stderr.contains("--mem SIZE is required"))
    }

    @Test("a restore of a file that is not a snapshot fails with the file named, exit status 1")
    func badRestoreFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vmkit-notsnap-\(UUID().uuidString)").path
        try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try CommandLineTests.run(["guest", "run", "--payload", "realmode", "--restore", path])
        #expect(r.status == 1)
        #expect(r.stderr.contains(path))
        #expect(r.stderr.contains("not a VMKit snapshot"))
    }
}
