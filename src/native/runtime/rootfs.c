/*
 * The container's filesystem view, built in its init inside its mount
 * namespace: xcontainers.rootfs step by step (the same order, flags and
 * remounts), with xcontainers.securejoin for every path inside the rootfs.
 */
#include "rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "mountflags.h"

#define MAX_LINKS 255

/* --- securejoin -------------------------------------------------------------------- */

struct parts {
    char **p;
    int n, cap;
};

static void parts_push(struct parts *ps, const char *s, size_t n)
{
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 16;
        ps->p = xrealloc(ps->p, sizeof(char *) * ps->cap);
    }
    char *c = xmalloc(n + 1);
    memcpy(c, s, n);
    c[n] = 0;
    ps->p[ps->n++] = c;
}

/* The components of s but "" and ".". */
static void split_path(const char *s, struct parts *out)
{
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n && !(n == 1 && s[0] == '.'))
            parts_push(out, s, n);
        s += n;
        if (*s == '/')
            s++;
    }
}

static char *join_parts(const char *root, struct parts *ps, int n, const char *extra)
{
    struct sbuf b = {0};
    sb_puts(&b, root);
    for (int i = 0; i < n; i++) {
        if (b.len == 0 || b.s[b.len - 1] != '/')
            sb_putc(&b, '/');
        sb_puts(&b, ps->p[i]);
    }
    if (extra) {
        if (b.len == 0 || b.s[b.len - 1] != '/')
            sb_putc(&b, '/');
        sb_puts(&b, extra);
    }
    return b.s;
}

int secure_join(const char *root_in, const char *unsafe, char **out)
{
    char *root = path_abspath(root_in);
    struct parts todo = {0}, resolved = {0};
    split_path(unsafe, &todo);
    int head = 0, links = 0;
    /* todo is consumed from `head`; a link's target is put in front */
    while (head < todo.n) {
        char *part = todo.p[head++];
        if (strcmp(part, "..") == 0) {
            if (resolved.n)
                free(resolved.p[--resolved.n]);
            continue;
        }
        char *cand = join_parts(root, &resolved, resolved.n, part);
        char target[4096];
        ssize_t n = readlink(cand, target, sizeof target - 1);
        free(cand);
        if (n < 0) {
            if (errno == EINVAL || errno == ENOENT || errno == ENOTDIR) {
                parts_push(&resolved, part, strlen(part));
                continue;
            }
            return xcr_fail_errno("%s", unsafe);
        }
        target[n] = 0;
        if (++links > MAX_LINKS) {
            errno = ELOOP;
            return xcr_fail_errno("%s", unsafe);
        }
        if (target[0] == '/') {
            while (resolved.n)
                free(resolved.p[--resolved.n]);
        }
        struct parts t = {0};
        split_path(target, &t);
        struct parts rest = {0};
        for (int i = 0; i < t.n; i++)
            parts_push(&rest, t.p[i], strlen(t.p[i]));
        for (int i = head; i < todo.n; i++)
            parts_push(&rest, todo.p[i], strlen(todo.p[i]));
        todo = rest;
        head = 0;
    }
    *out = join_parts(root, &resolved, resolved.n, NULL);
    free(root);
    return 0;
}

/* --- helpers ---------------------------------------------------------------------------- */

static int xmount(const char *src, const char *dst, const char *type, unsigned long flags, const char *data)
{
    return mount(src, dst, type, flags, data);
}

