/*
 * driver.c -- the vmem.md section 6 workloads (../workload_driver.h)
 * against libumem's userland vmem (README.md says which sources and how to
 * build). Written for this benchmark; contains no libumem code: it calls
 * the library and reads two of its internal headers, to report the hash
 * table's size and to run the library's own periodic maintenance step.
 */
#include "umem_base.h"
#include "vmem_base.h"
#include <sys/vmem_impl_user.h>

#include "../workload_driver.h"

static const char *drv_name = "libumem";
static vmem_t *arena;

static void
drv_setup(uint64_t qcache_max)
{
	/* Bring umem up first (its first allocation runs umem_init()). */
	void *p = umem_alloc(8, UMEM_DEFAULT);
	if (p == NULL)
		die("umem_alloc", 8);
	umem_free(p, 8);

	/* VM_SLEEP is unsupported by this vmem (vmem_populate asserts). */
	arena = vmem_create("bench", (void *)(uintptr_t)BASE, ARENASIZE,
	    QUANTUM, NULL, NULL, NULL, (size_t)qcache_max, VM_NOSLEEP);
	if (arena == NULL)
		die("vmem_create", ARENASIZE);
}

static uint64_t
drv_alloc(uint64_t size, int policy)
{
	int flag = policy == POLICY_BEST ? VM_BESTFIT | VM_NOSLEEP : VM_NOSLEEP;
	return (uint64_t)(uintptr_t)vmem_alloc(arena, (size_t)size, flag);
}

static void
drv_free(uint64_t address, uint64_t size)
{
	vmem_free(arena, (void *)(uintptr_t)address, (size_t)size);
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
drv_maintenance(void)
{
	umem_st_update_thr = thr_self();
	vmem_update(NULL);
	umem_cache_applyall(umem_cache_update);
	(void) mutex_lock(&umem_update_lock);
	umem_process_updates();
	(void) mutex_unlock(&umem_update_lock);
	umem_st_update_thr = 0;
}

static void
drv_report_json(int maintained)
{
	printf(", \"maintenance\": %s, \"hashBuckets\": %zu",
	    maintained ? "true" : "false", (size_t)(arena->vm_hash_mask + 1));
}

static void
drv_report_text(int maintained)
{
	printf(" hash %zu%s", (size_t)(arena->vm_hash_mask + 1),
	    maintained ? "" : " (no maintenance)");
}

static int
drv_finish(void)
{
	return 0;
}
