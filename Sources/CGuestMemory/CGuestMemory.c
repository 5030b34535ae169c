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
