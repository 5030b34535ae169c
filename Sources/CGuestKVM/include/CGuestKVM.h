#ifndef CGUESTKVM_H
#define CGUESTKVM_H
/* The KVM ioctls GuestKVM uses, as small inline wrappers, and accessors for
 * the parts of `struct kvm_run` and `struct kvm_dirty_gfn` that Swift cannot
 * reach by name (anonymous unions). Every layout comes from <linux/kvm.h>:
 * no offset here is counted by hand.
 *
 * Each wrapper returns what the ioctl returns, or -errno on failure, so the
 * Swift side never reads a stale errno. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/kvm.h>

static inline int vkvm_result(int r) { return r < 0 ? -errno : r; }

static inline int vkvm_open(const char *path) {
    int fd = open(path, O_RDWR | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

static inline int vkvm_get_api_version(int kvm) { return vkvm_result(ioctl(kvm, KVM_GET_API_VERSION, 0)); }
static inline int vkvm_check_extension(int fd, long cap) { return vkvm_result(ioctl(fd, KVM_CHECK_EXTENSION, cap)); }
static inline int vkvm_create_vm(int kvm) { return vkvm_result(ioctl(kvm, KVM_CREATE_VM, 0)); }
static inline int vkvm_vcpu_mmap_size(int kvm) { return vkvm_result(ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0)); }
static inline int vkvm_create_vcpu(int vm, unsigned long id) { return vkvm_result(ioctl(vm, KVM_CREATE_VCPU, id)); }
static inline int vkvm_set_tss_addr(int vm, unsigned long addr) { return vkvm_result(ioctl(vm, KVM_SET_TSS_ADDR, addr)); }
static inline int vkvm_run(int vcpu) { return vkvm_result(ioctl(vcpu, KVM_RUN, 0)); }
static inline int vkvm_reset_dirty_rings(int vm) { return vkvm_result(ioctl(vm, KVM_RESET_DIRTY_RINGS, 0)); }

static inline int vkvm_enable_cap(int vm, uint32_t cap, uint64_t arg0) {
    struct kvm_enable_cap c;
    memset(&c, 0, sizeof c);
    c.cap = cap;
    c.args[0] = arg0;
    return vkvm_result(ioctl(vm, KVM_ENABLE_CAP, &c));
}

static inline int vkvm_set_memory_region(int vm, uint32_t slot, uint32_t flags, uint64_t gpa,
                                         uint64_t size, uint64_t hva) {
    struct kvm_userspace_memory_region r;
    memset(&r, 0, sizeof r);
    r.slot = slot;
    r.flags = flags;
    r.guest_phys_addr = gpa;
    r.memory_size = size;
    r.userspace_addr = hva;
    return vkvm_result(ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r));
}

static inline int vkvm_get_dirty_log(int vm, uint32_t slot, uint64_t *bitmap) {
    struct kvm_dirty_log d;
    memset(&d, 0, sizeof d);
    d.slot = slot;
    d.dirty_bitmap = bitmap;
    return vkvm_result(ioctl(vm, KVM_GET_DIRTY_LOG, &d));
}

static inline int vkvm_clear_dirty_log(int vm, uint32_t slot, uint64_t first_page, uint32_t num_pages,
                                       uint64_t *bitmap) {
    struct kvm_clear_dirty_log c;
    memset(&c, 0, sizeof c);
    c.slot = slot;
    c.first_page = first_page;
    c.num_pages = num_pages;
    c.dirty_bitmap = bitmap;
    return vkvm_result(ioctl(vm, KVM_CLEAR_DIRTY_LOG, &c));
}

static inline int vkvm_get_regs(int vcpu, struct kvm_regs *r) { return vkvm_result(ioctl(vcpu, KVM_GET_REGS, r)); }
static inline int vkvm_set_regs(int vcpu, const struct kvm_regs *r) { return vkvm_result(ioctl(vcpu, KVM_SET_REGS, r)); }
static inline int vkvm_get_sregs(int vcpu, struct kvm_sregs *s) { return vkvm_result(ioctl(vcpu, KVM_GET_SREGS, s)); }
static inline int vkvm_set_sregs(int vcpu, const struct kvm_sregs *s) { return vkvm_result(ioctl(vcpu, KVM_SET_SREGS, s)); }

/* CPUID: `struct kvm_cpuid2` ends in a flexible array, so the table lives in
 * a C allocation sized from the header's own types. */
#define VKVM_MAX_CPUID 256
typedef struct vkvm_cpuid { struct kvm_cpuid2 *table; } vkvm_cpuid;

static inline int vkvm_supported_cpuid(int kvm, vkvm_cpuid *out) {
    size_t bytes = sizeof(struct kvm_cpuid2) + VKVM_MAX_CPUID * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *t = calloc(1, bytes);
    if (!t) return -ENOMEM;
    t->nent = VKVM_MAX_CPUID;
    if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, t) < 0) { int e = errno; free(t); return -e; }
    out->table = t;
    return (int)t->nent;
}
static inline void vkvm_cpuid_free(vkvm_cpuid *c) { free(c->table); c->table = NULL; }
static inline struct kvm_cpuid_entry2 *vkvm_cpuid_entry(vkvm_cpuid *c, uint32_t i) { return &c->table->entries[i]; }
/* Whether the host processor has 1 GiB pages (CPUID 0x80000001 EDX bit 26). */
static inline int vkvm_host_has_gbpages(void) {
    unsigned a = 0x80000001, b = 0, c = 0, d = 0;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    return (d >> 26) & 1;
}
static inline int vkvm_set_cpuid(int vcpu, vkvm_cpuid *c) { return vkvm_result(ioctl(vcpu, KVM_SET_CPUID2, c->table)); }

