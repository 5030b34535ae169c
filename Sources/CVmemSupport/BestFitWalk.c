/* Best fit's walk of a narrow free list in AVX2; see CVmemBestFitWalk.h. */
#include "CVmemBestFitWalk.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#include <cpuid.h>

static int detect_avx2(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & bit_OSXSAVE) || !(c & bit_AVX)) return 0;
    /* The OS must save the YMM registers on a context switch (XCR0 bits 1-2). */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6) return 0;
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b & bit_AVX2) != 0;
}

int cvmem_avx2_supported;

__attribute__((constructor))
static void cvmem_detect_avx2(void) { cvmem_avx2_supported = detect_avx2(); }

/* Entries [p, p+8) as two vectors of four whole entries, sizes in the low
 * halves: bit i of the masks returned is entry p+i. */
__attribute__((target("avx2")))
static inline void block_masks(const uint64_t *entries, int64_t p, __m256i request64,
                               int *exact, int *small) {
    const __m256i low = _mm256_set1_epi64x(0xffffffffLL);
    __m256i a = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(entries + p)), low);
    __m256i b = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(entries + p + 4)), low);
    *exact = _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpeq_epi64(a, request64)))
           | _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpeq_epi64(b, request64))) << 4;
    /* Sizes and request are below 2^31: a signed comparison is right. */
    *small = _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(request64, a)))
           | _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(request64, b))) << 4;
}

__attribute__((target("avx2")))
cvmem_walk_result cvmem_best_fit_walk_avx2(const uint64_t *entries, int64_t count, uint32_t quanta) {
    const uint32_t *e = (const uint32_t *)entries;   /* size at 2i, tag at 2i+1 */
    const uint32_t no_limit = 0u - quanta;
    const __m256i req = _mm256_set1_epi32((int)quanta);
    const __m256i req64 = _mm256_set1_epi64x((long long)quanta);
    __m256i smallest = _mm256_set1_epi32((int)no_limit);
    __m256i small = _mm256_setzero_si256();
    int64_t pos = count - 1;
    int64_t stop = -1;
    uint64_t too = 0;      /* below 2^28: a list holds at most one entry per tag */
    uint32_t chosen = 0;
    /* Blocks of eight from the head down, while none holds an exact fit.
     * The shuffle gathers the eight sizes out of order, which neither a
     * minimum nor a count minds. A too-small size wraps round to at least
     * no_limit, so it never wins. */
    while (pos >= 7) {
        const __m256i *p = (const __m256i *)(e + 2 * (pos - 7));
        __m256i lo = _mm256_loadu_si256(p), hi = _mm256_loadu_si256(p + 1);
        __m256i sizes = _mm256_castps_si256(_mm256_shuffle_ps(_mm256_castsi256_ps(lo),
                                                              _mm256_castsi256_ps(hi), 0x88));
        __m256i exact = _mm256_cmpeq_epi32(sizes, req);
        if (!_mm256_testz_si256(exact, exact)) {
            /* The exact fit nearest the head ends the walk and wins; of the
             * block, only the slots from it up were passed. Found from
             * masks, not a loop: which slot it is, is a coin toss. */
            int ex, sm;
            block_masks(entries, pos - 7, req64, &ex, &sm);
            int top = 31 - __builtin_clz((unsigned)ex);
            too += (uint64_t)__builtin_popcount((unsigned)sm >> top);
            stop = pos - 7 + top;
            chosen = e[2 * stop + 1];
            break;
        }
        small = _mm256_sub_epi32(small, _mm256_cmpgt_epi32(req, sizes));
        smallest = _mm256_min_epu32(smallest, _mm256_sub_epi32(sizes, req));
        pos -= 8;
    }
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(small), _mm256_extracti128_si256(small, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    too += (uint32_t)_mm_cvtsi128_si32(s4);
    if (stop >= 0) return (cvmem_walk_result){ stop, chosen, (uint32_t)too };
    __m128i m4 = _mm_min_epu32(_mm256_castsi256_si128(smallest), _mm256_extracti128_si256(smallest, 1));
    m4 = _mm_min_epu32(m4, _mm_shuffle_epi32(m4, 0x4e));
    m4 = _mm_min_epu32(m4, _mm_shuffle_epi32(m4, 0xb1));
    const uint32_t block_best = (uint32_t)_mm_cvtsi128_si32(m4);

    /* The last few slots one by one: an entry must beat the blocks' best to
     * win, as ties go to the entry nearer the head. */
    uint32_t limit = block_best;
    for (; pos >= 0; pos--) {
        uint32_t q = e[2 * pos];
        uint32_t excess = q - quanta;
        too += q < quanta;
        if (excess < limit) {
            chosen = e[2 * pos + 1];
            limit = excess;
            if (excess == 0) { stop = pos; break; }
        }
    }
    if (chosen == 0 && block_best != no_limit) {
        /* The blocks' best fit nearest the head, four whole entries a step. */
        const uint64_t want = (uint64_t)(quanta + block_best);
        const __m256i target = _mm256_set1_epi64x((long long)want);
        const __m256i low = _mm256_set1_epi64x(0xffffffffLL);
        int64_t p = count - 1;
        for (;;) {
            /* The blocks covered at least slots count-8 ... count-1. */
            __m256i v = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(entries + p - 3)), low);
            int bits = _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpeq_epi64(v, target)));
            if (bits) { p = p - 3 + (31 - __builtin_clz((unsigned)bits)); break; }
            p -= 4;
        }
        chosen = e[2 * p + 1];
    }
    return (cvmem_walk_result){ stop, chosen, (uint32_t)too };
}

#else

int cvmem_avx2_supported;

cvmem_walk_result cvmem_best_fit_walk_avx2(const uint64_t *entries, int64_t count, uint32_t quanta) {
    (void)entries; (void)count; (void)quanta;
    return (cvmem_walk_result){ -1, 0, 0 };
}

#endif
