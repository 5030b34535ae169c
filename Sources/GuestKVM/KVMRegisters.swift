internal import CGuestKVM

/// The general registers (`struct kvm_regs`).
public struct KVMRegisters: Hashable, Sendable {
    public var rax: UInt64 = 0, rbx: UInt64 = 0, rcx: UInt64 = 0, rdx: UInt64 = 0
    public var rsi: UInt64 = 0, rdi: UInt64 = 0, rsp: UInt64 = 0, rbp: UInt64 = 0
    public var r8: UInt64 = 0, r9: UInt64 = 0, r10: UInt64 = 0, r11: UInt64 = 0
    public var r12: UInt64 = 0, r13: UInt64 = 0, r14: UInt64 = 0, r15: UInt64 = 0
    public var rip: UInt64 = 0
    /// Bit 1 is reserved and must be set.
    public var rflags: UInt64 = 2

    public init() {}

    init(_ r: kvm_regs) {
        rax = r.rax; rbx = r.rbx; rcx = r.rcx; rdx = r.rdx
        rsi = r.rsi; rdi = r.rdi; rsp = r.rsp; rbp = r.rbp
        r8 = r.r8; r9 = r.r9; r10 = r.r10; r11 = r.r11
        r12 = r.r12; r13 = r.r13; r14 = r.r14; r15 = r.r15
        rip = r.rip; rflags = r.rflags
    }

    var raw: kvm_regs {
        var r = kvm_regs()
        r.rax = rax; r.rbx = rbx; r.rcx = rcx; r.rdx = rdx
        r.rsi = rsi; r.rdi = rdi; r.rsp = rsp; r.rbp = rbp
        r.r8 = r8; r.r9 = r9; r.r10 = r10; r.r11 = r11
        r.r12 = r12; r.r13 = r13; r.r14 = r14; r.r15 = r15
        r.rip = rip; r.rflags = rflags
        return r
    }
}

/// A segment register's hidden part (`struct kvm_segment`).
public struct KVMSegment: Hashable, Sendable {
    public var base: UInt64 = 0
    public var limit: UInt32 = 0xFFFF
    public var selector: UInt16 = 0
    /// Descriptor type (code: 11 = execute/read accessed; data: 3 = read/write accessed).
    public var type: UInt8 = 3
    public var present: Bool = true
    public var dpl: UInt8 = 0
    /// D/B: 32-bit default operand size.
    public var db: Bool = false
    /// S: code or data (not a system segment).
    public var s: Bool = true
    /// L: 64-bit code.
    public var l: Bool = false
    /// G: limit in 4 KiB units.
    public var g: Bool = false
    public var unusable: Bool = false

    public init(base: UInt64 = 0, limit: UInt32 = 0xFFFF, selector: UInt16 = 0, type: UInt8 = 3, present: Bool = true,
                dpl: UInt8 = 0, db: Bool = false, s: Bool = true, l: Bool = false, g: Bool = false) {
        self.base = base; self.limit = limit; self.selector = selector; self.type = type; self.present = present
        self.dpl = dpl; self.db = db; self.s = s; self.l = l; self.g = g
    }

    init(_ s: kvm_segment) {
        base = s.base; limit = s.limit; selector = s.selector; type = s.type; present = s.present != 0
        dpl = s.dpl; db = s.db != 0; self.s = s.s != 0; l = s.l != 0; g = s.g != 0; unusable = s.unusable != 0
    }

    var raw: kvm_segment {
        var r = kvm_segment()
        r.base = base; r.limit = limit; r.selector = selector; r.type = type; r.present = present ? 1 : 0
        r.dpl = dpl; r.db = db ? 1 : 0; r.s = s ? 1 : 0; r.l = l ? 1 : 0; r.g = g ? 1 : 0
        r.unusable = unusable ? 1 : 0
        return r
    }
}

/// The system registers (`struct kvm_sregs`); the pending-interrupt bitmap
/// is carried through unchanged.
public struct KVMSpecialRegisters: Hashable, Sendable {
    public var cs = KVMSegment(), ds = KVMSegment(), es = KVMSegment()
    public var fs = KVMSegment(), gs = KVMSegment(), ss = KVMSegment()
    public var tr = KVMSegment(), ldt = KVMSegment()
    public var gdtBase: UInt64 = 0, gdtLimit: UInt16 = 0
    public var idtBase: UInt64 = 0, idtLimit: UInt16 = 0
    public var cr0: UInt64 = 0, cr2: UInt64 = 0, cr3: UInt64 = 0, cr4: UInt64 = 0, cr8: UInt64 = 0
    public var efer: UInt64 = 0
    public var apicBase: UInt64 = 0
    var interruptBitmap: [UInt64] = [0, 0, 0, 0]

    init(_ s: kvm_sregs) {
        cs = KVMSegment(s.cs); ds = KVMSegment(s.ds); es = KVMSegment(s.es)
        fs = KVMSegment(s.fs); gs = KVMSegment(s.gs); ss = KVMSegment(s.ss)
        tr = KVMSegment(s.tr); ldt = KVMSegment(s.ldt)
        gdtBase = s.gdt.base; gdtLimit = s.gdt.limit; idtBase = s.idt.base; idtLimit = s.idt.limit
        cr0 = s.cr0; cr2 = s.cr2; cr3 = s.cr3; cr4 = s.cr4; cr8 = s.cr8; efer = s.efer; apicBase = s.apic_base
        interruptBitmap = [s.interrupt_bitmap.0, s.interrupt_bitmap.1, s.interrupt_bitmap.2, s.interrupt_bitmap.3]
    }

    var raw: kvm_sregs {
        var r = kvm_sregs()
        r.cs = cs.raw; r.ds = ds.raw; r.es = es.raw; r.fs = fs.raw; r.gs = gs.raw; r.ss = ss.raw
        r.tr = tr.raw; r.ldt = ldt.raw
        r.gdt.base = gdtBase; r.gdt.limit = gdtLimit; r.idt.base = idtBase; r.idt.limit = idtLimit
        r.cr0 = cr0; r.cr2 = cr2; r.cr3 = cr3; r.cr4 = cr4; r.cr8 = cr8; r.efer = efer; r.apic_base = apicBase
        r.interrupt_bitmap = (interruptBitmap[0], interruptBitmap[1], interruptBitmap[2], interruptBitmap[3])
        return r
    }
}
