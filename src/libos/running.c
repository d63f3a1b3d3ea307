/*
 * Running programs: the LibOS's ETXTBSY.
 *
 * Linux refuses to open a file for writing, or to truncate it, while a
 * process executes it: execve takes "deny-write" on the file (the inode's
 * i_writecount goes negative) until the process exits or executes something
 * else, and an open that asks for write access (O_WRONLY, O_RDWR) or
 * truncation (O_TRUNC, truncate(2)) of the file then fails with ETXTBSY.
 * That is what stops a program from overwriting a binary while it runs, the
 * way CVE-2019-5736 overwrote runc's.
 *
 * Under the LibOS the kernel executes the LibOS image (a sealed memfd of the
 * container's); the program's file is only mapped by the loader, and no
 * user-space call takes deny-write on a file.  So the LibOS keeps the record
 * itself, in the statistics segment every process of the container maps:
 * a table of (pid, dev, ino), one entry per process, written by the loader
 * when the process starts a program (xc_txt_enter, after each execve), by
 * fork's child (the same program), and emptied by exit_group and by the next
 * execve.  An open for writing or truncation by any process of the container
 * looks the file up there (xc_txt_open), and answers ETXTBSY as Linux does.
 *
 * An entry's pid is 0 while it is free and XC_TXT_WRITING while the process
 * that claimed it (a compare-and-swap from 0) fills in dev and ino; the pid
 * is then stored with release order, and loaded with acquire order by the
 * readers.  A process killed by a signal leaves its entry: a reader that
 * finds the file there asks the host whether the pid still lives (kill(pid,
 * 0)) and frees the entry if not.
 *
 * What it costs: an open without write access or O_TRUNC looks at its
 * flags only.  An open for writing costs no host call more unless some
 * program runs from a writable mount (txt_rw): a container with a read-only
 * root runs its programs from there, and any write open through that mount
 * fails with EROFS anyway (then one statx finds whether Linux would have said
 * ETXTBSY first).  With txt_rw, one statx more: of the opened fd, or of the
 * path before an O_TRUNC open.
 *
 * Left as it is (docs/security.md, finding 10): an execve of a file open for
 * writing is not refused; a pid reused by another process keeps a stale
 * entry's file busy; beyond XC_TXT_MAX processes the rest are not entered
 * (txt_full); a file that becomes a running program between the check and
 * the open (or, for O_TRUNC, is renamed over the path) is not caught; while
 * every running program is on a read-only mount, one of them reached through
 * another, writable mount of its filesystem is not looked up; a filesystem
 * read-only as a whole answers EROFS on Linux, ETXTBSY here.
 */
#include "xc.h"

#include <asm/unistd.h>

#define AT_FDCWD -100
#define AT_SYMLINK_NOFOLLOW 0x100
#define AT_EMPTY_PATH 0x1000
#define O_ACCMODE 3
#define O_CREAT 0100
#define O_EXCL 0200
#define O_TRUNC 01000
#define O_NOFOLLOW 0400000
#define O_PATH 010000000
#define ST_RDONLY 1
#define S_IFMT 0170000
#define S_IFREG 0100000
#define STATX_TYPE 1U
#define STATX_INO 0x100U

/* Whether an open's flags ask for write access or truncation, by byte:
 * [b] for the flags' low byte b (the access mode is its low two bits),
 * [256 + b] for their second byte (O_TRUNC is its bit 1).  0: they do.
 * ABOM's openat trampolines index it with %dl and %dh (abom.c, put_direct),
 * so that an open without them may go straight to the host. */
