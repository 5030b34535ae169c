#include "CGuestWorkloads.h"
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct vgw_entry {
    uint64_t gpa, end, host;
    uint8_t prot;
};

struct vgw_map {
    pthread_rwlock_t lock;
    int count;
    struct vgw_entry entries[32];
};

vgw_map *vgw_map_create(const uint64_t *gpa, const uint64_t *length, const uint64_t *host,
                        const uint8_t *prot, int count) {
    if (count < 1 || count > 32) return NULL;
    for (int i = 0; i < count; i++) {
        if (length[i] == 0 || gpa[i] + length[i] < gpa[i]) return NULL;
        if (i > 0 && gpa[i] < gpa[i - 1] + length[i - 1]) return NULL;
    }
    vgw_map *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    pthread_rwlock_init(&m->lock, NULL);
    m->count = count;
    for (int i = 0; i < count; i++) {
        m->entries[i].gpa = gpa[i];
        m->entries[i].end = gpa[i] + length[i];
        m->entries[i].host = host[i];
        m->entries[i].prot = prot[i];
    }
    return m;
}

void vgw_map_destroy(vgw_map *m) {
    if (!m) return;
    pthread_rwlock_destroy(&m->lock);
    free(m);
}

static const struct vgw_entry *lookup(const vgw_map *m, uint64_t gpa) {
    if (m->count <= 8) {
        for (int i = 0; i < m->count; i++)
            if (gpa >= m->entries[i].gpa && gpa < m->entries[i].end) return &m->entries[i];
        return NULL;
    }
    int lo = 0, hi = m->count;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (m->entries[mid].gpa <= gpa) lo = mid + 1; else hi = mid;
    }
    if (lo == 0) return NULL;
    const struct vgw_entry *e = &m->entries[lo - 1];
    return gpa < e->end ? e : NULL;
}

/* Out of line, as a call into GuestMemory is from the benchmark. */
__attribute__((noinline))
void *vgw_translate(vgw_map *m, uint64_t gpa, uint64_t length, uint8_t prot) {
    if (prot == 0 || (prot & ~7) || length == 0 || gpa + length < gpa) return NULL;
    void *out = NULL;
    pthread_rwlock_rdlock(&m->lock);
    const struct vgw_entry *e = lookup(m, gpa);
    if (e && gpa + length <= e->end && (e->prot & prot) == prot)
        out = (void *)(uintptr_t)(e->host + (gpa - e->gpa));
    pthread_rwlock_unlock(&m->lock);
    return out;
}

uint64_t vgw_translate_loop(vgw_map *m, const uint64_t *gpas, size_t n, uint64_t length, uint8_t prot,
                            uint64_t *sum, uint64_t *misses) {
    uint64_t s = 0, miss = 0;
    uint64_t t0 = vgw_now_ns();
    for (size_t i = 0; i < n; i++) {
        void *p = vgw_translate(m, gpas[i], length, prot);
        if (p) s += (uint64_t)(uintptr_t)p; else miss++;
    }
    uint64_t t1 = vgw_now_ns();
    *sum += s;
    *misses = miss;
    return t1 - t0;
}

uint64_t vgw_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
