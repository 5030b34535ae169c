#ifndef CGUESTWORKLOADS_H
#define CGUESTWORKLOADS_H
/* The C baseline of `vmkit bench guest`'s translation figure: bhyve's
 * `vm_map_gpa` over the same guest map as GuestMemory's, written plainly in
 * C. A table of at most 32 mappings sorted by guest-physical address, read
 * under a pthread read-write lock (the same contract as GuestMemory: a map
 * change may run concurrently), looked up by a linear scan up to 8 mappings
 * and a binary search above; the range must lie in one mapping with the
 * rights asked for. */
#include <stdint.h>
#include <stddef.h>

typedef struct vgw_map vgw_map;

/* A map of `count` (1 to 32) mappings, sorted by gpa and disjoint; each
 * with its host address and protection (PROT_* bits). NULL on a bad table. */
vgw_map *vgw_map_create(const uint64_t *gpa, const uint64_t *length, const uint64_t *host,
                        const uint8_t *prot, int count);
void vgw_map_destroy(vgw_map *map);

/* The host pointer of [gpa, gpa + length) if it lies in one mapping whose
 * protection includes `prot`, else NULL (zero length, wrap, bad prot too). */
void *vgw_translate(vgw_map *map, uint64_t gpa, uint64_t length, uint8_t prot);

/* Translates gpas[0..<n] (each for `length` bytes and `prot`), one call
 * each; adds the pointers into *sum and returns the nanoseconds taken.
 * *misses gets the NULL answers. */
uint64_t vgw_translate_loop(vgw_map *map, const uint64_t *gpas, size_t n, uint64_t length, uint8_t prot,
                            uint64_t *sum, uint64_t *misses);

/* A monotonic clock in nanoseconds. */
uint64_t vgw_now_ns(void);
#endif
