#define _GNU_SOURCE
#include "CVmemSupport.h"
#include <sched.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <execinfo.h>
#include <dlfcn.h>
#include <string.h>
#include <errno.h>
#include <time.h>
#ifdef __linux__
#include <linux/futex.h>
#endif

int cvmem_current_cpu(void) {
#ifdef __linux__
    return sched_getcpu();
#else
    return -1;
#endif
}

uint64_t cvmem_thread_id(void) {
#ifdef __linux__
    return (uint64_t)syscall(SYS_gettid);
#else
    return 0;
#endif
}

static _Thread_local char cvmem_thread_marker;

uintptr_t cvmem_thread_token(void) {
    return (uintptr_t)&cvmem_thread_marker;
}

int cvmem_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int cvmem_cpu_slots(void) {
    long n = sysconf(_SC_NPROCESSORS_CONF);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < online) n = online;
    return n > 0 ? (int)n : 1;
}

/* Binds the calling thread to CPUs [first, first + count); 0 or an errno. */
static int bind_to_cpus(long first, long count) {
#ifdef __linux__
    cpu_set_t set;
    CPU_ZERO(&set);
    for (long i = first; i < first + count && i < CPU_SETSIZE; i++) CPU_SET((int)i, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0 ? 0 : errno;
#else
    (void)first; (void)count;
    return -1;
#endif
}

int cvmem_pin_to_cpu(int cpu) { return bind_to_cpus(cpu, 1); }

int cvmem_unpin(void) { return bind_to_cpus(0, sysconf(_SC_NPROCESSORS_CONF)); }

int cvmem_backtrace(uintptr_t *pcs, int max) {
    return backtrace((void **)pcs, max);
}

int cvmem_symbolize(uintptr_t pc, char *buf, unsigned long len, uintptr_t *offset) {
    Dl_info info;
    if (len == 0 || dladdr((void *)pc, &info) == 0 || info.dli_sname == NULL) return 0;
    strncpy(buf, info.dli_sname, len - 1);
    buf[len - 1] = 0;
    *offset = pc - (uintptr_t)info.dli_saddr;
    return 1;
}

int cvmem_futex_wait(uint32_t *addr, uint32_t expected, uint64_t deadline_ns) {
#ifdef __linux__
    struct timespec ts, *tsp = NULL;
    if (deadline_ns != 0) {
        ts.tv_sec = (time_t)(deadline_ns / 1000000000ULL);
        ts.tv_nsec = (long)(deadline_ns % 1000000000ULL);
        tsp = &ts;
    }
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline. */
    long r = syscall(SYS_futex, addr, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected, tsp, NULL,
                     FUTEX_BITSET_MATCH_ANY);
    return (r == -1 && errno == ETIMEDOUT) ? 1 : 0;
#else
    (void)addr; (void)expected; (void)deadline_ns;
    sched_yield();
    return 0;
#endif
}

void cvmem_futex_wake(uint32_t *addr, int count) {
#ifdef __linux__
    syscall(SYS_futex, addr, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, count, NULL, NULL, 0);
#else
    (void)addr; (void)count;
#endif
}
