/*
 * What one thing costs a fork, natively: fork + _exit + waitpid, CPU time
 * per fork (the parent's and its children's), after giving this process one
 * thing more than a plain static program has.  Run it alternately with the
 * variants to compare (a noisy host: interleave, take medians).
 *
 *     fork_native fd FD N        with fds FD-1 and FD open (0: none)
 *     fork_native maps K MODE N  with K more anonymous mappings of two pages,
 *                                each split in two by an mprotect: MODE 0
 *                                touched (an anon_vma, pages to copy), 1
 *                                untouched, 2 touched and 1 GiB apart (page
 *                                tables of their own)
 *
 * Prints "fd FD: NS" or "maps K MODE: NS" (ns of CPU per fork).
 *     gcc -O2 -static -o /tmp/fork_native bench/fork_native.c
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static double cpu_ns(void)
{
    struct rusage s, c;
    getrusage(RUSAGE_SELF, &s);
    getrusage(RUSAGE_CHILDREN, &c);
    return (s.ru_utime.tv_sec + s.ru_stime.tv_sec + c.ru_utime.tv_sec + c.ru_stime.tv_sec) * 1e9 +
           (s.ru_utime.tv_usec + s.ru_stime.tv_usec + c.ru_utime.tv_usec + c.ru_stime.tv_usec) * 1e3;
}

static double forks(long n)
{
    double t0 = cpu_ns();
    for (long i = 0; i < n; i++) {
        pid_t p = fork();
        if (p == 0)
            _exit(0);
        if (p < 0 || waitpid(p, NULL, 0) != p) {
            perror("fork");
            exit(1);
        }
    }
    return (cpu_ns() - t0) / (double)n;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "fd") == 0) {
        int fd = atoi(argv[2]);
        if (fd > 0 && (dup2(0, fd) < 0 || dup2(0, fd - 1) < 0)) {
            perror("dup2");
            return 1;
        }
        printf("fd %d: %.0f\n", fd, forks(atol(argv[3])));
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "maps") == 0) {
        int k = atoi(argv[2]), mode = atoi(argv[3]);
        for (int i = 0; i < k; i++) {
            void *hint = mode == 2 ? (void *)(0x200000000UL + (unsigned long)i * 0x40000000UL) : NULL;
            char *p = mmap(hint, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) {
                perror("mmap");
                return 1;
            }
            if (mode != 1)
                p[0] = 1;
            mprotect(p + 4096, 4096, PROT_READ);
        }
        printf("maps %d %d: %.0f\n", k, mode, forks(atol(argv[4])));
        return 0;
    }
    fprintf(stderr, "usage: fork_native fd FD N | fork_native maps K MODE N\n");
    return 2;
}
