/* config.json for the native path (see spec.h and xcontainers/spec.py). */
#include "spec.h"

#include <ctype.h>
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mountflags.h"

#define REFUSE(...) return (xcr_fail(__VA_ARGS__), -1)

/* kernel.CAPABILITIES, in number order */
static const char *const CAPS[] = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
};

/* kernel.cap_number: CAP_ prefix optional, any case; -1 if unknown. */
static int cap_number(const char *name)
{
    char up[64];
    size_t n = strlen(name);
    if (n + 5 > sizeof up)
        return -1;
    size_t k = 0;
    bool prefixed = n >= 4 && strncasecmp(name, "CAP_", 4) == 0;
    if (!prefixed) {
        memcpy(up, "CAP_", 4);
        k = 4;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = name[i];
        if (c >= 0x80)
            return -1;
        up[k++] = toupper(c);
    }
    up[k] = 0;
    for (size_t i = 0; i < sizeof CAPS / sizeof *CAPS; i++)
        if (strcmp(up, CAPS[i]) == 0)
            return i;
    return -1;
}

static const char *const RLIMITS[] = {
    "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS",
    "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS", "RLIMIT_SIGPENDING",
    "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
};

static const struct {
    const char *name;
    unsigned long flag;
    const char *proc;
} NAMESPACES[] = {
    {"pid", CLONE_NEWPID, "pid"},   {"network", CLONE_NEWNET, "net"}, {"mount", CLONE_NEWNS, "mnt"},
    {"ipc", CLONE_NEWIPC, "ipc"},   {"uts", CLONE_NEWUTS, "uts"},     {"user", CLONE_NEWUSER, "user"},
    {"cgroup", CLONE_NEWCGROUP, "cgroup"},
};

/* rootfs.DEFAULT_DEVICES */
static const struct device DEFAULT_DEVICES[] = {
    {"/dev/null", 'c', 1, 3, 0666, 0, 0},    {"/dev/zero", 'c', 1, 5, 0666, 0, 0},
    {"/dev/full", 'c', 1, 7, 0666, 0, 0},    {"/dev/random", 'c', 1, 8, 0666, 0, 0},
    {"/dev/urandom", 'c', 1, 9, 0666, 0, 0}, {"/dev/tty", 'c', 5, 0, 0666, 0, 0},
};

/* defaults.DEFAULT_DEVICE_RULES, as JSON */
static const char DEFAULT_DEVICE_RULES[] =
    "[{\"allow\":true,\"type\":\"c\",\"access\":\"m\"},{\"allow\":true,\"type\":\"b\",\"access\":\"m\"},"
    "{\"allow\":true,\"type\":\"c\",\"major\":1,\"minor\":3,\"access\":\"rwm\"},"
    "{\"allow\":true,\"type\":\"c\",\"major\":1,\"minor\":5,\"access\":\"rwm\"},"
    "{\"allow\":true,\"type\":\"c\",\"major\":1,\"minor\":7,\"access\":\"rwm\"},"
    "{\"allow\":true,\"type\":\"c\",\"major\":1,\"minor\":8,\"access\":\"rwm\"},"
    "{\"allow\":true,\"type\":\"c\",\"major\":1,\"minor\":9,\"access\":\"rwm\"},"
    "{\"allow\":true,\"type\":\"c\",\"major\":5,\"minor\":0,\"access\":\"rwm\"},"
    "{\"allow\":true,\"type\":\"c\",\"major\":5,\"minor\":1,\"access\":\"rwm\"},"
    "{\"allow\":true,\"type\":\"c\",\"major\":5,\"minor\":2,\"access\":\"rwm\"},"
    "{\"allow\":true,\"type\":\"c\",\"major\":136,\"access\":\"rwm\"},"
    "{\"allow\":true,\"type\":\"c\",\"major\":10,\"minor\":200,\"access\":\"rwm\"}]";

/* Only these keys (NULL-terminated list) in obj. */
static int only_keys(const struct jval *obj, const char *where, const char *const *keys)
{
    for (size_t i = 0; i < obj->n; i++) {
        bool ok = false;
        for (const char *const *k = keys; *k; k++)
            ok |= strcmp(obj->k[i], *k) == 0;
        if (!ok)
            REFUSE("%s.%s: not handled natively", where, obj->k[i]);
    }
    return 0;
}

/* An object, or absent/null/falsy-empty: Python's _obj(x or {}). */
static int obj_or_empty(struct jval *v, const char *where, struct jval **out)
{
    static struct jval empty = {.t = J_OBJ};
    if (v == NULL || v->t == J_NULL) {
        *out = &empty;
        return 0;
    }
    if (v->t != J_OBJ)
        REFUSE("%s: not an object", where);
    *out = v;
    return 0;
}

