/* The verbs of the native path: each returns the exit code, or falls back. */
#ifndef XCR_OPS_H
#define XCR_OPS_H

#include "xcr.h"

struct opts {
    const char *root;
    const char *verb;
    const char *id;
    /* create, run */
    const char *bundle;
    const char *pid_file;
    int preserve_fds;
    bool no_pivot, no_new_keyring;
    bool detach, keep; /* run */
    bool all;          /* kill */
    const char *signal;
    bool force;        /* delete */
};

int cmd_create(const struct opts *o);
int cmd_run(const struct opts *o);
int cmd_start(const struct opts *o);
int cmd_state(const struct opts *o);
int cmd_kill(const struct opts *o);
int cmd_delete(const struct opts *o);

#endif
