#ifndef CHOSTMEMORY_H
#define CHOSTMEMORY_H
/* The kernel interfaces HostMemory needs that Swift's Glibc module cannot
 * reach (the <linux/userfaultfd.h> ioctls and their structures, memfd and
 * seal constants behind _GNU_SOURCE), the guard-page reporter (a signal
 * handler must be async-signal-safe, which is easiest to keep true in C),
 * and two fork helpers the tests and `vmkit as` use to touch memory from a
 * second process. Every function returns a negative errno on failure. */
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

/* ---- userfaultfd ---- */

/* Feature and mode bits, as the kernel numbers them. */
enum {
    VMK_UFFD_FEATURE_PAGEFAULT_FLAG_WP = 1 << 0,
    VMK_UFFD_FEATURE_MISSING_SHMEM = 1 << 5,
    VMK_UFFD_FEATURE_SIGBUS = 1 << 7,
    VMK_UFFD_FEATURE_THREAD_ID = 1 << 8,
    VMK_UFFD_FEATURE_MINOR_SHMEM = 1 << 10,
    VMK_UFFD_FEATURE_WP_HUGETLBFS_SHMEM = 1 << 12,
};
enum {
    VMK_UFFD_MODE_MISSING = 1 << 0,
    VMK_UFFD_MODE_WP = 1 << 1,
    VMK_UFFD_MODE_MINOR = 1 << 2,
};
/* Flags of a page-fault event. */
enum {
    VMK_UFFD_FLAG_WRITE = 1 << 0,
    VMK_UFFD_FLAG_WP = 1 << 1,
    VMK_UFFD_FLAG_MINOR = 1 << 2,
};

/* A new userfaultfd (non-blocking, close-on-exec): the system call first,
 * then /dev/userfaultfd. On failure returns -errno and puts in *how which
 * way failed last (1 the system call, 2 the device). */
int vmk_uffd_open(int *how);
/* UFFDIO_API handshake. Asks for `wanted` features, drops those the kernel
 * refuses (retrying on a new fd if needed: the handshake works once per fd),
 * and reports what is on. Returns the fd to use (maybe a new one, the old
 * one closed), or -errno. */
int vmk_uffd_handshake(int fd, uint64_t wanted, uint64_t *features, uint64_t *ioctls);
int vmk_uffd_register(int fd, uint64_t start, uint64_t len, uint64_t mode, uint64_t *ioctls);
int vmk_uffd_unregister(int fd, uint64_t start, uint64_t len);
int vmk_uffd_wake(int fd, uint64_t start, uint64_t len);
/* UFFDIO_COPY; *copied gets the bytes copied (also on a partial failure). */
int vmk_uffd_copy(int fd, uint64_t dst, const void *src, uint64_t len, int dontwake, int64_t *copied);
int vmk_uffd_zeropage(int fd, uint64_t start, uint64_t len, int dontwake, int64_t *zeroed);
int vmk_uffd_continue(int fd, uint64_t start, uint64_t len, int dontwake, int64_t *mapped);
int vmk_uffd_writeprotect(int fd, uint64_t start, uint64_t len, int protect);

/* One event read from a userfaultfd, flattened. */
typedef struct {
    uint8_t kind;       /* 1 page fault, 0 anything else */
    uint64_t flags;     /* VMK_UFFD_FLAG_* */
    uint64_t address;
    uint32_t thread;    /* with VMK_UFFD_FEATURE_THREAD_ID */
} vmk_uffd_event;
/* Reads up to `max` events without blocking: their count, 0 when none are
 * queued, or -errno. */
int vmk_uffd_read(int fd, vmk_uffd_event *out, int max);
/* Waits until the userfaultfd or the stop fd is readable, up to timeout_ms
 * (-1 for ever). Returns a bit set: 1 events, 2 stop; or -errno. */
int vmk_uffd_poll(int fd, int stopfd, int timeout_ms);

/* ---- memory objects ---- */
enum {
    VMK_MFD_CLOEXEC = 0x0001,
    VMK_MFD_ALLOW_SEALING = 0x0002,
    VMK_MFD_HUGETLB = 0x0004,
    VMK_MFD_NOEXEC_SEAL = 0x0008,
    VMK_MFD_EXEC = 0x0010,
};
enum {
    VMK_F_SEAL_SEAL = 0x0001,
    VMK_F_SEAL_SHRINK = 0x0002,
    VMK_F_SEAL_GROW = 0x0004,
    VMK_F_SEAL_WRITE = 0x0008,
    VMK_F_SEAL_FUTURE_WRITE = 0x0010,
    VMK_F_SEAL_EXEC = 0x0020,
};
int vmk_memfd_create(const char *name, unsigned flags);
int vmk_add_seals(int fd, int seals);
int vmk_get_seals(int fd);
/* An eventfd used to stop a handler thread. */
int vmk_eventfd(void);
int vmk_eventfd_signal(int fd);
/* MAP_FIXED_NOREPLACE and MAP_NORESERVE, MAP_POPULATE for Swift. */
int vmk_map_fixed_noreplace(void);
int vmk_map_noreserve(void);
int vmk_map_populate(void);
/* MADV_POPULATE_WRITE (prefault writable), or -1 where unknown. */
int vmk_madv_populate_write(void);
int vmk_madv_populate_read(void);