static int str_list(struct jval *v, const char *where, const char ***out, int *n)
{
    if (v == NULL || v->t == J_NULL) {
        *out = NULL;
        *n = 0;
        return 0;
    }
    if (!json_is_str_array(v))
        REFUSE("%s: not an array of strings", where);
    *out = xmalloc(sizeof(char *) * (v->n + 1));
    for (size_t i = 0; i < v->n; i++)
        (*out)[i] = v->v[i]->s;
    *n = v->n;
    return 0;
}

/* _get(obj, key, str): absent/null -> NULL; another type refuses. */
static int opt_str(const struct jval *obj, const char *key, const char **out)
{
    struct jval *v = json_opt(obj, key);
    if (v == NULL) {
        *out = NULL;
        return 0;
    }
    if (v->t != J_STR)
        REFUSE("%s: not a string", key);
    *out = v->s;
    return 0;
}

static int opt_bool(const struct jval *obj, const char *key, bool *out)
{
    struct jval *v = json_opt(obj, key);
    *out = false;
    if (v == NULL)
        return 0;
    if (v->t != J_BOOL)
        REFUSE("%s: not a boolean", key);
    *out = v->b;
    return 0;
}

static bool falsy(const struct jval *v)
{
    if (v == NULL || v->t == J_NULL)
        return true;
    if (v->t == J_BOOL)
        return !v->b;
    if (v->t == J_STR || v->t == J_ARR || v->t == J_OBJ)
        return v->n == 0;
    return strcmp(v->s, "0") == 0;
}

/* --- process --------------------------------------------------------------------- */

static int caps_mask(struct jval *names, unsigned long long *mask)
{
    *mask = 0;
    for (size_t i = 0; i < names->n; i++) {
        int c = cap_number(names->v[i]->s);
        if (c < 0)
            REFUSE("unknown capability");
        *mask |= 1ULL << c;
    }
    return 0;
}

