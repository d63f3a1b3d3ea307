/* The X-LibOS image and statistics segment for a container (see libos.h). */
#include "libos.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abi.h"

int libos_image_fd(void)
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
    for (off_t left = st.st_size; left > 0;) {
        ssize_t n = sendfile(fd, src, NULL, left);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            if (n == 0)
                errno = EIO;
            goto fail;
        }
        left -= n;
    }
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