/* struct kvm_run, mapped from the vCPU fd. */
static inline uint32_t vkvm_run_exit_reason(const struct kvm_run *r) { return r->exit_reason; }
static inline void vkvm_run_set_immediate_exit(struct kvm_run *r, uint8_t v) {
    __atomic_store_n(&r->immediate_exit, v, __ATOMIC_SEQ_CST);
}
static inline uint8_t vkvm_run_io_direction(const struct kvm_run *r) { return r->io.direction; }
static inline uint8_t vkvm_run_io_size(const struct kvm_run *r) { return r->io.size; }
static inline uint16_t vkvm_run_io_port(const struct kvm_run *r) { return r->io.port; }
static inline uint32_t vkvm_run_io_count(const struct kvm_run *r) { return r->io.count; }
static inline uint64_t vkvm_run_io_data_offset(const struct kvm_run *r) { return r->io.data_offset; }
static inline uint64_t vkvm_run_mmio_phys_addr(const struct kvm_run *r) { return r->mmio.phys_addr; }
static inline uint8_t *vkvm_run_mmio_data(struct kvm_run *r) { return r->mmio.data; }
static inline uint32_t vkvm_run_mmio_len(const struct kvm_run *r) { return r->mmio.len; }
static inline uint8_t vkvm_run_mmio_is_write(const struct kvm_run *r) { return r->mmio.is_write; }
static inline uint64_t vkvm_run_fail_entry_reason(const struct kvm_run *r) { return r->fail_entry.hardware_entry_failure_reason; }
static inline uint32_t vkvm_run_fail_entry_cpu(const struct kvm_run *r) { return r->fail_entry.cpu; }
static inline uint32_t vkvm_run_internal_suberror(const struct kvm_run *r) { return r->internal.suberror; }
static inline uint32_t vkvm_run_internal_ndata(const struct kvm_run *r) { return r->internal.ndata; }
static inline uint64_t vkvm_run_internal_data(const struct kvm_run *r, uint32_t i) {
    return i < sizeof r->internal.data / sizeof r->internal.data[0] ? r->internal.data[i] : 0;
}
static inline uint64_t vkvm_run_hw_reason(const struct kvm_run *r) { return r->hw.hardware_exit_reason; }

/* The dirty ring: an array of struct kvm_dirty_gfn at page KVM_DIRTY_LOG_PAGE_OFFSET
 * of the vCPU fd. `flags` is read with acquire (the slot and offset KVM wrote
 * before it are then visible) and RESET is written with release (KVM reads
 * the entry as ours to reuse only after we are done with it). */
static inline long vkvm_dirty_ring_page_offset(void) { return KVM_DIRTY_LOG_PAGE_OFFSET; }
static inline size_t vkvm_dirty_gfn_size(void) { return sizeof(struct kvm_dirty_gfn); }
static inline uint32_t vkvm_dirty_gfn_flags_acquire(const struct kvm_dirty_gfn *ring, uint32_t i) {
    return __atomic_load_n(&ring[i].flags, __ATOMIC_ACQUIRE);
}
static inline int vkvm_dirty_gfn_is_dirty(uint32_t flags) { return (flags & KVM_DIRTY_GFN_F_DIRTY) != 0; }
static inline uint32_t vkvm_dirty_gfn_slot(const struct kvm_dirty_gfn *ring, uint32_t i) { return ring[i].slot; }
static inline uint64_t vkvm_dirty_gfn_offset(const struct kvm_dirty_gfn *ring, uint32_t i) { return ring[i].offset; }
static inline void vkvm_dirty_gfn_reset_release(struct kvm_dirty_gfn *ring, uint32_t i) {
    __atomic_store_n(&ring[i].flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
}

/* The kick that takes a vCPU thread out of KVM_RUN: a no-op handler installed
 * without SA_RESTART, so the ioctl returns EINTR. */
static inline void vkvm_kick_handler(int signo) { (void)signo; }
static inline int vkvm_install_kick_handler(int signo) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = vkvm_kick_handler;
    sigemptyset(&sa.sa_mask);
    return sigaction(signo, &sa, NULL) < 0 ? -errno : 0;
}
/* Threads inherit their creator's signal mask, and libdispatch's workers
 * block everything: a vCPU thread unblocks the kick once (cached per thread). */
static inline void vkvm_unblock_kick(int signo) {
    static __thread int done;
    if (done) return;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signo);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    done = 1;
}
static inline int vkvm_kick_signal(void) { return SIGRTMIN + 3; }
static inline int vkvm_kick(pthread_t thread, int signo) { return -pthread_kill(thread, signo); }
static inline pthread_t vkvm_self(void) { return pthread_self(); }
#endif
