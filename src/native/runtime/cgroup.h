/*
 * A container's cgroup, as xcontainers.cgroups.Cgroup: the same relative
 * path in every hierarchy mounted at or below /sys/fs/cgroup (v1, hybrid
 * or v2, found from /proc/self/mountinfo), the same record in state.json,
 * the same steps and files.  Only the limits in struct resources are done
 * here; spec.c sends a config with any other to the Python runtime.
 */
#ifndef XCR_CGROUP_H
#define XCR_CGROUP_H

#include "json.h"

#define CG_MAX_HIER 32
#define CG_ROOT "/sys/fs/cgroup"

struct hier {
    char *name, *mountpoint, *fstype, *options;
    char **controllers;
    int ncontrollers;
};

struct cgroup {
    bool v2;
    char *path, *root;
    struct hier h[CG_MAX_HIER];
    char *dirs[CG_MAX_HIER];
    int nh;
    char **created; /* directories create() made */
    int ncreated;
    bool created_known;
};

/* The limits the native path applies (xcontainers.cgroups.Cgroup.apply). */
struct resources {
    /* cpu */
    bool cpu;
    const char *cpus, *mems;
    bool has_shares, has_quota, has_period;
    long long shares, quota, period;
    /* memory */
    bool memory;
    bool has_limit, has_swap, has_reservation;
    long long limit, swap, reservation;
    /* pids */
    bool pids, has_pids_limit;
    long long pids_limit;
    /* devices: the config's rules, then DEFAULT_DEVICE_RULES */
    struct jval *devices;
};

/* cgroups.resolve_path; -1 when Python would refuse it. */
int cgroup_resolve_path(const char *cgroups_path, const char *id, char **out);
/* Cgroup.open(path) on this host. */
int cgroup_open(const char *path, struct cgroup *cg);
/* Cgroup.to_state() */
struct jval *cgroup_to_state(const struct cgroup *cg);
/* Cgroup.from_state(); -1 for a record the native path does not take. */
int cgroup_from_state(const struct jval *rec, struct cgroup *cg);

int cgroup_create(struct cgroup *cg);
int cgroup_apply(struct cgroup *cg, const struct resources *r);
int cgroup_add(struct cgroup *cg, pid_t pid);
/* The cgroup's directory in the v2 hierarchy, if there is one. */
const char *cgroup_v2_dir(const struct cgroup *cg);
/* The calling single-threaded process joins the cgroup itself: "0" to each
 * v1 hierarchy's tasks, and to cgroup.procs of the v2 one unless it was
 * cloned into it (in_v2).  No RCU grace period (see cgroup.c). */
int cgroup_join_self(const struct cgroup *cg, bool in_v2);

/* The unified hierarchy's cgroup.kill of this cgroup, if the file exists. */
char *cgroup_kill_file(const struct cgroup *cg);
/* Cgroup.kill_all(sig): cgroup.kill for SIGKILL where it exists, else the
 * signal to every process listed, frozen meanwhile where a freezer works.
 * -1 with the Python runtime's message where it would raise. */
int cgroup_kill_all(const struct cgroup *cg, int sig);
/* Cgroup.thaw() */
int cgroup_thaw(const struct cgroup *cg);
/* destroy(timeout): -1 with the Python runtime's message if a cgroup stays busy. */
int cgroup_destroy(struct cgroup *cg, double timeout);

#endif
