#define _GNU_SOURCE
#include "CHostMemory.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* ---- userfaultfd ---- */

int vmk_uffd_open(int *how) {
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd >= 0) { if (how) *how = 1; return fd; }
    int err = errno;
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev >= 0) {
        fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
        int e2 = errno;
        close(dev);
        if (fd >= 0) { if (how) *how = 2; return fd; }
        err = e2;
    } else if (errno != ENOENT) {
        err = errno;
    }
    if (how) *how = 2;
    return -err;
}

static int api_once(int fd, uint64_t wanted, uint64_t *features, uint64_t *ioctls) {
    struct uffdio_api api = { .api = UFFD_API, .features = wanted };
    if (ioctl(fd, UFFDIO_API, &api) != 0) return -errno;
    if (features) *features = api.features;
    if (ioctls) *ioctls = api.ioctls;
    return 0;
}

int vmk_uffd_handshake(int fd, uint64_t wanted, uint64_t *features, uint64_t *ioctls) {
    /* Ask with 0 on a probe fd to learn what the kernel offers, then ask
     * for the offered part of `wanted` on the real fd. */
    int probe = vmk_uffd_open(NULL);
    uint64_t offered = 0;
    if (probe >= 0) {
        uint64_t io = 0;
        if (api_once(probe, 0, &offered, &io) != 0) offered = 0;
        close(probe);
    }
    int r = api_once(fd, wanted & offered, features, ioctls);
    if (r == 0) return fd;
    /* The kernel refused a feature it claimed: retry bare on a new fd. */
    close(fd);
    fd = vmk_uffd_open(NULL);
    if (fd < 0) return fd;
    r = api_once(fd, 0, features, ioctls);
    if (r != 0) { close(fd); return r; }
    return fd;
}

int vmk_uffd_register(int fd, uint64_t start, uint64_t len, uint64_t mode, uint64_t *ioctls) {
    struct uffdio_register reg = { .range = { .start = start, .len = len }, .mode = mode };
    if (ioctl(fd, UFFDIO_REGISTER, &reg) != 0) return -errno;
    if (ioctls) *ioctls = reg.ioctls;
    return 0;
}

int vmk_uffd_unregister(int fd, uint64_t start, uint64_t len) {
    struct uffdio_range range = { .start = start, .len = len };
    return ioctl(fd, UFFDIO_UNREGISTER, &range) == 0 ? 0 : -errno;
}

int vmk_uffd_wake(int fd, uint64_t start, uint64_t len) {
    struct uffdio_range range = { .start = start, .len = len };
    return ioctl(fd, UFFDIO_WAKE, &range) == 0 ? 0 : -errno;
}

int vmk_uffd_copy(int fd, uint64_t dst, const void *src, uint64_t len, int dontwake, int64_t *copied) {
    struct uffdio_copy c = { .dst = dst, .src = (uint64_t)(uintptr_t)src, .len = len,
                             .mode = dontwake ? UFFDIO_COPY_MODE_DONTWAKE : 0 };
    int r = ioctl(fd, UFFDIO_COPY, &c) == 0 ? 0 : -errno;
    if (copied) *copied = c.copy;
    return r;
}

int vmk_uffd_zeropage(int fd, uint64_t start, uint64_t len, int dontwake, int64_t *zeroed) {
    struct uffdio_zeropage z = { .range = { .start = start, .len = len },
                                 .mode = dontwake ? UFFDIO_ZEROPAGE_MODE_DONTWAKE : 0 };
    int r = ioctl(fd, UFFDIO_ZEROPAGE, &z) == 0 ? 0 : -errno;
    if (zeroed) *zeroed = z.zeropage;
    return r;
}

int vmk_uffd_continue(int fd, uint64_t start, uint64_t len, int dontwake, int64_t *mapped) {
    struct uffdio_continue c = { .range = { .start = start, .len = len },
                                 .mode = dontwake ? UFFDIO_CONTINUE_MODE_DONTWAKE : 0 };
    int r = ioctl(fd, UFFDIO_CONTINUE, &c) == 0 ? 0 : -errno;
    if (mapped) *mapped = c.mapped;
    return r;
}

