/*
 * proto_driver.c -- the vmem.md section 6 workloads (../workload_driver.h)
 * against a C allocator prototype chosen at build time
 * (-DALLOC_IMPL="bg.h"), with -DUSE_LOCK a futex lock around every call
 * (one compare-and-swap to enter, one exchange to leave: VMKit's
 * ArenaLock). The prototypes implement instant fit only, so every
 * workload runs instant fit, without quantum caches (instant and
 * small-nocache are the ones they are for).
 * Research code for issue 17 item 9; not built by CI.
 */
#include <stddef.h>
#include <stdint.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../workload_driver.h"
#include ALLOC_IMPL

static const char *drv_name = VA_NAME;

/* futex-style lock: one CAS to enter, one exchange to leave */
#ifdef USE_LOCK
static int lockword;
static void __attribute__((noinline)) lock_slow(void) {
	int c = 0;
	while (!__atomic_compare_exchange_n(&lockword, &c, 2, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
		if (c == 1) c = __atomic_exchange_n(&lockword, 2, __ATOMIC_ACQUIRE);
		if (c == 0) return;
		syscall(SYS_futex, &lockword, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
		c = 0;
	}
}
#endif
static inline void lk_enter(void) {
#ifdef USE_LOCK
	int c = 0;
	if (!__atomic_compare_exchange_n(&lockword, &c, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		lock_slow();
#endif
}
static inline void lk_leave(void) {
#if defined(USE_LOCK) && defined(STORE_UNLOCK)
	/* informative only: release by plain store (not a correct futex unlock: cannot see waiters) */
	__atomic_store_n(&lockword, 0, __ATOMIC_RELEASE);
#elif defined(USE_LOCK)
	if (__atomic_exchange_n(&lockword, 0, __ATOMIC_RELEASE) == 2)
		syscall(SYS_futex, &lockword, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
#endif
}
static void
drv_setup(uint64_t qcache_max)
{
	(void)qcache_max;
	va_init(BASE, ARENASIZE, QUANTUM);
}

static uint64_t __attribute__((noinline))
drv_alloc(uint64_t size, int policy)
{
	(void)policy;
	lk_enter();
	uint64_t r = va_alloc(size);
	lk_leave();
	return r;
}

static void __attribute__((noinline))
drv_free(uint64_t address, uint64_t size)
{
	lk_enter();
	int r = va_free(address, size);
	lk_leave();
	if (r != 0) {
		fprintf(stderr, "bad free %" PRIx64 " %" PRIu64 "\n", address, size);
		abort();
	}
}

/* Nothing to maintain: the prototypes resize their tables as they go. */
static void drv_maintenance(void) { }

static void
drv_report_json(int maintained)
{
	(void)maintained;
	printf(", \"metaBytesPerLive\": %.2f, \"freeSegs\": %zu",
	    (double)va_meta_bytes() / NSLOTS, va_free_segs());
}

static void
drv_report_text(int maintained)
{
	(void)maintained;
	printf(" meta/live %.2f", (double)va_meta_bytes() / NSLOTS);
}

/* Every slot is free again: the arena must have coalesced back to one segment. */
static int
drv_finish(void)
{
#ifdef STATS
	va_stats();
#endif
	if (va_free_segs() != 1) {
		fprintf(stderr, "not coalesced: %zu free segs\n", va_free_segs());
		return 1;
	}
	return 0;
}
