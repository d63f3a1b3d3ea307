/* A container's cgroup (see cgroup.h and xcontainers/cgroups.py). */
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

static const char *const V1_FLAGS[] = {"rw", "ro", "noprefix", "clone_children", "xattr", "cpuset_v2_mode",
                                       "favordynmods"};
static const char *const V2_CONTROLLERS[] = {"memory", "pids", "cpu", "cpuset", "io"};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* --- paths ----------------------------------------------------------------- */

static bool has_dotdot(const char *p)
{
    const char *s = p;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.')
            return true;
        s += n;
        if (*s == '/')
            s++;
    }
    return false;
}

static int count_char(const char *s, char c)
{
    int n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int cgroup_resolve_path(const char *cp, const char *id, char **out)
{
    char *path;
    if (cp == NULL || *cp == 0) {
        if (*id == 0 || strcmp(id, ".") == 0 || strcmp(id, "..") == 0 || strchr(id, '/'))
            return xcr_fail("container id cannot name a cgroup");
        path = xasprintf("/%s", id);
    } else if (cp[0] != '/' && count_char(cp, ':') == 2) {
        if (has_dotdot(cp))
            return xcr_fail("linux.cgroupsPath: ..");
        char *copy = xstrdup(cp);
        char *c1 = strchr(copy, ':');
        *c1 = 0;
        char *c2 = strchr(c1 + 1, ':');
        *c2 = 0;
        const char *slice = copy, *prefix = c1 + 1, *name = c2 + 1;
        if (strcmp(slice, "..") == 0 || strcmp(prefix, "..") == 0 || strcmp(name, "..") == 0)
            return xcr_fail("linux.cgroupsPath: ..");
        if (*slice == 0)
            slice = "system.slice";
        if (!ends_with(slice, ".slice") || strchr(slice, '/'))
            return xcr_fail("linux.cgroupsPath: slice");
        if (*name == 0 || strchr(name, '/') || strchr(prefix, '/'))
            return xcr_fail("linux.cgroupsPath: slice:prefix:name");
        if (ends_with(name, ".slice"))
            path = xasprintf("/%s/%s", slice, name);
        else if (*prefix)
            path = xasprintf("/%s/%s-%s.scope", slice, prefix, name);
        else
            path = xasprintf("/%s/%s.scope", slice, name);
    } else {
        if (has_dotdot(cp))
            return xcr_fail("linux.cgroupsPath: ..");
        while (*cp == '/')
            cp++;
        path = xasprintf("/%s", cp);
    }
    char *norm = path_normpath(path);
    free(path);
    if (strcmp(norm, "/") == 0)
        return xcr_fail("linux.cgroupsPath: the root");
    *out = norm;
    return 0;
}

/* --- hierarchies --------------------------------------------------------------- */

static char *unescape(const char *f)
{
    struct sbuf b = {0};
    sb_add(&b, "", 0);
    for (size_t i = 0; f[i];) {
        if (f[i] == '\\' && f[i + 1] >= '0' && f[i + 1] <= '9' && f[i + 2] >= '0' && f[i + 2] <= '9' &&
            f[i + 3] >= '0' && f[i + 3] <= '9') {
            sb_putc(&b, (char)((f[i + 1] - '0') * 64 + (f[i + 2] - '0') * 8 + (f[i + 3] - '0')));
            i += 4;
        } else {
            sb_putc(&b, f[i++]);
        }
    }
    return b.s;
}

static bool under(const char *path, const char *root)
{
    if (strcmp(path, root) == 0)
        return true;
    size_t n = strlen(root);
    while (n > 0 && root[n - 1] == '/')
        n--;
    return strncmp(path, root, n) == 0 && path[n] == '/';
}

/* Split on whitespace runs (str.split()). */
static int split_ws(char *s, char **out, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(s, " \t\n\r\v\f", &save); t && n < max; t = strtok_r(NULL, " \t\n\r\v\f", &save))
        out[n++] = t;
    return n;
}

static void v1_hierarchy(struct hier *h, const char *mp, const char *options)
{
    h->name = xstrdup(path_basename(mp));
    h->mountpoint = xstrdup(mp);
    h->fstype = "cgroup";
    h->controllers = xmalloc(sizeof(char *) * 64);
    h->ncontrollers = 0;
    struct sbuf named = {0};
    char *copy = xstrdup(options);
    char *save = NULL;
    for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
        if (strncmp(o, "name=", 5) == 0) {
            sb_putc(&named, ',');
            sb_puts(&named, o);
            continue;
        }
        if (strchr(o, '='))
            continue;
        bool flag = false;
        for (size_t i = 0; i < sizeof V1_FLAGS / sizeof *V1_FLAGS; i++)
            flag |= strcmp(o, V1_FLAGS[i]) == 0;
        if (!flag && h->ncontrollers < 64)
            h->controllers[h->ncontrollers++] = xstrdup(o);
    }
    struct sbuf opts = {0};
    if (h->ncontrollers) {
        for (int i = 0; i < h->ncontrollers; i++) {
            if (i)
                sb_putc(&opts, ',');
            sb_puts(&opts, h->controllers[i]);
        }
    } else {
        sb_puts(&opts, "none");
    }
    if (named.len)
        sb_puts(&opts, named.s);
    h->options = opts.s;
    free(named.s);
    free(copy);
}

