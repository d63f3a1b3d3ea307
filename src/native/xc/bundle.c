/*
 * The bundle of a container of a stored image, as the Python command line
 * makes and removes it (xcontainers/imagerun.py, network.py):
 *
 *     BUNDLES/ID/xc-bundle.json   the maker (pid, start time), state root, image
 *               overlay/upper/    the container's writes
 *               overlay/work/     overlayfs's work directory
 *               rootfs/           the overlay, mounted in the host's namespace
 *               resolv.conf hosts hostname   bind-mounted on /etc/...
 *               config.json
 *
 * and the garbage checks that come first: a stale bundle (its maker gone,
 * its container gone) or a network whose container is gone makes the
 * command fall back, so that Python's `xc run` collects them as it does.
 */
#include "xc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <linux/close_range.h>
#include <linux/fs.h>
#include <unistd.h>

#include "../runtime/state.h"

/* --- garbage ------------------------------------------------------------------------------- */

/* imagerun._stale(bundle, cid): 1 stale, 0 not, -1 not understood. */
static int stale(const char *bundles, const char *cid)
{
    char *marker = xasprintf("%s/%s/xc-bundle.json", bundles, cid);
    size_t len;
    char *text = read_file(marker, 1 << 20, &len);
    free(marker);
    if (text == NULL)
        return 0; /* _read_marker: None */
    struct jval *m = json_parse(text, len);
    free(text);
    if (m == NULL)
        return -1; /* (Python's reader may take what this one refuses) */
    if (m->t != J_OBJ)
        return -1;
    struct jval *root = json_get(m, "state_root"), *pid = json_get(m, "owner_pid"),
                *start = json_get(m, "owner_start");
    if ((root && root->t != J_STR) || (pid && pid->t != J_INT))
        return -1;
    char *dir = path_join(root ? root->s : "", cid);
    bool alive_state = isdir(dir);
    free(dir);
    if (alive_state)
        return 0;
    long long p = 0, s = 0;
    if (pid && !json_int_in(pid, 0, 1 << 30, &p))
        return -1;
    if (p == 0)
        return 1;
    long long now = process_start_time(p);
    if (now < 0)
        return 1;
    if (start == NULL || !json_int_in(start, 0, (long long)1 << 62, &s))
        return 1; /* (None == a number: not equal) */
    return now == s ? 0 : 1;
}

/* network._alive for one attachment: true, or false when it may be garbage. */
static bool attachment_alive(const struct jval *att)
{
    if (att->t != J_OBJ)
        return false;
    struct jval *owner = json_opt(att, "owner");
    long long pid, start;
    if (owner && owner->t == J_ARR && owner->n == 2 && json_int_in(owner->v[0], 1, 1 << 30, &pid) &&
        json_int_in(owner->v[1], 0, (long long)1 << 62, &start) && process_start_time(pid) == start)
        return true;
    struct jval *root = json_get(att, "root"), *id = json_get(att, "id");
    if (!json_is_str(root) || !json_is_str(id) || !id_valid(id->s))
        return false;
    struct state st;
    if (state_load(root->s, id->s, &st) < 0)
        return false;
    return strcmp(state_live(&st), ST_STOPPED) != 0;
}

/* trash entries whose remover is gone (imagerun._gc_trash removes them) */
static int trash_to_collect(const char *bundles)
{
    char *trash = trash_dir(bundles);
    DIR *d = opendir(trash);
    free(trash);
    if (d == NULL)
        return 0;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        const char *dot = strrchr(e->d_name, '.');
        long long pid = 0, start = -2;
        struct stat sb;
        /* Its remover may have removed it and exited while it was looked
         * at: gone, not garbage (looked for again after the remover). */
        if ((dot == NULL || sscanf(dot + 1, "%lld-%lld", &pid, &start) != 2 || pid <= 0 ||
             process_start_time(pid) != start) &&
            fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0)
            rc = xcr_fail("%s: to be removed", e->d_name);
    }
    closedir(d);
    return rc;
}

