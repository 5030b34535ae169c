/*
 * workload_driver.h -- the vmem.md section 6 workloads as VMKit's
 * WorkloadLoop runs them (Sources/VmemWorkloads), and a main() that times
 * them, for C allocators: libumem's vmem (LibumemDriver/driver.c) and the
 * exact prototypes (BoundaryGroups/proto_driver.c). Each driver includes
 * this file once and defines the hooks declared below.
 *
 *   DRIVER --workload instant|best|small|small-nocache [--repeat N]
 *          [--ops N] [--warmup N] [--no-maintenance] [--json]
 *   DRIVER --check-rng        print the first splitmix64(42) values
 *
 * Besides the time per pair it prints the high-water ratio and an FNV-1a
 * checksum over every address returned (fill, warm-up and timed blocks):
 * an exact allocator prints libumem's.
 */
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

/* What the workload asks of the allocation call. */
enum { POLICY_INSTANT = 0, POLICY_BEST = 1 };

/* The hooks a driver defines. */
static const char *drv_name;                            /* "libumem", a prototype's name */
static void drv_setup(uint64_t qcache_max);             /* the arena: BASE, ARENASIZE, QUANTUM */
static uint64_t drv_alloc(uint64_t size, int policy);   /* 0: no address */
static void drv_free(uint64_t address, uint64_t size);
static void drv_maintenance(void);                      /* untimed, after fill and warm-up */
static void drv_report_json(int maintained);            /* extra ", \"key\": value" fields */
static void drv_report_text(int maintained);            /* extra text before the newline */
static int drv_finish(void);                            /* after every slot is freed: exit status */

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
static int policy;
static uint64_t kpages;
static uint64_t peak_end;
static uint64_t cksum = 0xcbf29ce484222325ULL;
static uint64_t nallocs;

static void
die(const char *what, uint64_t size)
{
	fprintf(stderr, "FATAL: %s failed (size %" PRIu64 ")\n", what, size);
	fflush(stderr);
	abort();
}

static inline uint64_t
alloc_pages(uint64_t size)
{
	uint64_t a = drv_alloc(size, policy);
	if (a == 0)
		die("alloc", size);
	cksum = (cksum ^ a) * 0x100000001b3ULL;
	nallocs++;
	return a;
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
		drv_free(slot->address, slot->size);
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
	uint64_t qcache_max = 0;
	double *blocks;

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
		kpages = 64; policy = POLICY_INSTANT;
	} else if (!strcmp(workload, "best")) {
		kpages = 64; policy = POLICY_BEST;
	} else if (!strcmp(workload, "small")) {
		kpages = 8; policy = POLICY_INSTANT; qcache_max = 8 * QUANTUM;
	} else if (!strcmp(workload, "small-nocache")) {
		kpages = 8; policy = POLICY_INSTANT;
	} else {
		fprintf(stderr, "unknown workload %s\n", workload);
		return 2;
	}

	drv_setup(qcache_max);
	rng_state = 42;
	for (i = 0; i < NSLOTS; i++) {
		uint64_t s = (1 + splitmix64() % kpages) * QUANTUM;
		slots[i].address = alloc_pages(s);
		slots[i].size = s;
	}
	start_peak();
	if (do_maint)
		drv_maintenance();
	run_pairs(warmup);
	if (do_maint)
		drv_maintenance();
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
		if (json) {
			printf("{\"allocator\": \"%s\", \"workload\": \"%s\", "
			    "\"opsTimed\": %ld, \"repeats\": %d, "
			    "\"nsPerPair\": %.2f, \"nsPerPairMin\": %.2f, "
			    "\"nsPerPairMax\": %.2f, \"highWaterRatio\": %.4f, "
			    "\"checksum\": \"%016llx\", \"allocs\": %llu",
			    drv_name, workload, ops, repeat, med, mn, mx, hw,
			    (unsigned long long)cksum, (unsigned long long)nallocs);
			drv_report_json(do_maint);
			printf("}\n");
		} else {
			printf("%s %-14s %8.2f ns/pair (median of %d; "
			    "min %.2f max %.2f) highWater %.3f cksum %016llx",
			    drv_name, workload, med, repeat, mn, mx, hw, (unsigned long long)cksum);
			drv_report_text(do_maint);
			printf("\n");
		}
	}
	/* Tidy up, as VMKit's freeAll() does (outside timing). */
	for (i = 0; i < NSLOTS; i++)
		drv_free(slots[i].address, slots[i].size);
	free(blocks);
	return drv_finish();
}
