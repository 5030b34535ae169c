/*
 * bg.h -- "boundary groups": an exact illumos instant-fit vmem prototype
 * (issue 17 item 9 research; README.md has the measurements).
 *
 * No address-ordered segment list and no record for an allocated segment.
 * Units are quanta: q = (addr - base) >> qshift, 32 bits.
 * One table G of 64-byte groups, each 7 u32 keys (lane 7: an overflow
 * count) and their 7 u32 values; key = q<<2 | kind:
 *   kind 1  A(q):  allocated segment starting at q      val = size (quanta)
 *   kind 2  FS(q): free segment starting at q            val = free record
 *   kind 3  FE(q): free segment ending at q              val = free record
 * A key's home group depends on q only, so every key of one boundary is in
 * one cache line; a lookup is one AVX2 compare and movemask, and moves on
 * to the next group only while the overflow count says a key passed it.
 * Entries never move: a delete zeroes the key and undoes the counts.
 * Free segments: 16-byte records {start, end, fprev, fnext} (quanta) on
 * doubly linked free lists 0..63 by size, heads[64] and a freemap; list
 * order is illumos's (insert at the head, in-place shrink keeps its place).
 * free(addr, size) finds A(q), FE(q) (a free previous neighbour) and
 * FS(q+n) (a free next one) in two independent lines, without first
 * reading a record of the freed segment.
 */
#include <assert.h>
#define VA_NAME "bg"
#ifndef HLOAD_NUM
#define HLOAD_NUM 5u
#define HLOAD_DEN 8u
#endif

typedef struct { uint32_t start, end, fprev, fnext; } frec_t;

static uint64_t va_base;
static unsigned va_qshift;
static uint64_t va_qmask;
#if !defined(SCALAR_MATCH) && !defined(SIMDSUM_MATCH)
#include <immintrin.h>
#endif
typedef struct { uint32_t k[8]; uint32_t v[8]; } __attribute__((aligned(64))) grp_t;
static grp_t *G;
static uint32_t ngroups, hcount;
#define OVF 0x80000000u
#define NONE UINT32_MAX
static frec_t *F;
static uint32_t fcap, fused, ffree;   /* ffree: free-record chain via fnext */
static uint32_t nfree_segs;
static uint32_t heads[64];
static uint64_t freemap;