#define LOW(b) (((b) & O_ACCMODE) == 1 || ((b) & O_ACCMODE) == 2 ? 0 : 1)
#define HIGH(b) ((b) & (O_TRUNC >> 8) ? 0 : 1)
#define LO4(b) LOW(b), LOW((b) + 1), LOW((b) + 2), LOW((b) + 3)
#define LO16(b) LO4(b), LO4((b) + 4), LO4((b) + 8), LO4((b) + 12)
#define LO64(b) LO16(b), LO16((b) + 16), LO16((b) + 32), LO16((b) + 48)
#define HI4(b) HIGH(b), HIGH((b) + 1), HIGH((b) + 2), HIGH((b) + 3)
#define HI16(b) HI4(b), HI4((b) + 4), HI4((b) + 8), HI4((b) + 12)
#define HI64(b) HI16(b), HI16((b) + 16), HI16((b) + 32), HI16((b) + 48)
const unsigned char xc_open_writes[512] = {
    LO64(0), LO64(64), LO64(128), LO64(192),
    HI64(0), HI64(64), HI64(128), HI64(192),
};

int xc_txt_writes(long flags)
{
    if (flags & O_PATH)
        return 0; /* (O_PATH ignores the rest) */
    return !xc_open_writes[flags & 0xff] || !xc_open_writes[256 + ((flags >> 8) & 0xff)];
}

static uint64_t dev_of(const struct xc_statx *st)
{
    return (uint64_t)st->dev_major << 32 | st->dev_minor;
}

/* The program the loader opened on *fd* (*given*: its statx, if the loader
 * made one): what the table will hold for this process, and whether its
 * mount is read-only. */
void xc_txt_learn(long fd, const struct xc_statx *given)
{
    struct xc_statx own;
    const struct xc_statx *st = given;
    uint64_t fs[15]; /* struct statfs; f_flags is its 11th word */
    xc_proc.exe_dev = xc_proc.exe_ino = xc_proc.exe_ro = 0;
    if (!st || (st->mask & XC_STATX_TXT) != XC_STATX_TXT) {
        if (H5(__NR_statx, fd, "", AT_EMPTY_PATH, XC_STATX_TXT, &own) < 0)
            return;
        st = &own;
    }
    if ((st->mode & S_IFMT) != S_IFREG)
        return;
    xc_proc.exe_dev = dev_of(st);
    xc_proc.exe_ino = st->ino;
    xc_proc.exe_ro = H2(__NR_fstatfs, fd, fs) == 0 && (fs[10] & ST_RDONLY);
}

