/*
 * X-LibOS: common definitions.
 *
 * Error convention (the whole LibOS): a function returns a long; a value
 * >= 0 is success, a value in [-4095, -1] is -errno, exactly as the kernel
 * returns from a system call, so results pass through unchanged.
 *
 * The LibOS is freestanding: no libc, no SSE (built with
 * -mgeneral-regs-only), everything it needs from the host goes through
 * xc_host_syscall() in the gate section (see host.h).
 */
#ifndef XC_H
#define XC_H

#include <stddef.h>
#include <stdint.h>

#include "abi.h"

#define XC_ERR(x) ((unsigned long)(x) > (unsigned long)-4096L)
#define XC_UNUSED __attribute__((unused))
#define XC_NORETURN __attribute__((noreturn))
/* On the path a fork's child takes to its exit or execve: in one fault-around
 * window with the gate (layout.ld). */
#define XC_HOT __attribute__((section("xc_hot")))

/* errno values used here */
enum {
    XC_EPERM = 1, XC_ENOENT = 2, XC_ESRCH = 3, XC_EINTR = 4, XC_EIO = 5, XC_E2BIG = 7,
    XC_ENOEXEC = 8, XC_EBADF = 9, XC_ENOMEM = 12, XC_EACCES = 13, XC_EFAULT = 14,
    XC_EINVAL = 22, XC_ENAMETOOLONG = 36, XC_ENOSYS = 38, XC_ELOOP = 40, XC_ENOTSOCK = 88,
};

/* System calls newer than the build machine's headers may be (asm/unistd.h). */
#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452
#endif
#ifndef __NR_setxattrat
#define __NR_setxattrat 463
#define __NR_getxattrat 464
#define __NR_listxattrat 465
#define __NR_removexattrat 466
#endif

/* statx(2): struct statx and the flags the LibOS uses. */
#define XC_STATX_BASIC_STATS 0x7ffU
#define XC_STATX_SITE_CACHE 0x3c0U /* STATX_INO | STATX_SIZE | STATX_MTIME | STATX_CTIME: sitecache.c */
#define XC_STATX_TXT 0x101U        /* STATX_TYPE | STATX_INO: running.c */
#define XC_STATX_EXE 0x1184U       /* STATX_NLINK | STATX_CTIME | STATX_INO | STATX_MNT_ID: xc_proc.exe */
#define AT_NO_AUTOMOUNT 0x800
#define AT_STATX_SYNC_TYPE 0x6000
#define AT_STATX_DONT_SYNC 0x4000
struct xc_statx_ts {
    int64_t sec;
    uint32_t nsec;
    int32_t reserved;
};
struct xc_statx {
    uint32_t mask, blksize;
    uint64_t attributes;
    uint32_t nlink, uid, gid;
    uint16_t mode, spare0;
    uint64_t ino, size, blocks, attributes_mask;
    struct xc_statx_ts atime, btime, ctime, mtime;
    uint32_t rdev_major, rdev_minor, dev_major, dev_minor;
    uint64_t rest[14];
};
_Static_assert(sizeof(struct xc_statx) == 256, "struct statx");
#define AT_STATX_FORCE_SYNC 0x2000

/* struct stat of x86-64 (newfstatat, stat, fstat, lstat), which the LibOS
 * fills from a struct statx (libos.c, stat_via_statx). */
struct xc_stat {
    uint64_t dev, ino, nlink;
    uint32_t mode, uid, gid, pad0;
    uint64_t rdev;
    int64_t size, blksize, blocks;
    uint64_t atime, atime_nsec, mtime, mtime_nsec, ctime, ctime_nsec;
    int64_t unused[3];
};
_Static_assert(sizeof(struct xc_stat) == 144, "struct stat");

/* signals and sigaction */
#define XC_SIGSYS 31
#define XC_SIGBUS 7
#define XC_SIGSEGV 11
#define XC_SA_RESETHAND 0x80000000UL
#define XC_SIGCHLD 17
#define XC_SA_SIGINFO 0x00000004UL
#define XC_SA_ONSTACK 0x08000000UL
#define XC_SA_RESTORER 0x04000000UL
#define XC_SA_NODEFER 0x40000000UL
#define XC_SIGBIT(s) (1UL << ((s) - 1))

struct xc_sigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
};

