/* Verbs on a saved state, shared by run and the lifecycle commands. */
#ifndef XCR_LIFECYCLE_H
#define XCR_LIFECYCLE_H

#include "xcr.h"

/* runtime_cli.parse_signal for the plain spellings; -1 otherwise. */
int parse_signal(const char *text);
/* Runtime.start; may_fall_back: hand anything unusual to Python (the
 * `start` command) rather than fail (run's own start). */
int start_container(const char *root, const char *id, bool may_fall_back);
/* Runtime.delete(force=True): 0 done, 1 not handled natively (nothing
 * done), -1 failed (a warning was written). */
int delete_force(const char *root, const char *id);
/* Runtime.delete(force): 0 done, 1 not handled natively (nothing done:
 * no such container, running without force, hooks ...), -1 failed with
 * xcr_error (the state is kept). */
int delete_container(const char *root, const char *id, bool force);
/* xc stop: SIGTERM, then SIGKILL to all after timeout s; 1 not handled
 * (nothing sent), 0 done, -1 failed with xcr_error. */
int stop_container(const char *root, const char *id, double timeout);

#endif
