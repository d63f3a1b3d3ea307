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
/* argv[1] of the LibOS image when the runtime starts a container's first process. */
#define XC_ARG_INIT "--xc-init"
/* argv[1] when the LibOS re-executes itself to serve the program's execve. */
#define XC_ARG_EXEC "--xc-exec"

#endif