#ifndef GROW_DIV
#define GROW_DIV 2u
#endif
#ifndef GLOAD_NUM
#define GLOAD_NUM 1u   /* grow when count > slots * NUM/DEN */
#define GLOAD_DEN 2u
#endif
static inline uint32_t home_q(uint32_t q)
{
#ifdef STRONG_HASH
	uint64_t x = (uint64_t)q * 0x9E3779B97F4A7C15ULL;
	uint32_t h = (uint32_t)((x ^ (x >> 29)) >> 32);
#else
#ifndef QSHIFT
#define QSHIFT 0
#endif
	uint32_t h = (q >> QSHIFT) * 0x9E3779B1u;
#endif
#ifdef POW2
	return h >> (32 - __builtin_ctz(ngroups));   /* ngroups is a power of two */
#else
	return (uint32_t)(((uint64_t)h * ngroups) >> 32);
#endif
}
static inline uint32_t home_k(uint32_t k) { return home_q(k >> 2); }
static inline int hb32(uint32_t x) { return 31 - __builtin_clz(x); }   /* 0-based */
static inline uint32_t g_match(const grp_t *g, uint32_t k)
{
#if defined(SIMDSUM_MATCH)
	/* what Swift's SIMD8<UInt32> gives without a movemask intrinsic:
	   ((keys .== k) masked with lane bits).wrappingSum() */
	typedef uint32_t v8u __attribute__((vector_size(32)));
	const v8u bits = { 1, 2, 4, 8, 16, 32, 64, 0 };
	v8u K; memcpy(&K, g->k, 32);
	v8u c = (v8u)(K == k) & bits;
	return c[0] + c[1] + c[2] + c[3] + c[4] + c[5] + c[6] + c[7];
#elif defined(SCALAR_MATCH)
	uint32_t m = 0;
	for (int i = 0; i < 7; i++)
		m |= (uint32_t)(g->k[i] == k) << i;
	return m;
#else
	__m256i K = _mm256_load_si256((const __m256i *)g->k);
	__m256i c = _mm256_cmpeq_epi32(K, _mm256_set1_epi32((int)k));
	return (uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(c)) & 0x7f;   /* lane 7 = overflow count */
#endif
}
#define SKEY(s) (G[(s) >> 3].k[(s) & 7])
#define SVAL(s) (G[(s) >> 3].v[(s) & 7])
static inline void set_key(uint32_t s, uint32_t k) { SKEY(s) = k; }
static void h_grow(void);
static inline uint32_t g_next(uint32_t g) { return ++g == ngroups ? 0 : g; }
static inline uint32_t h_find_from(uint32_t g, uint32_t k)
{
	for (;;) {
		uint32_t m = g_match(&G[g], k);
		if (m)
			return g * 8 + __builtin_ctz(m);
		if (__builtin_expect(G[g].k[7] == 0, 1))
			return NONE;
		g = g_next(g);
	}
}
static inline uint32_t h_find(uint32_t k) { return h_find_from(home_k(k), k); }
static inline void h_put(uint32_t k, uint32_t v)
{
	uint32_t g = home_k(k);
	for (;;) {
		uint32_t m = g_match(&G[g], 0);
		if (__builtin_expect(m != 0, 1)) {
			uint32_t s = g * 8 + __builtin_ctz(m);
			set_key(s, k);
			SVAL(s) = v;
			return;
		}
		G[g].k[7]++;
		g = g_next(g);
	}
}
static inline void h_insert(uint32_t k, uint32_t v)
{
	h_put(k, v);
	if (++hcount * GLOAD_DEN > ngroups * 7 * GLOAD_NUM)
		h_grow();
}
static inline void h_del_home(uint32_t s, uint32_t g)
{
	while (__builtin_expect(g != (s >> 3), 0)) {   /* undo overflow counts */
		G[g].k[7]--;
		g = g_next(g);
	}
	SKEY(s) = 0;
	hcount--;
}
static inline void h_del_at(uint32_t s)
{
	uint32_t g = home_k(SKEY(s));
	while (__builtin_expect(g != (s >> 3), 0)) {   /* undo overflow counts */
		G[g].k[7]--;
		g = g_next(g);
	}
	SKEY(s) = 0;
	hcount--;
}
static inline void h_del(uint32_t k) { uint32_t s = h_find(k); assert(s != NONE); h_del_at(s); }
static void h_alloc(uint32_t n)
{
	ngroups = n;
	G = aligned_alloc(64, (size_t)n * sizeof (grp_t));
	memset(G, 0, (size_t)n * sizeof (grp_t));
}
static void __attribute__((noinline)) h_grow(void)
{
	grp_t *old = G;
	uint32_t on = ngroups;
	h_alloc(on + on / GROW_DIV);
	for (uint32_t g = 0; g < on; g++)
		for (int l = 0; l < 7; l++) {
			uint32_t k = old[g].k[l];
			if (k)
				h_put(k, old[g].v[l]);
		}
	free(old);
}

static inline uint32_t f_new(void)
{
	uint32_t r;
	if (ffree) {
		r = ffree;
		ffree = F[r].fnext;
	} else {
		if (fused == fcap) {
			fcap += fcap / 2;
			F = realloc(F, fcap * sizeof (frec_t));
		}
		r = fused++;
	}
	nfree_segs++;
	return r;
}

static inline void f_release(uint32_t r)
{
	F[r].fnext = ffree;
	ffree = r;
	nfree_segs--;
}

static inline void fl_unlink(uint32_t r, int l)
{
	uint32_t p = F[r].fprev, n = F[r].fnext;
	if (p)
		F[p].fnext = n;
	else if ((heads[l] = n) == 0)
		freemap &= ~(1ULL << l);
	if (n)
		F[n].fprev = p;
}

static inline void fl_push(uint32_t r, int l)
{
	uint32_t h = heads[l];
	F[r].fprev = 0;
	F[r].fnext = h;
	if (h)
		F[h].fprev = r;
	else
		freemap |= 1ULL << l;
	heads[l] = r;
}

static void va_init(uint64_t base, uint64_t size, uint64_t quantum)
{
	va_base = base;
	va_qshift = __builtin_ctzll(quantum);
	va_qmask = quantum - 1;
	assert((size >> va_qshift) < (1u << 29));
	h_alloc(64);
	fcap = 1024;
	F = calloc(fcap, sizeof (frec_t));
	fused = 1;
	uint32_t r = f_new();
	uint32_t e = (uint32_t)(size >> va_qshift);
	F[r].start = 0;
	F[r].end = e;
	fl_push(r, hb32(e));
	h_insert(0u << 2 | 2, r);
	h_insert(e << 2 | 3, r);
}

