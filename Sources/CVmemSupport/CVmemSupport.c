#define _GNU_SOURCE
#include "CVmemSupport.h"
#include <sched.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <execinfo.h>
#include <dlfcn.h>
#include <string.h>

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

int cvmem_symbolize(uintptr_t pc, char *buf, unsigned long len, uintptr_t *offset) {
    Dl_info info;
    if (len == 0 || dladdr((void *)pc, &info) == 0 || info.dli_sname == NULL) return 0;
    strncpy(buf, info.dli_sname, len - 1);
    buf[len - 1] = 0;
    *offset = pc - (uintptr_t)info.dli_saddr;
    return 1;
}