static int parse_process(struct jval *p, struct spec *sp)
{
    static const char *const keys[] = {"terminal", "user", "args", "env", "cwd", "capabilities", "rlimits",
                                       "noNewPrivileges", "oomScoreAdj", "apparmorProfile", "selinuxLabel",
                                       "consoleSize", NULL};
    if (p->t != J_OBJ)
        REFUSE("process: not an object");
    if (only_keys(p, "process", keys) < 0)
        return -1;
    struct jval *args = json_get(p, "args");
    if (!json_is_str_array(args) || args->n == 0)
        REFUSE("process.args");
    if (str_list(args, "process.args", (const char ***)&sp->args, &sp->nargs) < 0)
        return -1;
    struct jval *env = json_get(p, "env");
    if (!falsy(env) && str_list(env, "process.env", (const char ***)&sp->env, &sp->nenv) < 0)
        return -1;
    for (int i = 0; i < sp->nenv; i++)
        if (strchr(sp->env[i], '=') == NULL || sp->env[i][0] == '=')
            REFUSE("process.env[%d]", i);
    if (opt_str(p, "cwd", &sp->cwd) < 0)
        return -1;
    if (sp->cwd == NULL)
        sp->cwd = "/";
    if (sp->cwd[0] != '/')
        REFUSE("process.cwd");
    struct jval *user;
    if (obj_or_empty(json_get(p, "user"), "process.user", &user) < 0)
        return -1;
    static const char *const ukeys[] = {"uid", "gid", "additionalGids", "umask", NULL};
    if (only_keys(user, "process.user", ukeys) < 0)
        return -1;
    long long x;
    struct jval *v;
    if ((v = json_get(user, "uid")) != NULL) {
        if (!json_int_in(v, 0, 0xffffffffLL, &x))
            REFUSE("process.user.uid");
        sp->uid = x;
    }
    if ((v = json_get(user, "gid")) != NULL) {
        if (!json_int_in(v, 0, 0xffffffffLL, &x))
            REFUSE("process.user.gid");
        sp->gid = x;
    }
    if (!falsy(v = json_get(user, "additionalGids"))) {
        if (v->t != J_ARR)
            REFUSE("process.user.additionalGids");
        sp->gids = xmalloc(sizeof(unsigned) * (v->n + 1));
        for (size_t i = 0; i < v->n; i++) {
            if (!json_int_in(v->v[i], 0, 0xffffffffLL, &x))
                REFUSE("process.user.additionalGids[%zu]", i);
            sp->gids[sp->ngids++] = x;
        }
    }
    if ((v = json_opt(user, "umask")) != NULL) {
        if (!json_int_in(v, 0, 0777, &x))
            REFUSE("process.user.umask");
        sp->has_umask = true;
        sp->umask = x;
    }
    bool terminal;
    if (opt_bool(p, "terminal", &terminal) < 0)
        return -1;
    if (terminal)
        REFUSE("process.terminal (a console)");
    if (json_opt(p, "consoleSize"))
        REFUSE("process.consoleSize");
    struct jval *caps;
    if (obj_or_empty(json_get(p, "capabilities"), "process.capabilities", &caps) < 0)
        return -1;
    static const char *const ckeys[] = {"bounding", "effective", "inheritable", "permitted", "ambient", NULL};
    if (only_keys(caps, "process.capabilities", ckeys) < 0)
        return -1;
    sp->has_caps = caps->n > 0;
    for (size_t i = 0; i < caps->n; i++) {
        struct jval *names = caps->v[i];
        static struct jval none = {.t = J_ARR};
        if (falsy(names))
            names = &none;
        if (!json_is_str_array(names))
            REFUSE("process.capabilities.%s", caps->k[i]);
        unsigned long long m;
        if (caps_mask(names, &m) < 0)
            return -1;
        const char *k = caps->k[i];
        if (strcmp(k, "bounding") == 0)
            sp->caps_bounding = m;
        else if (strcmp(k, "effective") == 0)
            sp->caps_effective = m;
        else if (strcmp(k, "permitted") == 0)
            sp->caps_permitted = m;
        else if (strcmp(k, "inheritable") == 0)
            sp->caps_inheritable = m;
        else {
            sp->ambient = xmalloc(sizeof(int) * (names->n + 1));
            for (size_t j = 0; j < names->n; j++)
                sp->ambient[sp->nambient++] = cap_number(names->v[j]->s);
        }
    }
    struct jval *rl = json_opt(p, "rlimits");
    if (rl && rl->t != J_ARR)
        REFUSE("process.rlimits");
    for (size_t i = 0; rl && i < rl->n; i++) {
        struct jval *r = rl->v[i];
        static const char *const rkeys[] = {"type", "hard", "soft", NULL};
        if (r->t != J_OBJ || only_keys(r, "process.rlimits[]", rkeys) < 0)
            REFUSE("process.rlimits[%zu]", i);
        struct jval *t = json_get(r, "type");
        int res = -1;
        for (int j = 0; t && t->t == J_STR && j < 16; j++)
            if (strcmp(t->s, RLIMITS[j]) == 0)
                res = j;
        if (res < 0 || sp->nrlimits == 16)
            REFUSE("process.rlimits[%zu].type", i);
        for (int j = 0; j < sp->nrlimits; j++)
            if (sp->rlimits[j].resource == res)
                REFUSE("process.rlimits[%zu].type: twice", i);
        struct rlim *l = &sp->rlimits[sp->nrlimits++];
        l->resource = res;
        if (!json_u64(json_get(r, "hard"), &l->hard) || !json_u64(json_get(r, "soft"), &l->soft))
            REFUSE("process.rlimits[%zu]", i);
    }
    if (opt_bool(p, "noNewPrivileges", &sp->nnp) < 0)
        return -1;
    if ((v = json_opt(p, "oomScoreAdj")) != NULL) {
        if (!json_int_in(v, -1000, 1000, &x))
            REFUSE("process.oomScoreAdj");
        sp->has_oom = true;
        sp->oom_score_adj = x;
    }
    const char *s;
    if (opt_str(p, "apparmorProfile", &s) < 0)
        return -1;
    if (s && *s)
        REFUSE("process.apparmorProfile");
    if (opt_str(p, "selinuxLabel", &s) < 0)
        return -1;
    return 0;
}

/* --- mounts ---------------------------------------------------------------------------- */

