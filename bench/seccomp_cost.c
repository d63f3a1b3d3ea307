/*
 * seccomp_cost: what any seccomp filter adds to a system call on this host
 * (a measurement, not a test).
 *
 *     seccomp_cost N
 *
 * times 2,000,000 getppid calls, installs a filter of N loads and an
 * allow-all return (N = -1: none), and times them again.  The X-LibOS's
 * interface filter must look at the instruction pointer, so the kernel's
 * per-number action cache cannot skip it; its every host call pays this.
 *
 * Build: gcc -O2 -o seccomp_cost seccomp_cost.c
 */
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static double per_call(int n)
{
    long long t0 = now();
    for (int i = 0; i < n; i++)
        syscall(SYS_getppid);
    return (now() - t0) / (double)n;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 0;
    const int calls = 2000000;
    if (n > 500)
        n = 500;
    printf("no filter: %.1f ns per getppid\n", per_call(calls));
    if (n >= 0) {
        struct sock_filter f[501];
        int k = 0;
        for (int i = 0; i < n; i++)
            f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0);
        f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        struct sock_fprog p = {(unsigned short)k, f};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &p)) {
            perror("seccomp");
            return 1;
        }
    }
    printf("filter of %d loads + allow: %.1f ns per getppid\n", n, per_call(calls));
    return 0;
}