/* The kernel's siginfo for SIGSYS (x86-64 layout). */
struct xc_siginfo_sys {
    int32_t signo, errno_, code, pad;
    void *call_addr;
    int32_t syscall;
    uint32_t arch;
    char rest[128 - 32];
};

/* The kernel's struct sigcontext (x86-64), inside struct ucontext. */
struct xc_sigcontext {
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
    uint16_t cs, gs, fs, ss;
    uint64_t err, trapno, oldmask, cr2;
    void *fpstate;
    uint64_t reserved[8];
};

struct xc_ucontext {
    unsigned long flags;
    struct xc_ucontext *link;
    void *ss_sp;
    int ss_flags;
    size_t ss_size;
    struct xc_sigcontext mc;
    uint64_t sigmask;
};

/* gate.S */
long xc_host_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6);
void xc_restorer(void);
long xc_clone_thread(unsigned long flags, void *child_sp, void *ptid, void *ctid, unsigned long tls);
XC_NORETURN void xc_jump(void *entry, void *sp);
long xc_syscall2_on_stack(long nr, long a1, long a2, void *stack);
/* The only path execveat takes from the gate: "" among the constants, in
 * the code segment the LibOS maps shared at start (gate.S). */
extern char xc_exec_path[];

#define H0(n) xc_host_syscall((n), 0, 0, 0, 0, 0, 0)
#define H1(n, a) xc_host_syscall((n), (long)(a), 0, 0, 0, 0, 0)
#define H2(n, a, b) xc_host_syscall((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define H3(n, a, b, c) xc_host_syscall((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define H4(n, a, b, c, d) xc_host_syscall((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define H5(n, a, b, c, d, e) xc_host_syscall((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)
#define H6(n, a, b, c, d, e, f) \
    xc_host_syscall((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

/* util.c */
void *xc_memcpy(void *d, const void *s, size_t n);
void *xc_memset(void *d, int c, size_t n);
void *memmove(void *d, const void *s, size_t n);
size_t xc_strlen(const char *s);
int xc_strcmp(const char *a, const char *b);
int xc_strncmp(const char *a, const char *b, size_t n);
char *xc_strrchr(const char *s, int c);
void xc_puts(int fd, const char *s);
/* "/proc/self/fd/FD" into buf (at least 40 bytes); returns the end (the NUL). */
char *xc_fd_path(char *buf, long fd);
XC_NORETURN void xc_die(const char *what, long err);
struct xc_line {
    int n;
    char b[400];
};
void xc_line_str(struct xc_line *l, const char *s);
void xc_line_dec(struct xc_line *l, long v);
void xc_line_hex(struct xc_line *l, unsigned long v);
void xc_line_flush(struct xc_line *l, int fd);

/* decode.c */
int xc_insn_len(const uint8_t *p, int avail);
int xc_insn_is_padding(const uint8_t *p, int len);
unsigned long xc_insn_branch_target(const uint8_t *p, int len, unsigned long at);
int xc_insn_ends_flow(const uint8_t *p, int len);
int xc_insn_is_indirect_jmp(const uint8_t *p, int len);
int xc_insn_movable(const uint8_t *p, int len);

/* filter.c */
long xc_install_filter(void);

/* libos.c */
extern struct xc_stats *xc_stats;
/* The profile entry of call *nr* (xc_stats set): 0 unless the container has a profile. */
static inline unsigned int xc_profile_of(long nr)
{
    return (xc_stats->flags & XC_FLAG_PROFILE) ? xc_stats->profile[nr] : 0;
}
void xc_stats_attach(void);
void xc_rw_init(long pid);
void xc_ppid_init(void);
void xc_ppid_watch(void);
const long *xc_cached_answer(long nr);
long xc_getpid(void);
long xc_getpid_peek(void);
int xc_exec_request_take(long pid, int argc, char **argv, struct xc_exec_req *out);

struct xc_process {
    struct xc_sigaction app_sigsys; /* what the app asked for SIGSYS */
    struct xc_sigaction app_fault[2]; /* ... for SIGBUS and SIGSEGV (xc_fault_handler) */
    int libos_fd;          /* fd of the LibOS image, kept for execve */
    int close_after_load;  /* fexecve's copy of a close-on-exec fd, or -1 */
    uint64_t exe_dev, exe_ino; /* the program's file, in the table of running programs
                                  (running.c); ino 0: not entered */
    uint64_t exe_ro;       /* ... on a read-only mount */
    uint64_t exe_mnt;      /* ... its mount (statx's mnt_id) and change time (ns), where exe[] was */
    int64_t exe_ctime;     /* read off it and is the only name it has there (one link): an execve
                              of the same file passes exe[] on (XC_REQ_SAME_EXE); 0: not so */
    char exe[4096];        /* the program this process runs (for /proc/self/exe); last: of
                              its page-and-more only the bytes a path needs are touched */
};
extern struct xc_process xc_proc;
void xc_sigsys_handler(int sig, struct xc_siginfo_sys *si, struct xc_ucontext *uc);
long xc_install_handler(int on_stack);
long xc_install_fault_handlers(void);
void xc_fault_handler(int sig, struct xc_siginfo_sys *si, struct xc_ucontext *uc);
/* gate.S: the program's memory, read or written by the LibOS; -XC_EFAULT where
 * Linux would answer EFAULT (xc_fault_handler resumes them) */
long xc_user_copy(void *dst, const void *src, unsigned long n);
long xc_user_copy8(void *dst, const void *src, unsigned long nq);
long xc_user_strcpy(char *dst, const char *src, unsigned long max);
void xc_seal(void);
unsigned long xc_code_end(void);
void xc_unseal(void);

/* abom.c */
extern int xc_abom_on;
void xc_abom_init(void);
int xc_abom_table_placed(void);
void xc_abom_try(long nr, unsigned long call_addr);
void xc_abom_fork_begin(void);
void xc_abom_forget(unsigned long addr, unsigned long len);
unsigned long xc_abom_held(unsigned long call_addr, long *nr);
unsigned long xc_abom_held_fault(unsigned long ip);
void xc_abom_fork_end(void);
void xc_abom_threads(void);
int xc_abom_threaded(void);
long xc_abom_dispatch(long nr, long a0, long a1, long a2, long a3, long a4, long a5);
#define XC_DIRECT_PATH1 0x100 /* xc_direct_fds: the second argument is a path */
#define XC_DIRECT_OPEN2 0x200 /* ... and the third an open's flags (xc_open_writes) */
#define XC_DIRECT_STAT 0x400  /* xc_direct_fds: served by xc_stat_direct (newfstatat through statx) */
long xc_stat_direct(long dfd, const char *path, void *statbuf, long flags);
/* `#!` levels an exec follows (Linux: 5; the sixth is ELOOP): the loader
 * walks them, and execve checks them first (libos.c, do_exec) */
#define XC_SHEBANG_MAX 5
long xc_parse_shebang(const char *hdr, long n, char *line, char **interp, char **arg);
int xc_direct_fds(long nr);
unsigned long xc_abom_guard(unsigned long ip);
extern int xc_fsgsbase;
const long *xc_tid_off(void);
long xc_tid_learn(unsigned long clear_child_tid);
long xc_tid_known(long tid);
extern uint64_t xc_gate_back_head[XC_GATE_HEAD], xc_gate_back[XC_GATE_DIRECT - XC_GATE_HEAD];
extern char xc_gate_direct[];

/* vdso.c: the kernel's vDSO, when the process has one (and has not unmapped it) */
struct xc_vdso {
    long (*clock_gettime)(long clk, void *ts);
    long (*clock_getres)(long clk, void *ts);
    long (*gettimeofday)(void *tv, void *tz);
    long (*time)(long *t);
    long (*getcpu)(unsigned *cpu, unsigned *node, void *unused);
    unsigned long lo, hi; /* its mapping */
    long hres_ns;         /* the high-resolution timers' resolution (1 ns, or a tick) */
    long coarse_ns;       /* the COARSE clocks': a tick */
};
extern struct xc_vdso xc_vdso;
void xc_vdso_init(const uint64_t *auxv);
void xc_vdso_forget(unsigned long addr, unsigned long len);
int xc_vdso_trapped(unsigned long ip);

const char *xc_interp_path(const char *p);

/* running.c: the table of running programs (ETXTBSY) */
#define XC_ETXTBSY 26
#define XC_EROFS 30
void xc_txt_learn(long fd, const struct xc_statx *st);
void xc_txt_enter(long pid);
void xc_txt_leave(void);
int xc_txt_writes(long flags);
long xc_txt_open(long dirfd, const char *path, long flags, long mode);
extern const unsigned char xc_open_writes[512];

/* loader.c */
XC_NORETURN void xc_load_and_run(const char *path, int argc, char **argv, int argv_made, char **envp,
                                 uint64_t *auxv);

#endif