int nothing_to_collect(const struct where *w)
{
    if (trash_to_collect(w->bundles) < 0)
        return -1;
    DIR *d = opendir(w->bundles);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            int s = stale(w->bundles, e->d_name);
            /* Its owner may have deleted the container, moved the bundle to
             * the trash and exited while it was looked at: gone, not garbage. */
            if (s > 0) {
                char *marker = xasprintf("%s/%s/xc-bundle.json", w->bundles, e->d_name);
                if (!lexists(marker))
                    s = 0;
                free(marker);
            }
            if (s != 0) {
                closedir(d);
                return xcr_fail("bundle %s: %s", e->d_name, s > 0 ? "stale" : "a marker not read natively");
            }
        }
        closedir(d);
    } else if (errno != ENOENT) {
        return xcr_fail_errno("%s", w->bundles);
    }
    size_t len;
    char *text = read_file("/run/xc-network/state.json", JSON_MAX_SIZE, &len);
    if (text == NULL)
        return 0; /* (collect_garbage: nothing) */
    struct jval *doc = json_parse(text, len);
    free(text);
    if (doc == NULL || doc->t != J_OBJ)
        return xcr_fail("the network state is not read natively");
    struct jval *atts = json_opt(doc, "attachments");
    if (atts == NULL)
        return 0;
    if (atts->t != J_OBJ)
        return xcr_fail("the network state is not read natively");
    for (size_t i = 0; i < atts->n; i++)
        if (!attachment_alive(atts->v[i]))
            return xcr_fail("the network of %s may be garbage", atts->k[i]);
    return 0;
}

/* --- making --------------------------------------------------------------------------------- */

int bundle_mount(const struct where *w, const char *bundle, const struct image *img, bool is_volatile)
{
    char *layers = path_join(w->storage, "layers");
    char *rootfs = path_join(bundle, "rootfs");
    char *overlay = path_join(bundle, "overlay");
    char *upper = path_join(overlay, "upper");
    char *work = path_join(overlay, "work");
    /* ImageStore.ensure(), then the lock, shared: `xc image rm` takes it
     * exclusively, and once the marker is written sees the image in use */
    const char *dirs[] = {"", "blobs/sha256", "layers", "tmp"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        char *d = path_join(w->storage, dirs[i]);
        if (makedirs(d, 0700) < 0)
            return xcr_fail_errno("%s", d);
        free(d);
    }
    char *lockp = path_join(w->storage, "lock");
    int lock AUTOCLOSE = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || flock(lock, LOCK_SH) < 0)
        return xcr_fail_errno("%s", lockp);
    /* the marker first: from here on the image is in use */
    struct jval *m = json_new(J_OBJ);
    pid_t self = getpid();
    long long start = process_start_time(self);
    json_set(m, "owner_pid", json_int_new(self));
    json_set(m, "owner_start", json_int_new(start < 0 ? 0 : start));
    json_set(m, "state_root", json_str(path_normpath(w->state_root)));
    json_set(m, "image", json_str(img->id));
    struct sbuf b = {0};
    json_dump(&b, m);
    /* whole or not at all: a parallel `xc run` reads every marker */
    char *mp = path_join(bundle, "xc-bundle.json");
    char *tmp = path_join(bundle, ".xc-bundle.json.tmp");
    if (write_file(tmp, b.s, b.len, O_CREAT | O_TRUNC, 0666) < 0 || rename(tmp, mp) < 0)
        return xcr_fail_errno("%s", mp);
    free(tmp);
    struct sbuf opts = {0};
    sb_puts(&opts, "lowerdir=");
    /* the image's mount-target layer on top, if it has one (runtemplate.py) */
    char *init = xasprintf("%s/templates/%s.init", w->storage, img->id);
    if (isdir(init))
        sb_printf(&opts, "../templates/%s.init:", img->id);
    free(init);
    for (int i = img->nlayers - 1; i >= 0; i--) {
        char *diff = xasprintf("%s/%s/diff", layers, img->layers[i]);
        bool ok = isdir(diff);
        free(diff);
        if (!ok)
            return xcr_fail("image %.12s: layer sha256:%s is missing from the store", img->id, img->layers[i]);
        sb_printf(&opts, "%s%s/diff", i == img->nlayers - 1 ? "" : ":", img->layers[i]);
    }
    sb_printf(&opts, ",upperdir=%s,workdir=%s%s", upper, work, is_volatile ? ",volatile" : "");
    if (opts.len > 4095)
        return xcr_fail("too many layers for one overlay mount");
    if (makedirs(upper, 0755) < 0 || mkdir(work, 0700) < 0 || mkdir(rootfs, 0755) < 0)
        return xcr_fail_errno("%s", bundle);
    int cwd AUTOCLOSE = open(".", O_PATH | O_CLOEXEC);
    if (cwd < 0 || chdir(layers) < 0)
        return xcr_fail_errno("%s", layers);
    int rc = mount("overlay", rootfs, "overlay", 0, opts.s);
    int e = errno;
    if (fchdir(cwd) < 0 && rc == 0)
        rc = -1, e = errno;
    if (rc < 0) {
        errno = e;
        return xcr_fail_errno("mounting the overlay root filesystem at %s", rootfs);
    }
    return 0;
}

