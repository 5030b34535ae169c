#ifndef CVMEMSUPPORT_H
#define CVMEMSUPPORT_H
/* Thin wrappers over C-library calls that Swift's Glibc module does not
 * export (they need _GNU_SOURCE). Vmem depends on the C library only. */
#include <stdint.h>
#include <stddef.h>
#include "CVmemBestFitWalk.h"
#if defined(__linux__) && defined(__GLIBC__) && defined(__has_include)
#if __has_include(<sys/rseq.h>) && (defined(__x86_64__) || defined(__aarch64__))
#include <sys/rseq.h>
#define CVMEM_HAVE_RSEQ 1
#endif
#endif

/* The CPU the caller runs on, or -1 when unknown: picks quantum-cache slots. */
int cvmem_current_cpu(void);
/* The CPU the caller runs on, read from the C library's restartable-
 * sequences area: one load instead of a call into the C library (about 25
 * instructions there). Negative when the kernel keeps no such area for this
 * thread. The quantum caches' fast paths ask on every allocation and free,
 * and go to their slow paths on a negative number.
 *
 * No test of __rseq_size first: glibc keeps the area in every thread's
 * control block whether or not registration succeeded, and marks cpu_id
 * negative (RSEQ_CPU_ID_REGISTRATION_FAILED) when it did not, as under
 * valgrind or with the glibc.pthread.rseq=0 tunable. */
static inline int cvmem_rseq_cpu(void) {
#ifdef CVMEM_HAVE_RSEQ
    /* struct rseq: cpu_id_start at offset 0, cpu_id at offset 4 (the
     * kernel ABI). */
    int32_t cpu;
#if defined(__x86_64__)
    /* Addressed through %fs directly: no load of the thread pointer first. */
    __asm__ volatile("movl %%fs:(%1), %0" : "=r"(cpu) : "r"((long)__rseq_offset + 4));
#else
    const char *tp = (const char *)__builtin_thread_pointer();
    cpu = *(const volatile int32_t *)(tp + __rseq_offset + 4);
#endif
    return cpu;
#else
    return -1;
#endif
}
/* The CPU the caller runs on: the rseq area's number when there is one, else
 * the C library's answer (-1 when unknown). */
static inline int cvmem_fast_cpu(void) {
    int cpu = cvmem_rseq_cpu();
    return cpu >= 0 ? cpu : cvmem_current_cpu();
}
/* The kernel thread id of the caller (audit records; 0 off Linux). */
uint64_t cvmem_thread_id(void);
/* A token for the calling thread, non-zero and distinct among live threads on
 * every platform: the address of a thread-local byte. What the tag-refill
 * guard records to recognise its own thread. */
uintptr_t cvmem_thread_token(void);
/* Number of online CPUs. */
int cvmem_cpu_count(void);
/* One more than the highest CPU number the system can have (configured CPUs,
 * online or not): the slot count that gives every CPU a quantum-cache slot of
 * its own even when some CPUs are offline. */
int cvmem_cpu_slots(void);
/* Binds the calling thread to one CPU; 0 on success, else an error number
 * (-1 where the system has no such call). Benchmarks only. */
int cvmem_pin_to_cpu(int cpu);
/* Lets the calling thread run on every CPU again; 0 on success. */
int cvmem_unpin(void);
/* Return addresses of the caller's stack, innermost first; returns the depth. */
int cvmem_backtrace(uintptr_t *pcs, int max);
/* Symbol name containing pc into buf (NUL-terminated); returns 1 and the
 * offset from the symbol's start, or 0 when no symbol is known. */
int cvmem_symbolize(uintptr_t pc, char *buf, unsigned long len, uintptr_t *offset);
/* Sleep while *addr == expected, until woken or until the monotonic clock
 * reaches deadline_ns (0: no deadline). Returns 0 when woken (or the value
 * already differed), 1 when the deadline passed. Linux futex; elsewhere a
 * yield. */
int cvmem_futex_wait(uint32_t *addr, uint32_t expected, uint64_t deadline_ns);
/* Wake up to count sleepers on addr. */
void cvmem_futex_wake(uint32_t *addr, int count);
/* Start loading the cache line at p for reading; no effect on results. */
static inline void cvmem_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }
/* Start loading the cache line at p for a coming write (or read-modify-write):
 * lets a likely cache miss overlap other work. Never faults. Static inline so
 * that Swift inlines it into the hot paths. */
static inline void cvmem_prefetch_write(const void *p) { __builtin_prefetch(p, 1, 3); }
#endif
