#include "CGuestMemory.h"

#define SC __ATOMIC_SEQ_CST

uint8_t vgm_load8(const void *p) { return __atomic_load_n((const uint8_t *)p, SC); }
uint16_t vgm_load16(const void *p) { return __atomic_load_n((const uint16_t *)p, SC); }
uint32_t vgm_load32(const void *p) { return __atomic_load_n((const uint32_t *)p, SC); }
uint64_t vgm_load64(const void *p) { return __atomic_load_n((const uint64_t *)p, SC); }

void vgm_store8(void *p, uint8_t v) { __atomic_store_n((uint8_t *)p, v, SC); }
void vgm_store16(void *p, uint16_t v) { __atomic_store_n((uint16_t *)p, v, SC); }
void vgm_store32(void *p, uint32_t v) { __atomic_store_n((uint32_t *)p, v, SC); }
void vgm_store64(void *p, uint64_t v) { __atomic_store_n((uint64_t *)p, v, SC); }

bool vgm_cas8(void *p, uint8_t *e, uint8_t d) { return __atomic_compare_exchange_n((uint8_t *)p, e, d, 0, SC, SC); }
bool vgm_cas16(void *p, uint16_t *e, uint16_t d) { return __atomic_compare_exchange_n((uint16_t *)p, e, d, 0, SC, SC); }
bool vgm_cas32(void *p, uint32_t *e, uint32_t d) { return __atomic_compare_exchange_n((uint32_t *)p, e, d, 0, SC, SC); }
bool vgm_cas64(void *p, uint64_t *e, uint64_t d) { return __atomic_compare_exchange_n((uint64_t *)p, e, d, 0, SC, SC); }

uint64_t vgm_fetch_or64(uint64_t *p, uint64_t bits) { return __atomic_fetch_or(p, bits, SC); }
uint64_t vgm_fetch_and64(uint64_t *p, uint64_t bits) { return __atomic_fetch_and(p, bits, SC); }

/* The set bits of words[0..<n] (a harvest's count). Cloned for POPCNT,
 * which the baseline x86-64 target lacks (its bit-trick popcount is about
 * twice as slow over a 2 MiB bitmap). Relaxed atomic loads (plain moves on
 * x86): a writer that raced the harvest's buffer swap may still fetch-or
 * a word. */
#if defined(__has_feature)
#  if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#    define VGM_SANITIZED 1
#  endif
#endif
/* An ifunc resolver runs before the sanitizer runtime is up and crashes it
 * (clang defines no __SANITIZE_THREAD__; __has_feature is its test). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__) && !defined(VGM_SANITIZED)
__attribute__((target_clones("popcnt", "default")))
#endif
uint64_t vgm_popcount_words(const uint64_t *words, size_t n) {
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) total += (uint64_t)__builtin_popcountll(__atomic_load_n(&words[i], __ATOMIC_RELAXED));
    return total;
}

/* Zeroes words[0..<n] with relaxed atomic stores (a late writer's
 * fetch-or may land meanwhile; its page is in the active buffer too). */
void vgm_zero_words(uint64_t *words, size_t n) {
    for (size_t i = 0; i < n; i++) __atomic_store_n(&words[i], 0, __ATOMIC_RELAXED);
}