int bundle_mkdirs(const char *bundle, const struct image *img)
{
    struct jval *mk = json_get(img->tpl, "mkdirs");
    for (size_t i = 0; i < mk->n; i++) {
        char *p = xasprintf("%s/rootfs/%s", bundle, mk->v[i]->v[0]->s);
        long long mode;
        json_int_in(mk->v[i]->v[1], 0, 07777, &mode);
        if (mkdir(p, mode) < 0 && !(errno == EEXIST && isdir(p)))
            return xcr_fail_errno("%s", p);
        free(p);
    }
    return 0;
}

/* network._read: the file's text, "" if it cannot be read; NULL (fall
 * back) for what Python's text mode would change or refuse (\r newlines,
 * text that is not UTF-8). */
static char *read_text(const char *path)
{
    size_t len;
    char *t = read_file(path, 1 << 20, &len);
    if (t == NULL)
        return xstrdup("");
    if (memchr(t, '\r', len) || memchr(t, 0, len) || !utf8_valid(t, len))
        return xcr_fail("%s: text the native path does not copy", path), NULL;
    return t;
}

/* network.resolv_conf for none and bridge (the host's, less loopback nameservers, or
 * Docker's fallback servers), on plain ASCII text only (str.splitlines and
 * str.split know more separators). */
static char *resolv_conf_none(const char *text)
{
    struct sbuf out = {0};
    int servers = 0;
    for (const unsigned char *c = (const unsigned char *)text; *c; c++)
        if (*c != '\n' && *c != '\t' && (*c < 0x20 || *c > 0x7e))
            return xcr_fail("/etc/resolv.conf: text the native path does not read"), NULL;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char *line = strndup(p, n);
        char *words[2] = {NULL, NULL};
        int nw = 0;
        char *save = NULL;
        char *copy = xstrdup(line);
        for (char *tok = strtok_r(copy, " \t", &save); tok && nw < 2; tok = strtok_r(NULL, " \t", &save))
            words[nw++] = tok;
        bool skip = false;
        if (nw == 2 && strcmp(words[0], "nameserver") == 0) {
            if (strncmp(words[1], "127.", 4) == 0 || strcmp(words[1], "::1") == 0)
                skip = true;
            else
                servers++;
        }
        if (!skip) {
            sb_puts(&out, line);
            sb_putc(&out, '\n');
        }
        free(copy);
        free(line);
        p += n + (nl != NULL);
    }
    if (servers == 0)
        sb_puts(&out, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    if (out.s == NULL)
        sb_puts(&out, "\n"); /* "\n".join([]) + "\n" */
    return out.s;
}

struct jval *bundle_dns_files(const char *bundle, const char *mode, const char *hostname,
                              const struct bridge_net *bridge)
{
    bool host = strcmp(mode, "host") == 0;
    char *resolv, *hosts;
    char *rtext = read_text("/etc/resolv.conf");
    if (rtext == NULL)
        return NULL;
    if (host) {
        resolv = rtext;
        char *h = read_text("/etc/hosts");
        if (h == NULL)
            return NULL;
        size_t n = strlen(h);
        hosts = (n == 0 || h[n - 1] == '\n') ? h : xasprintf("%s\n", h);
    } else {
        if ((resolv = resolv_conf_none(rtext)) == NULL)
            return NULL;
        if (bridge) /* network.hosts_file with the address, then the gateway's name */
            hosts = xasprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n"
                              "%s\thost.containers.internal\n",
                              bridge->address_text, hostname, bridge->gateway);
        else
            hosts = xasprintf("127.0.0.1\tlocalhost %s\n::1\tlocalhost ip6-localhost ip6-loopback\n", hostname);
    }
    const char *names[3] = {"resolv.conf", "hosts", "hostname"};
    char *texts[3] = {resolv, hosts, xasprintf("%s\n", hostname)};
    struct jval *mounts = json_new(J_ARR);
    mounts->v = xmalloc(sizeof(struct jval *) * 3);
    for (int i = 0; i < 3; i++) {
        char *p = path_join(bundle, names[i]);
        int fd AUTOCLOSE = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write_all(fd, texts[i], strlen(texts[i])) < 0 || fchmod(fd, 0644) < 0)
            return xcr_fail_errno("%s", p), NULL;
        struct jval *m = json_new(J_OBJ);
        json_set(m, "destination", json_str(xasprintf("/etc/%s", names[i])));
        json_set(m, "type", json_str("bind"));
        json_set(m, "source", json_str(p));
        struct jval *o = json_new(J_ARR);
        o->v = xmalloc(sizeof(struct jval *) * 2);
        o->v[o->n++] = json_str("bind");
        o->v[o->n++] = json_str("rw");
        json_set(m, "options", o);
        mounts->v[mounts->n++] = m;
    }
    return mounts;
}