int vmk_uffd_writeprotect(int fd, uint64_t start, uint64_t len, int protect) {
    struct uffdio_writeprotect w = { .range = { .start = start, .len = len },
                                     .mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0 };
    return ioctl(fd, UFFDIO_WRITEPROTECT, &w) == 0 ? 0 : -errno;
}

int vmk_uffd_read(int fd, vmk_uffd_event *out, int max) {
    struct uffd_msg msgs[64];
    if (max > 64) max = 64;
    if (max <= 0) return 0;
    ssize_t n = read(fd, msgs, sizeof(struct uffd_msg) * (size_t)max);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
    int count = (int)(n / (ssize_t)sizeof(struct uffd_msg));
    for (int i = 0; i < count; i++) {
        out[i].kind = msgs[i].event == UFFD_EVENT_PAGEFAULT ? 1 : 0;
        out[i].flags = msgs[i].arg.pagefault.flags;
        out[i].address = msgs[i].arg.pagefault.address;
        out[i].thread = msgs[i].arg.pagefault.feat.ptid;
    }
    return count;
}

int vmk_uffd_poll(int fd, int stopfd, int timeout_ms) {
    struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = stopfd, .events = POLLIN } };
    for (;;) {
        int r = poll(p, stopfd >= 0 ? 2 : 1, timeout_ms);
        if (r < 0) { if (errno == EINTR) continue; return -errno; }
        int bits = 0;
        if ((p[0].revents & POLLNVAL) || (stopfd >= 0 && (p[1].revents & POLLNVAL))) return -EBADF;
        if (p[0].revents & (POLLIN | POLLERR | POLLHUP)) bits |= 1;
        if (stopfd >= 0 && (p[1].revents & POLLIN)) bits |= 2;
        return bits;
    }
}

/* ---- memory objects ---- */

int vmk_memfd_create(const char *name, unsigned flags) {
    int fd = (int)syscall(SYS_memfd_create, name, flags);
    return fd >= 0 ? fd : -errno;
}
int vmk_add_seals(int fd, int seals) { return fcntl(fd, F_ADD_SEALS, seals) == 0 ? 0 : -errno; }
int vmk_get_seals(int fd) { int r = fcntl(fd, F_GET_SEALS); return r >= 0 ? r : -errno; }
int vmk_eventfd(void) { int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); return fd >= 0 ? fd : -errno; }
int vmk_eventfd_signal(int fd) { uint64_t one = 1; return write(fd, &one, 8) == 8 ? 0 : -errno; }
int vmk_map_fixed_noreplace(void) { return MAP_FIXED_NOREPLACE; }
int vmk_map_noreserve(void) { return MAP_NORESERVE; }
int vmk_map_populate(void) { return MAP_POPULATE; }
int vmk_madv_populate_write(void) {
#ifdef MADV_POPULATE_WRITE
    return MADV_POPULATE_WRITE;
#else
    return 23;
#endif
}

/* ---- guard reports ---- */

/* A slot is published by storing `state` 1 after its fields (release) and
 * read by the handler after loading `state` (acquire); a removed slot goes
 * back to 0. Writers claim a slot by moving it from 0 to 2 first, so two
 * threads never fill one slot. The handler reads only this static table. */
typedef struct {
    _Atomic int state;
    uint64_t base, len;
    int kind;
    char label[VMK_GUARD_LABEL];
} guard_slot;

static guard_slot guard_table[VMK_GUARD_SLOTS];
static _Atomic int guard_installed;

static size_t put_str(char *buf, size_t at, size_t size, const char *s) {
    while (*s && at + 1 < size) buf[at++] = *s++;
    return at;
}
static size_t put_hex(char *buf, size_t at, size_t size, uint64_t v) {
    char tmp[20]; int n = 0;
    do { tmp[n++] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v);
    at = put_str(buf, at, size, "0x");
    while (n > 0 && at + 1 < size) buf[at++] = tmp[--n];
    return at;
}

