/* mount(2) flags (kernel.MS), and the propagation options of rootfs.py. */
#ifndef XCR_MOUNTFLAGS_H
#define XCR_MOUNTFLAGS_H

#define XMS_RDONLY 1UL
#define XMS_NOSUID 2UL
#define XMS_NODEV 4UL
#define XMS_NOEXEC 8UL
#define XMS_SYNCHRONOUS 16UL
#define XMS_REMOUNT 32UL
#define XMS_MANDLOCK 64UL
#define XMS_DIRSYNC 128UL
#define XMS_NOSYMFOLLOW 256UL
#define XMS_NOATIME 1024UL
#define XMS_NODIRATIME 2048UL
#define XMS_BIND 4096UL
#define XMS_MOVE 8192UL
#define XMS_REC 16384UL
#define XMS_UNBINDABLE (1UL << 17)
#define XMS_PRIVATE (1UL << 18)
#define XMS_SLAVE (1UL << 19)
#define XMS_SHARED (1UL << 20)
#define XMS_RELATIME (1UL << 21)
#define XMS_STRICTATIME (1UL << 24)
#define XMS_LAZYTIME (1UL << 25)

struct propagation {
    const char *name;
    unsigned long flags;
};
/* rootfs._PROPAGATION, NULL-terminated */
extern const struct propagation PROPAGATION[];

#endif
