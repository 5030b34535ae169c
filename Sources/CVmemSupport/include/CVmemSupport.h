#ifndef CVMEMSUPPORT_H
#define CVMEMSUPPORT_H
/* Thin wrappers over C-library calls that Swift's Glibc module does not
 * export (they need _GNU_SOURCE). Vmem depends on the C library only. */
#include <stdint.h>

/* The CPU the caller runs on, or -1 when unknown: picks quantum-cache slots. */
int cvmem_current_cpu(void);
/* The kernel thread id of the caller (audit records, populator identity). */
uint64_t cvmem_thread_id(void);
/* Number of online CPUs. */
int cvmem_cpu_count(void);
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
/* Start loading the cache line at p for a coming write (or read-modify-write):
 * lets a likely cache miss overlap other work. Never faults. Static inline so
 * that Swift inlines it into the hot paths. */
static inline void cvmem_prefetch_write(const void *p) { __builtin_prefetch(p, 1, 3); }
#endif
