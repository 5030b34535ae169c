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
    /// 5. `::memstat` adds up: counted pages + free list = physmem.
    public func verify() throws(ModelKernelError) {
        func fail(_ s: String) -> ModelKernelError { .invariantViolated(s) }
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        for a in arenas.arenas {
            do { try a.verify() } catch { throw .vmem(error, arena: a.name) }
        }
        do { try physicalMemory.verify() } catch { throw .physicalMemory(error, context: "verify") }
        do { try kas.verify() } catch { throw .addressSpace(error) }

        let page = PhysicalMemory.pageSize
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
            // Rule 3, span by span.
            for span in a.segments(.spans) {
                var va = span.start
                while va < span.end {
                    guard let t = hat.translation(of: va) else {
                        throw fail("\(a.name) span page \(hex(va)) has no translation")
                    }
                    guard physicalMemory.pageFind(vnode: vnode, offset: va) == t.pfn else {
                        throw fail("\(a.name) page \(hex(va)) maps pfn \(hex(t.pfn)), not the page named (\(vnode), \(hex(va)))")
                    }
                    let p: Page
                    do { p = try physicalMemory.page(t.pfn) } catch { throw .physicalMemory(error, context: "verify") }
                    guard p.lockCount == 1, case .shared = p.lock else {
                        throw fail("\(a.name) page \(hex(va)) has p_lckcnt \(p.lockCount) and lock \(p.lock)")
                    }
                    va += page
                }
            }
        }
        for r in segkp.allResources {
            let pages = r.mappedLength / page
            expected[r.flags.contains(.noAnon) ? .kvp : swapfsVnode, default: 0] += pages
            if let red = r.redZone {
                // Rule 4.
                if hat.translation(of: red.lowerBound) != nil {
                    throw fail("segkp red zone \(hex(red.lowerBound)) below \(hex(r.mappedBase)) is mapped")
                }
                if physicalMemory.pageFind(vnode: .kvp, offset: red.lowerBound) != nil {
                    throw fail("segkp red zone \(hex(red.lowerBound)) has a page")
                }
            }
        }
        expected[.kvp, default: 0] += UInt64(hat.tablePages)
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
    }
}
