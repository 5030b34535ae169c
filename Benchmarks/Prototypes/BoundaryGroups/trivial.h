/* trivial.h -- floor: size-indexed LIFO stacks of previously freed blocks + bump (not vmem-exact) */
#define VA_NAME "trivial"
static uint64_t tb_next, tb_base;
static uint64_t *tb_stack[65]; static uint32_t tb_n[65], tb_cap[65];
static void va_init(uint64_t base, uint64_t size, uint64_t quantum) { (void)size; (void)quantum; tb_base = tb_next = base; }
static uint64_t va_alloc(uint64_t size) {
	uint32_t c = (uint32_t)(size >> 12); if (c > 64) c = 64;
	if (tb_n[c]) return tb_stack[c][--tb_n[c]];
	uint64_t a = tb_next; tb_next += size; return a;
}
static int va_free(uint64_t addr, uint64_t size) {
	uint32_t c = (uint32_t)(size >> 12); if (c > 64) c = 64;
	if (tb_n[c] == tb_cap[c]) { tb_cap[c] = tb_cap[c] ? tb_cap[c] * 2 : 1024; tb_stack[c] = realloc(tb_stack[c], tb_cap[c] * 8); }
	tb_stack[c][tb_n[c]++] = addr; return 0;
}
static size_t va_meta_bytes(void) { return 0; }
static size_t va_free_segs(void) { return 1; }