static bool has_controller(const struct hier *h, const char *c)
{
    for (int i = 0; i < h->ncontrollers; i++)
        if (strcmp(h->controllers[i], c) == 0)
            return true;
    return false;
}

static bool is_v2(const struct hier *h)
{
    return strcmp(h->fstype, "cgroup2") == 0;
}

int cgroup_open(const char *path, struct cgroup *cg)
{
    memset(cg, 0, sizeof *cg);
    if (path[0] != '/' || has_dotdot(path))
        return xcr_fail("linux.cgroupsPath");
    char *np = path_normpath(path);
    if (strcmp(np, "/") == 0)
        return xcr_fail("linux.cgroupsPath: the root");
    char *root = path_normpath(CG_ROOT);
    size_t len;
    char *mi = read_file("/proc/self/mountinfo", 1 << 22, &len);
    if (mi == NULL)
        return xcr_fail_errno("/proc/self/mountinfo");
    /* found: mount point -> (devno, fstype, opts), a later mount at the same
     * place moving to the end (dict.pop + insert) */
    struct {
        char *mp, *devno, *fstype, *opts;
    } found[CG_MAX_HIER];
    int nf = 0;
    char *save = NULL;
    for (char *line = strtok_r(mi, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *sep = strstr(line, " - ");
        if (sep == NULL)
            continue;
        *sep = 0;
        char *fields[64], *tail[16];
        int nfields = split_ws(line, fields, 64);
        int ntail = split_ws(sep + 3, tail, 16);
        if (nfields < 5 || ntail < 3)
            continue;
        if (strcmp(tail[0], "cgroup") != 0 && strcmp(tail[0], "cgroup2") != 0)
            continue;
        char *mp = unescape(fields[4]);
        if (!under(mp, root)) {
            free(mp);
            continue;
        }
        for (int i = 0; i < nf; i++)
            if (strcmp(found[i].mp, mp) == 0) {
                memmove(&found[i], &found[i + 1], sizeof found[0] * (nf - i - 1));
                nf--;
                break;
            }
        if (nf == CG_MAX_HIER)
            return xcr_fail("too many cgroup mounts");
        found[nf].mp = mp;
        found[nf].devno = xstrdup(fields[2]);
        found[nf].fstype = xstrdup(tail[0]);
        found[nf].opts = xstrdup(tail[2]);
        nf++;
    }
    free(mi);
    bool any_v1 = false, v2_root = false;
    for (int i = 0; i < nf; i++) {
        unsigned major, minor;
        struct stat st;
        if (sscanf(found[i].devno, "%u:%u", &major, &minor) != 2 || stat(found[i].mp, &st) < 0 ||
            st.st_dev != makedev(major, minor))
            continue;
        struct hier *h = &cg->h[cg->nh];
        if (strcmp(found[i].fstype, "cgroup2") == 0) {
            h->name = xstrdup(strcmp(found[i].mp, root) == 0 ? "unified" : path_basename(found[i].mp));
            h->mountpoint = found[i].mp;
            h->fstype = "cgroup2";
            h->controllers = NULL;
            h->ncontrollers = 0;
            h->options = "";
            v2_root |= strcmp(found[i].mp, root) == 0;
        } else {
            v1_hierarchy(h, found[i].mp, found[i].opts);
            any_v1 = true;
        }
        for (int j = 0; j < cg->nh; j++)
            if (strcmp(cg->h[j].name, h->name) == 0)
                return xcr_fail("two cgroup hierarchies named %s", h->name);
        cg->nh++;
    }
    if (v2_root) {
        cg->v2 = true;
        int k = 0;
        for (int i = 0; i < cg->nh; i++)
            if (is_v2(&cg->h[i]) && strcmp(cg->h[i].mountpoint, root) == 0)
                cg->h[k++] = cg->h[i];
        cg->nh = k;
    } else if (any_v1) {
        cg->v2 = false;
    } else {
        char *f = path_join(root, "cgroup.controllers");
        bool e = access(f, F_OK) == 0;
        free(f);
        if (!e)
            return xcr_fail("%s: no cgroup filesystem is mounted there", root);
        cg->v2 = true;
    }
    cg->path = np;
    cg->root = root;
    for (int i = 0; i < cg->nh; i++) {
        const char *rel = np;
        while (*rel == '/')
            rel++;
        cg->dirs[i] = path_join(cg->h[i].mountpoint, rel);
    }
    return 0;
}

/* --- the state record ---------------------------------------------------------- */

/* The (parent, child) directories from the mount point down to the leaf,
 * as one list of children. */
static int levels(const struct cgroup *cg, const struct hier *h, char ***parents, char ***children)
{
    char *rel = xstrdup(cg->path);
    /* strip "/" on both ends */
    char *s = rel;
    while (*s == '/')
        s++;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        s[--n] = 0;
    int count = 1 + count_char(s, '/');
    *parents = xmalloc(sizeof(char *) * count);
    *children = xmalloc(sizeof(char *) * count);
    char *parent = xstrdup(h->mountpoint);
    int k = 0;
    char *save = NULL;
    /* str.split("/") keeps empty parts; a normalized path has none */
    for (char *part = strtok_r(s, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
        char *child = path_join(parent, part);
        (*parents)[k] = parent;
        (*children)[k] = child;
        parent = child;
        k++;
    }
    free(rel);
    return k;
}

struct jval *cgroup_to_state(const struct cgroup *cg)
{
    struct jval *r = json_new(J_OBJ);
    json_set(r, "version", json_str(cg->v2 ? "v2" : "v1"));
    json_set(r, "path", json_str(cg->path));
    json_set(r, "root", json_str(cg->root));
    struct jval *hs = json_new(J_ARR);
    hs->v = xmalloc(sizeof(struct jval *) * (cg->nh + 1));
    for (int i = 0; i < cg->nh; i++) {
        const struct hier *h = &cg->h[i];
        struct jval *o = json_new(J_OBJ);
        json_set(o, "name", json_str(h->name));
        json_set(o, "mountpoint", json_str(h->mountpoint));
        json_set(o, "fstype", json_str(h->fstype));
        struct jval *cs = json_new(J_ARR);
        cs->v = xmalloc(sizeof(struct jval *) * (h->ncontrollers + 1));
        for (int j = 0; j < h->ncontrollers; j++)
            cs->v[cs->n++] = json_str(h->controllers[j]);
        json_set(o, "controllers", cs);
        json_set(o, "options", json_str(h->options));
        hs->v[hs->n++] = o;
    }
    json_set(r, "hierarchies", hs);
    struct jval *created = json_new(J_ARR);
    if (cg->created_known) {
        created->v = xmalloc(sizeof(struct jval *) * (cg->ncreated + 1));
        for (int i = 0; i < cg->ncreated; i++)
            created->v[created->n++] = json_str(cg->created[i]);
    } else {
        /* _missing(): what create() is about to make */
        for (int i = 0; i < cg->nh; i++) {
            char **par, **chi;
            int k = levels(cg, &cg->h[i], &par, &chi);
            for (int j = 0; j < k; j++)
                if (!isdir(chi[j])) {
                    created->v = xrealloc(created->v, sizeof(struct jval *) * (created->n + 1));
                    created->v[created->n++] = json_str(chi[j]);
                }
        }
    }
    json_set(r, "created", created);
    return r;
}

int cgroup_from_state(const struct jval *rec, struct cgroup *cg)
{
    memset(cg, 0, sizeof *cg);
    const char *keys[] = {"version", "path", "root", "hierarchies", "created"};
    if (rec == NULL || rec->t != J_OBJ || rec->n != 5)
        return xcr_fail("cgroup record");
    for (int i = 0; i < 5; i++)
        if (json_get(rec, keys[i]) == NULL)
            return xcr_fail("cgroup record: %s", keys[i]);
    struct jval *ver = json_get(rec, "version"), *path = json_get(rec, "path"), *root = json_get(rec, "root");
    struct jval *hs = json_get(rec, "hierarchies"), *created = json_get(rec, "created");
    if (!json_is_str(ver) || !json_is_str(path) || !json_is_str(root) || hs->t != J_ARR ||
        !json_is_str_array(created) || hs->n == 0 || hs->n > CG_MAX_HIER)
        return xcr_fail("cgroup record: types");
    if (strcmp(ver->s, "v1") != 0 && strcmp(ver->s, "v2") != 0)
        return xcr_fail("cgroup record: version");
    cg->v2 = strcmp(ver->s, "v2") == 0;
    cg->path = path->s;
    cg->root = root->s;
    for (size_t i = 0; i < hs->n; i++) {
        struct jval *o = hs->v[i];
        const char *hk[] = {"name", "mountpoint", "fstype", "controllers", "options"};
        if (o->t != J_OBJ || o->n != 5)
            return xcr_fail("cgroup record: hierarchy");
        for (int j = 0; j < 5; j++)
            if (json_get(o, hk[j]) == NULL)
                return xcr_fail("cgroup record: hierarchy %s", hk[j]);
        if (!json_is_str(json_get(o, "name")) || !json_is_str(json_get(o, "mountpoint")) ||
            !json_is_str(json_get(o, "fstype")) || !json_is_str(json_get(o, "options")) ||
            !json_is_str_array(json_get(o, "controllers")))
            return xcr_fail("cgroup record: hierarchy types");
        struct hier *h = &cg->h[cg->nh];
        h->name = json_get(o, "name")->s;
        h->mountpoint = json_get(o, "mountpoint")->s;
        h->fstype = json_get(o, "fstype")->s;
        h->options = json_get(o, "options")->s;
        struct jval *cs = json_get(o, "controllers");
        h->controllers = xmalloc(sizeof(char *) * (cs->n + 1));
        for (size_t j = 0; j < cs->n; j++)
            h->controllers[j] = cs->v[j]->s;
        h->ncontrollers = cs->n;
        for (int j = 0; j < cg->nh; j++)
            if (strcmp(cg->h[j].name, h->name) == 0)
                return xcr_fail("cgroup record: two hierarchies named %s", h->name);
        const char *rel = cg->path;
        while (*rel == '/')
            rel++;
        cg->dirs[cg->nh] = path_join(h->mountpoint, rel);
        cg->nh++;
    }
    cg->created = xmalloc(sizeof(char *) * (created->n + 1));
    for (size_t i = 0; i < created->n; i++)
        cg->created[cg->ncreated++] = created->v[i]->s;
    cg->created_known = true;
    return 0;
}

/* --- files ------------------------------------------------------------------------ */

/* cgroups._read: the file's text, stripped; NULL with errno. */
static char *cg_read(const char *path)
{
    char *t = read_file(path, 1 << 20, NULL);
    if (t == NULL)
        return NULL;
    char *s = t;
    while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    memmove(t, s, n);
    t[n] = 0;
    return t;
}

/* cgroups._write: one write(2); the Python runtime's message on failure. */
static int cg_write(const char *path, const char *value)
{
    if (write_file(path, value, strlen(value), 0, 0) < 0) {
        char *r = py_repr(value);
        xcr_fail_errno("%s: cannot write %s", path, r);
        free(r);
        return -1;
    }
    return 0;
}

static int cg_set(const char *dir, const char *file, long long v)
{
    char *p = path_join(dir, file);
    char num[32];
    snprintf(num, sizeof num, "%lld", v);
    int rc = cg_write(p, num);
    free(p);
    return rc;
}

static int cg_put(const char *dir, const char *file, const char *v)
{
    char *p = path_join(dir, file);
    int rc = cg_write(p, v);
    free(p);
    return rc;
}

/* --- create ------------------------------------------------------------------------ */

static int cg_mkdir(struct cgroup *cg, const char *d)
{
    if (mkdir(d, 0755) < 0) {
        if (errno == EEXIST)
            return 0;
        return xcr_fail_errno("%s: cannot create cgroup", d);
    }
    bool seen = false;
    for (int i = 0; i < cg->ncreated; i++)
        seen |= strcmp(cg->created[i], d) == 0;
    if (!seen) {
        cg->created = xrealloc(cg->created, sizeof(char *) * (cg->ncreated + 1));
        cg->created[cg->ncreated++] = xstrdup(d);
    }
    return 0;
}

static void enable_v2(const char *d)
{
    char *f1 = path_join(d, "cgroup.controllers"), *f2 = path_join(d, "cgroup.subtree_control");
    char *have = cg_read(f1), *on = cg_read(f2);
    if (have && on) {
        for (size_t i = 0; i < sizeof V2_CONTROLLERS / sizeof *V2_CONTROLLERS; i++) {
            const char *c = V2_CONTROLLERS[i];
            char pat[32];
            snprintf(pat, sizeof pat, " %s ", c);
            char *h = xasprintf(" %s ", have), *o = xasprintf(" %s ", on);
            for (char *p = h; *p; p++)
                if (*p == '\n' || *p == '\t')
                    *p = ' ';
            for (char *p = o; *p; p++)
                if (*p == '\n' || *p == '\t')
                    *p = ' ';
            if (strstr(h, pat) && !strstr(o, pat)) {
                char *plus = xasprintf("+%s", c);
                cg_write(f2, plus); /* a refusal leaves it off, as Python */
                free(plus);
            }
            free(h);
            free(o);
        }
    }
    free(have);
    free(on);
    free(f1);
    free(f2);
}

int cgroup_create(struct cgroup *cg)
{
    cg->created_known = true;
    for (int i = 0; i < cg->nh; i++) {
        struct hier *h = &cg->h[i];
        char **par, **chi;
        int k = levels(cg, h, &par, &chi);
        for (int j = 0; j < k; j++) {
            if (is_v2(h)) {
                char *f1 = path_join(par[j], "cgroup.controllers");
                bool ok = access(f1, R_OK) == 0;
                free(f1);
                if (!ok)
                    return xcr_fail_errno("%s: cannot read the cgroup's controllers", par[j]);
                enable_v2(par[j]);
                if (cg_mkdir(cg, chi[j]) < 0)
                    return -1;
            } else {
                if (cg_mkdir(cg, chi[j]) < 0)
                    return -1;
                if (has_controller(h, "cpuset")) {
                    const char *names[] = {"cpuset.cpus", "cpuset.mems"};
                    for (int m = 0; m < 2; m++) {
                        char *cf = path_join(chi[j], names[m]), *pf = path_join(par[j], names[m]);
                        char *cur = cg_read(cf);
                        if (cur == NULL)
                            return xcr_fail_errno("%s", cf);
                        if (*cur == 0) {
                            char *pv = cg_read(pf);
                            if (pv == NULL)
                                return xcr_fail_errno("%s", pf);
                            if (cg_write(cf, pv) < 0)
                                return -1;
                            free(pv);
                        }
                        free(cur);
                        free(cf);
                        free(pf);
                    }
                }
            }
        }
    }
    return 0;
}

/* --- apply --------------------------------------------------------------------------- */

static const char *unified_dir(const struct cgroup *cg)
{
    for (int i = 0; i < cg->nh; i++)
        if (is_v2(&cg->h[i]))
            return cg->dirs[i];
    return NULL;
}

/* Cgroup._dir(controller) */
static const char *ctl_dir(const struct cgroup *cg, const char *controller, const char *field)
{
    if (!cg->v2) {
        for (int i = 0; i < cg->nh; i++)
            if (!is_v2(&cg->h[i]) && has_controller(&cg->h[i], controller))
                return cg->dirs[i];
        xcr_fail("%s: needs the %s cgroup controller, which is not mounted on this host", field, controller);
        return NULL;
    }
    const char *u = NULL;
    for (int i = 0; i < cg->nh; i++)
        if (strcmp(cg->h[i].name, "unified") == 0)
            u = cg->dirs[i];
    if (u == NULL) {
        xcr_fail("%s: no unified hierarchy", field);
        return NULL;
    }
    char *f = path_join(u, "cgroup.controllers");
    char *have = cg_read(f);
    free(f);
    bool ok = false;
    if (have) {
        char *save = NULL;
        for (char *t = strtok_r(have, " \n\t", &save); t; t = strtok_r(NULL, " \n\t", &save))
            ok |= strcmp(t, controller) == 0;
        free(have);
    }
    if (!ok) {
        xcr_fail("%s: needs the %s cgroup controller, which is not enabled for %s", field, controller, u);
        return NULL;
    }
    return u;
}

static bool unset(bool has, long long v)
{
    return !has || v == 0;
}

static int apply_cpu(struct cgroup *cg, const struct resources *r)
{
    const char *f = "linux.resources.cpu.";
    const char *d;
    char field[96];
    const char *vals[2] = {r->cpus, r->mems};
    const char *keys[2] = {"cpus", "mems"};
    for (int i = 0; i < 2; i++) {
        if (vals[i] && *vals[i]) {
            snprintf(field, sizeof field, "%s%s", f, keys[i]);
            if ((d = ctl_dir(cg, "cpuset", field)) == NULL)
                return -1;
            char name[32];
            snprintf(name, sizeof name, "cpuset.%s", keys[i]);
            if (cg_put(d, name, vals[i]) < 0)
                return -1;
        }
    }
    if (!cg->v2) {
        if (!unset(r->has_shares, r->shares)) {
            if ((d = ctl_dir(cg, "cpu", "linux.resources.cpu.shares")) == NULL || cg_set(d, "cpu.shares", r->shares) < 0)
                return -1;
        }
        if (!unset(r->has_period, r->period)) {
            if ((d = ctl_dir(cg, "cpu", "linux.resources.cpu.period")) == NULL)
                return -1;
            if (cg_set(d, "cpu.cfs_period_us", r->period) < 0) {
                if (unset(r->has_quota, r->quota))
                    return -1;
                if (cg_set(d, "cpu.cfs_quota_us", r->quota) < 0 || cg_set(d, "cpu.cfs_period_us", r->period) < 0)
                    return -1;
            }
        }
        if (!unset(r->has_quota, r->quota)) {
            if ((d = ctl_dir(cg, "cpu", "linux.resources.cpu.quota")) == NULL ||
                cg_set(d, "cpu.cfs_quota_us", r->quota) < 0)
                return -1;
        }
        return 0;
    }
    if (!unset(r->has_shares, r->shares)) {
        long long s = r->shares < 2 ? 2 : r->shares > 262144 ? 262144 : r->shares;
        long long w = 1 + ((s - 2) * 9999) / 262142;
        if ((d = ctl_dir(cg, "cpu", "linux.resources.cpu.shares")) == NULL || cg_set(d, "cpu.weight", w) < 0)
            return -1;
    }
    if (!unset(r->has_quota, r->quota) || !unset(r->has_period, r->period)) {
        bool q = !unset(r->has_quota, r->quota);
        if ((d = ctl_dir(cg, "cpu", q ? "linux.resources.cpu.quota" : "linux.resources.cpu.period")) == NULL)
            return -1;
        char value[64];
        if (r->has_quota && r->quota > 0)
            snprintf(value, sizeof value, "%lld", r->quota);
        else
            snprintf(value, sizeof value, "max");
        if (!unset(r->has_period, r->period))
            snprintf(value + strlen(value), sizeof value - strlen(value), " %lld", r->period);
        if (cg_put(d, "cpu.max", value) < 0)
            return -1;
    }
    return 0;
}

static int limits_v1(const char *d, bool has_limit, long long limit, bool has_swap, long long swap)
{
    char *lim = path_join(d, "memory.limit_in_bytes"), *sw = path_join(d, "memory.memsw.limit_in_bytes");
    int rc = 0;
    if (!has_swap || swap == 0 || access(sw, F_OK) != 0) {
        if (has_limit)
            rc = cg_set(d, "memory.limit_in_bytes", limit);
    } else {
        char *cur = cg_read(lim);
        long long current = 0;
        if (cur && strcmp(cur, "max") != 0)
            current = strtoll(cur, NULL, 10);
        free(cur);
        if (swap == -1 || current < swap) {
            rc = cg_set(d, "memory.memsw.limit_in_bytes", swap);
            if (rc == 0 && has_limit)
                rc = cg_set(d, "memory.limit_in_bytes", limit);
        } else {
            if (has_limit)
                rc = cg_set(d, "memory.limit_in_bytes", limit);
            if (rc == 0)
                rc = cg_set(d, "memory.memsw.limit_in_bytes", swap);
        }
    }
    free(lim);
    free(sw);
    return rc;
}

static int apply_memory(struct cgroup *cg, const struct resources *r)
{
    const char *f = "linux.resources.memory.";
    const char *d;
    char field[96];
    if (!cg->v2) {
        bool has_swap = r->has_swap;
        long long swap = r->swap;
        if (r->has_limit && r->limit == -1 && unset(has_swap, swap)) {
            has_swap = true;
            swap = -1;
        }
        if (!unset(r->has_limit, r->limit)) {
            snprintf(field, sizeof field, "%slimit", f);
            if ((d = ctl_dir(cg, "memory", field)) == NULL || limits_v1(d, true, r->limit, has_swap, swap) < 0)
                return -1;
        } else if (!unset(has_swap, swap)) {
            snprintf(field, sizeof field, "%sswap", f);
            if ((d = ctl_dir(cg, "memory", field)) == NULL || limits_v1(d, false, 0, has_swap, swap) < 0)
                return -1;
        }
        if (!unset(r->has_reservation, r->reservation)) {
            snprintf(field, sizeof field, "%sreservation", f);
            if ((d = ctl_dir(cg, "memory", field)) == NULL ||
                cg_set(d, "memory.soft_limit_in_bytes", r->reservation) < 0)
                return -1;
        }
        return 0;
    }
    if (!unset(r->has_limit, r->limit)) {
        snprintf(field, sizeof field, "%slimit", f);
        if ((d = ctl_dir(cg, "memory", field)) == NULL)
            return -1;
        if (r->limit == -1 ? cg_put(d, "memory.max", "max") : cg_set(d, "memory.max", r->limit))
            return -1;
    }
    if (!unset(r->has_swap, r->swap)) {
        snprintf(field, sizeof field, "%sswap", f);
        if ((d = ctl_dir(cg, "memory", field)) == NULL)
            return -1;
        char *sf = path_join(d, "memory.swap.max");
        bool exists = access(sf, F_OK) == 0;
        free(sf);
        if (exists) {
            if (r->swap == -1) {
                if (cg_put(d, "memory.swap.max", "max") < 0)
                    return -1;
            } else {
                if (unset(r->has_limit, r->limit) || r->limit == -1)
                    return xcr_fail("linux.resources.memory.swap: cannot limit swap without a memory limit on cgroup v2");
                if (r->swap < r->limit)
                    return xcr_fail("linux.resources.memory.swap: below the memory limit");
                if (cg_set(d, "memory.swap.max", r->swap - r->limit) < 0)
                    return -1;
            }
        }
    }
    if (!unset(r->has_reservation, r->reservation)) {
        snprintf(field, sizeof field, "%sreservation", f);
        if ((d = ctl_dir(cg, "memory", field)) == NULL)
            return -1;
        if (r->reservation == -1 ? cg_put(d, "memory.low", "max") : cg_set(d, "memory.low", r->reservation))
            return -1;
    }
    return 0;
}

static void device_num(struct sbuf *b, const struct jval *v)
{
    long long x;
    if (v == NULL || v->t == J_NULL || (json_int_in(v, -1, -1, &x)))
        sb_putc(b, '*');
    else
        sb_puts(b, v->s);
}

static int apply_devices(struct cgroup *cg, const struct jval *rules)
{
    if (cg->v2)
        return 0;
    const char *d = ctl_dir(cg, "devices", "linux.resources.devices");
    if (d == NULL || cg_put(d, "devices.deny", "a") < 0)
        return -1;
    for (size_t i = 0; i < rules->n; i++) {
        const struct jval *r = rules->v[i];
        struct sbuf b = {0};
        const struct jval *t = json_opt(r, "type"), *a = json_opt(r, "access");
        sb_puts(&b, (t && t->n) ? t->s : "a");
        sb_putc(&b, ' ');
        device_num(&b, json_get(r, "major"));
        sb_putc(&b, ':');
        device_num(&b, json_get(r, "minor"));
        sb_putc(&b, ' ');
        sb_puts(&b, (a && a->n) ? a->s : "rwm");
        const struct jval *allow = json_get(r, "allow");
        int rc = cg_put(d, allow->b ? "devices.allow" : "devices.deny", b.s);
        free(b.s);
        if (rc < 0)
            return -1;
    }
    return 0;
}

int cgroup_apply(struct cgroup *cg, const struct resources *r)
{
    if (r->cpu && apply_cpu(cg, r) < 0)
        return -1;
    if (r->memory && apply_memory(cg, r) < 0)
        return -1;
    if (r->pids && r->has_pids_limit) {
        const char *d = ctl_dir(cg, "pids", "linux.resources.pids.limit");
        if (d == NULL)
            return -1;
        if (r->pids_limit == 0 || r->pids_limit == -1 ? cg_put(d, "pids.max", "max")
                                                       : cg_set(d, "pids.max", r->pids_limit))
            return -1;
    }
    if (r->devices && r->devices->n && apply_devices(cg, r->devices) < 0)
        return -1;
    return 0;
}

int cgroup_add(struct cgroup *cg, pid_t pid)
{
    for (int i = 0; i < cg->nh; i++)
        if (cg_set(cg->dirs[i], "cgroup.procs", pid) < 0)
            return -1;
    return 0;
}

const char *cgroup_v2_dir(const struct cgroup *cg)
{
    for (int i = 0; i < cg->nh; i++)
        if (is_v2(&cg->h[i]))
            return cg->dirs[i];
    return NULL;
}

/* Moving a process into a cgroup by its pid (cgroup.procs) takes the
 * kernel's global cgroup_threadgroup_rwsem for writing, whose first writer
 * after a quiet spell waits for an RCU grace period: 5-20 ms here, paid by
 * the first container started after any pause.  A thread that moves only
 * itself ("0" to a v1 hierarchy's tasks file) takes no such lock, and
 * clone3(CLONE_INTO_CGROUP) puts a new process into a v2 cgroup as it is
 * made (only the lock's cheap read side).  The init, single-threaded, joins
 * its v1 cgroups itself; its v2 one it was cloned into, or joins by
 * cgroup.procs where clone3 could not do that (the lock's slow path). */
int cgroup_join_self(const struct cgroup *cg, bool in_v2)
{
    for (int i = 0; i < cg->nh; i++) {
        if (!is_v2(&cg->h[i])) {
            if (cg_put(cg->dirs[i], "tasks", "0") < 0)
                return -1;
        } else if (!in_v2 && cg_put(cg->dirs[i], "cgroup.procs", "0") < 0) {
            return -1;
        }
    }
    return 0;
}

/* --- processes, kill ----------------------------------------------------------------- */

static void procs_walk(const char *dir, pid_t **pids, size_t *n)
{
    char *f = path_join(dir, "cgroup.procs");
    char *t = read_file(f, 1 << 24, NULL);
    free(f);
    if (t) {
        char *save = NULL;
        for (char *tok = strtok_r(t, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
            pid_t p = atoi(tok);
            bool seen = false;
            for (size_t i = 0; i < *n; i++)
                seen |= (*pids)[i] == p;
            if (!seen) {
                *pids = xrealloc(*pids, sizeof(pid_t) * (*n + 1));
                (*pids)[(*n)++] = p;
            }
        }
        free(t);
    }
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *sub = path_join(dir, e->d_name);
        procs_walk(sub, pids, n);
        free(sub);
    }
    closedir(d);
}

/* Cgroup._procs_dir(): pids, then freezer, then the cgroup2 tree, then any. */
static const char *procs_dir(const struct cgroup *cg)
{
    for (int rank = 0; rank < 4; rank++)
        for (int i = 0; i < cg->nh; i++) {
            const struct hier *h = &cg->h[i];
            int r = has_controller(h, "pids") ? 0 : has_controller(h, "freezer") ? 1 : is_v2(h) ? 2 : 3;
            if (r == rank && isdir(cg->dirs[i]))
                return cg->dirs[i];
        }
    return NULL;
}

char *cgroup_kill_file(const struct cgroup *cg)
{
    const char *u = unified_dir(cg);
    if (u == NULL)
        return NULL;
    char *f = path_join(u, "cgroup.kill");
    if (access(f, F_OK) != 0) {
        free(f);
        return NULL;
    }
    return f;
}

/* Cgroup._freezer(): the v1 freezer directory, or the unified one with
 * cgroup.freeze; NULL with the Python runtime's message when neither. */
static const char *freezer(const struct cgroup *cg, bool *v1)
{
    if (!cg->v2) {
        for (int i = 0; i < cg->nh; i++)
            if (!is_v2(&cg->h[i]) && has_controller(&cg->h[i], "freezer")) {
                *v1 = true;
                return cg->dirs[i];
            }
    }
    const char *u = unified_dir(cg);
    if (u) {
        char *f = path_join(u, "cgroup.freeze");
        bool ok = access(f, F_OK) == 0;
        free(f);
        if (ok) {
            *v1 = false;
            return u;
        }
    }
    xcr_fail("cgroup %s: no freezer (no v1 freezer hierarchy and no cgroup v2 cgroup.freeze)", cg->path);
    return NULL;
}

/* Cgroup._frozen_state: 1 frozen, 0 thawed, -1 in between, -2 unreadable. */
static int frozen_state(bool v1, const char *d)
{
    char *f = path_join(d, v1 ? "freezer.state" : "cgroup.events");
    char *t = cg_read(f);
    free(f);
    if (t == NULL)
        return -2;
    int r = -1;
    if (v1) {
        r = strcmp(t, "FROZEN") == 0 ? 1 : strcmp(t, "THAWED") == 0 ? 0 : -1;
    } else {
        char *save = NULL;
        for (char *line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
            if (strncmp(line, "frozen ", 7) == 0)
                r = strcmp(line + 7, "1") == 0;
    }
    free(t);
    return r;
}

static bool is_frozen(const struct cgroup *cg)
{
    bool v1;
    const char *d = freezer(cg, &v1);
    return d && frozen_state(v1, d) == 1;
}

/* Cgroup._set_frozen: -1 with the Python runtime's message. */
static int set_frozen(const struct cgroup *cg, bool frozen, double timeout)
{
    bool v1;
    const char *d = freezer(cg, &v1);
    if (d == NULL)
        return -1;
    char *f = path_join(d, v1 ? "freezer.state" : "cgroup.freeze");
    const char *want = v1 ? (frozen ? "FROZEN" : "THAWED") : (frozen ? "1" : "0");
    double deadline = now_s() + timeout, delay = 0.01;
    int rc = 0;
    for (;;) {
        if (cg_write(f, want) < 0) {
            rc = -1;
            break;
        }
        int st = frozen_state(v1, d);
        if (st == -2) {
            rc = xcr_fail_errno("%s", f);
            break;
        }
        if (st == (int)frozen)
            break;
        if (now_s() > deadline) {
            if (frozen)
                cg_write(f, v1 ? "THAWED" : "0");
            rc = xcr_fail("%s: the cgroup did not become %s within %.1fs", f, want, timeout);
            break;
        }
        struct timespec ts = {0, (long)(delay * 1e9)};
        nanosleep(&ts, NULL);
        delay = delay * 2 > 0.2 ? 0.2 : delay * 2;
    }
    free(f);
    return rc;
}

int cgroup_thaw(const struct cgroup *cg)
{
    return set_frozen(cg, false, 10.0);
}

static void signal_all(const struct cgroup *cg, int sig)
{
    const char *d = procs_dir(cg);
    if (d) {
        pid_t *pids = NULL;
        size_t n = 0;
        procs_walk(d, &pids, &n);
        for (size_t i = 0; i < n; i++)
            kill(pids[i], sig);
        free(pids);
    }
}

int cgroup_kill_all(const struct cgroup *cg, int sig)
{
    if (sig == SIGKILL) {
        char *f = cgroup_kill_file(cg);
        if (f != NULL) {
            int rc = cg_write(f, "1");
            free(f);
            if (rc < 0)
                return -1;
            signal_all(cg, sig);
            return 0;
        }
    }
    bool froze = false;
    if (!is_frozen(cg) && set_frozen(cg, true, 2.0) == 0)
        froze = true;
    signal_all(cg, sig);
    return froze ? set_frozen(cg, false, 10.0) : 0;
}

/* --- destroy -------------------------------------------------------------------------- */

static bool rmdir_retry(const char *d, double deadline)
{
    double delay = 0.01;
    for (;;) {
        if (rmdir(d) == 0 || errno == ENOENT)
            return true;
        if ((errno != EBUSY && errno != ENOTEMPTY) || now_s() > deadline)
            return false;
        struct timespec ts = {0, (long)(delay * 1e9)};
        nanosleep(&ts, NULL);
        delay = delay * 2 > 0.1 ? 0.1 : delay * 2;
    }
}

/* os.walk(d, topdown=False) + rmdir: the directories left. */
static void remove_tree(const char *d, double deadline, struct sbuf *left)
{
    DIR *dir = opendir(d);
    if (dir == NULL)
        return; /* os.walk yields nothing for a missing directory */
    struct dirent *e;
    char **subs = NULL;
    size_t n = 0;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        subs = xrealloc(subs, sizeof(char *) * (n + 1));
        subs[n++] = path_join(d, e->d_name);
    }
    closedir(dir);
    for (size_t i = 0; i < n; i++) {
        remove_tree(subs[i], deadline, left);
        free(subs[i]);
    }
    free(subs);
    if (!rmdir_retry(d, deadline)) {
        if (left->len)
            sb_puts(left, ", ");
        sb_puts(left, d);
    }
}

int cgroup_destroy(struct cgroup *cg, double timeout)
{
    double deadline = now_s() + timeout;
    struct sbuf left = {0};
    for (int i = 0; i < cg->nh; i++)
        remove_tree(cg->dirs[i], deadline, &left);
    if (left.len) {
        xcr_fail("cannot remove cgroup(s) %s: still busy after %.1fs", left.s, timeout);
        free(left.s);
        return -1;
    }
    /* the ancestors create() made, deepest first (a stable sort) */
    int n = cg->ncreated;
    char **order = xmalloc(sizeof(char *) * (n + 1));
    memcpy(order, cg->created, sizeof(char *) * n);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && count_char(order[j], '/') > count_char(order[j - 1], '/'); j--) {
            char *t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int i = 0; i < n; i++) {
        bool leaf = false;
        for (int j = 0; j < cg->nh; j++)
            leaf |= strcmp(order[i], cg->dirs[j]) == 0;
        if (!leaf)
            rmdir(order[i]);
    }
    free(order);
    cg->ncreated = 0;
    return 0;
}
