#ifndef CGUESTMEMORY_H
#define CGUESTMEMORY_H
/* Single-copy atomic accesses to guest memory through a host pointer.
 *
 * Swift's `Atomic` lives in Swift-owned storage and cannot be placed over
 * an arbitrary address (a guest page mapped from a memfd), so the untorn
 * 1/2/4/8-byte loads, stores and compare-exchanges of GuestMemory, and the
 * fetch-or / fetch-and of its dirty bitmaps, are these C11 atomics. They are
 * out of line (not `static inline`) so that a `--sanitize=thread` build
 * instruments them like any other C target. Every pointer must be naturally
 * aligned for its width: the Swift side checks before calling. */
#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

uint8_t vgm_load8(const void *p);
uint16_t vgm_load16(const void *p);
uint32_t vgm_load32(const void *p);
uint64_t vgm_load64(const void *p);

void vgm_store8(void *p, uint8_t v);
void vgm_store16(void *p, uint16_t v);
void vgm_store32(void *p, uint32_t v);
void vgm_store64(void *p, uint64_t v);

/* Compare-exchange: returns whether `*p` held `*expected` and was replaced
 * by `desired`; on failure `*expected` receives the value found. */
bool vgm_cas8(void *p, uint8_t *expected, uint8_t desired);
bool vgm_cas16(void *p, uint16_t *expected, uint16_t desired);
bool vgm_cas32(void *p, uint32_t *expected, uint32_t desired);
bool vgm_cas64(void *p, uint64_t *expected, uint64_t desired);

/* Bitmap words: return the previous value. */
uint64_t vgm_fetch_or64(uint64_t *p, uint64_t bits);
uint64_t vgm_fetch_and64(uint64_t *p, uint64_t bits);

/* The number of set bits in words[0..<n]. */
uint64_t vgm_popcount_words(const uint64_t *words, size_t n);

/* Zeroes words[0..<n], each with a relaxed atomic store. */
void vgm_zero_words(uint64_t *words, size_t n);
#endif
