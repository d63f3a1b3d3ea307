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
    int *stats_fd;     /* create_native: a copy of the LibOS statistics segment's fd, if not NULL (else -1) */
};

int cmd_create(const struct opts *o);
/* For xc's native `run` (src/native/xc/), which drives the steps itself:
 * Runtime.create without falling back: 0 with the init's pid, or -1 with
 * xcr_error set and everything it made undone.  SIGINT is held from its
 * start (as a native create holds it): the caller looks at interrupted()
 * and lets it go with hold_sigint(false), or fallback() does. */
int create_native(const struct opts *o, bool foreground, pid_t *init_pid);
void hold_sigint(bool hold);
/* Pass SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 on to *pid*
 * (a foreground run's container init). */
void forward_signals(pid_t pid);
bool interrupted(void);
/* Runtime.delete(force=True) after a run: natively, or by the Python runtime. */
void delete_after(const struct opts *o);
int cmd_run(const struct opts *o);
int cmd_start(const struct opts *o);
int cmd_state(const struct opts *o);
int cmd_kill(const struct opts *o);
int cmd_delete(const struct opts *o);

#endif
