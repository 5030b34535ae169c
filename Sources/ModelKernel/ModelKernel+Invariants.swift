import AddressSpace
import PhysicalMemory
import Vmem

extension ModelKernel {
    /// Checks every arena, the page frames, `kas`, and the accounting that
    /// ties them together; throws ``ModelKernelError/invariantViolated(_:)``
    /// naming the first broken rule:
    ///
    /// 1. every arena passes `verify()`; the page frames and `kas` pass theirs;
    /// 2. pages per kernel vnode are exactly what the allocators account for:
    ///    `KV_VVP` = the spans `vmm_alloc_arena` imported, `KV_ZVP` =
    ///    `zfs_file_data_buf`'s, `KV_KVP` = the nucleus + the page-backed
    ///    kvp arenas' spans + `KPD_NO_ANON` segkp pages + page-table pages;
    ///    swapfs = the other segkp pages;
    /// 3. every page of a page-backed arena span is mapped at its own
    ///    offset, has `p_lckcnt` 1 and is share-locked;
    /// 4. every segkp red-zone page has no translation and no page;
    /// 5. `::memstat` adds up: counted pages + free list = physmem;
    /// 6. every hosted guest's system segment is backed by a live
    ///    `vmm_alloc_arena` allocation of exactly its length;
    /// 7. every process address space passes its `verify()`, and every hold
    ///    on a hosted guest's memory object is a segvmm segment of a live
    ///    process address space that maps inside the object.
    public func verify() throws(ModelKernelError) {
        func fail(_ s: String) -> ModelKernelError { .invariantViolated(s) }
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        for a in arenas.arenas {
            do { try a.verify() } catch { throw .vmem(error, arena: a.name) }
        }
        do { try physicalMemory.verify() } catch { throw .physicalMemory(error, context: "verify") }
        do { try kas.verify() } catch { throw .addressSpace(error) }
        let processes = processAddressSpaces
        for p in processes {
            do { try p.verify() } catch { throw .addressSpace(error) }
        }

        let page = PhysicalMemory.pageSize
        // Every kernel translation, ascending, walked once for rule 3.
        let leaves = hat.mappings(from: 0, to: .max).sorted { $0.virtualAddress < $1.virtualAddress }
        var expected: [Vnode: UInt64] = [.kvp: (nucleus.upperBound - nucleus.lowerBound) / page, .zvp: 0, .vvp: 0,
                                         swapfsVnode: 0]
        for a in arenas.arenas {
            let vnode: Vnode
            switch arenas.backings[a.name] {
            case .pages(let v)?: vnode = v
            case .permanentPages?: vnode = .kvp
            default: continue
            }
            let st = a.statistics
            expected[vnode, default: 0] += st.memTotal / page
            // Rule 3, span by span, in runs of pages and HAT leaves (a guest
            // span is a few runs and large leaves, not millions of pages).
            for span in a.segments(.spans) {
                let runs: [PageRun]
                do { runs = try physicalMemory.pageRuns(of: vnode, offset: span.start, pageCount: (span.end - span.start) / page) } catch {
                    throw .physicalMemory(error, context: "verify")
                }
                var expect = span.start
                for r in runs {
                    guard r.first.offset == expect else { throw fail("\(a.name) span page \(hex(expect)) has no page named (\(vnode), \(hex(expect)))") }
                    guard r.first.lockCount == 1, case .shared = r.first.lock else {
                        throw fail("\(a.name) page \(hex(expect)) has p_lckcnt \(r.first.lockCount) and lock \(r.first.lock)")
                    }
                    expect += r.count * page
                }
                guard expect == span.end else { throw fail("\(a.name) span page \(hex(expect)) has no page named (\(vnode), \(hex(expect)))") }
                var lo = 0, hi = leaves.count
                while lo < hi { let mid = (lo + hi) / 2; if leaves[mid].virtualAddress < span.start { lo = mid + 1 } else { hi = mid } }
                var covered = span.start, k = 0
                while covered < span.end {
                    guard lo < leaves.count, leaves[lo].virtualAddress == covered else {
                        throw fail("\(a.name) span page \(hex(covered)) has no translation")
                    }
                    let leaf = leaves[lo]
                    let leafEnd = covered + leaf.size.bytes
                    var va = covered
                    while va < leafEnd && va < span.end {
                        while k < runs.count && runs[k].first.offset + runs[k].count * page <= va { k += 1 }
                        guard k < runs.count else { throw fail("\(a.name) page \(hex(va)) is mapped but has no page") }
                        let pfn = (leaf.physicalAddress + (va - covered)) >> PhysicalMemory.pageShift
                        let named = runs[k].first.pfn + (va - runs[k].first.offset) / page
                        guard pfn == named else {
                            throw fail("\(a.name) page \(hex(va)) maps pfn \(hex(pfn)), not the page named (\(vnode), \(hex(va)))")
                        }
                        va = min(leafEnd, runs[k].first.offset + runs[k].count * page)
                    }
                    covered = leafEnd
                    lo += 1
                }
            }
        }
        let lentRedPages = withState { Set(redPages.values) }
        for r in segkp.allResources {
            let pages = r.mappedLength / page
            expected[r.flags.contains(.noAnon) ? .kvp : swapfsVnode, default: 0] += pages
            if let red = r.redZone {
                // Rule 4; a red-zone page lent by segkp_map_red (i386) is the exception while lent.
                if lentRedPages.contains(red.lowerBound) {
                    expected[.kvp, default: 0] += 1
                    continue
                }
                if hat.translation(of: red.lowerBound) != nil {
                    throw fail("segkp red zone \(hex(red.lowerBound)) below \(hex(r.mappedBase)) is mapped")
                }
                if physicalMemory.pageFind(vnode: .kvp, offset: red.lowerBound) != nil {
                    throw fail("segkp red zone \(hex(red.lowerBound)) has a page")
                }
            }
        }
        expected[.kvp, default: 0] += UInt64(hat.tablePages)
        // Process HATs' tables are kernel memory too, as long as the HATs live.
        let liveHATs = withState { self.processHATs.compactMap { $0.hat } }
        for h in liveHATs { expected[.kvp, default: 0] += UInt64(h.tablePages) }
        for (vnode, count) in expected {
            let actual: UInt64
            do { actual = try physicalMemory.pageCount(of: vnode) } catch { throw .physicalMemory(error, context: "verify") }
            guard actual == count else {
                throw fail("\(vnode) names \(actual) pages; the allocators account for \(count)")
            }
        }
        // Rule 5.
        let m = memstat()
        guard m.total + m.freelist == m.physmem || m.total > m.physmem else {
            throw fail("memstat counts \(m.total) pages + \(m.freelist) free != physmem \(m.physmem)")
        }
        guard m.kernel == expected[.kvp] && m.zfsFileData == expected[.zvp] && m.vmmMemory == expected[.vvp] else {
            throw fail("memstat rows Kernel \(m.kernel), ZFS \(m.zfsFileData), VMM \(m.vmmMemory) disagree with the vnodes")
        }
        // Rule 6 (guests copied out of the state lock before their memory is read).
        let allocations = withState { liveGuests }
        for g in hostedGuests {
            for s in g.memory.segments where s.isSystem {
                guard let b = s.pageBacking, allocations[b.address] == s.length else {
                    throw fail("guest \(hex(g.address)) segment \(s.id) of \(hex(s.length)) bytes has no vmm_alloc_arena allocation of its length")
                }
            }
        }
        // Rule 7.
        var holds: [ObjectIdentifier: Int] = [:]
        for p in processes {
            for seg in p.segments {
                guard let d = seg.driver as? SegVMM, d.holdsObject, let o = d.object as? VMMObject else { continue }
                guard d.kernelAddress >= o.kernelAddress, d.kernelAddress - o.kernelAddress <= o.length,
                      seg.size <= o.length - (d.kernelAddress - o.kernelAddress) else {
                    throw fail("\(p.name) segvmm [\(hex(seg.base)), +\(hex(seg.size))) maps \(hex(d.kernelAddress)) outside guest \(hex(o.guestAddress)) segment \(o.segment)")
                }
                holds[ObjectIdentifier(o), default: 0] += 1
            }
        }
        for g in hostedGuests {
            for o in g.objects where o.mappingHolds != holds[ObjectIdentifier(o), default: 0] {
                throw fail("guest \(hex(g.address)) segment \(o.segment) has \(o.mappingHolds) segvmm hold(s); \(holds[ObjectIdentifier(o), default: 0]) segment(s) map it")
            }
        }
    }
}