/* rootfs._mkdir_p: makedirs, an existing non-directory let be. */
static int mkdir_p(const char *path, mode_t mode)
{
    if (makedirs(path, mode) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* rootfs._statvfs_flags */
static int statvfs_flags(const char *path, unsigned long *out)
{
    struct statvfs sv;
    if (statvfs(path, &sv) < 0)
        return -1;
    unsigned long f = sv.f_flag, r = 0;
    if (f & 1)
        r |= XMS_RDONLY;
    if (f & 2)
        r |= XMS_NOSUID;
    if (f & 4)
        r |= XMS_NODEV;
    if (f & 8)
        r |= XMS_NOEXEC;
    if (f & 1024)
        r |= XMS_NOATIME;
    if (f & 2048)
        r |= XMS_NODIRATIME;
    if (f & 4096)
        r |= XMS_RELATIME;
    *out = r;
    return 0;
}

/* rootfs._ensure_target */
static int ensure_target(const char *dest, bool is_dir)
{
    if (lexists(dest))
        return 0;
    if (is_dir)
        return mkdir_p(dest, 0755);
    char *dir = path_dirname(dest);
    int rc = mkdir_p(dir, 0755);
    free(dir);
    if (rc < 0)
        return -1;
    int fd = open(dest, O_CREAT | O_WRONLY | O_CLOEXEC, 0755);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

/* --- mounts -------------------------------------------------------------------------------- */

static int mount_cgroup(const struct spec *sp, const char *dest, unsigned long flags, const struct cgroup *cg)
{
    if (mkdir_p(dest, 0755) < 0)
        return -1;
    bool own_ns = sp->has_cgroupns;
    if (cg->v2) {
        const char *host = NULL;
        for (int i = 0; i < cg->nh; i++)
            if (strcmp(cg->h[i].name, "unified") == 0)
                host = cg->dirs[i];
        if (own_ns)
            return xmount("cgroup2", dest, "cgroup2", flags, NULL);
        if (host == NULL) {
            errno = ENOENT;
            return -1;
        }
        if (xmount(host, dest, NULL, XMS_BIND | XMS_REC, NULL) < 0)
            return -1;
        return xmount(NULL, dest, NULL, XMS_BIND | XMS_REMOUNT | flags, NULL);
    }
    if (xmount("tmpfs", dest, "tmpfs", XMS_NOSUID | XMS_NODEV | XMS_NOEXEC, "mode=755") < 0)
        return -1;
    for (int i = 0; i < cg->nh; i++) {
        const struct hier *h = &cg->h[i];
        if (*h->options == 0)
            continue; /* the cgroup2 tree of a hybrid host: left out, as runc does */
        char *sub = path_join(dest, h->name);
        int rc = mkdir_p(sub, 0755);
        if (rc == 0) {
            if (own_ns)
                rc = xmount("cgroup", sub, "cgroup", flags, h->options);
            else if ((rc = xmount(cg->dirs[i], sub, NULL, XMS_BIND | XMS_REC, NULL)) == 0)
                rc = xmount(NULL, sub, NULL, XMS_BIND | XMS_REMOUNT | flags, NULL);
        }
        free(sub);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int mount_one(const struct spec *sp, const struct mountent *m, const struct cgroup *cg)
{
    char *dest;
    if (secure_join(sp->root_path, m->dest, &dest) < 0)
        return -1;
    int rc = 0;
    if (m->bind) {
        char *src = m->source ? xstrdup(m->source) : xstrdup("");
        if (src[0] != '/') {
            char *j = path_join(sp->bundle, src);
            free(src);
            src = j;
        }
        struct stat st;
        if (stat(src, &st) < 0) {
            xcr_fail_errno("mount %s: bind source %s", m->dest, src);
            free(src);
            return -1;
        }
        if (ensure_target(dest, S_ISDIR(st.st_mode)) < 0 ||
            xmount(src, dest, NULL, XMS_BIND | (m->flags & XMS_REC), NULL) < 0) {
            rc = -1;
        } else {
            unsigned long extra = m->flags & ~(XMS_BIND | XMS_REC | XMS_REMOUNT), keep;
            if (extra) {
                if (statvfs_flags(dest, &keep) < 0 ||
                    xmount(NULL, dest, NULL, XMS_BIND | XMS_REMOUNT | extra | (keep & (XMS_NOSUID | XMS_NODEV | XMS_NOEXEC)), NULL) < 0)
                    rc = -1;
            }
        }
        free(src);
    } else if (strcmp(m->type, "cgroup") == 0 || strcmp(m->type, "cgroup2") == 0) {
        rc = mount_cgroup(sp, dest, m->flags, cg);
    } else {
        rc = mkdir_p(dest, 0755);
        if (rc == 0)
            rc = xmount(m->source && *m->source ? m->source : m->type, dest, m->type, m->flags, m->data);
    }
    if (rc == 0 && m->prop)
        rc = xmount(NULL, dest, NULL, m->prop, NULL);
    free(dest);
    if (rc < 0)
        return xcr_fail_errno("mount %s", m->dest);
    return 0;
}

static int create_devices(const struct spec *sp)
{
    mode_t old = umask(0);
    int rc = 0;
    for (int i = 0; i < sp->ndevices && rc == 0; i++) {
        const struct device *d = &sp->devices[i];
        char *dest;
        if (secure_join(sp->root_path, d->path, &dest) < 0) {
            umask(old);
            return -1;
        }
        char *dir = path_dirname(dest);
        if (mkdir_p(dir, 0755) < 0)
            rc = -1;
        free(dir);
        mode_t kind = d->type == 'b' ? S_IFBLK : d->type == 'p' ? S_IFIFO : S_IFCHR;
        if (rc == 0 && unlink(dest) < 0 && errno != ENOENT)
            rc = -1;
        if (rc == 0 && mknod(dest, kind | (d->mode & 07777), makedev(d->major, d->minor)) < 0)
            rc = -1;
        if (rc == 0 && chown(dest, d->uid, d->gid) < 0)
            rc = -1;
        free(dest);
    }
    umask(old);
    if (rc < 0)
        return xcr_fail_errno("creating devices");
    static const char *const links[][2] = {
        {"/proc/self/fd", "/dev/fd"},
        {"/proc/self/fd/0", "/dev/stdin"},
        {"/proc/self/fd/1", "/dev/stdout"},
        {"/proc/self/fd/2", "/dev/stderr"},
    };
    for (int i = 0; i < 4; i++) {
        char *dest;
        if (secure_join(sp->root_path, links[i][1], &dest) < 0)
            return -1;
        if (!lexists(dest) && symlink(links[i][0], dest) < 0)
            rc = xcr_fail_errno("%s", dest);
        free(dest);
        if (rc < 0)
            return -1;
    }
    char *ptmx, *pts, *proc, *core;
    if (secure_join(sp->root_path, "/dev/ptmx", &ptmx) < 0 || secure_join(sp->root_path, "/dev/pts", &pts) < 0)
        return -1;
    if (isdir(pts)) {
        if (lexists(ptmx) && unlink(ptmx) < 0)
            return xcr_fail_errno("%s", ptmx);
        if (symlink("pts/ptmx", ptmx) < 0)
            return xcr_fail_errno("%s", ptmx);
    }
    if (secure_join(sp->root_path, "/proc", &proc) < 0 || secure_join(sp->root_path, "/dev/core", &core) < 0)
        return -1;
    if (isdir(proc) && !lexists(core) && symlink("/proc/kcore", core) < 0)
        return xcr_fail_errno("%s", core);
    return 0;
}

static unsigned long propagation(const char *name, unsigned long dflt)
{
    for (int i = 0; name && PROPAGATION[i].name; i++)
        if (strcmp(name, PROPAGATION[i].name) == 0)
            return PROPAGATION[i].flags;
    return dflt;
}

int rootfs_prepare(const struct spec *sp, const struct cgroup *cg)
{
    unsigned long prop = propagation(sp->rootfs_propagation ? sp->rootfs_propagation : "rslave",
                                     XMS_SLAVE | XMS_REC);
    if (xmount(NULL, "/", NULL, prop, NULL) < 0 || xmount(sp->root_path, sp->root_path, NULL, XMS_BIND | XMS_REC, NULL) < 0)
        return xcr_fail_errno("rootfs %s", sp->root_path);
    for (int i = 0; i < sp->nmounts; i++)
        if (mount_one(sp, &sp->mounts[i], cg) < 0)
            return -1;
    if (!sp->dev_is_bind && create_devices(sp) < 0)
        return -1;
    return 0;
}

int rootfs_pivot(const struct spec *sp, bool no_pivot)
{
    const char *root = sp->root_path;
    if (chdir(root) < 0)
        return xcr_fail_errno("pivot_root");
    if (no_pivot) {
        if (xmount(root, "/", NULL, XMS_MOVE, NULL) < 0 || chroot(".") < 0)
            return xcr_fail_errno("pivot_root");
    } else {
        if (syscall(SYS_pivot_root, ".", ".") < 0 || xmount(NULL, ".", NULL, XMS_SLAVE | XMS_REC, NULL) < 0 ||
            umount2(".", MNT_DETACH) < 0)
            return xcr_fail_errno("pivot_root");
    }
    if (chdir("/") < 0)
        return xcr_fail_errno("pivot_root");
    const char *rp = sp->rootfs_propagation;
    if (rp && (strcmp(rp, "shared") == 0 || strcmp(rp, "rshared") == 0 || strcmp(rp, "private") == 0 ||
               strcmp(rp, "rprivate") == 0 || strcmp(rp, "unbindable") == 0 || strcmp(rp, "runbindable") == 0))
        if (xmount(NULL, "/", NULL, propagation(rp, 0), NULL) < 0)
            return xcr_fail_errno("%s", "/");
    return 0;
}

static int mask_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return xcr_fail_errno("%s", path);
    }
    int rc = S_ISDIR(st.st_mode) ? xmount("tmpfs", path, "tmpfs", XMS_RDONLY, NULL)
                                 : xmount("/dev/null", path, NULL, XMS_BIND, NULL);
    if (rc < 0)
        return xcr_fail_errno("masking %s", path);
    return 0;
}

static int readonly_path(const char *path)
{
    if (xmount(path, path, NULL, XMS_BIND | XMS_REC, NULL) < 0) {
        if (errno == ENOENT)
            return 0;
        return xcr_fail_errno("read-only path %s", path);
    }
    unsigned long flags;
    if (statvfs_flags(path, &flags) < 0 ||
        xmount(NULL, path, NULL, XMS_BIND | XMS_REMOUNT | XMS_RDONLY | XMS_REC | flags, NULL) < 0)
        return xcr_fail_errno("read-only path %s", path);
    return 0;
}

int rootfs_finish(const struct spec *sp)
{
    for (int i = 0; i < sp->nsysctl; i++) {
        char *path = xasprintf("/proc/sys/%s", sp->sysctl_keys[i]);
        for (char *p = path + 10; *p; p++)
            if (*p == '.')
                *p = '/';
        int rc = write_file(path, sp->sysctl_vals[i], strlen(sp->sysctl_vals[i]), O_CREAT | O_TRUNC, 0666);
        free(path);
        if (rc < 0)
            return xcr_fail_errno("linux.sysctl.%s", sp->sysctl_keys[i]);
    }
    for (int i = 0; i < sp->nreadonly; i++)
        if (readonly_path(sp->readonly[i]) < 0)
            return -1;
    for (int i = 0; i < sp->nmasked; i++)
        if (mask_path(sp->masked[i]) < 0)
            return -1;
    if (sp->root_readonly) {
        unsigned long flags;
        if (statvfs_flags("/", &flags) < 0 ||
            xmount(NULL, "/", NULL, XMS_BIND | XMS_REMOUNT | XMS_RDONLY | flags, NULL) < 0)
            return xcr_fail_errno("root.readonly");
    }
    return 0;
}