static const struct {
    const char *name;
    unsigned long clear, set;
} FLAG_OPTIONS[] = {
    {"defaults", 0, 0},
    {"ro", 0, XMS_RDONLY},
    {"rw", XMS_RDONLY, 0},
    {"suid", XMS_NOSUID, 0},
    {"nosuid", 0, XMS_NOSUID},
    {"dev", XMS_NODEV, 0},
    {"nodev", 0, XMS_NODEV},
    {"exec", XMS_NOEXEC, 0},
    {"noexec", 0, XMS_NOEXEC},
    {"sync", 0, XMS_SYNCHRONOUS},
    {"async", XMS_SYNCHRONOUS, 0},
    {"dirsync", 0, XMS_DIRSYNC},
    {"remount", 0, XMS_REMOUNT},
    {"mand", 0, XMS_MANDLOCK},
    {"nomand", XMS_MANDLOCK, 0},
    {"atime", XMS_NOATIME, 0},
    {"noatime", 0, XMS_NOATIME},
    {"diratime", XMS_NODIRATIME, 0},
    {"nodiratime", 0, XMS_NODIRATIME},
    {"relatime", 0, XMS_RELATIME},
    {"norelatime", XMS_RELATIME, 0},
    {"strictatime", 0, XMS_STRICTATIME},
    {"nostrictatime", XMS_STRICTATIME, 0},
    {"lazytime", 0, XMS_LAZYTIME},
    {"nolazytime", XMS_LAZYTIME, 0},
    {"nosymfollow", 0, XMS_NOSYMFOLLOW},
    {"symfollow", XMS_NOSYMFOLLOW, 0},
    {"bind", 0, XMS_BIND},
    {"rbind", 0, XMS_BIND | XMS_REC},
};

const struct propagation PROPAGATION[] = {
    {"private", XMS_PRIVATE},
    {"rprivate", XMS_PRIVATE | XMS_REC},
    {"shared", XMS_SHARED},
    {"rshared", XMS_SHARED | XMS_REC},
    {"slave", XMS_SLAVE},
    {"rslave", XMS_SLAVE | XMS_REC},
    {"unbindable", XMS_UNBINDABLE},
    {"runbindable", XMS_UNBINDABLE | XMS_REC},
    {NULL, 0},
};

/* The options that steer the runtime only (all but tmpcopyup are ignored). */
static const char *const RUNTIME_OPTIONS[] = {"notmpcopyup", "z", "Z", "U", "copy-symlink", "idmap", "ridmap"};

static int parse_options(const char **opts, int n, struct mountent *m)
{
    struct sbuf data = {0};
    for (int i = 0; i < n; i++) {
        const char *o = opts[i];
        bool done = false;
        for (size_t j = 0; j < sizeof FLAG_OPTIONS / sizeof *FLAG_OPTIONS && !done; j++)
            if (strcmp(o, FLAG_OPTIONS[j].name) == 0) {
                m->flags = (m->flags & ~FLAG_OPTIONS[j].clear) | FLAG_OPTIONS[j].set;
                done = true;
            }
        for (int j = 0; PROPAGATION[j].name && !done; j++)
            if (strcmp(o, PROPAGATION[j].name) == 0) {
                m->prop |= PROPAGATION[j].flags;
                done = true;
            }
        if (strcmp(o, "tmpcopyup") == 0)
            REFUSE("mount option tmpcopyup");
        for (size_t j = 0; j < sizeof RUNTIME_OPTIONS / sizeof *RUNTIME_OPTIONS && !done; j++)
            done = strcmp(o, RUNTIME_OPTIONS[j]) == 0;
        if (!done) {
            if (data.len)
                sb_putc(&data, ',');
            sb_puts(&data, o);
        }
    }
    m->data = data.s; /* NULL when empty: `",".join(data) or None` */
    return 0;
}

static int parse_mounts(struct jval *ms, struct spec *sp)
{
    if (ms == NULL || ms->t == J_NULL)
        return 0;
    if (ms->t != J_ARR)
        REFUSE("mounts");
    sp->mounts = xmalloc(sizeof(struct mountent) * (ms->n + 1));
    bool dev_seen = false;
    for (size_t i = 0; i < ms->n; i++) {
        struct jval *j = ms->v[i];
        static const char *const keys[] = {"destination", "type", "source", "options", NULL};
        if (j->t != J_OBJ || only_keys(j, "mounts[]", keys) < 0)
            REFUSE("mounts[%zu]", i);
        struct mountent *m = &sp->mounts[sp->nmounts++];
        memset(m, 0, sizeof *m);
        struct jval *d = json_get(j, "destination");
        if (!json_is_str(d) || d->n == 0 || d->s[0] != '/')
            REFUSE("mounts[%zu].destination", i);
        m->dest = d->s;
        if (opt_str(j, "type", &m->type) < 0 || opt_str(j, "source", &m->source) < 0)
            return -1;
        const char **opts;
        int n;
        if (str_list(json_opt(j, "options"), "mounts[].options", &opts, &n) < 0)
            return -1;
        if (parse_options(opts, n, m) < 0)
            return -1;
        m->bind = (m->flags & XMS_BIND) || (m->type && strcmp(m->type, "bind") == 0);
        if (!m->bind && (m->type == NULL || *m->type == 0))
            REFUSE("mounts[%zu]: no type", i);
        /* rootfs._dev_is_bind: the first mount at /dev decides */
        size_t dl = strlen(m->dest);
        while (dl > 0 && m->dest[dl - 1] == '/')
            dl--;
        if (!dev_seen && dl == 4 && strncmp(m->dest, "/dev", 4) == 0) {
            dev_seen = true;
            sp->dev_is_bind = m->bind;
        }
    }
    return 0;
}