static int describe(uint64_t address, int signo, char *buf, size_t size) {
    if (size == 0) return 0;
    for (int i = 0; i < VMK_GUARD_SLOTS; i++) {
        guard_slot *s = &guard_table[i];
        if (atomic_load_explicit(&s->state, memory_order_acquire) != 1) continue;
        if (address < s->base || address - s->base >= s->len) continue;
        size_t at = 0;
        at = put_str(buf, at, size, "vmkit: ");
        switch (s->kind) {
        case 1: at = put_str(buf, at, size, "stack overflow: touch of the red zone at "); break;
        case 2: at = put_str(buf, at, size, "touch of a reserved hole at "); break;
        case 3: at = put_str(buf, at, size, "fault refused by its segment driver at "); break;
        default: at = put_str(buf, at, size, "touch of a guard region at "); break;
        }
        at = put_hex(buf, at, size, address);
        at = put_str(buf, at, size, " in [");
        at = put_hex(buf, at, size, s->base);
        at = put_str(buf, at, size, ", +");
        at = put_hex(buf, at, size, s->len);
        at = put_str(buf, at, size, ") ");
        at = put_str(buf, at, size, s->label);
        at = put_str(buf, at, size, signo == SIGBUS ? " (SIGBUS)\n" : " (SIGSEGV)\n");
        buf[at] = 0;
        return (int)at;
    }
    buf[0] = 0;
    return 0;
}

