/*
 * The container's init (pid 1 of its pid namespace), as xcontainers.init's
 * _init_main: it waits until the runtime has put it into the cgroup, builds
 * the rootfs, sets hostname, credentials and limits, says "ready", blocks
 * opening exec.fifo for writing until `start`, then executes the program
 * (on the X-LibOS: the LibOS image from XC_LIBOS_FD, which loads it).
 *
 * The sync socket carries one message each way, one byte of kind first:
 *   runtime -> init   'G'            in the cgroup, go on
 *   init -> runtime   'R'            ready
 *                     'E' + text     failed (the runtime undoes what it made)
 *   setup -> runtime  'P' + pid      the init's pid (when joining namespaces)
 */
#ifndef XCR_INIT_H
#define XCR_INIT_H

#include "spec.h"

struct init_ctx {
    const char *id;
    const struct spec *sp;
    const struct cgroup *cg;
    int sync;   /* the init's end of the sync socket */
    int dir_fd; /* ROOT/ID, O_PATH */
    bool no_pivot, no_new_keyring;
    int preserve_fds;
    int libos_fd, stats_fd; /* -1 for a plain container */
};

_Noreturn void init_main(struct init_ctx *c);

#endif