static uint64_t va_alloc(uint64_t size)
{
	uint64_t nq = (size + va_qmask) >> va_qshift;
	uint64_t m;
	if (nq == 0 || nq >= (1u << 29))
		return 0;
	uint32_t n = (uint32_t)nq;
	/* instant fit: lists >= log2(n) if n is a power of two, else >= highbit(n) */
	m = freemap & -(1ULL << (hb32(n) + ((n & (n - 1)) != 0)));
	if (m == 0)
		return 0;       /* prototype: no xalloc fallback */
	int l = __builtin_ctzll(m);
	uint32_t r = heads[l];
	uint32_t s = F[r].start, e = F[r].end;
	uint32_t rem = e - s - n;
	/* FS(s) becomes A(s): same home, overwrite in place */
	uint32_t i = h_find(s << 2 | 2);
	set_key(i, s << 2 | 1);
	SVAL(i) = n;
	if (rem == 0) {
		fl_unlink(r, l);
		h_del(e << 2 | 3);
		f_release(r);
	} else {
		F[r].start = s + n;
		h_insert((s + n) << 2 | 2, r);
		int nl = hb32(rem);
		if (nl != l) {
			fl_unlink(r, l);
			fl_push(r, nl);
		}
	}
	return va_base + ((uint64_t)s << va_qshift);
}

static int va_free(uint64_t addr, uint64_t size)
{
	uint64_t off = addr - va_base;
	uint64_t nq = (size + va_qmask) >> va_qshift;
	if ((off & va_qmask) || nq == 0 || (off >> va_qshift) >= (1u << 29))
		return -1;
	uint32_t q = (uint32_t)(off >> va_qshift), n = (uint32_t)nq;
	uint32_t qe = q + n;
	uint32_t ka = q << 2 | 1, kfe = q << 2 | 3, kfs = qe << 2 | 2;
	uint32_t g1 = home_q(q), g2 = home_q(qe);
	__builtin_prefetch(&G[g2]);
	uint32_t pa = h_find_from(g1, ka);
	if (pa == NONE || SVAL(pa) != n)
		return -1;
	uint32_t pfe = h_find_from(g1, kfe);
	uint32_t pfs = h_find_from(g2, kfs);
	uint32_t P = pfe != NONE ? SVAL(pfe) : 0;
	uint32_t N = pfs != NONE ? SVAL(pfs) : 0;
	if (N == 0) {
		if (P == 0) {
			/* new free segment [q, qe) */
			uint32_t r = f_new();
			F[r].start = q;
			F[r].end = qe;
			set_key(pa, q << 2 | 2);
			SVAL(pa) = r;
			h_insert(qe << 2 | 3, r);
			fl_push(r, hb32(n));
		} else {
			/* extend P up to qe */
			int ol = hb32(F[P].end - F[P].start);
			fl_unlink(P, ol);
			F[P].end = qe;
			h_del_home(pa, g1);           /* A(q) */
			h_del_home(pfe, g1);          /* FE(q) */
			h_insert(qe << 2 | 3, P);
			fl_push(P, hb32(qe - F[P].start));
		}
	} else {
		uint32_t ne = F[N].end;
		int nl = hb32(ne - qe);
		fl_unlink(N, nl);
		if (P == 0) {
			/* extend N down to q: A(q) -> FS(q) in place */
			set_key(pa, q << 2 | 2);
			SVAL(pa) = N;
			F[N].start = q;
			h_del_home(pfs, g2);
			fl_push(N, hb32(ne - q));
		} else {
			int ol = hb32(F[P].end - F[P].start);
			fl_unlink(P, ol);
			F[P].end = ne;
			h_del_home(pa, g1);
			h_del_home(pfe, g1);
			h_del_home(pfs, g2);
			SVAL(h_find(ne << 2 | 3)) = P;
			f_release(N);
			fl_push(P, hb32(ne - F[P].start));
		}
	}
	return 0;
}

static size_t va_meta_bytes(void)
{
	return (size_t)ngroups * sizeof (grp_t) + (size_t)fcap * sizeof (frec_t) + sizeof heads + sizeof freemap;
}

static size_t va_free_segs(void) { return nfree_segs; }
#ifdef STATS
static void va_stats(void) {
	uint32_t o = 0, disp = 0, tot = 0, full = 0;
	for (uint32_t g = 0; g < ngroups; g++) { o += G[g].k[7] != 0; uint32_t c = 0;
		for (int l = 0; l < 7; l++) if (G[g].k[l]) { tot++; c++; if (home_k(G[g].k[l]) != g) disp++; }
		full += c == 7; }
	fprintf(stderr, "groups %u overflowed %u (%.1f%%) full %u entries %u displaced %u load %.3f\n", ngroups, o, 100.0*o/ngroups, full, tot, disp, (double)tot/(ngroups*7));
}
#endif