/* --- removing ------------------------------------------------------------------------------- */

/* os.path.ismount */
static bool is_mount(const char *path)
{
    struct stat a, b;
    if (lstat(path, &a) < 0 || S_ISLNK(a.st_mode))
        return false;
    char *parent = xasprintf("%s/..", path);
    int rc = lstat(parent, &b);
    free(parent);
    if (rc < 0)
        return false;
    return a.st_dev != b.st_dev || a.st_ino == b.st_ino;
}

/* shutil.rmtree(ignore_errors=True) of dir's entry name: never follows a
 * symlink (each directory opened with O_NOFOLLOW, relative to its parent). */
static void rmtree_at(int dirfd, const char *name, int depth)
{
    if (unlinkat(dirfd, name, 0) == 0 || (errno != EISDIR && errno != EPERM) || depth > 512)
        return;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (e->d_type == DT_DIR)
            rmtree_at(fd, e->d_name, depth + 1);
        else if (unlinkat(fd, e->d_name, 0) < 0 && errno == EISDIR)
            rmtree_at(fd, e->d_name, depth + 1);
    }
    closedir(d);
    unlinkat(dirfd, name, AT_REMOVEDIR);
}

static int bundle_unmount(const char *bundle)
{
    char *rootfs = path_join(bundle, "rootfs");
    char *overlay = path_join(bundle, "overlay");
    if (isdir(overlay)) {
        for (int i = 0; i < 8 && is_mount(rootfs); i++)
            if (umount2(rootfs, 0) < 0) {
                if (errno == EBUSY)
                    umount2(rootfs, MNT_DETACH);
                else if (errno != EINVAL && errno != ENOENT)
                    return xcr_fail_errno("unmounting %s", rootfs);
            }
        if (is_mount(rootfs))
            return xcr_fail("%s: still mounted; not removing the bundle", rootfs);
        mark("unmounted");
    }
    free(rootfs);
    free(overlay);
    return 0;
}

int bundle_remove(const char *bundle)
{
    if (bundle_unmount(bundle) < 0)
        return -1;
    rmtree_at(AT_FDCWD, bundle, 0);
    return 0;
}

char *trash_dir(const char *bundles)
{
    char *norm = path_normpath(bundles);
    char *parent = path_dirname(norm);
    char *t = path_join(parent, ".xc-trash");
    free(norm);
    free(parent);
    return t;
}

pid_t fork_remover(int sync[2])
{
    fflush(stdout);
    fflush(stderr);
    pid_t child = fork();
    if (child == 0) {
        /* none of the caller's files (its pipes see the end of this
         * command when the parent exits), its own session */
        close(sync[1]);
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        for (int fd = 0; fd < 3; fd++)
            dup2(null, fd);
        dup2(sync[0], 3);
        close_range(4, ~0U, CLOSE_RANGE_UNSHARE);
        setsid();
        return 0;
    }
    close(sync[0]);
    return child;
}

int bundle_remove_later(const char *bundles, const char *bundle, const char *cid)
{
    if (bundle_unmount(bundle) < 0)
        return -1;
    int sync[2];
    if (pipe2(sync, O_CLOEXEC) < 0) {
        rmtree_at(AT_FDCWD, bundle, 0);
        return 0;
    }
    pid_t child = fork_remover(sync);
    if (child == 0) {
        char *path = NULL;
        char buf[4096];
        ssize_t n = read(3, buf, sizeof buf - 1); /* the trash path, or nothing */
        if (n > 0) {
            buf[n] = 0;
            path = buf;
            mark("removing");
            rmtree_at(AT_FDCWD, path, 0);
        }
        _exit(0);
    }
    char *trash = trash_dir(bundles);
    long long start = child > 0 ? process_start_time(child) : -1;
    char *dest = xasprintf("%s/%s.%d-%lld", trash, cid, (int)child, start);
    bool moved = child > 0 && start >= 0 && (mkdir(trash, 0700) == 0 || errno == EEXIST) &&
                 renameat2(AT_FDCWD, bundle, AT_FDCWD, dest, RENAME_NOREPLACE) == 0;
    if (moved)
        write_all(sync[1], dest, strlen(dest));
    close(sync[1]); /* (the child exits at once if nothing was written) */
    if (!moved)
        rmtree_at(AT_FDCWD, bundle, 0);
    free(trash);
    free(dest);
    return 0;
}
