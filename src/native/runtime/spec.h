/*
 * config.json for the native path: xcontainers.spec.parse's checks on the
 * subset of the OCI config the native path implements.  Anything outside
 * it (a field it does not know, a feature it lacks: user namespaces, hooks,
 * a terminal, seccomp, tmpcopyup, limits other than cpu shares/quota/period
 * and cpusets, memory limit/swap/reservation, pids and device rules, LibOS
 * profiles other than abom on/off) and anything the Python runtime would
 * refuse makes spec_load() fail, and the command goes to the Python runtime.
 */
#ifndef XCR_SPEC_H
#define XCR_SPEC_H

#include "cgroup.h"
#include "json.h"

struct mountent {
    const char *dest, *type, *source; /* type, source: NULL if absent */
    unsigned long flags, prop;        /* rootfs.parse_options */
    char *data;                       /* NULL when no data option */
    bool bind;
};

struct nsent {
    const char *type, *path; /* path NULL: a new namespace */
    unsigned long flag;
};

struct rlim {
    int resource;
    unsigned long long soft, hard;
};

struct device {
    const char *path;
    char type;
    long long major, minor, mode, uid, gid;
};

struct spec {
    struct jval *raw;
    char *bundle, *root_path;
    bool root_readonly;
    const char *hostname, *domainname, *oci_version;
    /* process */
    char **args, **env;
    int nargs, nenv;
    const char *cwd;
    unsigned uid, gid;
    unsigned *gids;
    int ngids;
    bool has_umask;
    unsigned umask;
    bool has_caps;
    unsigned long long caps_bounding, caps_effective, caps_permitted, caps_inheritable;
    int *ambient; /* in order, numbers (unknown ones never get here) */
    int nambient;
    struct rlim rlimits[16];
    int nrlimits;
    bool nnp, has_oom;
    int oom_score_adj;
    /* linux */
    struct nsent ns[8];
    int nns;
    unsigned long unshare_flags; /* new namespaces */
    bool has_cgroupns, cgroupns_new, has_userns;
    struct mountent *mounts;
    int nmounts;
    bool dev_is_bind;
    struct device *devices; /* the defaults, then the config's (later ones replace) */
    int ndevices;
    const char *cgroups_path;
    struct resources res;
    const char **sysctl_keys, **sysctl_vals;
    int nsysctl;
    const char **masked, **readonly;
    int nmasked, nreadonly;
    const char *rootfs_propagation;
    struct jval *annotations;
    bool libos, abom;
};

int spec_load(const char *bundle, struct spec *sp);

#endif
