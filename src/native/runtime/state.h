/*
 * Container state on disk, as xcontainers.state: ROOT/ID/state.json, one
 * compact JSON object with the fields of state.State in this order, replaced
 * whole (written to .state.json.tmp, then renamed).  A state the native path
 * does not read exactly (a field missing or of another type, a container
 * whose state file is not written yet) makes it fall back.
 */
#ifndef XCR_STATE_H
#define XCR_STATE_H

#include "json.h"

#define ST_CREATING "creating"
#define ST_CREATED "created"
#define ST_RUNNING "running"
#define ST_PAUSED "paused"
#define ST_STOPPED "stopped"

struct state {
    struct jval *doc; /* the object written to state.json */
    const char *id, *bundle, *status, *created, *rootfs, *owner;
    long long pid, pid_start;
    struct jval *annotations, *cgroup, *config;
};

/* state.ID_PATTERN: ^[A-Za-z0-9][A-Za-z0-9_+.-]{0,1023}$ */
bool id_valid(const char *id);
char *state_dir(const char *root, const char *id);

/* A new state (status creating) with these fields; cgroup and config are
 * kept by reference. */
void state_init(struct state *st, const char *id, const char *bundle, const char *created,
                const char *rootfs, struct jval *annotations, struct jval *cgroup, struct jval *config);
/* Load ROOT/ID/state.json; -1 (xcr_error says why) for anything the native
 * path does not take: the caller falls back. */
int state_load(const char *root, const char *id, struct state *st);
/* Write st (its fields first copied into doc) atomically. */
int state_save(const char *root, struct state *st);
void state_set(struct state *st, const char *status);
void state_set_pid(struct state *st, long long pid, long long start);
void state_set_cgroup(struct state *st, struct jval *cgroup);

bool state_alive(const struct state *st);
/* The saved status corrected by what the kernel shows now. */
const char *state_live(const struct state *st);
/* Whether the container's config has hooks (the native path runs none). */
bool state_has_hooks(const struct state *st);

/* mkdir ROOT (0711, parents) and ROOT/ID (0711): -1 with errno EEXIST when taken. */
int store_reserve(const char *root, const char *id);
/* Store.remove: unlink every file of ROOT/ID, then rmdir it. */
void store_remove(const char *root, const char *id);

#endif