static void guard_handler(int signo, siginfo_t *info, void *context) {
    (void)context;
    char msg[320];
    int n = describe((uint64_t)(uintptr_t)info->si_addr, signo, msg, sizeof msg);
    if (n > 0) {
        ssize_t off = 0;
        while (off < n) {
            ssize_t w = write(2, msg + off, (size_t)(n - off));
            if (w <= 0) break;
            off += w;
        }
    }
    /* Die of the signal as the process would have without us: the default
     * action, and the faulting instruction runs again on return. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(signo, &dfl, NULL);
}

int vmk_guard_altstack(void) {
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE)) return 0;
    size_t size = 64 * 1024;
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return -errno;
    stack_t ss = { .ss_sp = mem, .ss_size = size, .ss_flags = 0 };
    if (sigaltstack(&ss, NULL) != 0) { int e = errno; munmap(mem, size); return -e; }
    return 0;
}

int vmk_guard_altstack_release(void) {
    stack_t cur;
    if (sigaltstack(NULL, &cur) != 0) return -errno;
    if (cur.ss_flags & SS_DISABLE) return 0;
    if (cur.ss_flags & SS_ONSTACK) return -EBUSY;
    stack_t off = { .ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE };
    if (sigaltstack(&off, NULL) != 0) return -errno;
    munmap(cur.ss_sp, cur.ss_size);
    return 0;
}

int vmk_guard_install(void) {
    int r = vmk_guard_altstack();
    if (r != 0) return r;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&guard_installed, &expected, 1)) return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = guard_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) != 0 || sigaction(SIGBUS, &sa, NULL) != 0) {
        atomic_store(&guard_installed, 0);
        return -errno;
    }
    return 0;
}

int vmk_guard_add(uint64_t base, uint64_t len, int kind, const char *label) {
    for (int i = 0; i < VMK_GUARD_SLOTS; i++) {
        int expected = 0;
        if (!atomic_compare_exchange_strong(&guard_table[i].state, &expected, 2)) continue;
        guard_slot *s = &guard_table[i];
        s->base = base;
        s->len = len;
        s->kind = kind;
        size_t n = 0;
        if (label) for (; label[n] && n + 1 < VMK_GUARD_LABEL; n++) s->label[n] = label[n];
        s->label[n] = 0;
        atomic_store_explicit(&s->state, 1, memory_order_release);
        return i;
    }
    return -ENOSPC;
}

void vmk_guard_remove(int slot) {
    if (slot < 0 || slot >= VMK_GUARD_SLOTS) return;
    atomic_store_explicit(&guard_table[slot].state, 0, memory_order_release);
}

int vmk_guard_count(void) {
    int n = 0;
    for (int i = 0; i < VMK_GUARD_SLOTS; i++)
        if (atomic_load_explicit(&guard_table[i].state, memory_order_acquire) != 0) n++;
    return n;
}

int vmk_guard_describe(uint64_t address, int signo, char *buf, size_t size) {
    return describe(address, signo, buf, size);
}

/* ---- second-process helpers ---- */

int vmk_fork_touch(uint64_t address, int write_, int *status, char *buf, size_t size) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return -errno;
    pid_t pid = fork();
    if (pid < 0) { int e = errno; close(p[0]); close(p[1]); return -e; }
    if (pid == 0) {
        dup2(p[1], 2);
        volatile uint8_t *a = (volatile uint8_t *)(uintptr_t)address;
        if (write_) *a = 0x5a; else (void)*a;
        _exit(0);
    }
    close(p[1]);
    size_t got = 0;
    for (;;) {
        if (size == 0 || got + 1 >= size) { char sink[256]; if (read(p[0], sink, sizeof sink) <= 0) break; continue; }
        ssize_t n = read(p[0], buf + got, size - 1 - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    if (size) buf[got] = 0;
    close(p[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (status) *status = st;
    return (int)got;
}

int vmk_fork_write_fd(int fd, uint64_t offset, uint64_t len, uint8_t seed) {
    pid_t pid = fork();
    if (pid < 0) return -errno;
    if (pid == 0) {
        void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);
        if (m == MAP_FAILED) _exit(2);
        uint8_t *b = m;
        for (uint64_t i = 0; i < len; i++) b[i] = (uint8_t)(seed + i * 7);
        munmap(m, len);
        _exit(0);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    return st;
}

/* ---- baselines ---- */

uint64_t vmk_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The least a userfaultfd handler can do: read the events and answer each
 * with one UFFDIO_COPY, of a page of zeros (no source) or of a run of up to
 * `run` pages of the source from the faulting page on (never past the
 * region's end). */
typedef struct {
    int uffd;
    uint64_t base, pages, run;
    const uint8_t *source;
    _Atomic int stop;
} baseline_ctx;

static void *baseline_handler(void *arg) {
    baseline_ctx *c = arg;
    static const uint8_t zero[4096] __attribute__((aligned(4096)));
    struct uffd_msg msg[16];
    struct pollfd p = { .fd = c->uffd, .events = POLLIN };
    uint64_t end = c->base + c->pages * 4096;
    while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
        if (poll(&p, 1, 50) <= 0) continue;
        ssize_t n = read(c->uffd, msg, sizeof msg);
        if (n <= 0) continue;
        for (int i = 0; i < (int)(n / (ssize_t)sizeof msg[0]); i++) {
            if (msg[i].event != UFFD_EVENT_PAGEFAULT) continue;
            uint64_t page = msg[i].arg.pagefault.address & ~4095ull;
            const uint8_t *src = c->source ? c->source + (page - c->base) : zero;
            uint64_t len = c->source ? c->run * 4096 : 4096;
            if (len > end - page) len = end - page;
            struct uffdio_copy cp = { .dst = page, .src = (uint64_t)(uintptr_t)src, .len = len, .mode = 0 };
            if (ioctl(c->uffd, UFFDIO_COPY, &cp) != 0 && errno == EEXIST) {
                struct uffdio_range r = { .start = page, .len = 4096 };
                ioctl(c->uffd, UFFDIO_WAKE, &r);
            }
        }
    }
    return NULL;
}

/* A fresh registered region of `pages`, the handler on a thread of its own,
 * and one byte written to (or read from, summed into *sum) each page: the
 * nanoseconds of the touching, or -errno. */
static int64_t baseline_run(uint64_t pages, const void *source, uint64_t run, int write_, uint64_t *sum) {
    baseline_ctx c = { .pages = pages, .run = run, .source = source };
    c.uffd = vmk_uffd_open(NULL);
    if (c.uffd < 0) return c.uffd;
    struct uffdio_api api = { .api = UFFD_API, .features = 0 };
    if (ioctl(c.uffd, UFFDIO_API, &api) != 0) { int e = errno; close(c.uffd); return -e; }
    size_t len = pages * 4096;
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) { int e = errno; close(c.uffd); return -e; }
    c.base = (uint64_t)(uintptr_t)m;
    struct uffdio_register reg = { .range = { .start = c.base, .len = len }, .mode = UFFDIO_REGISTER_MODE_MISSING };
    if (ioctl(c.uffd, UFFDIO_REGISTER, &reg) != 0) { int e = errno; munmap(m, len); close(c.uffd); return -e; }
    pthread_t t;
    if (pthread_create(&t, NULL, baseline_handler, &c) != 0) { munmap(m, len); close(c.uffd); return -EAGAIN; }
    volatile uint8_t *b = m;
    uint64_t total = 0;
    uint64_t t0 = vmk_now_ns();
    if (write_) {
        for (uint64_t i = 0; i < pages; i++) b[i * 4096] = 1;
    } else {
        for (uint64_t i = 0; i < pages; i++) total += b[i * 4096];
    }
    uint64_t t1 = vmk_now_ns();
    atomic_store(&c.stop, 1);
    pthread_join(t, NULL);
    munmap(m, len);
    close(c.uffd);
    if (sum) *sum = total;
    return (int64_t)(t1 - t0);
}

int64_t vmk_baseline_uffd_copy(uint64_t pages, const void *source) {
    if (pages == 0) return -EINVAL;
    return baseline_run(pages, source, 1, 1, NULL);
}

int64_t vmk_baseline_anonymous_touch(uint64_t pages) {
    size_t len = pages * 4096;
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return -errno;
    /* 4 KiB faults, not a 2 MiB huge page per aligned run. */
    if (madvise(m, len, MADV_NOHUGEPAGE) != 0) { int e = errno; munmap(m, len); return -e; }
    volatile uint8_t *b = m;
    uint64_t t0 = vmk_now_ns();
    for (uint64_t i = 0; i < pages; i++) b[i * 4096] = 1;
    uint64_t t1 = vmk_now_ns();
    munmap(m, len);
    return (int64_t)(t1 - t0);
}

int64_t vmk_baseline_uffd_fill(uint64_t pages, const void *source, uint64_t run_pages, int write_,
                               uint64_t *sum) {
    if (pages == 0 || run_pages == 0 || source == NULL) return -EINVAL;
    return baseline_run(pages, source, run_pages, write_, sum);
}

int64_t vmk_baseline_map_unmap(uint64_t iterations, uint64_t length) {
    if (iterations == 0 || length == 0 || length % 4096 != 0) return -EINVAL;
    int uffd = vmk_uffd_open(NULL);
    if (uffd < 0) return uffd;
    struct uffdio_api api = { .api = UFFD_API, .features = 0 };
    if (ioctl(uffd, UFFDIO_API, &api) != 0) { int e = errno; close(uffd); return -e; }
    /* A window of its own, 2 MiB aligned, as a host reservation is. */
    size_t span = length + (2u << 20);
    void *w = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (w == MAP_FAILED) { int e = errno; close(uffd); return -e; }
    uint64_t at = ((uint64_t)(uintptr_t)w + (2u << 20) - 1) & ~((uint64_t)(2u << 20) - 1);
    void *a = (void *)(uintptr_t)at;
    int64_t result = 0;
    uint64_t t0 = vmk_now_ns();
    for (uint64_t i = 0; i < iterations; i++) {
        if (mmap(a, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0)
            == MAP_FAILED) { result = -errno; break; }
        struct uffdio_register reg = { .range = { .start = at, .len = length }, .mode = UFFDIO_REGISTER_MODE_MISSING };
        if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) { result = -errno; break; }
        if (mmap(a, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0)
            == MAP_FAILED) { result = -errno; break; }
    }
    uint64_t t1 = vmk_now_ns();
    munmap(w, span);
    close(uffd);
    return result < 0 ? result : (int64_t)(t1 - t0);
}

int vmk_gettid(void) { return (int)syscall(SYS_gettid); }
int vmk_madv_populate_read(void) {
#ifdef MADV_POPULATE_READ
    return MADV_POPULATE_READ;
#else
    return 22;
#endif
}
