/*
 * config.h -- written by hand for this benchmark build (Linux x86_64, glibc,
 * gcc 12).  It stands in for the autoconf-generated config.h of the portable
 * libumem build; it is NOT part of the fetched sources.
 */
#ifndef UMEM_BENCH_CONFIG_H
#define UMEM_BENCH_CONFIG_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1            /* sigrelse(), u_int64_t, caddr_t, brk/sbrk */
#endif

#define HAVE_ALLOCA_H 1
#define HAVE_DLFCN_H 1
#define HAVE_STRINGS_H 1
#define HAVE_SYS_MMAN_H 1
#define HAVE_SYS_SYSMACROS_H 1
#define HAVE_SYS_TIME_H 1
#define HAVE_UNISTD_H 1
#define HAVE_UCONTEXT_H 1
#define HAVE_PTHREAD 1
/* Not available on Linux: HAVE_ATOMIC_H, HAVE_THREAD_H, HAVE_SYNC_H,
 * HAVE_SYS_PROCESSOR_H, HAVE_SYS_KSTAT, HAVE_SYS_FRAME_H, HAVE_SYS_STACK_H,
 * HAVE_SYS_MACHELF_H */

#define SIZEOF_VOID_P 8

/*
 * glibc's x86_64 pthread_mutex_t is 40 bytes, so umem_cpu_cache_t needs the
 * 128-byte layout (the portable libumem configure defines this when
 * pthread_mutex_t is large; without it umem_init() panics on the
 * sizeof (umem_cpu_cache_t) check).
 */
#define UMEM_PTHREAD_MUTEX_TOO_BIG 1

/*
 * glibc has no issetugid().  sol_compat.h meant to supply a fallback but its
 * "#elseif" (not a valid directive) leaves it undefined.  A plain, non-setuid
 * process: 0.
 */
#define issetugid() 0

/*
 * Two definitions the fetched sol_compat.h of this vintage lacks but the
 * fetched sources use:
 *  - P2BOUNDARY (vmem.c, vmem_xalloc) -- definition as in illumos
 *    <sys/sysmacros.h>;
 *  - PAGE_SIZE (init_lib.c, umem_type_init): again the "#elseif" typo sends
 *    Linux to the FreeBSD branch.  umem_init() later overwrites pagesize
 *    with heap_arena->vm_quantum anyway.
 */
#define P2BOUNDARY(off, len, align) \
	(((off) ^ ((off) + (len) - 1)) > (align) - 1)
#include <unistd.h>
#define PAGE_SIZE ((size_t)sysconf(_SC_PAGESIZE))

#endif