/* --- linux --------------------------------------------------------------------------------- */

static int int_or_absent(const struct jval *obj, const char *key, bool *has, long long *out, long long lo)
{
    struct jval *v = json_opt(obj, key);
    *has = false;
    if (v == NULL)
        return 0;
    if (!json_int_in(v, lo, (1LL << 62), out))
        REFUSE("%s: not an integer in range", key);
    *has = true;
    return 0;
}

static bool empty_or_null(const struct jval *v)
{
    return v == NULL || v->t == J_NULL || ((v->t == J_OBJ || v->t == J_ARR) && v->n == 0);
}

static int parse_resources(struct jval *res, struct spec *sp)
{
    struct resources *r = &sp->res;
    static const char *const keys[] = {"memory", "cpu", "pids", "devices", "blockIO", "hugepageLimits",
                                       "network", "rdma", "unified", NULL};
    if (only_keys(res, "linux.resources", keys) < 0)
        return -1;
    const char *other[] = {"blockIO", "hugepageLimits", "network", "rdma", "unified"};
    for (int i = 0; i < 5; i++)
        if (!empty_or_null(json_get(res, other[i])))
            REFUSE("linux.resources.%s", other[i]);
    struct jval *mem = json_opt(res, "memory");
    if (mem) {
        static const char *const mkeys[] = {"limit", "reservation", "swap", NULL};
        if (mem->t != J_OBJ || only_keys(mem, "linux.resources.memory", mkeys) < 0)
            return -1;
        r->memory = mem->n > 0;
        if (int_or_absent(mem, "limit", &r->has_limit, &r->limit, -1) < 0 ||
            int_or_absent(mem, "swap", &r->has_swap, &r->swap, -1) < 0 ||
            int_or_absent(mem, "reservation", &r->has_reservation, &r->reservation, -1) < 0)
            return -1;
        if (r->has_limit && r->limit != -1 && r->limit < 8192 && r->limit != 0)
            REFUSE("linux.resources.memory.limit: too small");
    }
    struct jval *cpu = json_opt(res, "cpu");
    if (cpu) {
        static const char *const ckeys[] = {"shares", "quota", "period", "cpus", "mems", NULL};
        if (cpu->t != J_OBJ || only_keys(cpu, "linux.resources.cpu", ckeys) < 0)
            return -1;
        r->cpu = cpu->n > 0;
        if (int_or_absent(cpu, "shares", &r->has_shares, &r->shares, -(1LL << 62)) < 0 ||
            int_or_absent(cpu, "quota", &r->has_quota, &r->quota, -(1LL << 62)) < 0 ||
            int_or_absent(cpu, "period", &r->has_period, &r->period, -(1LL << 62)) < 0)
            return -1;
        if (opt_str(cpu, "cpus", &r->cpus) < 0 || opt_str(cpu, "mems", &r->mems) < 0)
            return -1;
    }
    struct jval *pids = json_opt(res, "pids");
    if (pids) {
        static const char *const pkeys[] = {"limit", NULL};
        if (pids->t != J_OBJ || only_keys(pids, "linux.resources.pids", pkeys) < 0)
            return -1;
        r->pids = pids->n > 0;
        if (int_or_absent(pids, "limit", &r->has_pids_limit, &r->pids_limit, -(1LL << 62)) < 0)
            return -1;
    }
    struct jval *devs = json_opt(res, "devices");
    if (devs) {
        if (devs->t != J_ARR)
            REFUSE("linux.resources.devices");
        for (size_t i = 0; i < devs->n; i++) {
            struct jval *d = devs->v[i];
            static const char *const dkeys[] = {"allow", "type", "major", "minor", "access", NULL};
            if (d->t != J_OBJ || only_keys(d, "linux.resources.devices[]", dkeys) < 0)
                REFUSE("linux.resources.devices[%zu]", i);
            struct jval *a = json_get(d, "allow");
            if (a == NULL || a->t != J_BOOL)
                REFUSE("linux.resources.devices[%zu].allow", i);
            const char *t;
            if (opt_str(d, "type", &t) < 0)
                return -1;
            struct jval *tv = json_get(d, "type");
            if (tv && tv->t == J_NULL)
                REFUSE("linux.resources.devices[%zu].type: null", i);
            if (t && strcmp(t, "a") != 0 && strcmp(t, "b") != 0 && strcmp(t, "c") != 0)
                REFUSE("linux.resources.devices[%zu].type", i);
            const char *nums[] = {"major", "minor"};
            for (int k = 0; k < 2; k++) {
                struct jval *n = json_opt(d, nums[k]);
                if (n && !json_int_in(n, -1, 0xffffffffLL, NULL))
                    REFUSE("linux.resources.devices[%zu].%s", i, nums[k]);
            }
            if (opt_str(d, "access", &t) < 0)
                return -1;
        }
        if (devs->n) {
            struct jval *defaults = json_parse(DEFAULT_DEVICE_RULES, sizeof DEFAULT_DEVICE_RULES - 1);
            struct jval *all = json_new(J_ARR);
            all->v = xmalloc(sizeof(struct jval *) * (devs->n + defaults->n));
            for (size_t i = 0; i < devs->n; i++)
                all->v[all->n++] = devs->v[i];
            for (size_t i = 0; i < defaults->n; i++)
                all->v[all->n++] = defaults->v[i];
            r->devices = all;
        }
    }
    return 0;
}

