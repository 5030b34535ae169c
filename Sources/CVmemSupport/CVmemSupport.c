#define _GNU_SOURCE
#include "CVmemSupport.h"
#include <sched.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <execinfo.h>

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

int cvmem_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int cvmem_backtrace(uintptr_t *pcs, int max) {
    return backtrace((void **)pcs, max);
}
