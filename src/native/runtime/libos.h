/*
 * The X-LibOS as the runtime hands it to a container (xcontainers.libos,
 * profile.py): the image as a sealed memfd the init keeps on XC_LIBOS_FD,
 * and the statistics segment carrying the profile on XC_STATS_FD.  The
 * constants come from src/libos/abi.h, the one place the LibOS, the Python
 * runtime (libos_abi.py, checked by a test) and this program share.
 */
#ifndef XCR_LIBOS_H
#define XCR_LIBOS_H

#include "xcr.h"

/* argv[0] of the image (libos_abi.XC_IMAGE_NAME; abi.h has no such line). */
#define XC_IMAGE_NAME "xc-libos"

/* libos.sealed_image_fd(): a sealed, read-only memfd copy of the image
 * next to this program; -1 with xcr_error. */
int libos_image_fd(void);
/* libos.new_stats_fd(profile) for the default profile, ABOM on or off. */
int libos_stats_fd(bool abom);

#endif