static int add_device(struct spec *sp, const struct device *d)
{
    for (int i = 0; i < sp->ndevices; i++)
        if (strcmp(sp->devices[i].path, d->path) == 0) {
            sp->devices[i] = *d;
            return 0;
        }
    sp->devices[sp->ndevices++] = *d;
    return 0;
}

static int parse_linux(struct jval *lx, struct spec *sp)
{
    static const char *const keys[] = {"namespaces", "uidMappings", "gidMappings", "devices", "cgroupsPath",
                                       "resources", "sysctl", "seccomp", "rootfsPropagation", "maskedPaths",
                                       "readonlyPaths", "mountLabel", "personality", "intelRdt", "timeOffsets",
                                       NULL};
    if (only_keys(lx, "linux", keys) < 0)
        return -1;
    const char *nonnull[] = {"uidMappings", "gidMappings", "seccomp", "personality", "intelRdt", "timeOffsets"};
    for (int i = 0; i < 6; i++)
        if (json_opt(lx, nonnull[i]))
            REFUSE("linux.%s", nonnull[i]);
    const char *label;
    if (opt_str(lx, "mountLabel", &label) < 0)
        return -1;
    struct jval *nss = json_opt(lx, "namespaces");
    if (nss && nss->t != J_ARR)
        REFUSE("linux.namespaces");
    for (size_t i = 0; nss && i < nss->n; i++) {
        struct jval *n = nss->v[i];
        static const char *const nkeys[] = {"type", "path", NULL};
        if (n->t != J_OBJ || only_keys(n, "linux.namespaces[]", nkeys) < 0)
            REFUSE("linux.namespaces[%zu]", i);
        struct jval *t = json_get(n, "type");
        int k = -1;
        for (size_t j = 0; t && t->t == J_STR && j < sizeof NAMESPACES / sizeof *NAMESPACES; j++)
            if (strcmp(t->s, NAMESPACES[j].name) == 0)
                k = j;
        if (k < 0)
            REFUSE("linux.namespaces[%zu].type", i);
        for (int j = 0; j < sp->nns; j++)
            if (strcmp(sp->ns[j].type, t->s) == 0)
                REFUSE("linux.namespaces[%zu]: twice", i);
        const char *path;
        if (opt_str(n, "path", &path) < 0)
            return -1;
        if (path && access(path, F_OK) != 0)
            REFUSE("linux.namespaces[%zu].path: does not exist", i);
        if (strcmp(t->s, "user") == 0)
            REFUSE("a user namespace");
        sp->ns[sp->nns].type = t->s;
        sp->ns[sp->nns].path = path;
        sp->ns[sp->nns].flag = NAMESPACES[k].flag;
        sp->nns++;
        if (strcmp(t->s, "cgroup") == 0) {
            sp->has_cgroupns = true;
            sp->cgroupns_new = path == NULL;
        }
        if (path == NULL)
            sp->unshare_flags |= NAMESPACES[k].flag;
    }
    struct jval *sysctl;
    if (obj_or_empty(json_get(lx, "sysctl"), "linux.sysctl", &sysctl) < 0)
        return -1;
    sp->sysctl_keys = xmalloc(sizeof(char *) * (sysctl->n + 1));
    sp->sysctl_vals = xmalloc(sizeof(char *) * (sysctl->n + 1));
    for (size_t i = 0; i < sysctl->n; i++) {
        if (sysctl->v[i]->t != J_STR)
            REFUSE("linux.sysctl.%s", sysctl->k[i]);
        if (strstr(sysctl->k[i], "..") || strchr(sysctl->k[i], '/') || sysctl->k[i][0] == 0)
            REFUSE("linux.sysctl.%s: name", sysctl->k[i]);
        sp->sysctl_keys[sp->nsysctl] = sysctl->k[i];
        sp->sysctl_vals[sp->nsysctl++] = sysctl->v[i]->s;
    }
    struct jval *devs = json_opt(lx, "devices");
    if (devs && devs->t != J_ARR)
        REFUSE("linux.devices");
    sp->devices = xmalloc(sizeof(struct device) * (6 + (devs ? devs->n : 0)));
    for (int i = 0; i < 6; i++)
        add_device(sp, &DEFAULT_DEVICES[i]);
    for (size_t i = 0; devs && i < devs->n; i++) {
        struct jval *d = devs->v[i];
        static const char *const dkeys[] = {"path", "type", "major", "minor", "fileMode", "uid", "gid", NULL};
        if (d->t != J_OBJ || only_keys(d, "linux.devices[]", dkeys) < 0)
            REFUSE("linux.devices[%zu]", i);
        struct device dv = {0};
        struct jval *p = json_get(d, "path"), *t = json_get(d, "type");
        if (!json_is_str(p) || strncmp(p->s, "/dev/", 5) != 0)
            REFUSE("linux.devices[%zu].path", i);
        if (!json_is_str(t) || t->n != 1 || !strchr("cbup", t->s[0]))
            REFUSE("linux.devices[%zu].type", i);
        dv.path = p->s;
        dv.type = t->s[0];
        dv.mode = 0666;
        struct {
            const char *k;
            long long *v;
            long long hi;
        } nums[] = {{"major", &dv.major, 0xfffffLL}, {"minor", &dv.minor, 0xfffffLL}, {"fileMode", &dv.mode, 07777},
                    {"uid", &dv.uid, 0xfffffffeLL}, {"gid", &dv.gid, 0xfffffffeLL}};
        for (int k = 0; k < 5; k++) {
            struct jval *v = json_get(d, nums[k].k);
            if (v && !json_int_in(v, 0, nums[k].hi, nums[k].v))
                REFUSE("linux.devices[%zu].%s", i, nums[k].k);
        }
        add_device(sp, &dv);
    }
    if (opt_str(lx, "rootfsPropagation", &sp->rootfs_propagation) < 0)
        return -1;
    if (sp->rootfs_propagation) {
        bool ok = false;
        for (int i = 0; PROPAGATION[i].name; i++)
            ok |= strcmp(sp->rootfs_propagation, PROPAGATION[i].name) == 0;
        if (!ok)
            REFUSE("linux.rootfsPropagation");
    }
    struct jval *res;
    if (obj_or_empty(json_get(lx, "resources"), "linux.resources", &res) < 0 || parse_resources(res, sp) < 0)
        return -1;
    if (opt_str(lx, "cgroupsPath", &sp->cgroups_path) < 0)
        return -1;
    if (str_list(json_opt(lx, "maskedPaths"), "linux.maskedPaths", &sp->masked, &sp->nmasked) < 0 ||
        str_list(json_opt(lx, "readonlyPaths"), "linux.readonlyPaths", &sp->readonly, &sp->nreadonly) < 0)
        return -1;
    return 0;
}

