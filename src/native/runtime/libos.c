/* The X-LibOS image and statistics segment for a container (see libos.h). */
#include "libos.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abi.h"

static int sealed_image_fd(void);

/* --- the shared copy (libos.image_fd) ------------------------------------------- */

#define SHARED_DIR "/run/xcontainers/libos"
#define SHARED_NAME "xc-libos"
#define OPEN_TREE_CLONE_ 1
#define OPEN_TREE_CLOEXEC_ 02000000
#define MOUNT_ATTR_RDONLY_ 0x1
#define MOUNT_ATTR_NOSUID_ 0x2
#define MOUNT_ATTR_NODEV_ 0x4
#define MOUNT_ATTR_NOEXEC_ 0x8

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

static void rmtree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int copy_fd(int dst, int src, off_t size)
{
    for (off_t left = size; left > 0;) {
        ssize_t n = sendfile(dst, src, NULL, left);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            if (n == 0)
                errno = EIO;
            return -1;
        }
        left -= n;
    }
    return 0;
}

#define SHARED_KEEP 4 /* image versions kept there (libos.SHARED_KEEP) */

struct version {
    double mtime;
    char *name;
};

/* sorted((mtime, name) ...), reverse=True */
static int newest_first(const void *a, const void *b)
{
    const struct version *x = a, *y = b;
    if (x->mtime != y->mtime)
        return x->mtime < y->mtime ? 1 : -1;
    return -strcmp(x->name, y->name);
}

/* libos._install_shared_copy: the image into d, atomically (a complete file
 * or none); then all but the SHARED_KEEP newest versions go (running
 * containers keep theirs open). */
static int install_shared_copy(const char *src, const char *d, off_t size)
{
    if (makedirs(SHARED_DIR, 0700) < 0)
        return -1;
    char tmp[] = SHARED_DIR "/.new-XXXXXX";
    if (mkdtemp(tmp) == NULL)
        return -1;
    char *file = path_join(tmp, SHARED_NAME);
    int rc = -1;
    int in AUTOCLOSE = open(src, O_RDONLY | O_CLOEXEC);
    int out AUTOCLOSE = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    struct stat st;
    if (in >= 0 && out >= 0 && copy_fd(out, in, size) == 0 && fstat(out, &st) == 0 && st.st_size == size &&
        fchmod(out, 0555) == 0 && chmod(tmp, 0755) == 0) {
        if (rename(tmp, d) == 0) {
            rc = 0;
        } else {
            char *f = path_join(d, SHARED_NAME);
            rc = lexists(f) ? 0 : -1; /* another runtime made it meanwhile: keep that one */
            free(f);
        }
    }
    int e = errno;
    rmtree(tmp);
    free(file);
    if (rc == 0) {
        /* all but the SHARED_KEEP newest versions go (this one included) */
        struct version *others = NULL;
        size_t n = 0;
        DIR *dir = opendir(SHARED_DIR);
        struct dirent *ent;
        while (dir && (ent = readdir(dir)) != NULL) {
            if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0 ||
                strncmp(ent->d_name, ".new-", 5) == 0 || strcmp(ent->d_name, path_basename(d)) == 0)
                continue;
            char *old = path_join(SHARED_DIR, ent->d_name);
            struct stat ost;
            if (stat(old, &ost) == 0) {
                others = xrealloc(others, sizeof *others * (n + 1));
                others[n].mtime = ost.st_mtim.tv_sec + ost.st_mtim.tv_nsec / 1e9;
                others[n++].name = xstrdup(ent->d_name);
            }
            free(old);
        }
        if (dir)
            closedir(dir);
        qsort(others, n, sizeof *others, newest_first);
        for (size_t i = SHARED_KEEP - 1; i < n; i++) {
            char *old = path_join(SHARED_DIR, others[i].name);
            rmtree(old);
            free(old);
        }
        free(others);
    }
    errno = e;
    return rc;
}

/* libos._shared_image_fd: a read-only fd on the one copy every container
 * shares, through a detached, read-only bind mount of its directory. */
static int shared_image_fd(void)
{
    char *src = path_join(package_dir(), "xc-libos");
    struct stat st;
    if (stat(src, &st) < 0) {
        free(src);
        return -1;
    }
    char *d = xasprintf("%s/%lld-%lld-%llu", SHARED_DIR, (long long)st.st_size,
                        (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
                        (unsigned long long)st.st_ino);
    char *f = path_join(d, SHARED_NAME);
    int fd = -1, tree AUTOCLOSE = -1;
    if (!lexists(f) && install_shared_copy(src, d, st.st_size) < 0)
        goto out;
    tree = syscall(428 /* SYS_open_tree */, AT_FDCWD, d, OPEN_TREE_CLONE_ | OPEN_TREE_CLOEXEC_);
    if (tree < 0)
        goto out;
    struct {
        uint64_t set, clr, propagation, userns_fd;
    } attr = {MOUNT_ATTR_RDONLY_ | MOUNT_ATTR_NOSUID_ | MOUNT_ATTR_NODEV_, MOUNT_ATTR_NOEXEC_, 0, 0};
    if (syscall(442 /* SYS_mount_setattr */, tree, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
        goto out;
    fd = openat(tree, SHARED_NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat got;
    if (fd >= 0 && (fstat(fd, &got) < 0 || got.st_size != st.st_size)) {
        close(fd);
        fd = -1;
    }
out:
    free(src);
    free(d);
    free(f);
    return fd;
}

int libos_image_fd(void)
{
    int shared = shared_image_fd();
    if (shared >= 0)
        return shared;
    return sealed_image_fd();
}

/* libos.sealed_image_fd: a sealed memfd copy, where no shared copy can be had. */
static int sealed_image_fd(void)
{
    char *path = path_join(package_dir(), "xc-libos");
    int src AUTOCLOSE = open(path, O_RDONLY | O_CLOEXEC);
    if (src < 0) {
        xcr_fail_errno("the X-LibOS image %s", path);
        free(path);
        return -1;
    }
    free(path);
    struct stat st;
    int fd = memfd_create("xc-libos", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0 || fstat(src, &st) < 0)
        goto fail;
    if (copy_fd(fd, src, st.st_size) < 0)
        goto fail;
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
        goto fail;
    return fd;
fail:
    xcr_fail_errno("X-LibOS: copying the image");
    if (fd >= 0)
        close(fd);
    return -1;
}

int libos_stats_fd(bool abom)
{
    int fd = memfd_create("xc-stats", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, XC_STATS_SIZE) < 0) {
        xcr_fail_errno("X-LibOS: the statistics segment");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    /* profile.write: magic and flags; the per-call profile and the uname
     * strings of the default profile are zeros, as the fresh segment is */
    uint64_t head[2] = {XC_STATS_MAGIC, abom ? XC_FLAG_ABOM : 0};
    if (pwrite(fd, head, sizeof head, 0) != (ssize_t)sizeof head) {
        xcr_fail_errno("X-LibOS: the statistics segment");
        close(fd);
        return -1;
    }
    return fd;
}