/* Free entry *i*, held by *pid*. */
XC_HOT static void free_entry(struct xc_stats *s, uint64_t i, int64_t pid)
{
    uint64_t ro = s->txt[i].ro;
    if (!__atomic_compare_exchange_n(&s->txt[i].pid, &pid, 0, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
        return;
    __atomic_fetch_sub(&s->txt_live, 1, __ATOMIC_RELAXED);
    if (!ro)
        __atomic_fetch_sub(&s->txt_rw, 1, __ATOMIC_RELAXED);
}

/* Free this process's entries (its previous program, or a dead process's of
 * the same pid). */
XC_HOT static void leave(struct xc_stats *s, int64_t pid)
{
    uint64_t top = __atomic_load_n(&s->txt_top, __ATOMIC_ACQUIRE);
    for (uint64_t i = 0; i < top && i < XC_TXT_MAX; i++)
        if (__atomic_load_n(&s->txt[i].pid, __ATOMIC_RELAXED) == pid)
            free_entry(s, i, pid);
}

/* The loader, before it jumps to the program, and fork's child: process
 * *pid* (this one) runs xc_proc.exe_dev/ino. */
XC_HOT void xc_txt_enter(long pid)
{
    struct xc_stats *s = xc_stats;
    if (!s || pid <= 0)
        return;
    leave(s, pid);
    if (!xc_proc.exe_ino)
        return;
    for (uint64_t i = 0; i < XC_TXT_MAX; i++) {
        int64_t free = 0;
        if (__atomic_load_n(&s->txt[i].pid, __ATOMIC_RELAXED) != 0 ||
            !__atomic_compare_exchange_n(&s->txt[i].pid, &free, XC_TXT_WRITING, 0, __ATOMIC_ACQUIRE,
                                         __ATOMIC_RELAXED))
            continue;
        s->txt[i].dev = xc_proc.exe_dev;
        s->txt[i].ino = xc_proc.exe_ino;
        s->txt[i].ro = xc_proc.exe_ro;
        uint64_t top = __atomic_load_n(&s->txt_top, __ATOMIC_RELAXED);
        while (top < i + 1 &&
               !__atomic_compare_exchange_n(&s->txt_top, &top, i + 1, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
            ;
        __atomic_fetch_add(&s->txt_live, 1, __ATOMIC_RELAXED);
        if (!xc_proc.exe_ro)
            __atomic_fetch_add(&s->txt_rw, 1, __ATOMIC_RELAXED);
        __atomic_store_n(&s->txt[i].pid, pid, __ATOMIC_RELEASE);
        return;
    }
    __atomic_fetch_add(&s->txt_full, 1, __ATOMIC_RELAXED);
}

/* exit_group: this process runs nothing any more. */
XC_HOT void xc_txt_leave(void)
{
    if (!xc_stats)
        return;
    int64_t pid = xc_getpid_peek();
    if (pid > 0)
        leave(xc_stats, pid);
}

/* Whether a process of the container runs the file *st* describes. */
static int running(const struct xc_statx *st)
{
    struct xc_stats *s = xc_stats;
    if ((st->mode & S_IFMT) != S_IFREG)
        return 0;
    uint64_t dev = dev_of(st), top = __atomic_load_n(&s->txt_top, __ATOMIC_ACQUIRE);
    for (uint64_t i = 0; i < top && i < XC_TXT_MAX; i++) {
        int64_t pid = __atomic_load_n(&s->txt[i].pid, __ATOMIC_ACQUIRE);
        if (pid <= 0 || s->txt[i].ino != st->ino || s->txt[i].dev != dev)
            continue;
        if (H2(__NR_kill, pid, 0) != -XC_ESRCH)
            return 1;
        free_entry(s, i, pid); /* killed without its exit_group: the entry is stale */
    }
    return 0;
}

/* Whether the file *path* names (as an open with *flags* would follow it)
 * is a running program. */
static int path_running(long dirfd, const char *path, long flags)
{
    struct xc_statx st;
    return H5(__NR_statx, dirfd, path, flags & O_NOFOLLOW ? AT_SYMLINK_NOFOLLOW : 0, STATX_TYPE | STATX_INO,
              &st) == 0 && running(&st);
}

/* openat(dirfd, path, flags, mode) for open, openat, creat and truncate,
 * answering ETXTBSY where Linux would: the file is a running program, and
 * the open asks for write access or truncation.
 *
 * Linux's order: O_TRUNC asks the mount for write access (EROFS) before the
 * file (ETXTBSY); write access alone asks the file first.  So an open that
 * fails with EROFS, without O_TRUNC, still looks at the table (a program on
 * a read-only mount is the common case: a container's read-only root).  An
 * open that succeeds can only have reached a running program if one runs
 * from a writable mount (txt_rw): the file opened is looked up then (before
 * the open if it truncates, since the truncation must not happen first). */
long xc_txt_open(long dirfd, const char *path, long flags, long mode)
{
    struct xc_stats *s = xc_stats;
    if (!s || !xc_txt_writes(flags) || !__atomic_load_n(&s->txt_live, __ATOMIC_RELAXED))
        return H4(__NR_openat, dirfd, path, flags, mode);
    int rw = __atomic_load_n(&s->txt_rw, __ATOMIC_RELAXED) != 0;
    int trunc = (flags & O_TRUNC) && (flags & (O_CREAT | O_EXCL)) != (O_CREAT | O_EXCL);
    if (trunc && rw && path_running(dirfd, path, flags))
        return -XC_ETXTBSY;
    long fd = H4(__NR_openat, dirfd, path, flags, mode);
    if (fd == -XC_EROFS && !(flags & O_TRUNC) && path_running(dirfd, path, flags))
        return -XC_ETXTBSY;
    if (fd < 0 || !rw || trunc)
        return fd;
    struct xc_statx st;
    if (H5(__NR_statx, fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_INO, &st) == 0 && running(&st)) {
        H1(__NR_close, fd);
        return -XC_ETXTBSY;
    }
    return fd;
}