/* --- the whole config --------------------------------------------------------------------- */

static bool ascii_lower_eq(const char *s, const char *lower)
{
    for (; *s && *lower; s++, lower++)
        if (tolower((unsigned char)*s) != *lower || (unsigned char)*s >= 0x80)
            return false;
    return *s == 0 && *lower == 0;
}

/* libos.enabled / profile._switch: 1 on, 0 off, -1 neither */
static int on_off(const char *v)
{
    const char *on[] = {"on", "true", "1"}, *off[] = {"off", "false", "0"};
    for (int i = 0; i < 3; i++) {
        if (ascii_lower_eq(v, on[i]))
            return 1;
        if (ascii_lower_eq(v, off[i]))
            return 0;
    }
    return -1;
}

static int parse_annotations(struct spec *sp)
{
    const char *key = "org.xcontainers.libos";
    size_t kl = strlen(key);
    sp->libos = true;
    sp->abom = true;
    struct jval *a = sp->annotations;
    for (size_t i = 0; i < a->n; i++)
        if (strncmp(a->k[i], "org.xcontainers.rootfs.", 23) == 0)
            REFUSE("annotations.%s (an overlay root)", a->k[i]);
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->k[i], key) == 0) {
            int v = on_off(a->v[i]->s);
            if (v < 0)
                REFUSE("annotations.%s", key);
            sp->libos = v;
        }
    if (!sp->libos)
        return 0;
    for (size_t i = 0; i < a->n; i++) {
        if (strncmp(a->k[i], key, kl) != 0 || a->k[i][kl] != '.')
            continue;
        if (strcmp(a->k[i] + kl, ".abom") == 0) {
            int v = on_off(a->v[i]->s);
            if (v < 0)
                REFUSE("annotations.%s", a->k[i]);
            sp->abom = v;
            continue;
        }
        REFUSE("annotations.%s (a LibOS profile)", a->k[i]);
    }
    return 0;
}

