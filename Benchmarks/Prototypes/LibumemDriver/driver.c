/*
 * driver.c -- runs the vmem workloads of vmem.md section 6 (as VMKit's
 * `vmkit bench vmem` implements them in Sources/VmemWorkloads/) against
 * libumem's userland vmem (built from src/, see REPORT.md).
 *
 *   driver --workload instant|best|small|small-nocache [--repeat N]
 *          [--ops N] [--warmup N] [--no-maintenance] [--json]
 *   driver --check-rng        print the first splitmix64(42) values
 *
 * Written for this benchmark; contains no libumem code (it only calls the
 * library and reads two of its internal headers to report hash-table sizes
 * and to run the library's own periodic maintenance step).
 */
#include "umem_base.h"
#include "vmem_base.h"
#include <sys/vmem_impl_user.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
static vmem_t *arena;
static int allocflag;
static uint64_t kpages;
static uint64_t peak_end;
static uint64_t cksum = 0xcbf29ce484222325ULL;
static uint64_t nallocs;

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
static void
maintenance(void)
{
	umem_st_update_thr = thr_self();
	vmem_update(NULL);
	umem_cache_applyall(umem_cache_update);
	(void) mutex_lock(&umem_update_lock);
	umem_process_updates();
	(void) mutex_unlock(&umem_update_lock);
	umem_st_update_thr = 0;
}

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

	/* Bring umem up first (its first allocation runs umem_init()). */
	p = umem_alloc(8, UMEM_DEFAULT);
	if (p == NULL)
		die("umem_alloc", 8);
	umem_free(p, 8);

	/* VM_SLEEP is unsupported by this vmem (vmem_populate asserts). */
	arena = vmem_create("bench", (void *)(uintptr_t)BASE, ARENASIZE,
	    QUANTUM, NULL, NULL, NULL, qcache_max, VM_NOSLEEP);
	if (arena == NULL)
		die("vmem_create", ARENASIZE);

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
		size_t hashsize = arena->vm_hash_mask + 1;
		double med, mn, mx;

		qsort(blocks, (size_t)repeat, sizeof (double), cmp_double);
		med = blocks[repeat / 2] / (double)ops;
		mn = blocks[0] / (double)ops;
		mx = blocks[repeat - 1] / (double)ops;
		if (json)
			printf("{\"allocator\": \"libumem\", \"workload\": \"%s\", "
			    "\"opsTimed\": %ld, \"repeats\": %d, "
			    "\"nsPerPair\": %.2f, \"nsPerPairMin\": %.2f, "
			    "\"nsPerPairMax\": %.2f, \"highWaterRatio\": %.4f, "
			    "\"maintenance\": %s, \"hashBuckets\": %zu, \"checksum\": \"%016llx\", \"allocs\": %llu}\n",
			    workload, ops, repeat, med, mn, mx, hw,
			    do_maint ? "true" : "false", hashsize, (unsigned long long)cksum, (unsigned long long)nallocs);
		else
			printf("libumem %-14s %8.2f ns/pair (median of %d; "
			    "min %.2f max %.2f) highWater %.3f hash %zu%s\n",
			    workload, med, repeat, mn, mx, hw, hashsize,
			    do_maint ? "" : " (no maintenance)");
	}
	/* Tidy up, as VMKit's freeAll() does (outside timing). */
	for (i = 0; i < NSLOTS; i++)
		vmem_free(arena, (void *)(uintptr_t)slots[i].address,
		    (size_t)slots[i].size);
	free(blocks);
	return 0;
}
