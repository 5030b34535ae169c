#ifndef CVMEM_BEST_FIT_WALK_H
#define CVMEM_BEST_FIT_WALK_H
/* Best fit's walk of one narrow free list, eight entries at a time in AVX2.
 *
 * A free list is an array of 8-byte entries, { uint32 quanta, uint32 tag },
 * whose head is the last slot; tombstones have quanta 0 and tag 0. Every
 * quanta value, and the request, is below 2^31 (a "narrow" list).
 *
 * The walk goes from slot count-1 down: it chooses the entry with the
 * smallest quanta >= the request, the one nearest the head among equals, and
 * stops at the first exact fit. It returns the slot of that exact fit, or -1
 * after the whole list; chooses a tag only when something fits; and counts the entries it passed (the exact fit's slot included)
 * that are smaller than the request. This is Swift's
 * ArenaCore.walkBestNarrow, which runs where AVX2 is missing, and a test
 * holds the two to the same answers.
 *
 * Why in C: Swift compiles for baseline x86-64 (SSE2), which has no unsigned
 * 32-bit minimum and half the width; here a function compiled for AVX2 is
 * chosen at run time, so the package still runs on any x86-64. */
#include <stdint.h>

/* What one walk found: the slot it stopped at (-1 after the whole list),
 * the chosen tag (0 when nothing fits) and the too-small entries passed.
 * Returned in two registers, so the caller passes no addresses. */
typedef struct {
    int64_t stop;
    uint32_t best;
    uint32_t too_small;
} cvmem_walk_result;

/* 1 when this CPU and the operating system support AVX2, else 0; set
 * before main by a constructor, so that reading it is one load. */
extern int cvmem_avx2_supported;
static inline int cvmem_has_avx2(void) { return cvmem_avx2_supported; }

/* The walk; call only when cvmem_has_avx2() is 1. */
cvmem_walk_result cvmem_best_fit_walk_avx2(const uint64_t *entries, int64_t count, uint32_t quanta);
#endif
