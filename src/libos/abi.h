/*
 * Constants shared by the LibOS (C and assembly) and the Python runtime.
 * xcontainers/libos.py reads the #define lines of this file: keep them of
 * the form "#define XC_NAME value".
 */
#ifndef XC_ABI_H
#define XC_ABI_H

/* Where the LibOS image is linked (below 2 GiB, for ABOM's call *abs32). */
#define XC_LIBOS_BASE 0x10000000
/* The fd on which every container process keeps the LibOS image open. */
#define XC_LIBOS_FD 1023
/* The fd of the container's shared statistics segment (struct xc_stats). */
#define XC_STATS_FD 1022
/* Size of the statistics segment in bytes. */
#define XC_STATS_SIZE 16384
/* Highest system call number the table and the statistics cover, plus one. */
#define XC_NR_MAX 512
/* argv[1] of the LibOS image when the runtime starts a container's first process. */
#define XC_ARG_INIT "--xc-init"
/* argv[1] when the LibOS re-executes itself to serve the program's execve. */
#define XC_ARG_EXEC "--xc-exec"
/* argv[1] for fexecve of a close-on-exec fd: PATH is /proc/self/fd/N, a
 * copy the new image closes once the program is loaded. */
#define XC_ARG_EXEC_FD "--xc-exec-fd"

#ifndef __ASSEMBLER__
#include <stdint.h>
/* The statistics segment, shared by every process of a container and read
 * by the runtime (xcontainers/libos.py mirrors this layout). */
struct xc_stats {
    uint64_t magic;              /* XC_STATS_MAGIC */
    uint64_t flags;              /* the container's profile, set by the runtime: XC_FLAG_* */
    uint64_t processes;          /* loader starts: the first process and each execve */
    uint64_t execs;              /* execve served */
    uint64_t by_how[5];          /* traps served: FORWARD, TRANSLATE, SPECIAL, EMULATE, refused */
    uint64_t patched_calls;      /* calls that came through a patched site, without a trap */
    uint64_t sites_patched;      /* sites ABOM rewrote */
    uint64_t sites_refused;      /* sites ABOM looked at and left alone */
    uint64_t calls[XC_NR_MAX];   /* traps per system call number */
    uint64_t patched[XC_NR_MAX]; /* patched calls per system call number */
};
#define XC_STATS_MAGIC 0x3253544154534358ULL /* "XCSTATS2" */
/* ABOM: rewrite `mov $nr,%eax; syscall` sites into jumps to the LibOS. */
#define XC_FLAG_ABOM 1ULL
#endif

#endif
