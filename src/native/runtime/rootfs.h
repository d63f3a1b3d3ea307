/* The container's filesystem view (xcontainers.rootfs, xcontainers.securejoin). */
#ifndef XCR_ROOTFS_H
#define XCR_ROOTFS_H

#include "spec.h"

/* securejoin.secure_join: unsafe resolved inside root, never above it. */
int secure_join(const char *root, const char *unsafe, char **out);
/* Steps 1-4: propagation, the rootfs bound on itself, mounts[], devices. */
int rootfs_prepare(const struct spec *sp, const struct cgroup *cg);
/* Step 6: pivot_root (or MS_MOVE + chroot with --no-pivot). */
int rootfs_pivot(const struct spec *sp, bool no_pivot);
/* Step 7: sysctls, read-only and masked paths, a read-only root. */
int rootfs_finish(const struct spec *sp);

#endif