/* ---- guard reports ---- */

/* How many guarded ranges the reporter can hold at once. */
#define VMK_GUARD_SLOTS 4096
#define VMK_GUARD_LABEL 96
/* Installs the SIGSEGV/SIGBUS handler (once per process) and an alternate
 * signal stack for the calling thread. Returns 0 or -errno. */
int vmk_guard_install(void);
/* An alternate stack for the calling thread, so a stack overflow on it can
 * still be reported. Idempotent per thread. */
int vmk_guard_altstack(void);
/* Takes the calling thread's alternate signal stack away and unmaps it: for
 * a thread that made one with vmk_guard_altstack and is about to exit (the
 * kernel forgets the stack with the thread; the memory would stay mapped).
 * Returns 0, or -EBUSY while running on it. */
int vmk_guard_altstack_release(void);
/* Records [base, base + len) with a message label; returns the slot (>= 0)
 * or -ENOSPC. kind: 1 red zone, 2 hole, 3 refused fault, 4 window guard. */
int vmk_guard_add(uint64_t base, uint64_t len, int kind, const char *label);
void vmk_guard_remove(int slot);
/* Number of slots in use (for leak tests). */
int vmk_guard_count(void);
/* Formats the report the handler would print for `address` into buf (for
 * tests that must not die); returns the length, 0 when not guarded. */
int vmk_guard_describe(uint64_t address, int signo, char *buf, size_t size);

/* ---- second-process helpers ---- */

/* Forks a child that touches `address` (writes a byte when `write`) with its
 * stderr on a pipe; the parent gathers up to size-1 bytes of that stderr into
 * buf and the child's wait status into *status. Returns the bytes gathered. */
int vmk_fork_touch(uint64_t address, int write, int *status, char *buf, size_t size);
/* Forks a child that maps `fd` shared at `offset` for `len` bytes on its own
 * and writes byte i as (uint8_t)(seed + i * 7); returns the child's wait
 * status. */
int vmk_fork_write_fd(int fd, uint64_t offset, uint64_t len, uint8_t seed);

/* ---- the C baselines of `vmkit bench as` ---- */

/* The least a userfaultfd handler can do, in C: one thread reads each event
 * and answers it with UFFDIO_COPY from `source` (a zero page when source is
 * NULL; the page at the fault's offset otherwise), while the caller writes
 * one byte to each of `pages` pages of a fresh registered anonymous region.
 * Returns the nanoseconds the touching took, or -errno. */
int64_t vmk_baseline_uffd_copy(uint64_t pages, const void *source);
/* The kernel's own first-touch fault: write one byte to each page of a
 * fresh anonymous mapping (MADV_NOHUGEPAGE, so 4 KiB faults). Returns
 * nanoseconds, or -errno. */
int64_t vmk_baseline_anonymous_touch(uint64_t pages);
/* A read-ahead fill in C: as vmk_baseline_uffd_copy with a non-NULL
 * `source`, but each fault copies up to `run_pages` pages from the faulting
 * page on (never past the region's end). The caller writes one byte to each
 * page (`write` non-zero) or reads one and adds them into *sum. Returns the
 * nanoseconds the touching took, or -errno (-EINVAL for 0 pages, 0 run or
 * a NULL source). */
int64_t vmk_baseline_uffd_fill(uint64_t pages, const void *source, uint64_t run_pages, int write,
                               uint64_t *sum);
/* The system calls under a host segment's map and unmap, in C: in a window
 * of its own, `iterations` times map `length` bytes of anonymous memory
 * (MAP_FIXED), register them for missing faults on a userfaultfd, and put
 * the PROT_NONE reservation back. Returns the nanoseconds of the loop, or
 * -errno (-EINVAL for 0 iterations or a length not a multiple of 4096). */
int64_t vmk_baseline_map_unmap(uint64_t iterations, uint64_t length);
/* A monotonic clock in nanoseconds. */
uint64_t vmk_now_ns(void);
/* The calling thread's kernel id. */
int vmk_gettid(void);
#endif