int spec_load(const char *bundle_arg, struct spec *sp)
{
    memset(sp, 0, sizeof *sp);
    sp->bundle = path_abspath(bundle_arg);
    if (sp->bundle == NULL)
        REFUSE("bundle: no current directory");
    char *path = path_join(sp->bundle, "config.json");
    size_t len;
    char *text = read_file(path, JSON_MAX_SIZE, &len);
    free(path);
    if (text == NULL)
        REFUSE("config.json: cannot read it");
    struct jval *doc = json_parse(text, len);
    if (doc == NULL)
        return -1;
    sp->raw = doc;
    if (doc->t != J_OBJ)
        REFUSE("config.json: not an object");
    static const char *const keys[] = {"ociVersion", "process", "root", "hostname", "domainname", "mounts",
                                       "hooks", "annotations", "linux", NULL};
    if (only_keys(doc, "config", keys) < 0)
        return -1;
    struct jval *ver = json_get(doc, "ociVersion");
    if (!json_is_str(ver) || strncmp(ver->s, "1.", 2) != 0)
        REFUSE("ociVersion");
    sp->oci_version = ver->s;
    struct jval *root;
    if (obj_or_empty(json_get(doc, "root"), "root", &root) < 0)
        return -1;
    static const char *const rkeys[] = {"path", "readonly", NULL};
    if (only_keys(root, "root", rkeys) < 0)
        return -1;
    struct jval *rp = json_get(root, "path");
    if (!json_is_str(rp) || rp->n == 0)
        REFUSE("root.path");
    char *joined = path_join(sp->bundle, rp->s);
    sp->root_path = path_normpath(joined);
    free(joined);
    if (!isdir(sp->root_path))
        REFUSE("root.path: not a directory");
    if (opt_bool(root, "readonly", &sp->root_readonly) < 0)
        return -1;
    struct jval *proc = json_opt(doc, "process");
    if (proc == NULL)
        REFUSE("no process");
    if (parse_process(proc, sp) < 0)
        return -1;
    struct jval *lx;
    if (obj_or_empty(json_get(doc, "linux"), "linux", &lx) < 0 || parse_linux(lx, sp) < 0)
        return -1;
    if (opt_str(doc, "hostname", &sp->hostname) < 0 || opt_str(doc, "domainname", &sp->domainname) < 0)
        return -1;
    if (obj_or_empty(json_get(doc, "annotations"), "annotations", &sp->annotations) < 0)
        return -1;
    for (size_t i = 0; i < sp->annotations->n; i++)
        if (sp->annotations->v[i]->t != J_STR)
            REFUSE("annotations.%s", sp->annotations->k[i]);
    if (parse_mounts(json_get(doc, "mounts"), sp) < 0)
        return -1;
    struct jval *hooks = json_opt(doc, "hooks");
    if (hooks && (hooks->t != J_OBJ || hooks->n))
        REFUSE("hooks");
    bool uts = false, net = false, mnt = false;
    for (int i = 0; i < sp->nns; i++) {
        uts |= strcmp(sp->ns[i].type, "uts") == 0;
        net |= strcmp(sp->ns[i].type, "network") == 0;
        mnt |= strcmp(sp->ns[i].type, "mount") == 0;
    }
    if (((sp->hostname && *sp->hostname) || (sp->domainname && *sp->domainname)) && !uts)
        REFUSE("hostname without a uts namespace");
    for (int i = 0; i < sp->nsysctl; i++)
        if (strncmp(sp->sysctl_keys[i], "net.", 4) == 0 && !net)
            REFUSE("linux.sysctl: net.* without a network namespace");
    if (!mnt)
        REFUSE("no mount namespace");
    return parse_annotations(sp);
}
