/*
 * proto_driver.c -- runs the vmem.md section 6 workloads (instant,
 * small-nocache; the same splitmix64 draws, victim first, and the same
 * timed loop as Sources/VmemWorkloads/WorkloadLoop.swift) against a C
 * allocator prototype chosen at build time (-DALLOC_IMPL="bg.h"), with
 * -DUSE_LOCK a futex lock around every call (one compare-and-swap to
 * enter, one exchange to leave: VMKit's ArenaLock).
 *
 *   proto --workload instant|small-nocache [--repeat N] [--ops N] [--json]
 *
 * It prints, besides the time per pair, an FNV-1a checksum over every
 * address returned (fill, warm-up and timed blocks) and the high-water
 * ratio: an exact prototype prints libumem's (README.md).
 * Research code for issue 17 item 9; not built by CI.
 */
#include <stdint.h>
#include <stddef.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BASE      0x1000ULL
#define ARENASIZE (1ULL << 40)
#define QUANTUM   4096ULL
#define NSLOTS    10000
#define WARMUP    200000
#define TIMED     2000000

/* splitmix64, exactly as vmem.md 6 / SplitMix64.swift */
static uint64_t rng_state;
static inline uint64_t
splitmix64(void)
{
	uint64_t z;
	rng_state += 0x9E3779B97F4A7C15ULL;
	z = rng_state;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

typedef struct { uint64_t address, size; } slot_t;   /* as WorkloadSlot */

static slot_t slots[NSLOTS];
static int allocflag;
#define VM_NOSLEEP 1
#define VM_BESTFIT 2
static uint64_t kpages;
static uint64_t peak_end;
static uint64_t cksum = 0xcbf29ce484222325ULL;
static uint64_t nallocs;

#include ALLOC_IMPL

/* futex-style lock: one CAS to enter, one exchange to leave */
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
static void * __attribute__((noinline)) vmem_alloc(void *a, size_t size, int flag) {
	(void)a; (void)flag;
	lk_enter();
	uint64_t r = va_alloc(size);
	lk_leave();
	return (void *)(uintptr_t)r;
}
static void __attribute__((noinline)) vmem_free(void *a, void *addr, size_t size) {
	(void)a;
	lk_enter();
	int r = va_free((uint64_t)(uintptr_t)addr, size);
	lk_leave();
	if (r != 0) { fprintf(stderr, "bad free %p %zu\n", addr, size); abort(); }
}
static void *arena;


static void
die(const char *what, uint64_t size)
{
	fprintf(stderr, "FATAL: %s returned NULL (size %" PRIu64 ")\n",
	    what, size);
	fflush(stderr);
	abort();
}

static inline uint64_t
alloc_pages(uint64_t size)
{
	void *p = vmem_alloc(arena, (size_t)size, allocflag);
	if (p == NULL)
		die("vmem_alloc", size);
	cksum = (cksum ^ (uint64_t)(uintptr_t)p) * 0x100000001b3ULL; nallocs++;
	return (uint64_t)(uintptr_t)p;
}

/*
 * The timed loop, mirroring WorkloadLoop.run: the victim of the next pair
 * is drawn one pair early (so the draws stay victim, size, victim, size...)
 * and its slot is prefetched; peak end address is tracked on every alloc.
 */
static void
run_pairs(long count)
{
	slot_t *slot, *next;
	long left = count;
	uint64_t peak = peak_end;

	if (count <= 0)
		return;
	slot = &slots[splitmix64() % NSLOTS];
	for (;;) {
		uint64_t s = (1 + splitmix64() % kpages) * QUANTUM;
		uint64_t a;
		left--;
		next = left > 0 ? &slots[splitmix64() % NSLOTS] : slot;
		__builtin_prefetch(next, 1);
		vmem_free(arena, (void *)(uintptr_t)slot->address,
		    (size_t)slot->size);
		a = alloc_pages(s);
		slot->address = a;
		slot->size = s;
		if (a + s > peak)
			peak = a + s;
		if (left == 0)
			break;
		slot = next;
	}
	peak_end = peak;
}

static void
start_peak(void)
{
	int i;
	peak_end = 0;
	for (i = 0; i < NSLOTS; i++)
		if (slots[i].address + slots[i].size > peak_end)
			peak_end = slots[i].address + slots[i].size;
}

static uint64_t
in_use(void)
{
	uint64_t t = 0;
	int i;
	for (i = 0; i < NSLOTS; i++)
		t += slots[i].size;
	return t;
}

/*
 * libumem's periodic maintenance, as its update thread / umem_st_update()
 * run it every umem_reap_interval: vmem_update() (rescales every arena's
 * allocated-segment hash table) and umem_cache_update() on every cache
 * (rescales the quantum caches' bufctl hashes), then the queued work.
 * Without it the arena's hash stays at VMEM_HASH_INITIAL (16) buckets for
 * 10,000 live segments.  Called only outside the timed blocks.
 */
static void maintenance(void) { }

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int
main(int argc, char **argv)
{
	const char *workload = NULL;
	int repeat = 1, json = 0, do_maint = 1, i;
	long ops = TIMED, warmup = WARMUP;
	size_t qcache_max = 0;
	double *blocks;
	void *p;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--workload") && i + 1 < argc)
			workload = argv[++i];
		else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
			repeat = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--ops") && i + 1 < argc)
			ops = atol(argv[++i]);
		else if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
			warmup = atol(argv[++i]);
		else if (!strcmp(argv[i], "--no-maintenance"))
			do_maint = 0;
		else if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--check-rng")) {
			rng_state = 42;
			for (int j = 0; j < 8; j++)
				printf("%" PRIu64 "\n", splitmix64());
			return 0;
		} else {
			fprintf(stderr, "unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	if (workload == NULL || repeat < 1) {
		fprintf(stderr, "usage: %s --workload W [--repeat N]\n", argv[0]);
		return 2;
	}
	if (!strcmp(workload, "instant")) {
		kpages = 64; allocflag = VM_NOSLEEP;
	} else if (!strcmp(workload, "best")) {
		kpages = 64; allocflag = VM_BESTFIT | VM_NOSLEEP;
	} else if (!strcmp(workload, "small")) {
		kpages = 8; allocflag = VM_NOSLEEP; qcache_max = 8 * QUANTUM;
	} else if (!strcmp(workload, "small-nocache")) {
		kpages = 8; allocflag = VM_NOSLEEP;
	} else {
		fprintf(stderr, "unknown workload %s\n", workload);
		return 2;
	}

	va_init(BASE, ARENASIZE, QUANTUM);
	arena = (void *)1;
	(void)qcache_max; (void)p;
	rng_state = 42;
	for (i = 0; i < NSLOTS; i++) {
		uint64_t s = (1 + splitmix64() % kpages) * QUANTUM;
		slots[i].address = alloc_pages(s);
		slots[i].size = s;
	}
	start_peak();
	if (do_maint)
		maintenance();
	run_pairs(warmup);
	if (do_maint)
		maintenance();
	start_peak();

	blocks = calloc((size_t)repeat, sizeof (double));
	for (i = 0; i < repeat; i++) {
		double t0 = now_ns();
		run_pairs(ops);
		blocks[i] = now_ns() - t0;
	}
	{
		uint64_t used = in_use();
		double hw = (double)(peak_end - BASE) / (double)used;
		double med, mn, mx;

		qsort(blocks, (size_t)repeat, sizeof (double), cmp_double);
		med = blocks[repeat / 2] / (double)ops;
		mn = blocks[0] / (double)ops;
		mx = blocks[repeat - 1] / (double)ops;
		if (json)
			printf("{\"allocator\": \"%s\", \"workload\": \"%s\", "
			    "\"opsTimed\": %ld, \"repeats\": %d, "
			    "\"nsPerPair\": %.2f, \"nsPerPairMin\": %.2f, "
			    "\"nsPerPairMax\": %.2f, \"highWaterRatio\": %.4f, "
			    "\"metaBytesPerLive\": %.2f, \"freeSegs\": %zu, \"checksum\": \"%016llx\", \"allocs\": %llu}\n",
			    VA_NAME, workload, ops, repeat, med, mn, mx, hw,
			    (double)va_meta_bytes() / NSLOTS, va_free_segs(), (unsigned long long)cksum, (unsigned long long)nallocs);
		else
			printf("%s %-14s %8.2f ns/pair (median of %d; "
			    "min %.2f max %.2f) highWater %.3f meta/live %.2f cksum %016llx\n",
			    VA_NAME, workload, med, repeat, mn, mx, hw, (double)va_meta_bytes() / NSLOTS, (unsigned long long)cksum);
	}
#ifdef STATS
	va_stats();
#endif
	/* Tidy up (outside timing); checks the arena coalesces back to one segment. */
	for (i = 0; i < NSLOTS; i++)
		vmem_free(arena, (void *)(uintptr_t)slots[i].address,
		    (size_t)slots[i].size);
	free(blocks);
	if (va_free_segs() != 1) { fprintf(stderr, "not coalesced: %zu free segs\n", va_free_segs()); return 1; }
	return 0;
}
