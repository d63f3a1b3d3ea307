/*
 * X-LibOS: the system call side.
 *
 * Every `syscall` the program executes outside the gate is stopped by the
 * filter and delivered as SIGSYS to xc_sigsys_handler, on the thread that
 * made it, with the program's registers in the signal frame.  The handler
 * looks the number up in the table built from syscalls.def, runs the
 * handler, and writes the result into the frame's rax; rt_sigreturn then
 * resumes the program after its `syscall` as if the kernel had answered.
 *
 * Signals: the handler is installed with SA_NODEFER and an empty sa_mask,
 * so a signal for the program can interrupt a blocking forwarded call (its
 * handler then runs on top of ours, and its own system calls trap again);
 * the program's signal mask is kept in the frame, which is why
 * rt_sigprocmask is answered by editing the frame's mask.  SIGSYS itself is
 * the LibOS's: it is never blocked, and the program's handler for it is only
 * recorded.
 */
#include "xc.h"

#include <asm/unistd.h>

/* Last of the sealed state (layout.ld, section xc_state, after the bss):
 * the small variables of every file and the start of xc_proc share one
 * page, and of the page after it only a path longer than ~3.5 KB writes. */
struct xc_process xc_proc __attribute__((section("xc_state")));
struct xc_stats *xc_stats;

#define PPID_NONE 1    /* xc_rw.ppid_lazy */
#define PPID_UNKNOWN 2

/* State the LibOS changes while the program runs: its own small mapping,
 * since the image's pages are sealed read-only. */
struct xc_rw {
    long pid;          /* getpid's answer plus one, 0 until asked */
    int pid_uncached;  /* memory shared with a child process (CLONE_VM without CLONE_THREAD) */
    long ppid;         /* getppid's answer plus one (it may be 0), 0 until asked or after the parent died */
    int ppid_watched;  /* the host sends SIGSYS when the parent dies (PR_SET_PDEATHSIG) */
    int ppid_lazy;     /* PPID_NONE: not yet, but the LibOS may ask for it at the first getppid
                          (xc_ppid_watch); PPID_UNKNOWN: not asked yet what the host has */
    int ids_uncached;  /* a set*id call ran: ids may now differ between threads */
    int ids_known[2];  /* getresuid's, getresgid's answers are in ids[] */
    unsigned int ids[2][3];
    long owner;        /* the process whose LibOS state this is (not a CLONE_VM child's); 0: this
                          one, not asked yet (set before a CLONE_VM child is made: owns_state) */
    long tid_off;      /* the program set its own gs base: gettid is the host's (xc_tid_*) */
    unsigned long uts_seq; /* uname's answer: odd while being written */
    uint64_t uts_gen;      /* ... for this xc_stats->uts_generation, plus one (0: none) */
    char uts[6 * 65];
    int rng_lock, rng_seeded; /* getrandom's generator (rng_fill) */
    long rng_pid;             /* ... seeded in this process (a fork child's copy is not seeded) */
    uint32_t rng_key[8];
    uint64_t rng_counter, rng_left; /* blocks made, blocks left before a reseed */
    uint32_t rng_buf[128];    /* 8 blocks: the next key, then output not yet given */
    unsigned int rng_avail;   /* bytes of output left at the end of rng_buf */
};
_Static_assert(sizeof(struct xc_rw) <= 4096 - XC_RW_ABOM_HEAD - 8 * XC_GATE_HEAD,
               "struct xc_rw: the first writable page but ABOM's head and the first direct gates' "
               "return addresses (XC_RW_ABOM_HEAD, XC_GATE_HEAD, abi.h)");
static struct xc_rw *rw;

extern char xc_rw_page[4096 - XC_RW_ABOM_HEAD - 8 * XC_GATE_HEAD]; /* gate.S: in the pages the seal leaves writable */

void xc_rw_init(long pid)
{
    rw = (struct xc_rw *)xc_rw_page; /* zero: nothing known yet, owner 0 (this process) */
    if (pid > 0 && !xc_fsgsbase)
        rw->pid = pid + 1; /* (the page is written at start anyway; else the gs base holds it) */
}

#define CLONE_CHILD_SETTID 0x1000000
#define CLONE_CHILD_CLEARTID 0x200000

/* In a new process (fork, vfork, clone without CLONE_VM) made with clone
 * *flags* and *ctid*: its state is its own, its random numbers are not its
 * parent's (rng_fill reseeds in a new process, seen by its pid), its pid
 * and parent are not its parent's (the gs base, or the parent forgot its
 * cache before the clone: pid_forget), and the host's parent-death signal
 * is cleared (fork clears it): the LibOS watches again at the first
 * getppid (or, not having asked the host yet, asks it then: none).  Its
 * thread learns its tid, which is returned (the pid of the
 * new process, whose only thread it is; 0 if not learnt): where the clone
 * had the kernel write it at *ctid* (CLONE_CHILD_SETTID, as glibc's fork
 * does), read from there, else from set_tid_address (xc_tid_learn, given
 * the child_tid of a CLONE_CHILD_CLEARTID, else 0).  No other host call,
 * and no write where the value is already right: the page stays shared
 * with the parent until either changes it (a fork child that only exits
 * copies none of it). */
XC_HOT static long child_owns_state(unsigned long flags, unsigned long ctid)
{
    if (rw) {
        if (rw->owner)
            rw->owner = 0;
        if ((rw->ppid_lazy != PPID_NONE && rw->ppid_lazy != PPID_UNKNOWN) || rw->ppid_watched) {
            rw->ppid_lazy = PPID_NONE;
            rw->ppid_watched = 0;
        }
        if (rw->tid_off)
            return 0;
    }
    int32_t t = 0;
    if (xc_fsgsbase && (flags & CLONE_CHILD_SETTID) && xc_user_copy(&t, (const void *)ctid, sizeof t) == 0 &&
        t > 0)
        return xc_tid_known(t);
    return xc_tid_learn(flags & CLONE_CHILD_CLEARTID ? ctid : 0);
}

/* Not a child sharing the parent's memory until it execs (posix_spawn)? */
static int owns_state(void)
{
    return rw && (rw->owner == 0 || rw->owner == H0(__NR_getpid));
}

#define CLONE_THREAD 0x10000

/* Before a clone: a new process must not inherit our cached pid, and one
 * that shares our memory must never use the cache (nor take our state for
 * its own: owns_state).  Returns what pid_remember gives back to the parent
 * of a process that does not share its memory. */
XC_HOT static long pid_forget(unsigned long flags)
{
    if (!rw || (flags & CLONE_THREAD))
        return 0;
    long kept = rw->pid;
    if (flags & 0x100 /* CLONE_VM */) {
        rw->pid_uncached = 1;
        if (!rw->owner)
            rw->owner = H0(__NR_getpid);
    }
    if (rw->pid) /* (no write when there is nothing to forget: see child_owns_state) */
        rw->pid = 0;
    if (rw->ppid)
        rw->ppid = 0;
    return kept;
}

/* After the clone, in the parent of a process that does not share its
 * memory (any more): its own cached pid again (the child got the copy
 * without it).  Its ppid is asked again. */
XC_HOT static void pid_remember(long kept)
{
    if (rw && kept)
        __atomic_store_n(&rw->pid, kept, __ATOMIC_RELAXED);
}

#define PR_SET_PDEATHSIG 1
#define PR_GET_PDEATHSIG 2

/* getppid is answered from a cache that the parent's death empties: the
 * host sends SIGSYS then (PR_SET_PDEATHSIG), which xc_sigsys_handler tells
 * from a trap by its si_code.  A program that asks for its own parent-death
 * signal gets it from the host, and the cache is off until it asks for 0. */
void xc_ppid_watch(void)
{
    if (!rw)
        return;
    rw->ppid = 0;
    rw->ppid_lazy = 0;
    rw->ppid_watched = H2(__NR_prctl, PR_SET_PDEATHSIG, XC_SIGSYS) == 0;
}

/* At start the host's parent-death signal is ours (SIGSYS, left by the
 * image before an execve), none, which the LibOS replaces by its own at the
 * first getppid (ppid_lazy), or the program's own, kept across execve; which
 * one is asked at the first getppid (ppid_learn), not at every start. */
void xc_ppid_init(void)
{
    if (rw)
        rw->ppid_lazy = PPID_UNKNOWN;
}

static void ppid_learn(void)
{
    int sig = 0;
    rw->ppid_lazy = 0;
    if (H2(__NR_prctl, PR_GET_PDEATHSIG, &sig) != 0)
        return;
    rw->ppid_watched = sig == XC_SIGSYS;
    rw->ppid_lazy = sig == 0 ? PPID_NONE : 0;
}

static long sys_getpid(long nr, const long *a, struct xc_ucontext *uc);
static long sys_gettid(long nr, const long *a, struct xc_ucontext *uc);

static long sys_getppid(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)a, (void)uc;
    /* Watch before asking (a parent that dies after the answer is seen), from
     * the main thread only: the host's parent-death signal is a thread's and
     * goes with it, and the main thread is the one that lives as long as the
     * process. */
    if (rw && rw->ppid_lazy == PPID_UNKNOWN)
        ppid_learn();
    if (rw && rw->ppid_lazy == PPID_NONE && !rw->pid_uncached && sys_gettid(0, 0, 0) == sys_getpid(0, 0, 0))
        xc_ppid_watch();
    if (!rw || rw->pid_uncached || !rw->ppid_watched)
        return H0(__NR_getppid);
    long p = __atomic_load_n(&rw->ppid, __ATOMIC_RELAXED);
    if (p > 0)
        return p - 1;
    p = H0(__NR_getppid);
    if (p >= 0)
        __atomic_store_n(&rw->ppid, p + 1, __ATOMIC_RELAXED);
    return p;
}

/* prctl: the parent-death signal is virtualized (see xc_ppid_watch). */
static long sys_prctl(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)uc;
    int opt = (int)a[0];
    if (opt == PR_SET_PDEATHSIG && rw) {
        unsigned long sig = (unsigned long)a[1];
        if (sig > 64)
            return -XC_EINVAL;
        if (sig == 0) {
            xc_ppid_watch();
            return 0;
        }
        long r = H2(__NR_prctl, PR_SET_PDEATHSIG, sig);
        if (r == 0) {
            rw->ppid_watched = 0;
            rw->ppid_lazy = 0;
            rw->ppid = 0;
        }
        return r;
    }
    if (opt == 26 /* PR_SET_TSC */ && (int)a[1] == 2 /* PR_TSC_SIGSEGV */) {
        /* rdtsc faults from now on: the vDSO's clocks read it */
        long r = H2(__NR_prctl, opt, a[1]);
        if (r == 0 && xc_vdso.lo)
            xc_vdso_forget(xc_vdso.lo, xc_vdso.hi - xc_vdso.lo);
        return r;
    }
    if (opt == PR_GET_PDEATHSIG && rw && rw->ppid_watched) {
        long r = H2(__NR_prctl, PR_GET_PDEATHSIG, a[1]); /* the host checks the pointer */
        if (r == 0)
            *(int *)a[1] = 0;
        return r;
    }
    return xc_host_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* Where getpid's or getppid's cached answer lives (the answer plus one; 0
 * until known and while it may not be used), for ABOM's trampolines. */
const long *xc_cached_answer(long nr)
{
    if (!rw)
        return 0;
    return nr == __NR_getpid ? &rw->pid : nr == __NR_getppid ? &rw->ppid : 0;
}

/* gettid and getpid: each thread keeps its tid in its gs base, and its
 * process's pid above it (bits 32-63: a pid is below 2^22), which x86-64
 * Linux programs leave alone (their TLS is fs).  Needs the FSGSBASE
 * instructions (AT_HWCAP2), set by the loader in xc_fsgsbase.  Every thread
 * learns its tid when it is born, from set_tid_address, which returns the
 * caller's tid and is given the value the kernel already holds (so it
 * changes nothing): the child_tid of a CLONE_CHILD_CLEARTID clone, else NULL,
 * as after an execve (xc_clone_thread for new threads, which take their
 * parent's pid, child_owns_state for new processes and the loader at start,
 * whose only thread's tid is the pid).  A register, not memory: a fork's
 * child needs no write to learn who it is, nor its parent one to remember
 * (pid_forget, pid_remember: the page they share is not copied for it).  A
 * program that sets its own gs base (arch_prctl ARCH_SET_GS) turns the
 * answers off for the whole process: its gettid then reads the thread's
 * clear_child_tid (PR_GET_TID_ADDRESS) and gives it back to
 * set_tid_address, its getpid goes to the cache in struct xc_rw.  No host
 * gettid is needed. */
int xc_fsgsbase;

const long *xc_tid_off(void)
{
    return xc_fsgsbase && rw ? &rw->tid_off : 0;
}

/* The only thread of a new process (a fork's child): its tid, which is the pid. */
XC_HOT long xc_tid_learn(unsigned long clear_child_tid)
{
    if (!xc_fsgsbase)
        return 0;
    return xc_tid_known(H1(__NR_set_tid_address, clear_child_tid));
}

/* The same with the tid already known (the loader's, from set_tid_address). */
XC_HOT long xc_tid_known(long t)
{
    if (!xc_fsgsbase)
        return 0;
    unsigned long ids = t > 0 ? (unsigned long)t | (unsigned long)t << 32 : 0;
    __asm__ volatile("wrgsbase %0" : : "r"(ids));
    return t > 0 ? t : 0;
}

/* This thread's gs base (its tid, and its process's pid above it); 0 where
 * the LibOS keeps none (no FSGSBASE, or the program set its own). */
XC_HOT static unsigned long gs_ids(void)
{
    if (!xc_fsgsbase || !rw || __atomic_load_n(&rw->tid_off, __ATOMIC_RELAXED))
        return 0;
    unsigned long g;
    __asm__ volatile("rdgsbase %0" : "=r"(g));
    return g;
}

#define PR_GET_TID_ADDRESS 40
static long sys_gettid(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)a, (void)uc;
    uint32_t t = (uint32_t)gs_ids();
    if (t)
        return (long)t;
    unsigned long clear_child_tid = 0;
    long r = H2(__NR_prctl, PR_GET_TID_ADDRESS, &clear_child_tid);
    if (r < 0)
        return r;
    return H1(__NR_set_tid_address, clear_child_tid);
}

/* arch_prctl: the program's own gs base turns gettid's answer off; until
 * then, ARCH_GET_GS reads the 0 the program would see. */
#define ARCH_SET_GS 0x1001
#define ARCH_GET_GS 0x1004
static long sys_arch_prctl(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)uc;
    if (xc_fsgsbase && rw && (int)a[0] == ARCH_SET_GS) {
        __atomic_store_n(&rw->tid_off, 1, __ATOMIC_RELAXED); /* patched sites read this */
        xc_unseal();
        xc_fsgsbase = 0; /* new threads keep the gs base they inherit (xc_clone_thread) */
        xc_seal();
        return H2(nr, a[0], a[1]);
    }
    if (xc_fsgsbase && rw && (int)a[0] == ARCH_GET_GS && !__atomic_load_n(&rw->tid_off, __ATOMIC_RELAXED)) {
        unsigned long zero = 0;
        return xc_user_copy((void *)a[1], &zero, sizeof zero) < 0 ? -XC_EFAULT : 0;
    }
    return H2(nr, a[0], a[1]);
}

XC_HOT static long sys_getpid(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)a, (void)uc;
    unsigned long g = gs_ids() >> 32;
    if (g)
        return (long)g;
    if (!rw || rw->pid_uncached)
        return H0(__NR_getpid);
    long p = __atomic_load_n(&rw->pid, __ATOMIC_RELAXED);
    if (p > 0)
        return p - 1;
    p = H0(__NR_getpid);
    if (p > 0)
        __atomic_store_n(&rw->pid, p + 1, __ATOMIC_RELAXED);
    return p;
}

/* The calling process's pid, from the cache where it may be used (abom.c). */
XC_HOT long xc_getpid(void)
{
    return sys_getpid(0, 0, 0);
}

/* The same, without filling the cache: for a process about to exit (a fork
 * child that only exits then writes none of the pages it shares with its
 * parent: no copy-on-write fault). */
XC_HOT long xc_getpid_peek(void)
{
    unsigned long g = gs_ids() >> 32;
    if (g)
        return (long)g;
    long p = rw && !rw->pid_uncached ? __atomic_load_n(&rw->pid, __ATOMIC_RELAXED) : 0;
    return p > 0 ? p - 1 : H0(__NR_getpid);
}

/* The exec request for this process and its *argv* (exec_request, or the
 * runtime's for the container's first program): 1 and *out* filled, its slot
 * freed; 0 if none.  The requests are read from the segment's file, not
 * through its mapping: the requests' page is never mapped in this process
 * (no fault for it, and nothing to drop from the page table afterwards),
 * and a request is found even where the container's processes scribbled
 * over the segment's head (it is then not attached).  The slot is freed
 * with a write of its pid: no other process writes a slot that holds a
 * pid (exec_request takes only free ones), and this process's old image,
 * which wrote it, is gone. */
int xc_exec_request_take(long pid, int argc, char **argv, struct xc_exec_req *out)
{
    struct xc_exec_req reqs[XC_EXEC_REQS]; /* (the stack the loader's scratch takes next anyway) */
    struct { void *b; unsigned long l; } iov = {reqs, sizeof reqs};
    if (H5(__NR_preadv2, XC_STATS_FD, &iov, 1, XC_EXEC_REQ_OFFSET, 0) != (long)sizeof reqs)
        return 0;
    uint32_t hash = xc_argv_hash(argc, argv);
    for (int i = 0; i < XC_EXEC_REQS; i++) {
        if (reqs[i].pid != pid || reqs[i].argv_hash != hash)
            continue;
        xc_memcpy(out, &reqs[i], sizeof *out);
        out->path[XC_EXEC_REQ_PATH - 1] = 0;
        out->exe[XC_EXEC_REQ_EXE - 1] = 0;
        int64_t free = 0; /* (a write that fails leaves the slot taken, as a killed caller's) */
        H4(__NR_pwrite64, XC_STATS_FD, &free, sizeof free,
           XC_EXEC_REQ_OFFSET + (long)i * (long)sizeof(struct xc_exec_req));
        return 1;
    }
    return 0;
}

/* Map the container's statistics segment, if the runtime gave one. */
void xc_stats_attach(void)
{
    long p = H6(__NR_mmap, 0, XC_STATS_SIZE, 3 /* PROT_READ|PROT_WRITE */, 1 /* MAP_SHARED */, XC_STATS_FD, 0);
    if (!XC_ERR(p) && ((struct xc_stats *)p)->magic == XC_STATS_MAGIC)
        xc_stats = (struct xc_stats *)p;
    else if (!XC_ERR(p))
        H2(__NR_munmap, p, XC_STATS_SIZE);
}

XC_HOT static int is_libos_fd(long fd)
{
    int f = (int)fd;
    return f == XC_LIBOS_FD || f == XC_STATS_FD ||
           (f == XC_TRACE_FD && xc_stats && (xc_stats->flags & XC_FLAG_TRACE));
}

typedef long (*xc_handler)(long nr, const long *a, struct xc_ucontext *uc);

#define USER_END 0x7ffffffff000UL /* TASK_SIZE on x86-64 with 4-level paging */

#define AT_FDCWD -100
#define AT_SYMLINK_NOFOLLOW 0x100
#define AT_REMOVEDIR 0x200
#define AT_EMPTY_PATH 0x1000
#define O_RDONLY 0
#define O_WRONLY 1
#define O_CREAT 0100
#define O_TRUNC 01000
#define O_CLOEXEC 02000000
#define O_PATH 010000000
#define O_DIRECTORY 0200000
#define F_DUPFD 0
#define F_GETFD 1
#define F_GETFL 3
#define CLONE_VM 0x100
#define CLONE_VFORK 0x4000
#define CLONE_NS_FLAGS 0x7e020000UL
#define SIG_BLOCK 0
#define SIG_UNBLOCK 1
#define SIG_SETMASK 2
#define SIGSYS_BIT XC_SIGBIT(XC_SIGSYS)

static long forward(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)uc;
    return xc_host_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* Arguments arrive as the 64-bit registers the program left: an `int`
 * argument's upper half is not defined, so handlers cast before comparing. */

/* --- files ------------------------------------------------------------- */

/* "/proc/self/exe" (also /proc/thread-self/exe and /proc/<own pid>/exe) names
 * the LibOS image to the kernel; the program expects its own file. */
static const char *exe_path(const char *head, const char *p);
static int is_libos_fd_path(const char *p);

/* The start of a path the program passed, copied for the LibOS's checks
 * (is_proc_self_exe, is_libos_fd_path): 0, or -EFAULT where Linux would
 * answer it.  A path too long to be one of those names gives "". */
#define PATH_HEAD 48
XC_HOT static long path_head(char head[PATH_HEAD], const char *p)
{
    head[0] = 0;
    if (!p)
        return 0; /* the host answers */
    long n = xc_user_strcpy(head, p, PATH_HEAD - 1);
    if (n < 0)
        return n;
    if (n == PATH_HEAD - 1)
        head[0] = 0;
    return 0;
}

/* The path the host should see: the program's own, or the program's file for
 * /proc/self/exe.  A path the LibOS cannot read goes to the host as it is,
 * which answers EFAULT after the checks Linux makes first (flags, sizes). */
static const char *host_path(char h[PATH_HEAD], const char *p)
{
    if (path_head(h, p) < 0)
        h[0] = 0;
    return exe_path(h, p);
}

static long sys_open(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    char h[PATH_HEAD];
    const char *p = host_path(h, (const char *)a[0]);
    if (is_libos_fd_path(h))
        return -XC_ENOENT;
    if (xc_txt_writes(a[1]))
        return xc_txt_open(AT_FDCWD, p, a[1], a[2]);
    return H4(__NR_openat, AT_FDCWD, p, a[1], a[2]);
}

static long sys_openat(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    char h[PATH_HEAD];
    const char *p = host_path(h, (const char *)a[1]);
    if (is_libos_fd_path(h))
        return -XC_ENOENT;
    if (xc_txt_writes(a[2]))
        return xc_txt_open(a[0], p, a[2], a[3]);
    return H4(__NR_openat, a[0], p, a[2], a[3]);
}

/* The stat family through statx: the host keeps one call for both.  Linux's
 * newfstatat is vfs_fstatat: with AT_EMPTY_PATH and an empty (or NULL) path
 * on an fd it is vfs_fstat, which ignores the other flags; else vfs_statx
 * with AT_NO_AUTOMOUNT added, for STATX_BASIC_STATS, where both sync flags
 * together are not refused (statx refuses them): they are FORCE_SYNC here,
 * which wins over DONT_SYNC in the filesystems that read them (nfs, fuse).
 * cp_new_stat and cp_statx copy the same kstat; struct stat's dev numbers
 * are new_encode_dev of statx's major and minor.  A statbuf Linux cannot
 * write is EFAULT after the lookup, as here. */
static uint64_t new_encode_dev(uint32_t major, uint32_t minor)
{
    return (minor & 0xffU) | (major << 8) | ((uint64_t)(minor & ~0xffU) << 12);
}

static long stat_via_statx(long dfd, const char *path, void *statbuf, long flags)
{
    int f = (int)flags;
    char c = 1;
    /* (with no flags but these, statx of an fd and an empty path is vfs_fstat
     * already: the path need not be read, as for glibc's fstat) */
    int plain = !(f & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT));
    if (!plain && (f & AT_EMPTY_PATH) && (int)dfd >= 0 && (!path || (xc_user_copy(&c, path, 1) == 0 && !c)))
        f = AT_EMPTY_PATH; /* vfs_fstat */
    else if ((f & AT_STATX_SYNC_TYPE) == AT_STATX_SYNC_TYPE)
        f = (f & ~AT_STATX_DONT_SYNC) | AT_NO_AUTOMOUNT;
    else
        f |= AT_NO_AUTOMOUNT;
    struct xc_statx x;
    long r = H5(__NR_statx, dfd, path, f, XC_STATX_BASIC_STATS, &x);
    if (r < 0)
        return r;
    /* every field stored once (no zeroing pass first), copied out by quadwords */
    uint64_t st[sizeof(struct xc_stat) / 8];
    st[0] = new_encode_dev(x.dev_major, x.dev_minor);
    st[1] = x.ino;
    st[2] = x.nlink;
    st[3] = x.mode | (uint64_t)x.uid << 32; /* st_mode, st_uid */
    st[4] = x.gid;                           /* st_gid, __pad0 */
    st[5] = new_encode_dev(x.rdev_major, x.rdev_minor);
    st[6] = x.size;
    st[7] = x.blksize;
    st[8] = x.blocks;
    st[9] = (uint64_t)x.atime.sec;
    st[10] = x.atime.nsec;
    st[11] = (uint64_t)x.mtime.sec;
    st[12] = x.mtime.nsec;
    st[13] = (uint64_t)x.ctime.sec;
    st[14] = x.ctime.nsec;
    st[15] = st[16] = st[17] = 0;
    _Static_assert(offsetof(struct xc_stat, uid) == 28 && offsetof(struct xc_stat, atime) == 72 &&
                   offsetof(struct xc_stat, unused) == 120, "struct stat's layout");
    return xc_user_copy8(statbuf, st, sizeof st / 8);
}

/* A patched newfstatat site whose fd is not the LibOS's and whose path
 * starts neither "/pro" nor "/dev" (put_direct, abom.c): no dispatch. */
long xc_stat_direct(long dfd, const char *path, void *statbuf, long flags)
{
    return stat_via_statx(dfd, path, statbuf, flags);
}

/* newfstatat: /proc/self/exe is the program.  (stat, lstat, fstat reach it
 * too.) */
static long sys_newfstatat(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    const char *p = (const char *)a[1];
    char h[PATH_HEAD];
    if (!((int)a[3] & AT_SYMLINK_NOFOLLOW))
        p = host_path(h, p);
    return stat_via_statx(a[0], p, (void *)a[2], a[3]);
}

static long sys_creat(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    return xc_txt_open(AT_FDCWD, (const char *)a[0], O_CREAT | O_WRONLY | O_TRUNC, a[1]);
}

static long sys_stat(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    char h[PATH_HEAD];
    return stat_via_statx(AT_FDCWD, host_path(h, (const char *)a[0]), (void *)a[1], 0);
}

static long sys_lstat(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    return stat_via_statx(AT_FDCWD, (const char *)a[0], (void *)a[1], AT_SYMLINK_NOFOLLOW);
}

/* fstat takes an unsigned fd: a negative one is no open file, where
 * newfstatat(AT_FDCWD, "", AT_EMPTY_PATH) would be the cwd. */
static long sys_fstat(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    if ((int)a[0] < 0)
        return -XC_EBADF;
    return stat_via_statx(a[0], "", (void *)a[1], AT_EMPTY_PATH);
}

/* fdatasync as fsync: the same checks and errors (vfs_fsync_range), the
 * file's metadata flushed as well. */
static long sys_fdatasync(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    return H1(__NR_fsync, a[0]);
}

static long sys_access(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    return H4(__NR_faccessat2, AT_FDCWD, a[0], a[1], 0);
}

static long sys_faccessat(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    return H4(__NR_faccessat2, a[0], a[1], a[2], 0);
}

static long sys_pipe(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    return H2(__NR_pipe2, a[0], 0);
}

/* readv and writev through preadv2 and pwritev2 at offset -1, which Linux
 * serves with the same code (do_readv, do_writev). */
static long sys_readv(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    return H6(__NR_preadv2, a[0], a[1], a[2], -1, 0, 0);
}

static long sys_writev(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    return H6(__NR_pwritev2, a[0], a[1], a[2], -1, 0, 0);
}

static long sys_preadv(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    if (a[3] < 0)
        return -XC_EINVAL;
    return H5(__NR_preadv2, a[0], a[1], a[2], a[3], 0);
}

static long sys_pwritev(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    if (a[3] < 0)
        return -XC_EINVAL;
    return H5(__NR_pwritev2, a[0], a[1], a[2], a[3], 0);
}

static long sys_dup(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    return H3(__NR_fcntl, a[0], F_DUPFD, 0);
}

static long sys_dup2(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    if (is_libos_fd(a[1]))
        return -XC_EBADF;
    if ((int)a[0] == (int)a[1]) {
        long r = H2(__NR_fcntl, a[0], F_GETFD);
        return r < 0 ? r : a[1];
    }
    return H3(__NR_dup3, a[0], a[1], 0);
}

static long sys_dup3(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    if (is_libos_fd(a[1]))
        return -XC_EBADF;
    return H3(__NR_dup3, a[0], a[1], a[2]);
}

static long sys_fcntl(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    if (is_libos_fd(a[0]))
        return -XC_EBADF;
    return H3(__NR_fcntl, a[0], a[1], a[2]);
}

/* close_range around the LibOS's own fds [XC_STATS_FD, XC_LIBOS_FD]. */
static long sys_close_range(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    unsigned long lo = (unsigned int)a[0], hi = (unsigned int)a[1];
    const unsigned long keep_lo = XC_STATS_FD, keep_hi = XC_LIBOS_FD;
    long r = 0;
    if (lo > hi)
        return -XC_EINVAL;
    if (hi < keep_lo || lo > keep_hi)
        return H3(__NR_close_range, lo, hi, a[2]);
    if (lo < keep_lo)
        r = H3(__NR_close_range, lo, keep_lo - 1, a[2]);
    if (r == 0 && hi > keep_hi)
        r = H3(__NR_close_range, keep_hi + 1, hi, a[2]);
    return r;
}

static long sys_truncate(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    long fd = xc_txt_open(AT_FDCWD, (const char *)a[0], O_WRONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return fd;
    long r = H2(__NR_ftruncate, fd, a[1]);
    H1(__NR_close, fd);
    return r;
}

static long sys_statfs(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    long fd = H3(__NR_openat, AT_FDCWD, a[0], O_PATH | O_CLOEXEC);
    if (fd < 0)
        return fd;
    long r = H2(__NR_fstatfs, fd, a[1]);
    H1(__NR_close, fd);
    return r;
}

#define AT2(name, call, ...)                                               \
    static long sys_##name(long nr, const long *a, struct xc_ucontext *uc) \
    {                                                                      \
        (void)nr, (void)uc, (void)a;                                       \
        return call(__VA_ARGS__);                                          \
    }
AT2(rename, H5, __NR_renameat2, AT_FDCWD, a[0], AT_FDCWD, a[1], 0)
AT2(renameat, H5, __NR_renameat2, a[0], a[1], a[2], a[3], 0)
AT2(mkdir, H3, __NR_mkdirat, AT_FDCWD, a[0], a[1])
AT2(rmdir, H3, __NR_unlinkat, AT_FDCWD, a[0], AT_REMOVEDIR)
AT2(unlink, H3, __NR_unlinkat, AT_FDCWD, a[0], 0)
AT2(link, H5, __NR_linkat, AT_FDCWD, a[0], AT_FDCWD, a[1], 0)
AT2(symlink, H3, __NR_symlinkat, a[0], AT_FDCWD, a[1])
AT2(chmod, H4, __NR_fchmodat2, AT_FDCWD, a[0], a[1], 0)
AT2(fchmodat, H4, __NR_fchmodat2, a[0], a[1], a[2], 0)
AT2(chown, H5, __NR_fchownat, AT_FDCWD, a[0], a[1], a[2], 0)
AT2(lchown, H5, __NR_fchownat, AT_FDCWD, a[0], a[1], a[2], AT_SYMLINK_NOFOLLOW)
AT2(mknod, H4, __NR_mknodat, AT_FDCWD, a[0], a[1], a[2])
AT2(accept, H4, __NR_accept4, a[0], a[1], a[2], 0)

/* access_ok of x86-64 for a buffer the kernel clamps to MAX_RW_COUNT first
 * (import_ubuf): its end may not pass TASK_SIZE_MAX, 2^47 less a page, or
 * with 5-level paging 2^56 less a page (then, and only then, the kernel
 * honours a mapping hint above 2^47: asked only for an end between the two). */
#define MAX_RW_COUNT 0x7ffff000UL
static int user_range_ok(unsigned long p, unsigned long n)
{
    unsigned long end = p + n;
    if (end < p || end > (1UL << 56) - 4096)
        return 0;
    if (end <= (1UL << 47) - 4096)
        return 1;
    long m = H6(__NR_mmap, 1UL << 48, 4096, 0 /* PROT_NONE */, 0x22 /* MAP_PRIVATE|MAP_ANONYMOUS */, -1, 0);
    if (m < 0)
        return 0;
    H2(__NR_munmap, m, 4096);
    return (unsigned long)m >= (1UL << 47);
}

/* recvfrom through recvmsg with a one-entry iovec and, if the program asked
 * for the address, a sockaddr_storage of the LibOS's.  What differs is made
 * as __sys_recvfrom does it: the buffer is checked before the fd (EFAULT
 * before EBADF and ENOTSOCK), its length clamped to MAX_RW_COUNT (recvmsg
 * would refuse a negative one), MSG_CMSG_COMPAT not passed (recvmsg refuses
 * it; with no control buffer it means nothing), and the address copied out
 * as move_addr_to_user does: *addrlen read after the data was taken (EFAULT),
 * a negative one EINVAL, at most the address's length copied, then its full
 * length written back.  (recvmsg always gives the protocol a place for the
 * address; only a host's cgroup BPF recvmsg hook could see that.) */
struct xc_iovec {
    void *base;
    unsigned long len;
};
struct xc_msghdr {
    void *name;
    int namelen;
    struct xc_iovec *iov;
    unsigned long iovlen;
    void *control;
    unsigned long controllen;
    int flags;
};

static long sys_recvfrom(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    unsigned long len = (unsigned long)a[2] > MAX_RW_COUNT ? MAX_RW_COUNT : (unsigned long)a[2];
    struct xc_iovec iov = {(void *)a[1], len};
    uint64_t name[16]; /* struct sockaddr_storage */
    struct xc_msghdr m = {a[4] ? name : 0, a[4] ? (int)sizeof name : 0, &iov, 1, 0, 0, 0};
    long r = H3(__NR_recvmsg, a[0], &m, (unsigned int)a[3] & ~0x80000000U /* MSG_CMSG_COMPAT */);
    if ((r == -XC_EBADF || r == -XC_ENOTSOCK) && !user_range_ok((unsigned long)a[1], len))
        return -XC_EFAULT;
    if (r < 0 || !a[4])
        return r;
    int ulen, klen = m.namelen;
    if (xc_user_copy(&ulen, (const void *)a[5], sizeof ulen) < 0)
        return -XC_EFAULT;
    if (ulen > klen)
        ulen = klen;
    if (ulen < 0)
        return -XC_EINVAL;
    if (ulen && xc_user_copy((void *)a[4], name, (unsigned long)ulen) < 0)
        return -XC_EFAULT;
    if (xc_user_copy((void *)a[5], &klen, sizeof klen) < 0)
        return -XC_EFAULT;
    return r;
}

AT2(epoll_create, H1, __NR_epoll_create1, 0)
AT2(eventfd, H2, __NR_eventfd2, a[0], 0)
AT2(inotify_init, H1, __NR_inotify_init1, 0)
AT2(getpgrp, H1, __NR_getpgid, 0)
AT2(getrlimit, H4, __NR_prlimit64, 0, a[0], 0, a[1])
AT2(setrlimit, H4, __NR_prlimit64, 0, a[0], a[1], 0)

/* fchmod and fchown through their *at forms with AT_EMPTY_PATH, which
 * would also take an O_PATH fd (fchmod and fchown answer EBADF) and, for a
 * negative fd, the cwd (AT_FDCWD): both refused first. */
static long plain_fd(long fd)
{
    if ((int)fd < 0)
        return -XC_EBADF;
    long fl = H2(__NR_fcntl, fd, F_GETFL);
    if (fl < 0)
        return fl;
    return (fl & O_PATH) ? -XC_EBADF : 0;
}

static long sys_fchmod(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    long r = plain_fd(a[0]);
    return r < 0 ? r : H4(__NR_fchmodat2, a[0], "", a[1], AT_EMPTY_PATH);
}

static long sys_fchown(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    long r = plain_fd(a[0]);
    return r < 0 ? r : H5(__NR_fchownat, a[0], "", a[1], a[2], AT_EMPTY_PATH);
}

/* The twelve xattr calls through the four *xattrat calls (Linux 6.13),
 * which is how Linux itself serves them: path_{set,get,list,remove}xattrat
 * with (AT_FDCWD, path, 0), (AT_FDCWD, path, AT_SYMLINK_NOFOLLOW) or (fd,
 * NULL, AT_EMPTY_PATH).  The value's size travels as 32 bits in struct
 * xattr_args: a larger one is passed as 0xffffffff, over XATTR_SIZE_MAX as
 * the original was (setxattr: E2BIG; getxattr: capped). */
struct xattr_args_ {
    uint64_t value;
    uint32_t size, flags;
};

static uint32_t xattr_size(long n)
{
    return (unsigned long)n > 0xffffffffUL ? 0xffffffffU : (uint32_t)n;
}

static long setxattr_at(long dfd, long path, long at, const long *v /* name, value, size, flags */)
{
    struct xattr_args_ args = {(uint64_t)v[1], xattr_size(v[2]), (uint32_t)v[3]};
    return H6(__NR_setxattrat, dfd, path, at, v[0], &args, sizeof args);
}

static long getxattr_at(long dfd, long path, long at, const long *v /* name, value, size */)
{
    struct xattr_args_ args = {(uint64_t)v[1], xattr_size(v[2]), 0};
    return H6(__NR_getxattrat, dfd, path, at, v[0], &args, sizeof args);
}

AT2(setxattr, setxattr_at, AT_FDCWD, a[0], 0, a + 1)
AT2(lsetxattr, setxattr_at, AT_FDCWD, a[0], AT_SYMLINK_NOFOLLOW, a + 1)
AT2(fsetxattr, setxattr_at, a[0], 0, AT_EMPTY_PATH, a + 1)
AT2(getxattr, getxattr_at, AT_FDCWD, a[0], 0, a + 1)
AT2(lgetxattr, getxattr_at, AT_FDCWD, a[0], AT_SYMLINK_NOFOLLOW, a + 1)
AT2(fgetxattr, getxattr_at, a[0], 0, AT_EMPTY_PATH, a + 1)
AT2(listxattr, H5, __NR_listxattrat, AT_FDCWD, a[0], 0, a[1], a[2])
AT2(llistxattr, H5, __NR_listxattrat, AT_FDCWD, a[0], AT_SYMLINK_NOFOLLOW, a[1], a[2])
AT2(flistxattr, H5, __NR_listxattrat, a[0], 0, AT_EMPTY_PATH, a[1], a[2])
AT2(removexattr, H4, __NR_removexattrat, AT_FDCWD, a[0], 0, a[1])
AT2(lremovexattr, H4, __NR_removexattrat, AT_FDCWD, a[0], AT_SYMLINK_NOFOLLOW, a[1])
AT2(fremovexattr, H4, __NR_removexattrat, a[0], 0, AT_EMPTY_PATH, a[1])

/* /proc/self/exe, /proc/thread-self/exe or /proc/<our pid>/exe */
XC_HOT static int is_proc_self_exe(const char *p)
{
    if (!p || p[0] != '/' || p[1] != 'p' || xc_strncmp(p, "/proc/", 6) != 0)
        return 0;
    p += 6;
    if (xc_strncmp(p, "self/", 5) == 0) {
        p += 5;
    } else if (xc_strncmp(p, "thread-self/", 12) == 0) {
        p += 12;
    } else {
        long v = 0;
        if (*p < '0' || *p > '9')
            return 0;
        while (*p >= '0' && *p <= '9')
            v = v * 10 + (*p++ - '0');
        if (*p++ != '/' || xc_strcmp(p, "exe") != 0 || v != H0(__NR_getpid))
            return 0;
        return 1;
    }
    return xc_strcmp(p, "exe") == 0;
}

static const char *exe_path(const char *head, const char *p)
{
    return is_proc_self_exe(head) && xc_proc.exe[0] ? xc_proc.exe : p;
}

/* loader.c: the file a `#!` line or PT_INTERP names, opened as the
 * program's execve would: Linux opens interpreters before the new image
 * replaces the old, so /proc/self/exe is the calling program (its path came
 * in argv[0], xc_main); the LibOS's own fds are not there (ENOENT, as
 * open says).  NULL: ENOENT. */
const char *xc_interp_path(const char *p)
{
    if (is_libos_fd_path(p))
        return 0;
    return is_proc_self_exe(p) && xc_proc.exe[0] ? xc_proc.exe : p;
}

/* Whether *n* is the name of one of the LibOS's fds (XC_STATS_FD,
 * XC_LIBOS_FD) in /proc/<pid>/fd: a decimal number, as procfs writes it (a
 * leading 0 names no fd there). */
static int is_libos_fd_name(const char *n)
{
    if (n[0] < '1' || n[0] > '9')
        return 0;
    long v = 0;
    for (int i = 0; n[i]; i++) {
        if (n[i] < '0' || n[i] > '9' || i >= 9)
            return 0;
        v = v * 10 + (n[i] - '0');
    }
    return v == XC_STATS_FD || v == XC_LIBOS_FD;
}

/* /proc/self/fd/N and /dev/fd/N of the LibOS's fds do not exist for the program. */
static int is_libos_fd_path(const char *p)
{
    if (!p || p[0] != '/')
        return 0;
    if (xc_strncmp(p, "/proc/self/fd/", 14) == 0)
        p += 14;
    else if (xc_strncmp(p, "/dev/fd/", 8) == 0)
        p += 8;
    else
        return 0;
    return is_libos_fd_name(p);
}

static long readlink_exe(char *buf, long size)
{
    long n = (long)xc_strlen(xc_proc.exe);
    if (size <= 0)
        return -XC_EINVAL;
    if (n > size)
        n = size;
    return xc_user_copy(buf, xc_proc.exe, (unsigned long)n) < 0 ? -XC_EFAULT : n;
}

static long sys_readlink(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    char h[PATH_HEAD];
    if (path_head(h, (const char *)a[0]) < 0)
        h[0] = 0; /* the host answers, after its own checks (EINVAL for a bad size first) */
    if (is_proc_self_exe(h) && xc_proc.exe[0])
        return readlink_exe((char *)a[1], (int)a[2]);
    return H4(__NR_readlinkat, AT_FDCWD, a[0], a[1], a[2]);
}

static long sys_readlinkat(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    char h[PATH_HEAD];
    if (path_head(h, (const char *)a[1]) < 0)
        h[0] = 0;
    if (is_proc_self_exe(h) && xc_proc.exe[0])
        return readlink_exe((char *)a[2], (int)a[3]);
    return H4(__NR_readlinkat, a[0], a[1], a[2], a[3]);
}

struct timespec_ { long sec, nsec; };
struct timeval_ { long sec, usec; };

static long utimes_common(long dirfd, const char *path, const struct timeval_ *tv, int flags)
{
    struct timespec_ ts[2];
    if (!tv)
        return H4(__NR_utimensat, dirfd, path, 0, flags);
    for (int i = 0; i < 2; i++) {
        if (tv[i].usec < 0 || tv[i].usec >= 1000000)
            return -XC_EINVAL;
        ts[i].sec = tv[i].sec;
        ts[i].nsec = tv[i].usec * 1000;
    }
    return H4(__NR_utimensat, dirfd, path, ts, flags);
}

static long sys_utimes(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    return utimes_common(AT_FDCWD, (const char *)a[0], (const struct timeval_ *)a[1], 0);
}

static long sys_utime(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    const long *ub = (const long *)a[1]; /* struct utimbuf { actime, modtime } */
    if (!ub)
        return H4(__NR_utimensat, AT_FDCWD, a[0], 0, 0);
    struct timespec_ ts[2] = {{ub[0], 0}, {ub[1], 0}};
    return H4(__NR_utimensat, AT_FDCWD, a[0], ts, 0);
}

/* getdents64: leave the LibOS's fds out of a /proc/<pid>/fd listing.  The
 * entries are looked at first; only a listing that holds their numbers
 * pays for checking which directory it is. */
struct dirent64_ {
    uint64_t ino;
    int64_t off;
    uint16_t reclen;
    uint8_t type;
    char name[];
};



static int is_proc_fd_dir(long fd)
{
    char link[64], target[64];
    xc_fd_path(link, fd);
    long n = H4(__NR_readlinkat, AT_FDCWD, link, target, sizeof target - 1);
    if (n < 9)
        return 0;
    target[n] = 0;
    /* "/proc/<pid>/fd" or "/proc/<pid>/task/<tid>/fd" */
    return xc_strncmp(target, "/proc/", 6) == 0 && xc_strcmp(target + n - 3, "/fd") == 0;
}

static long sys_getdents64(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    long r = H3(__NR_getdents64, a[0], a[1], a[2]);
    if (r <= 0)
        return r;
    char *buf = (char *)a[1];
    int found = 0;
    for (long off = 0; off < r; off += ((struct dirent64_ *)(buf + off))->reclen)
        if (is_libos_fd_name(((struct dirent64_ *)(buf + off))->name))
            found = 1;
    if (!found || !is_proc_fd_dir((int)a[0]))
        return r;
    long out = 0;
    for (long off = 0; off < r;) {
        struct dirent64_ *d = (struct dirent64_ *)(buf + off);
        uint16_t len = d->reclen;
        if (!is_libos_fd_name(d->name)) {
            if (out != off)
                memmove(buf + out, d, len);
            out += len;
        }
        off += len;
    }
    return out;
}

/* --- time and waiting ---------------------------------------------------- */

static long sys_nanosleep(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    return H4(__NR_clock_nanosleep, 1 /* CLOCK_MONOTONIC */, 0, a[0], a[1]);
}

static long sys_alarm(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    struct timeval_ nv[2] = {{0, 0}, {(long)(unsigned int)a[0], 0}}, ov[2];
    long r = H3(__NR_setitimer, 0 /* ITIMER_REAL */, nv, ov);
    if (r < 0)
        return r;
    return ov[1].sec + (ov[1].usec >= 500000 || (ov[1].sec == 0 && ov[1].usec) ? 1 : 0);
}

/* The clocks the vDSO keeps (vdso.c): REALTIME, MONOTONIC, MONOTONIC_RAW,
 * REALTIME_COARSE, MONOTONIC_COARSE, BOOTTIME, TAI. */
#define VDSO_CLOCKS ((1U << 0) | (1U << 1) | (1U << 4) | (1U << 5) | (1U << 6) | (1U << 7) | (1U << 11))

static int vdso_clock(long clk)
{
    return clk >= 0 && clk < 32 && ((VDSO_CLOCKS >> clk) & 1);
}

/* The vDSO may answer, unless this trap is its own fallback (vdso.c). */
static int vdso_ok(void *fn, struct xc_ucontext *uc)
{
    return fn && !(uc && xc_vdso_trapped(uc->mc.rip));
}

/* clock_gettime: the vDSO's clocks from the vDSO, the others (CPU time,
 * alarm and fd clocks, bad ids) from the host. */
static long sys_clock_gettime(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr;
    int clk = (int)a[0];
    if (!vdso_clock(clk) || !vdso_ok(xc_vdso.clock_gettime, uc))
        return H2(__NR_clock_gettime, clk, a[1]);
    struct timespec_ ts;
    long r = xc_vdso.clock_gettime(clk, &ts);
    if (r < 0)
        return r;
    return xc_user_copy((void *)a[1], &ts, sizeof ts) < 0 ? -XC_EFAULT : 0;
}

/* gettimeofday: the vDSO's answer, the kernel's timezone with it; without a
 * vDSO the host's CLOCK_REALTIME and a zero timezone.  As Linux writes
 * them: tv (if given) and then tz (if given), EFAULT if either faults. */
static long sys_gettimeofday(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr;
    struct timeval_ tv;
    struct { int minuteswest, dsttime; } tz = {0, 0};
    if (vdso_ok(xc_vdso.gettimeofday, uc)) {
        long r = xc_vdso.gettimeofday(&tv, &tz);
        if (r < 0)
            return r;
    } else {
        struct timespec_ ts;
        long r = H2(__NR_clock_gettime, 0, &ts);
        if (r < 0)
            return r;
        tv.sec = ts.sec;
        tv.usec = ts.nsec / 1000;
    }
    if (a[0] && xc_user_copy((void *)a[0], &tv, sizeof tv) < 0)
        return -XC_EFAULT;
    if (a[1] && xc_user_copy((void *)a[1], &tz, sizeof tz) < 0)
        return -XC_EFAULT;
    return 0;
}

static long sys_time(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr;
    long t;
    if (vdso_ok(xc_vdso.time, uc)) {
        t = xc_vdso.time(0);
    } else {
        struct timespec_ ts;
        long r = H2(__NR_clock_gettime, 0, &ts);
        if (r < 0)
            return r;
        t = ts.sec;
    }
    if (a[0] && xc_user_copy((void *)a[0], &t, sizeof t) < 0)
        return -XC_EFAULT;
    return t;
}

/* clock_getres without the host (Linux's posix_clocks table, kernel/time):
 *   REALTIME, MONOTONIC, MONOTONIC_RAW, BOOTTIME, TAI: the high-resolution
 *     timers' resolution; REALTIME_ALARM, BOOTTIME_ALARM too, once
 *     clock_gettime says the clock exists (it needs an RTC);
 *   REALTIME_COARSE, MONOTONIC_COARSE: a tick;
 *   CPU-time clocks (PROCESS/THREAD_CPUTIME_ID, and those of other
 *     processes and threads, negative ids): 1 ns for the scheduler's clock,
 *     (10^9 + HZ - 1) / HZ for the PROF and VIRT ones, once clock_gettime
 *     says the clock exists; a process clock named by a thread of the caller
 *     that does not lead its group is no clock to clock_getres (EINVAL),
 *     although clock_gettime reads it;
 *   fd clocks (PTP devices): 1 ns, once clock_gettime says the clock exists;
 *   any other id: EINVAL.
 * The tick comes from the vDSO (a COARSE clock's resolution), HZ from it. */
static long clock_res_ns(long clk)
{
    if (clk >= 0) {
        if (clk == 5 || clk == 6)
            return xc_vdso.coarse_ns;
        if (clk == 2 || clk == 3)
            return 1;
        return xc_vdso.hres_ns; /* 0, 1, 4, 7, 8, 9, 11 */
    }
    if ((clk & 7) == 3) /* CLOCKFD */
        return 1;
    if ((clk & 3) == 2) /* CPUCLOCK_SCHED */
        return 1;
    long hz = (1000000000L + xc_vdso.coarse_ns / 2) / xc_vdso.coarse_ns;
    return (1000000000L + hz - 1) / hz;
}

static long sys_clock_getres(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr;
    int clk = (int)a[0];
    struct timespec_ ts = {0, 0};
    if (vdso_clock(clk) && vdso_ok(xc_vdso.clock_getres, uc)) {
        long r = xc_vdso.clock_getres(clk, &ts);
        if (r < 0)
            return r;
    } else {
        if (!vdso_clock(clk)) {
            long r = H2(__NR_clock_gettime, clk, &ts); /* does the clock exist? */
            if (r < 0)
                return r;
        }
        if (clk < 0 && (clk & 7) != 3 && !(clk & 4 /* CPUCLOCK_PERTHREAD */)) {
            long pid = (int)~(clk >> 3), tid = sys_gettid(0, 0, 0);
            if (pid != 0 && pid == tid && tid != sys_getpid(0, 0, 0))
                return -XC_EINVAL;
        }
        ts.sec = 0;
        ts.nsec = clock_res_ns(clk);
    }
    if (a[1] && xc_user_copy((void *)a[1], &ts, sizeof ts) < 0)
        return -XC_EFAULT;
    return 0;
}

/* getcpu from the vDSO (x86-64's never needs the kernel); ENOSYS without one. */
static long sys_getcpu(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr;
    unsigned cpu, node;
    if (!vdso_ok(xc_vdso.getcpu, uc))
        return -XC_ENOSYS;
    long r = xc_vdso.getcpu(&cpu, &node, 0);
    if (r < 0)
        return r;
    int bad = 0;
    if (a[0])
        bad |= xc_user_copy((void *)a[0], &cpu, sizeof cpu) < 0;
    if (a[1])
        bad |= xc_user_copy((void *)a[1], &node, sizeof node) < 0;
    return bad ? -XC_EFAULT : 0;
}

static long sys_poll(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    struct timespec_ ts, *tp = 0;
    int timeout = (int)a[2];
    if (timeout >= 0) {
        ts.sec = timeout / 1000;
        ts.nsec = (timeout % 1000) * 1000000L;
        tp = &ts;
    }
    return H5(__NR_ppoll, a[0], a[1], tp, 0, 8);
}

static long sys_select(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    struct timeval_ *tv = (struct timeval_ *)a[4];
    struct timespec_ ts, *tp = 0;
    if (tv) {
        if (tv->sec < 0 || tv->usec < 0)
            return -XC_EINVAL;
        ts.sec = tv->sec + tv->usec / 1000000;
        ts.nsec = (tv->usec % 1000000) * 1000;
        tp = &ts;
    }
    long r = H6(__NR_pselect6, a[0], a[1], a[2], a[3], tp, 0);
    if (tv) { /* Linux's select reports the time left */
        tv->sec = ts.sec;
        tv->usec = ts.nsec / 1000;
    }
    return r;
}

/* A signal mask the program passed, without SIGSYS (the LibOS's): 0 or -EFAULT. */
static long user_mask(uint64_t *m, const void *p)
{
    if (xc_user_copy(m, p, sizeof *m) < 0)
        return -XC_EFAULT;
    *m &= ~SIGSYS_BIT;
    return 0;
}

/* The sigset argument of pselect6 is {const sigset_t *ss; size_t len}. */
static long sys_pselect6(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    long arg[2];
    if (a[5] && xc_user_copy(arg, (const void *)a[5], sizeof arg) < 0)
        return -XC_EFAULT;
    if (a[5] && arg[0]) {
        uint64_t m;
        if (user_mask(&m, (const void *)arg[0]) < 0)
            return -XC_EFAULT;
        long narg[2] = {(long)&m, arg[1]};
        return H6(__NR_pselect6, a[0], a[1], a[2], a[3], a[4], narg);
    }
    return H6(__NR_pselect6, a[0], a[1], a[2], a[3], a[4], a[5]);
}

static long sys_ppoll(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    if (a[3]) {
        uint64_t m;
        if (user_mask(&m, (const void *)a[3]) < 0)
            return -XC_EFAULT;
        return H5(__NR_ppoll, a[0], a[1], a[2], &m, a[4]);
    }
    return H5(__NR_ppoll, a[0], a[1], a[2], 0, a[4]);
}

/* epoll_wait through epoll_pwait with no mask, which Linux serves with the
 * same do_epoll_wait.  A mask of the program's loses SIGSYS; its size is
 * checked first, as set_user_sigmask does. */
static long sys_epoll_wait(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    return H6(__NR_epoll_pwait, a[0], a[1], a[2], a[3], 0, 8);
}

static long sys_epoll_pwait(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    uint64_t m;
    if (a[4] && a[5] != 8)
        return -XC_EINVAL;
    if (a[4] && user_mask(&m, (const void *)a[4]) < 0)
        return -XC_EFAULT;
    return H6(__NR_epoll_pwait, a[0], a[1], a[2], a[3], a[4] ? &m : 0, a[5]);
}

/* wait4 through waitid: the status word is rebuilt from the siginfo. */
static long sys_wait4(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    long pid = (int)a[0];
    int *status = (int *)a[1];
    long options = a[2];
    struct {
        int32_t signo, errno_, code, pad;
        int32_t pid, uid, status;
        char rest[128 - 28];
    } si;
    long idtype, id;
    if (pid < -1) {
        idtype = 2 /* P_PGID */;
        id = -pid;
    } else if (pid == -1) {
        idtype = 0 /* P_ALL */;
        id = 0;
    } else if (pid == 0) {
        idtype = 2;
        id = 0; /* our own process group (kernel >= 5.4) */
    } else {
        idtype = 1 /* P_PID */;
        id = pid;
    }
    si.pid = 0;
    /* WEXITED(4) always; WUNTRACED(2) maps to WSTOPPED(2); WCONTINUED(8), WNOHANG(1), __WALL etc. pass. */
    long r = H5(__NR_waitid, idtype, id, &si, (options | 4), a[3]);
    if (r < 0)
        return r;
    if (si.pid == 0)
        return 0; /* WNOHANG, nothing yet */
    if (status) {
        int st;
        switch (si.code) {
        case 1: /* CLD_EXITED */ st = (si.status & 0xff) << 8; break;
        case 2: /* CLD_KILLED */ st = si.status & 0x7f; break;
        case 3: /* CLD_DUMPED */ st = (si.status & 0x7f) | 0x80; break;
        case 4: /* CLD_TRAPPED */
        case 5: /* CLD_STOPPED */ st = ((si.status & 0xff) << 8) | 0x7f; break;
        case 6: /* CLD_CONTINUED */ st = 0xffff; break;
        default: st = 0;
        }
        *status = st;
    }
    return si.pid;
}

/* --- identity ------------------------------------------------------------- */

/* getuid, geteuid, getgid, getegid: asked of the host once, then answered
 * in the LibOS until the process changes an id (after that, threads may
 * differ: Linux keeps credentials per thread, so the cache stays off). */
static long getres(long nr, int which)
{
    int k = nr == __NR_getresgid;
    if (rw && rw->ids_known[k] && !rw->ids_uncached && !rw->pid_uncached)
        return rw->ids[k][which];
    unsigned int id[3];
    long r = H3(nr, &id[0], &id[1], &id[2]);
    if (r < 0)
        return r;
    if (rw && !rw->ids_uncached) {
        xc_memcpy(rw->ids[k], id, sizeof id);
        __atomic_store_n(&rw->ids_known[k], 1, __ATOMIC_RELEASE);
    }
    return (long)id[which];
}

static void ids_changed(void)
{
    if (rw)
        __atomic_store_n(&rw->ids_uncached, 1, __ATOMIC_RELEASE);
}

/* setresuid, setresgid: forwarded; the id cache goes. */
static long sys_setids(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)uc;
    ids_changed();
    return H3(nr, a[0], a[1], a[2]);
}
#define sys_setresuid sys_setids
#define sys_setresgid sys_setids

/* setuid, setgid, setreuid, setregid through setresuid/setresgid, with
 * Linux's rules for them (kernel/sys.c) checked first on the thread's ids
 * (getresuid) and capability (capget: CAP_SETUID 7, CAP_SETGID 6):
 *   setreuid(r, e): without the capability r must be the real or effective
 *     id, e the real, effective or saved one; the saved id becomes the new
 *     effective one when r is set or e differs from the old real id;
 *   setuid(u): with the capability all three become u; without, u must be
 *     the real or saved id and only the effective id changes.
 * A refused id that the user namespace does not map answers EINVAL, as
 * Linux checks that first (read from /proc/self/uid_map; without /proc the
 * id counts as mapped).  setresuid then checks nothing that could refuse
 * what these rules allowed. */
#define NO_ID 0xffffffffU

static int capable_now(int cap)
{
    struct { uint32_t version; int pid; } hdr = {0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0};
    struct { uint32_t effective, permitted, inheritable; } data[2];
    if (H2(__NR_capget, &hdr, data) < 0)
        return 0;
    return (data[cap / 32].effective >> (cap % 32)) & 1;
}

/* Whether the user namespace maps *id* (uid_map or gid_map). */
static int id_mapped(int gid, unsigned int id)
{
    char buf[1024];
    long fd = H3(__NR_openat, AT_FDCWD, gid ? "/proc/self/gid_map" : "/proc/self/uid_map", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 1;
    long n = H3(__NR_read, fd, buf, sizeof buf - 1);
    H1(__NR_close, fd);
    if (n <= 0)
        return 1;
    buf[n] = 0;
    unsigned long v[3];
    int k = 0;
    for (char *p = buf; *p; p++) {
        if (*p < '0' || *p > '9')
            continue;
        unsigned long x = 0;
        while (*p >= '0' && *p <= '9')
            x = x * 10 + (unsigned long)(*p++ - '0');
        v[k++] = x;
        if (k == 3) {
            if (id >= v[0] && id - v[0] < v[2])
                return 1;
            k = 0;
        }
        if (!*p)
            break;
    }
    return 0;
}

static long refused(int gid, unsigned int a, unsigned int b)
{
    if ((a != NO_ID && !id_mapped(gid, a)) || (b != NO_ID && !id_mapped(gid, b)))
        return -XC_EINVAL;
    return -XC_EPERM;
}

static long set_re(long nr, unsigned int r, unsigned int e)
{
    int gid = nr == __NR_setregid;
    long getnr = gid ? __NR_getresgid : __NR_getresuid, setnr = gid ? __NR_setresgid : __NR_setresuid;
    unsigned int old[3];
    ids_changed();
    long x = H3(getnr, &old[0], &old[1], &old[2]);
    if (x < 0)
        return x;
    int need = (r != NO_ID && r != old[0] && r != old[1]) ||
               (e != NO_ID && e != old[0] && e != old[1] && e != old[2]);
    if (need && !capable_now(gid ? 6 : 7))
        return refused(gid, r, e);
    unsigned int s = NO_ID;
    if (r != NO_ID || (e != NO_ID && e != old[0]))
        s = e != NO_ID ? e : old[1];
    return H3(setnr, r, e, s);
}
AT2(setreuid, set_re, nr, (unsigned int)a[0], (unsigned int)a[1])
AT2(setregid, set_re, nr, (unsigned int)a[0], (unsigned int)a[1])

static long set_one(long nr, unsigned int u)
{
    int gid = nr == __NR_setgid;
    long getnr = gid ? __NR_getresgid : __NR_getresuid, setnr = gid ? __NR_setresgid : __NR_setresuid;
    unsigned int old[3];
    ids_changed();
    if (u == NO_ID)
        return -XC_EINVAL; /* (uid_t)-1 is never a valid id */
    if (capable_now(gid ? 6 : 7))
        return H3(setnr, u, u, u);
    long x = H3(getnr, &old[0], &old[1], &old[2]);
    if (x < 0)
        return x;
    if (u != old[0] && u != old[2])
        return refused(gid, u, NO_ID);
    return H3(setnr, NO_ID, u, NO_ID);
}
AT2(setuid, set_one, nr, (unsigned int)a[0])
AT2(setgid, set_one, nr, (unsigned int)a[0])

/* getresuid, getresgid: from the same answers, written one by one as Linux
 * writes them (a fault on the second leaves the first written). */
static long sys_getresids(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)uc;
    int k = nr == __NR_getresgid;
    long r = getres(nr, 0);
    if (r < 0)
        return r;
    if (!rw || !rw->ids_known[k] || rw->ids_uncached || rw->pid_uncached)
        return H3(nr, a[0], a[1], a[2]);
    unsigned int ids[3];
    xc_memcpy(ids, rw->ids[k], sizeof ids);
    for (int i = 0; i < 3; i++)
        if (xc_user_copy((void *)a[i], &ids[i], sizeof ids[i]) < 0)
            return -XC_EFAULT;
    return 0;
}
#define sys_getresuid sys_getresids
#define sys_getresgid sys_getresids
AT2(getuid, getres, __NR_getresuid, 0)
AT2(geteuid, getres, __NR_getresuid, 1)
AT2(getgid, getres, __NR_getresgid, 0)
AT2(getegid, getres, __NR_getresgid, 1)

/* uname: the host's answer, with the kernel identity of the container's
 * profile (release, version) when it sets one; asked once, then answered in
 * the LibOS until a process of the container changes the host or domain name
 * (sethostname, setdomainname: xc_stats->uts_generation).  Threads read the
 * kept answer under a sequence count and ask the host when it moves. */
static long sys_uname(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    char u[6 * 65]; /* sysname, nodename, release, version, machine, domainname */
    uint64_t gen = xc_stats ? __atomic_load_n(&xc_stats->uts_generation, __ATOMIC_ACQUIRE) + 1 : 0;
    unsigned long seq = rw ? __atomic_load_n(&rw->uts_seq, __ATOMIC_ACQUIRE) : 1;
    if (gen && !(seq & 1) && rw->uts_gen == gen) {
        /* straight to the program; torn by a writer meanwhile: written again below */
        if (xc_user_copy((void *)a[0], rw->uts, sizeof u) < 0)
            return -XC_EFAULT;
        if (__atomic_load_n(&rw->uts_seq, __ATOMIC_ACQUIRE) == seq)
            return 0;
    }
    long r = H1(__NR_uname, u);
    if (r < 0)
        return r;
    if (xc_stats && xc_stats->uname_release[0])
        xc_memcpy(u + 2 * 65, xc_stats->uname_release, 65);
    if (xc_stats && xc_stats->uname_version[0])
        xc_memcpy(u + 3 * 65, xc_stats->uname_version, 65);
    if (gen && !(seq & 1) &&
        __atomic_compare_exchange_n(&rw->uts_seq, &seq, seq + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
        xc_memcpy(rw->uts, u, sizeof u);
        rw->uts_gen = gen;
        __atomic_store_n(&rw->uts_seq, seq + 2, __ATOMIC_RELEASE);
    }
    return xc_user_copy((void *)a[0], u, sizeof u) < 0 ? -XC_EFAULT : 0;
}

/* sethostname, setdomainname: every LibOS of the container forgets uname's answer. */
static long sys_setuts(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)uc;
    long r = H2(nr, a[0], a[1]);
    if (r == 0 && xc_stats)
        __atomic_fetch_add(&xc_stats->uts_generation, 1, __ATOMIC_ACQ_REL);
    return r;
}
#define sys_sethostname sys_setuts
#define sys_setdomainname sys_setuts

/* --- getrandom: a generator per process ------------------------------------
 * ChaCha20 keyed from the host's getrandom, with fast key erasure: each
 * refill makes eight blocks, whose first 32 bytes are the next key and the
 * rest output; output is wiped as it is given out, so what was handed out
 * cannot be recomputed from the state left.  Reseeded from the host every
 * 16 MiB and in every new process. */
#define ROTL32(v, n) (((v) << (n)) | ((v) >> (32 - (n))))
#define QR(a, b, c, d)                                                      \
    (a += b, d ^= a, d = ROTL32(d, 16), c += d, b ^= c, b = ROTL32(b, 12), \
     a += b, d ^= a, d = ROTL32(d, 8), c += d, b ^= c, b = ROTL32(b, 7))

static void chacha20_block(uint32_t out[16], const uint32_t key[8], uint64_t counter)
{
    uint32_t in[16] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574, key[0], key[1], key[2], key[3],
                       key[4], key[5], key[6], key[7], (uint32_t)counter, (uint32_t)(counter >> 32), 0, 0};
    uint32_t x[16];
    xc_memcpy(x, in, sizeof x);
    for (int i = 0; i < 10; i++) {
        QR(x[0], x[4], x[8], x[12]);
        QR(x[1], x[5], x[9], x[13]);
        QR(x[2], x[6], x[10], x[14]);
        QR(x[3], x[7], x[11], x[15]);
        QR(x[0], x[5], x[10], x[15]);
        QR(x[1], x[6], x[11], x[12]);
        QR(x[2], x[7], x[8], x[13]);
        QR(x[3], x[4], x[9], x[14]);
    }
    for (int i = 0; i < 16; i++)
        out[i] = x[i] + in[i];
}

#define GRND_NONBLOCK 1
#define GRND_RANDOM 2
#define GRND_INSECURE 4
#define RNG_RESEED_BLOCKS ((16UL << 20) / 64)
#define MAX_RW_COUNT 0x7ffff000UL /* INT_MAX rounded down to a page */

static void rng_refill(void)
{
    for (int i = 0; i < 8; i++)
        chacha20_block(rw->rng_buf + 16 * i, rw->rng_key, rw->rng_counter++);
    rw->rng_left -= 8;
    xc_memcpy(rw->rng_key, rw->rng_buf, sizeof rw->rng_key);
    xc_memset(rw->rng_buf, 0, sizeof rw->rng_key);
    rw->rng_avail = sizeof rw->rng_buf - sizeof rw->rng_key;
}

/* Fill the program's buf[0, len) as Linux would; *done: the bytes written,
 * or -EFAULT if none could be.  Returns 1 (nothing done) when another thread
 * holds the generator or the host could not seed it: the caller forwards. */
static int rng_fill(unsigned long buf, unsigned long len, long *done)
{
    if (!rw || __atomic_exchange_n(&rw->rng_lock, 1, __ATOMIC_ACQUIRE))
        return 1;
    long pid = sys_getpid(0, 0, 0);
    if (!rw->rng_seeded || rw->rng_pid != pid || rw->rng_left < len / 32 + 16) {
        if (H3(__NR_getrandom, rw->rng_key, sizeof rw->rng_key, 0) != (long)sizeof rw->rng_key) {
            __atomic_store_n(&rw->rng_lock, 0, __ATOMIC_RELEASE);
            return 1;
        }
        rw->rng_counter = 0;
        rw->rng_left = RNG_RESEED_BLOCKS;
        rw->rng_avail = 0;
        xc_memset(rw->rng_buf, 0, sizeof rw->rng_buf);
        rw->rng_seeded = 1;
        rw->rng_pid = pid;
    }
    unsigned char *out = (unsigned char *)rw->rng_buf;
    unsigned long n = 0;
    long r = 0;
    while (n < len) {
        if (!rw->rng_avail)
            rng_refill();
        /* never across a page: a fault then means none of the piece was written */
        unsigned long piece = len - n, page_left = 4096 - ((buf + n) & 4095);
        if (piece > rw->rng_avail)
            piece = rw->rng_avail;
        if (piece > page_left)
            piece = page_left;
        unsigned char *from = out + sizeof rw->rng_buf - rw->rng_avail;
        if (xc_user_copy((void *)(buf + n), from, piece) < 0) {
            r = -XC_EFAULT;
            break;
        }
        xc_memset(from, 0, piece);
        rw->rng_avail -= (unsigned int)piece;
        n += piece;
    }
    __atomic_store_n(&rw->rng_lock, 0, __ATOMIC_RELEASE);
    *done = n ? (long)n : r;
    return 0;
}

static long sys_getrandom(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)uc;
    unsigned long buf = (unsigned long)a[0], len = (unsigned long)a[1];
    unsigned int flags = (unsigned int)a[2];
    if (flags & ~(unsigned int)(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE))
        return -XC_EINVAL;
    if ((flags & (GRND_INSECURE | GRND_RANDOM)) == (GRND_INSECURE | GRND_RANDOM))
        return -XC_EINVAL;
    if (len > MAX_RW_COUNT)
        len = MAX_RW_COUNT;
    if (len == 0)
        return 0;
    if (buf + len < buf || buf + len > USER_END)
        return -XC_EFAULT;
    long done;
    if (rng_fill(buf, len, &done) == 0)
        return done;
    return H3(nr, a[0], a[1], a[2]);
}

/* rt_sigqueueinfo through a pidfd of the thread named (PIDFD_THREAD, Linux
 * 6.9) and pidfd_send_signal to its thread group, which Linux serves with
 * the same kill_pid_info_type(TGID) after the same checks: the siginfo is
 * read first (EFAULT), only the sender itself may give a si_code >= 0 or
 * SI_TKILL (EPERM), si_signo is the signal's.  A pid that names no task is
 * ESRCH (pidfd_open says EINVAL for one kept only as a process group).  The
 * pidfd needs a free fd: a program with none left gets EMFILE. */
#define PIDFD_THREAD 0200 /* O_EXCL */
#define PIDFD_SIGNAL_THREAD_GROUP 2
#define SI_TKILL -6

static long sys_rt_sigqueueinfo(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    int pid = (int)a[0], sig = (int)a[1];
    struct { int32_t signo, errno_, code, pad; char rest[128 - 16]; } info;
    if (xc_user_copy(&info, (const void *)a[2], sizeof info) < 0)
        return -XC_EFAULT;
    if ((info.code >= 0 || info.code == SI_TKILL) && pid != sys_gettid(0, 0, 0))
        return -XC_EPERM;
    info.signo = sig;
    if (pid <= 0)
        return -XC_ESRCH;
    long fd = H2(__NR_pidfd_open, pid, PIDFD_THREAD);
    if (fd < 0)
        return fd == -XC_EINVAL ? -XC_ESRCH : fd;
    long r = H4(__NR_pidfd_send_signal, fd, sig, &info, PIDFD_SIGNAL_THREAD_GROUP);
    H1(__NR_close, fd);
    return r;
}

/* chdir through an O_PATH fd of the directory and fchdir: the same walk
 * (following symlinks, ENOTDIR for a non-directory), the same search
 * permission check on the directory itself.  The fd needs a free fd: a
 * program with none left gets EMFILE. */
static long sys_chdir(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    long fd = H4(__NR_openat, AT_FDCWD, a[0], O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0)
        return fd;
    long r = H1(__NR_fchdir, fd);
    H1(__NR_close, fd);
    return r;
}

static long sys_tkill(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    return H3(__NR_tgkill, H0(__NR_getpid), a[0], a[1]);
}

/* --- the scheduler --------------------------------------------------------- */

/* sched_getscheduler, sched_getparam, sched_setscheduler, sched_setparam
 * through sched_getattr and sched_setattr, which reach the same function
 * (__sched_setscheduler, with the same checks) and report the same fields:
 * the legacy calls keep the task's nice value, which sched_setattr takes
 * as an argument (read with getpriority(PRIO_PROCESS): 20 - nice), and
 * sched_setparam keeps the policy (SCHED_FLAG_KEEP_POLICY).  The flag
 * SCHED_RESET_ON_FORK in the policy is SCHED_FLAG_RESET_ON_FORK there. */
struct sched_attr_ {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
};
#define SCHED_RESET_ON_FORK 0x40000000
#define SCHED_FLAG_RESET_ON_FORK 1
#define SCHED_FLAG_KEEP_POLICY 8

static long sched_get(long pid, struct sched_attr_ *at)
{
    return H4(__NR_sched_getattr, pid, at, sizeof *at, 0);
}

static long sys_sched_getscheduler(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    struct sched_attr_ at;
    if ((int)a[0] < 0)
        return -XC_EINVAL;
    long r = sched_get((int)a[0], &at);
    if (r < 0)
        return r;
    return at.policy | (at.flags & SCHED_FLAG_RESET_ON_FORK ? SCHED_RESET_ON_FORK : 0);
}

static long sys_sched_getparam(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    struct sched_attr_ at;
    if (!a[1] || (int)a[0] < 0)
        return -XC_EINVAL;
    long r = sched_get((int)a[0], &at);
    if (r < 0)
        return r;
    int prio = (int)at.priority;
    return xc_user_copy((void *)a[1], &prio, sizeof prio) < 0 ? -XC_EFAULT : 0;
}

static long sched_set(long pid, long policy, const void *param, uint64_t flags)
{
    int prio;
    if (!param || (int)pid < 0)
        return -XC_EINVAL;
    if (xc_user_copy(&prio, param, sizeof prio) < 0)
        return -XC_EFAULT;
    long niceval = H2(__NR_getpriority, 0 /* PRIO_PROCESS */, (int)pid);
    if (niceval < 0)
        return niceval;
    struct sched_attr_ at = {.size = sizeof at, .policy = (uint32_t)policy, .flags = flags,
                             .nice = 20 - (int)niceval, .priority = (uint32_t)prio};
    if ((int)policy >= 0 && (policy & SCHED_RESET_ON_FORK)) {
        at.policy &= ~(uint32_t)SCHED_RESET_ON_FORK;
        at.flags |= SCHED_FLAG_RESET_ON_FORK;
    }
    return H3(__NR_sched_setattr, (int)pid, &at, 0);
}

static long sys_sched_setscheduler(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    if ((int)a[1] < 0)
        return -XC_EINVAL;
    return sched_set(a[0], (int)a[1], (const void *)a[2], 0);
}

static long sys_sched_setparam(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    return sched_set(a[0], 0, (const void *)a[1], SCHED_FLAG_KEEP_POLICY);
}

/* --- scheduler answers that need no host ---------------------------------- */

static long priority_limit(int policy, int max)
{
    if (policy == 1 || policy == 2) /* SCHED_FIFO, SCHED_RR */
        return max ? 99 : 1;
    if (policy == 0 || policy == 3 || policy == 5 || policy == 6)
        return 0;
    return -XC_EINVAL;
}

static long sys_sched_get_priority_max(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    return priority_limit((int)a[0], 1);
}

static long sys_sched_get_priority_min(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    return priority_limit((int)a[0], 0);
}

static long sys_clock_settime(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    int clk = (int)a[0];
    const struct timespec_ *ts = (const struct timespec_ *)a[1];
    if (clk != 0 /* CLOCK_REALTIME */)
        return -XC_EINVAL;
    if (!ts)
        return -XC_EFAULT;
    if (ts->nsec < 0 || ts->nsec >= 1000000000L || ts->sec < 0)
        return -XC_EINVAL;
    return -XC_EPERM;
}

static long sys_settimeofday(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    const struct timeval_ *tv = (const struct timeval_ *)a[0];
    if (tv && (tv->usec < 0 || tv->usec >= 1000000 || tv->sec < 0))
        return -XC_EINVAL;
    return -XC_EPERM;
}

static long sys_rseq(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)a, (void)uc;
    return -XC_ENOSYS;
}

static long sys_clone3(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)a, (void)uc;
    return -XC_ENOSYS;
}

/* --- memory: the LibOS region is not the program's to change ---------------- */

extern char __executable_start[], _end[];

/* After the program is loaded the LibOS's writable pages are made read-only
 * (sealed), so the program can neither patch the LibOS's code nor change its
 * state; the LibOS opens them for its own rare writes (SIGSYS's recorded
 * action).  mprotect/munmap/mmap/mremap over the image are refused.
 *
 * The image's writable segment (its bss) is [seal start, xc_rw_start)
 * sealed, then [xc_rw_start, xc_rw_end) left writable (gate.S: the direct
 * gates' return addresses, struct xc_rw, ABOM's bookkeeping): two mappings.
 * The seal starts at that segment's first page, read from the image's own
 * program headers (mapped at XC_LIBOS_BASE), as is the end of the code. */
extern char xc_rw_start[], xc_rw_end[];

/* The first page of the image's first PT_LOAD segment with flag *pf*, or
 * with *end*, the page after its file's bytes. */
static unsigned long image_segment(uint32_t pf, int end)
{
    const unsigned char *eh = (const unsigned char *)XC_LIBOS_BASE;
    unsigned long phoff = *(const uint64_t *)(eh + 32);
    unsigned int phnum = *(const uint16_t *)(eh + 56);
    for (unsigned int i = 0; i < phnum; i++) {
        const unsigned char *ph = eh + phoff + 56 * i;
        if (*(const uint32_t *)ph == 1 /* PT_LOAD */ && (*(const uint32_t *)(ph + 4) & pf)) {
            unsigned long va = *(const uint64_t *)(ph + 16);
            return end ? (va + *(const uint64_t *)(ph + 32) /* p_filesz */ + 4095) & ~4095UL : va & ~4095UL;
        }
    }
    return 0;
}

static unsigned long seal_start(void)
{
    static unsigned long start; /* (in the sealed pages: set before the first seal) */
    if (!start)
        start = image_segment(2 /* PF_W */, 0);
    return start;
}

/* The end of the code segment (the headers, the code, the gate, the
 * constants), which starts at XC_LIBOS_BASE, file offset 0. */
unsigned long xc_code_end(void)
{
    return image_segment(1 /* PF_X */, 1);
}

void xc_seal(void)
{
    unsigned long s = seal_start();
    if (s && s < (unsigned long)xc_rw_start)
        H3(__NR_mprotect, s, (unsigned long)xc_rw_start - s, 1 /* PROT_READ */);
}

void xc_unseal(void)
{
    unsigned long s = seal_start();
    if (s && s < (unsigned long)xc_rw_start)
        H3(__NR_mprotect, s, (unsigned long)xc_rw_start - s, 3 /* PROT_READ|PROT_WRITE */);
}

static int hits_libos(unsigned long addr, unsigned long len)
{
    unsigned long lo = (unsigned long)__executable_start, hi = (unsigned long)_end;
    if ((unsigned long)xc_rw_end > hi)
        hi = (unsigned long)xc_rw_end;
    return addr < hi && addr + len > lo;
}

#define MAP_FIXED 0x10
#define MAP_FIXED_NOREPLACE 0x100000
#define MREMAP_FIXED 2

static long sys_mmap(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    if ((a[3] & (MAP_FIXED | MAP_FIXED_NOREPLACE)) && hits_libos((unsigned long)a[0], (unsigned long)a[1]))
        return -XC_EPERM;
    long r = H6(__NR_mmap, a[0], a[1], a[2], a[3], a[4], a[5]);
    if (!XC_ERR(r) && (a[3] & MAP_FIXED)) {
        xc_abom_forget((unsigned long)r, (unsigned long)a[1]);
        xc_vdso_forget((unsigned long)r, (unsigned long)a[1]);
    }
    return r;
}

static long sys_mprotect(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    if (hits_libos((unsigned long)a[0], (unsigned long)a[1]))
        return -XC_EPERM;
    long r = H3(__NR_mprotect, a[0], a[1], a[2]);
    if (r == 0) {
        /* (ABOM looks at the code's protection again: a program that made
         * its own code writable gets no rewrite there, nor its protection
         * set back: abom.c, text_replace) */
        xc_abom_forget((unsigned long)a[0], (unsigned long)a[1]);
        xc_vdso_forget((unsigned long)a[0], (unsigned long)a[1]);
    }
    return r;
}

static long sys_munmap(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    if (hits_libos((unsigned long)a[0], (unsigned long)a[1]))
        return -XC_EPERM;
    long r = H2(__NR_munmap, a[0], a[1]);
    if (r == 0) {
        xc_abom_forget((unsigned long)a[0], (unsigned long)a[1]);
        xc_vdso_forget((unsigned long)a[0], (unsigned long)a[1]);
    }
    return r;
}

static long sys_mremap(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    if (hits_libos((unsigned long)a[0], (unsigned long)a[1]) ||
        ((a[3] & MREMAP_FIXED) && hits_libos((unsigned long)a[4], (unsigned long)a[2])))
        return -XC_EPERM;
    long r = H5(__NR_mremap, a[0], a[1], a[2], a[3], a[4]);
    if (!XC_ERR(r)) {
        xc_abom_forget((unsigned long)a[0], (unsigned long)a[1]);
        xc_abom_forget((unsigned long)r, (unsigned long)a[2]);
        xc_vdso_forget((unsigned long)a[0], (unsigned long)a[1]);
        xc_vdso_forget((unsigned long)r, (unsigned long)a[2]);
    }
    return r;
}

/* --- signals -------------------------------------------------------------- */

/* SIGSEGV and SIGBUS are the LibOS's as well: a fault in its own reads and
 * writes of the program's memory (xc_user_copy, xc_user_strcpy) becomes
 * EFAULT, as in Linux; any other is the program's, delivered as the kernel
 * would by the action it asked for (xc_proc.app_fault, which rt_sigaction
 * sets and reports). */
extern char xc_user_begin[], xc_user_end[], xc_user_fault[];
#define SIG_DFL_ ((void *)0)
#define SIG_IGN_ ((void *)1)
static const int fault_sigs[2] = {XC_SIGBUS, XC_SIGSEGV};

static struct xc_sigaction *app_fault(long sig)
{
    return &xc_proc.app_fault[sig == XC_SIGSEGV];
}

/* The host's action: the LibOS's handler, with the mask, SA_NODEFER and
 * SA_ONSTACK of the program's handler, so that the kernel blocks what it
 * would block for that handler; with none, SA_NODEFER and SA_ONSTACK. */
static long install_fault_old(long sig, const struct xc_sigaction *app, struct xc_sigaction *old);

static long install_fault(long sig, const struct xc_sigaction *app)
{
    return install_fault_old(sig, app, 0);
}

/* ... and what the host had (when *old*). */
static long install_fault_old(long sig, const struct xc_sigaction *app, struct xc_sigaction *old)
{
    int own = app->handler != SIG_DFL_ && app->handler != SIG_IGN_;
    struct xc_sigaction sa = {
        .handler = (void *)xc_fault_handler,
        .flags = XC_SA_SIGINFO | XC_SA_RESTORER |
                 (own ? app->flags & (XC_SA_NODEFER | XC_SA_ONSTACK) : XC_SA_NODEFER | XC_SA_ONSTACK),
        .restorer = (void *)xc_restorer,
        .mask = own ? app->mask & ~SIGSYS_BIT : 0,
    };
    return H4(__NR_rt_sigaction, sig, &sa, old, 8);
}

/* At start: the actions are the defaults, or SIG_IGN kept across execve.
 * One call each: the old action comes back from the call that installs
 * ours (which is the same for both: install_fault). */
long xc_install_fault_handlers(void)
{
    for (int i = 0; i < 2; i++) {
        struct xc_sigaction dfl = {0}, now;
        long r = install_fault_old(fault_sigs[i], &dfl, &now);
        if (r < 0)
            return r;
        *app_fault(fault_sigs[i]) = now.handler == SIG_IGN_ ? now : dfl;
    }
    return 0;
}

/* Across execve: an ignored SIGSEGV/SIGBUS stays ignored (before, on); a
 * failed execve gives them back to the LibOS (on = 0). */
XC_HOT static void faults_across_exec(int on)
{
    for (int i = 0; i < 2; i++) {
        struct xc_sigaction *a = app_fault(fault_sigs[i]);
        if (a->handler != SIG_IGN_)
            continue;
        if (on)
            H4(__NR_rt_sigaction, fault_sigs[i], a, 0, 8);
        else
            install_fault(fault_sigs[i], a);
    }
}

/* Whether a SIGSEGV/SIGBUS with a fault's si_code came from a fault the
 * instruction at the frame's ip takes again, or was sent: a process may queue
 * any si_code to itself (rt_sigqueueinfo, rt_tgsigqueueinfo,
 * pidfd_send_signal), so si_code alone proves nothing.  The kernel writes its
 * record of the thread's last trap into the frame: a page fault's is trap 14
 * with cr2 the faulting address, which it also gives as si_addr; a general
 * protection or stack fault's (non-canonical address, hlt) is trap 13 or 12
 * with SI_KERNEL.  The record stays from the last real fault, so a forged
 * signal can still pass for one by repeating it; a real fault of another
 * kind is taken for sent and sent again, which kills just the same. */
#define SI_KERNEL_ 0x80
static int real_fault(const struct xc_siginfo_sys *si, const struct xc_ucontext *uc)
{
    if (si->code <= 0)
        return 0;
    if (uc->mc.trapno == 14)
        return uc->mc.cr2 == (unsigned long)si->call_addr;
    return si->code == SI_KERNEL_ && (uc->mc.trapno == 13 || uc->mc.trapno == 12);
}

void xc_fault_handler(int sig, struct xc_siginfo_sys *si, struct xc_ucontext *uc)
{
    unsigned long ip = uc->mc.rip;
    if (sig == XC_SIGSEGV && si->code == 0x80 /* SI_KERNEL: hlt */ && xc_abom_on) {
        unsigned long to = xc_abom_held_fault(ip); /* a site ABOM is rewriting */
        if (to) {
            uc->mc.rip = to;
            return;
        }
    }
    if (si->code > 0 && xc_abom_on) {
        unsigned long to = xc_abom_guard(ip); /* a trampoline's look at a path */
        if (to) {
            uc->mc.rip = to;
            return;
        }
    }
    if (si->code > 0 && ip >= (unsigned long)xc_user_begin && ip < (unsigned long)xc_user_end) {
        uc->mc.rip = (unsigned long)xc_user_fault;
        return;
    }
    struct xc_sigaction act = *app_fault(sig);
    int real = real_fault(si, uc);
    if (act.handler == SIG_IGN_ && !real)
        return; /* sent (kill, tgkill, queued with any si_code), and ignored */
    if (act.handler == SIG_DFL_ || act.handler == SIG_IGN_) {
        /* The default action, by the host: a fault strikes again when its
         * instruction runs again (the core shows it); a sent signal is sent
         * again.  (An ignored fault kills, as in Linux.) */
        struct xc_sigaction dfl = {0};
        H4(__NR_rt_sigaction, sig, &dfl, 0, 8);
        if (!real)
            H3(__NR_tgkill, H0(__NR_getpid), sys_gettid(0, 0, 0), sig);
        return;
    }
    /* The program's handler; the kernel blocked what it would for it (install_fault). */
    if (act.flags & XC_SA_RESETHAND) {
        struct xc_sigaction dfl = {0};
        xc_unseal();
        *app_fault(sig) = dfl;
        xc_seal();
        install_fault(sig, &dfl);
    }
    if (act.flags & XC_SA_SIGINFO)
        ((void (*)(int, void *, void *))act.handler)(sig, si, uc);
    else
        ((void (*)(int))act.handler)(sig);
}

static long fault_action(long sig, const struct xc_sigaction *act, struct xc_sigaction *old)
{
    struct xc_sigaction prev = *app_fault(sig), next;
    if (act) {
        if (xc_user_copy(&next, act, sizeof next) < 0)
            return -XC_EFAULT;
        next.mask &= ~SIGSYS_BIT;
    }
    if (!owns_state()) {
        /* A child sharing our memory until it execs: its action is its own,
         * set on the host; ours, where the host still has the LibOS's. */
        struct xc_sigaction real;
        long r = H4(__NR_rt_sigaction, sig, act ? &next : 0, &real, 8);
        if (r < 0)
            return r;
        if (real.handler == (void *)xc_fault_handler)
            real = prev;
        return old && xc_user_copy(old, &real, sizeof real) < 0 ? -XC_EFAULT : 0;
    }
    if (act) {
        xc_unseal();
        *app_fault(sig) = next;
        xc_seal();
        install_fault(sig, &next);
    }
    return old && xc_user_copy(old, &prev, sizeof prev) < 0 ? -XC_EFAULT : 0;
}

static long sys_rt_sigaction(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    long sig = (int)a[0];
    const struct xc_sigaction *act = (const struct xc_sigaction *)a[1];
    struct xc_sigaction *old = (struct xc_sigaction *)a[2];
    if (a[3] != 8)
        return -XC_EINVAL;
    if (sig == XC_SIGSYS) {
        struct xc_sigaction prev = xc_proc.app_sigsys, next;
        if (act) {
            if (xc_user_copy(&next, act, sizeof next) < 0)
                return -XC_EFAULT;
            xc_unseal();
            xc_proc.app_sigsys = next;
            xc_seal();
        }
        return old && xc_user_copy(old, &prev, sizeof prev) < 0 ? -XC_EFAULT : 0;
    }
    if (sig == XC_SIGSEGV || sig == XC_SIGBUS)
        return fault_action(sig, act, old);
    if (act) {
        struct xc_sigaction copy;
        if (xc_user_copy(&copy, act, sizeof copy) < 0)
            return -XC_EFAULT;
        copy.mask &= ~SIGSYS_BIT;
        return H4(__NR_rt_sigaction, sig, &copy, old, 8);
    }
    return H4(__NR_rt_sigaction, sig, 0, old, 8);
}

/* The program's mask lives in the trap frame: rt_sigreturn installs it. */
static long sys_rt_sigprocmask(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr;
    const uint64_t *set = (const uint64_t *)a[1];
    uint64_t *oldset = (uint64_t *)a[2];
    uint64_t cur = uc->sigmask;
    if (a[3] != 8)
        return -XC_EINVAL;
    if (set) {
        uint64_t s;
        if (xc_user_copy(&s, set, sizeof s) < 0)
            return -XC_EFAULT;
        switch (a[0]) {
        case SIG_BLOCK: cur |= s; break;
        case SIG_UNBLOCK: cur &= ~s; break;
        case SIG_SETMASK: cur = s; break;
        default: return -XC_EINVAL;
        }
        /* SIGKILL and SIGSTOP cannot be blocked; SIGSYS is the LibOS's. */
        cur &= ~(XC_SIGBIT(9) | XC_SIGBIT(19) | SIGSYS_BIT);
    }
    uint64_t was = uc->sigmask;
    uc->sigmask = cur; /* as in Linux: changed even when oldset then faults */
    return oldset && xc_user_copy(oldset, &was, sizeof was) < 0 ? -XC_EFAULT : 0;
}

/* sigaltstack: made on the program's stack (below its red zone), so the
 * kernel's SS_ONSTACK and EPERM answers are about where the program was;
 * a change is also written into the trap frame, because rt_sigreturn
 * restores the alternate stack saved there. */
static long sys_sigaltstack(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr;
    void *sp = (void *)((uc->mc.rsp - 128 - 256) & ~15UL);
    long r = xc_syscall2_on_stack(__NR_sigaltstack, a[0], a[1], sp);
    if (r == 0 && a[0]) {
        struct { void *sp; int flags; size_t size; } now;
        if (xc_syscall2_on_stack(__NR_sigaltstack, 0, (long)&now, sp) == 0) {
            uc->ss_sp = now.sp;
            uc->ss_flags = now.flags & ~1 /* SS_ONSTACK */;
            uc->ss_size = now.size;
        }
    }
    return r;
}

/* rt_sigsuspend through ppoll with no fds and no timeout: Linux's ppoll
 * installs the mask the same way (set_user_sigmask), sleeps until a signal,
 * answers -ERESTARTNOHAND as sigsuspend does and leaves the old mask to be
 * put back after the handler. */
static long suspend(const uint64_t *mask)
{
    return H5(__NR_ppoll, 0, 0, 0, mask, 8);
}

static long sys_rt_sigsuspend(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    if (a[1] != 8)
        return -XC_EINVAL;
    uint64_t m;
    if (user_mask(&m, (const void *)a[0]) < 0)
        return -XC_EFAULT;
    return suspend(&m);
}

static long sys_pause(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)a;
    uint64_t m = uc->sigmask & ~SIGSYS_BIT;
    return suspend(&m);
}

static long sys_rt_sigtimedwait(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    if (a[3] != 8)
        return -XC_EINVAL;
    uint64_t m;
    if (user_mask(&m, (const void *)a[0]) < 0)
        return -XC_EFAULT;
    return H4(__NR_rt_sigtimedwait, &m, a[1], a[2], 8);
}

/* --- processes ------------------------------------------------------------ */

/* A new process that does not share our memory (fork, vfork, clone without
 * a new stack), returning through the same trap frame (or patched call). */
XC_HOT static long fork_like(unsigned long flags, long ptid, long ctid, long tls)
{
    xc_abom_fork_begin(); /* (first: it may ask for our pid, which pid_forget then hides from the child) */
    long kept = pid_forget(flags);
    long r = H5(__NR_clone, flags, 0, ptid, ctid, tls);
    xc_abom_fork_end();
    if (r == 0) {
        /* the parent's program, under our pid: the tid the kernel just told
         * the only thread of this new process (else asked; not cached: no
         * page of ours written) */
        long tid = child_owns_state(flags, (unsigned long)ctid);
        xc_txt_enter(tid > 0 ? tid : H0(__NR_getpid));
    } else
        pid_remember(kept);
    return r;
}

XC_HOT static long sys_clone(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr;
    unsigned long flags = (unsigned long)a[0];
    unsigned long sp = (unsigned long)a[1];
    if (flags & CLONE_NS_FLAGS)
        return -XC_EPERM;
    if (!sp) {
        if ((flags & CLONE_VM) && (flags & CLONE_VFORK))
            flags &= ~(unsigned long)CLONE_VM; /* a shared stack would lose our frame */
        else if (flags & CLONE_VM)
            return -XC_EINVAL;
        return fork_like(flags, a[2], a[3], a[4]);
    }
    if (!uc)
        return -XC_EINVAL; /* (a patched site's trampoline sends a new stack to the trap path) */
    int vfork = (flags & (CLONE_VM | CLONE_VFORK | CLONE_THREAD)) == (CLONE_VM | CLONE_VFORK);
    int was_uncached = rw && rw->pid_uncached;
    long kept = pid_forget(flags);
    if ((flags & CLONE_VM) && !vfork) /* (a vfork child runs while this process waits) */
        xc_abom_threads();
    /* The child starts in xc_clone_thread on the new stack: leave it the
     * program's registers and return address just below the stack top. */
    uint64_t *top = (uint64_t *)sp;
    struct xc_sigcontext *m = &uc->mc;
    uint64_t *b = top - 15;
    b[0] = m->r15; b[1] = m->r14; b[2] = m->r13; b[3] = m->r12;
    b[4] = m->rbp; b[5] = m->rbx; b[6] = m->r11; b[7] = m->r10;
    b[8] = m->r9; b[9] = m->r8; b[10] = m->rdx; b[11] = m->rsi;
    b[12] = m->rdi; b[13] = m->rcx; b[14] = m->rip;
    long r = xc_clone_thread(flags, b, (void *)a[2], (void *)a[3], (unsigned long)a[4]);
    if (vfork && r > 0 && rw) {
        /* posix_spawn's child has executed or exited: the memory is this
         * process's alone again, and so are its caches. */
        rw->pid_uncached = was_uncached;
        if (!was_uncached) {
            rw->owner = 0;
            pid_remember(kept);
        }
    }
    return r;
}

/* exit_group: the process's program no longer runs (running.c). */
XC_HOT static long sys_exit_group(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    xc_txt_leave();
    return H1(__NR_exit_group, a[0]);
}

XC_HOT static long sys_fork(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)a, (void)uc;
    return fork_like(XC_SIGCHLD, 0, 0, 0);
}

XC_HOT static long sys_vfork(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)a, (void)uc;
    return fork_like(CLONE_VFORK | XC_SIGCHLD, 0, 0, 0);
}

/* Whether *st* describes the file this process runs, by the one link it
 * has, on the same mount, unchanged since the loader read its path (a link
 * or a rename changes its ctime). */
XC_HOT static int same_file(const struct xc_statx *st)
{
    return (st->mask & XC_STATX_EXE) == XC_STATX_EXE && st->nlink == 1 && st->ino == xc_proc.exe_ino &&
           ((uint64_t)st->dev_major << 32 | st->dev_minor) == xc_proc.exe_dev && st->rest[0] == xc_proc.exe_mnt &&
           st->ctime.sec * 1000000000L + st->ctime.nsec == xc_proc.exe_ctime;
}

/* Whether the program an execve is about to run (*st*) is this process's
 * own file, which xc_proc.exe still names: then that is the path the
 * kernel would give for it, and the new image needs no readlink of its own
 * (XC_REQ_SAME_EXE: a fork child executing its parent's program, a busybox
 * applet by a symlink to it). */
XC_HOT static __attribute__((noinline)) int same_exe(const struct xc_statx *st)
{
    if (!xc_proc.exe_ctime || xc_proc.exe[0] != '/' || !same_file(st))
        return 0;
    /* and the path still leads to it (a directory on the way renamed: the
     * kernel names the file by where it is now) */
    struct xc_statx at;
    return H5(__NR_statx, AT_FDCWD, xc_proc.exe, 0x100 /* AT_SYMLINK_NOFOLLOW */, XC_STATX_EXE, &at) == 0 &&
           same_file(&at);
}

/* execve: check what the kernel would check first (the old image is gone
 * once the LibOS re-executes itself), then run the LibOS image with the
 * program's path and arguments. */
/* What execve checks of one file before the point of no return, in the
 * kernel's order: search and exec permission and a mount that allows exec
 * (faccessat2's X_OK answers EACCES for a regular file on a noexec mount, as
 * execve does), a regular file, then a format it knows.  0: an ELF file; 1:
 * a `#!` script whose interpreter *interp* points into *line*; or the
 * error.  With *keep*, an ELF file stays open there, not close-on-exec, for
 * the new image's loader (the caller has no other thread that could fork
 * and exec meanwhile), and *same* says whether it is this process's own
 * program by the one name it has (same_exe); else -1 there. */
XC_HOT static __attribute__((noinline)) long exec_check(const char *path, char line[256], char **interp, char **arg,
                                                 long *keep, int *same)
{
    /* (Small: it may run on a posix_spawn child's few-KB stack.  The file's
     * first bytes are read into *line*, where a `#!` line is cut up.) */
    if (keep)
        *keep = -1;
    long r = H4(__NR_faccessat2, AT_FDCWD, path, 1 /* X_OK */, 0x200 /* AT_EACCESS */);
    if (r < 0)
        return r;
    long fd = H3(__NR_openat, AT_FDCWD, path, O_RDONLY | (keep ? 0 : O_CLOEXEC));
    if (fd < 0)
        return fd;
    struct xc_statx st;
    r = H5(__NR_statx, fd, "", AT_EMPTY_PATH, 1U /* STATX_TYPE */ | (keep ? XC_STATX_EXE : 0), &st);
    if (r == 0 && (st.mode & 0170000) != 0100000)
        r = -XC_EACCES;
    if (r == 0) {
        struct { void *b; unsigned long l; } iov = {line, 256};
        long n = H5(__NR_preadv2, fd, &iov, 1, 0, 0);
        if (n >= 4 && line[0] == 0x7f && line[1] == 'E' && line[2] == 'L' && line[3] == 'F') {
            if (keep) {
                *keep = fd;
                *same = same_exe(&st);
                return 0;
            }
            r = 0;
        } else if (n >= 2 && line[0] == '#' && line[1] == '!') {
            r = xc_parse_shebang(line, n, line, interp, arg);
        } else {
            r = n < 0 ? n : -XC_ENOEXEC;
        }
    }
    H1(__NR_close, fd);
    return r;
}

/* An exec request (abi.h, struct xc_exec_req) for the image executed next
 * with *argv*, to load *path* in *mode* (*argv_made*: a script's argv
 * already made, the interpreters in it; *fd*: the program's file, left open
 * for the loader, or -1; *same*: that file is the caller's own, same_exe):
 * its slot, or -1 (no segment, a path that does not fit, no free slot: the
 * caller passes them in argv).  The caller frees it if the exec fails; one
 * left by a process killed between the two stays taken (its pid and argv
 * name it only). */
XC_HOT static __attribute__((noinline)) int exec_request(const char *path, int mode, int argv_made, char **argv,
                                                  long fd, int same)
{
    struct xc_stats *s = xc_stats;
    unsigned long el = xc_strlen(xc_proc.exe);
    if (!s || el >= XC_EXEC_REQ_EXE)
        return -1;
    /* xc_argv_hash, read as the kernel will (a bad pointer: no request,
     * and the exec's own EFAULT) */
    int argc = 0;
    while (argv[argc])
        argc++;
    uint32_t hash = 2166136261u ^ (uint32_t)argc;
    for (int i = 0; i < argc; i++) {
        for (const char *a = argv[i];; a += 64) {
            char b[64];
            long k = xc_user_strcpy(b, a, sizeof b);
            if (k < 0)
                return -1;
            hash = xc_argv_hash_bytes(hash, b, k < (long)sizeof b ? (unsigned long)k + 1 : sizeof b);
            if (k < (long)sizeof b)
                break;
        }
    }
    /* (not the cache: a vfork child's is its parent's; the gs base is its own) */
    int64_t pid = (int64_t)(gs_ids() >> 32);
    if (!pid)
        pid = H0(__NR_getpid);
    for (int i = 0; i < XC_EXEC_REQS; i++) {
        struct xc_exec_req *r = &XC_EXEC_REQ(s)[i];
        int64_t free = 0;
        if (__atomic_load_n(&r->pid, __ATOMIC_RELAXED) != 0 ||
            !__atomic_compare_exchange_n(&r->pid, &free, -1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            continue;
        long n = xc_user_strcpy(r->path, path, sizeof r->path);
        if (n < 0 || n >= (long)sizeof r->path) { /* (a bad pointer: the exec's own EFAULT) */
            __atomic_store_n(&r->pid, 0, __ATOMIC_RELEASE);
            return -1;
        }
        r->mode = (uint32_t)mode;
        r->flags = (argv_made ? XC_REQ_ARGV_MADE : 0) | (fd >= 0 && same ? XC_REQ_SAME_EXE : 0);
        r->argv_hash = hash;
        r->fd = fd >= 0 ? (uint32_t)fd + 1 : 0;
        xc_memcpy(r->exe, xc_proc.exe, el + 1);
        __atomic_store_n(&r->pid, pid, __ATOMIC_RELEASE);
        return i;
    }
    return -1;
}

/* *argv* (*argc* words, or just *path* when none) at *at*, NULL-ended. */
XC_HOT static void put_argv(char **at, char *const *argv, long argc, const char *path)
{
    for (long i = 0; i < argc; i++)
        at[i] = argv[i];
    if (argc == 0)
        at[argc++] = (char *)path;
    at[argc] = 0;
}

/* do_exec's second half, in a frame of its own (do_exec's checks and this
 * never sit on a posix_spawn child's few KB of stack together): the new
 * image's argv and exec request, then the exec.  *levels* `#!` scripts lead
 * to the program, the first two's interpreters and arguments in *interp*
 * and *iarg*. */
XC_HOT static __attribute__((noinline)) long exec_image(const char *path, char *const *argv, long argc,
                                                 char *const *envp, int close_after, int levels,
                                                 char *const *interp, char *const *iarg, long fd, int same)
{
    long r;
    /* The new argv lives on the stack when small: in a CLONE_VM|CLONE_VFORK
     * child (posix_spawn) a mapping would leak into the parent. */
    unsigned long size = (unsigned long)(argc + 7) * sizeof(char *);
    int big = argc > 256;
    char *small[big ? 1 : argc + 7];
    char **nargv = big ? (char **)H6(__NR_mmap, 0, size, 3, 0x22 /* MAP_PRIVATE|MAP_ANONYMOUS */, -1, 0)
                       : small;
    if (big && XC_ERR(nargv)) {
        if (fd >= 0)
            H1(__NR_close, fd);
        return (long)nargv;
    }
    /* With an exec request (the program's path, the caller's and the mode),
     * the new image's argv is the program's own.  A script's is made as
     * Linux's exec makes it, the kernel's argument area being what
     * /proc/PID/cmdline shows: each `#!` level puts its interpreter, its
     * argument and the file before the argv it was given, whose argv[0] it
     * drops; the loader then only follows the chain.  (Deeper chains: the
     * loader makes the program's argv, and the command line stays the one
     * given to execve.)  Without a request, the mode and the path go ahead
     * of the given argv. */
    int made = levels > 0 && levels <= 2;
    char **exec_argv = nargv + 3;
    if (made) {
        long k = 0;
        for (int d = levels - 1; d >= 0; d--) {
            nargv[k++] = interp[d];
            if (iarg[d])
                nargv[k++] = iarg[d];
        }
        nargv[k++] = (char *)path;
        for (long i = 1; i < argc; i++)
            nargv[k++] = argv[i];
        nargv[k] = 0;
        exec_argv = nargv;
    } else {
        put_argv(nargv + 3, argv, argc, path);
    }
    int req = exec_request(path, close_after ? XC_REQ_EXEC_FD : XC_REQ_EXEC, made, exec_argv, fd, same);
    if (req < 0 && fd >= 0) {
        H1(__NR_close, fd); /* (only a request passes it on) */
        fd = -1;
    }
    if (req < 0) {
        if (made)
            put_argv(nargv + 3, argv, argc, path);
        nargv[0] = xc_proc.exe[0] == '/' ? xc_proc.exe : "xc-libos"; /* for the loader: xc_interp_path */
        nargv[1] = close_after ? XC_ARG_EXEC_FD : XC_ARG_EXEC;
        nargv[2] = (char *)path;
        exec_argv = nargv;
    }
    static char *const empty_env[] = {0};
    /* The parent-death SIGSYS must not arrive while the new image has no
     * handler yet (it would kill the process): off across the execve; the
     * new image watches again (xc_ppid_init) and asks for its ppid afresh. */
    int watched = rw && rw->ppid_watched;
    if (watched)
        H2(__NR_prctl, PR_SET_PDEATHSIG, 0);
    faults_across_exec(1);
    r = H5(__NR_execveat, XC_LIBOS_FD, xc_exec_path, exec_argv, envp ? envp : empty_env, AT_EMPTY_PATH);
    faults_across_exec(0);
    if (req >= 0)
        __atomic_store_n(&XC_EXEC_REQ(xc_stats)[req].pid, 0, __ATOMIC_RELEASE);
    if (fd >= 0)
        H1(__NR_close, fd);
    if (watched)
        xc_ppid_watch();
    if (big)
        H2(__NR_munmap, nargv, size);
    return r;
}

XC_HOT static long do_exec(const char *path, char *const *argv, char *const *envp, int close_after)
{
    char h[PATH_HEAD];
    if (!path || path_head(h, path) < 0)
        return -XC_EFAULT;
    if (is_proc_self_exe(h) && xc_proc.exe[0])
        path = xc_proc.exe;
    /* The file, then each `#!` interpreter as Linux's exec follows them
     * (a sixth script is ELOOP): the loader, past the point of no return,
     * could only die. */
    /* (Three first pages, as the stack of a posix_spawn child is a few KB:
     * the first two levels' interpreters and arguments stay in theirs while
     * the file after them is looked at, which is what making a script's
     * argv below needs.) */
    char lines[3][256], *interp[2], *iarg[2], *ip, *ia;
    const char *file = path;
    int levels = 0;
    /* An ELF program's file, opened for the checks, is kept open for the
     * loader (exec_request), which then neither looks the path up again nor
     * opens it; not where another thread could fork and exec meanwhile and
     * take the fd with it into its program. */
    long keep = -1, *keepp = xc_stats && !xc_abom_threaded() ? &keep : 0;
    int same = 0;
    for (int depth = 0;; depth++) {
        long r = exec_check(file, lines[depth % 3], &ip, &ia, depth == 0 ? keepp : 0, &same);
        if (r <= 0) {
            if (r < 0)
                return r;
            break;
        }
        if (depth == XC_SHEBANG_MAX)
            return -XC_ELOOP;
        if (depth < 2) {
            interp[depth] = ip;
            iarg[depth] = ia;
        }
        file = ip;
        levels = depth + 1;
    }
    long argc = 0;
    if (argv)
        while (argv[argc])
            argc++;
    return exec_image(path, argv, argc, envp, close_after, levels, interp, iarg, keep, same);
}

XC_HOT static long sys_execve(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    return do_exec((const char *)a[0], (char *const *)a[1], (char *const *)a[2], 0);
}

static long exec_at_path(const char *path, const long *a, long flags);

XC_HOT static long sys_execveat(long nr, const long *a, struct xc_ucontext *uc)
{
    (void)nr, (void)uc;
    const char *path = (const char *)a[1];
    int dirfd = (int)a[0];
    long flags = a[4];
    /* Kept small: this may run on a posix_spawn child's few-KB stack. */
    char full[512];
    if (!path)
        return -XC_EFAULT;
    if (flags & ~(long)(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
        return -XC_EINVAL;
    if (is_libos_fd(dirfd))
        return -XC_EBADF;
    if (path[0] == '\0' && !(flags & AT_EMPTY_PATH))
        return -XC_ENOENT;
    if (path[0] == '\0') {
        /* fexecve: the program is the file open on dirfd.  A close-on-exec
         * fd would be gone before the new image opens it: give it a copy. */
        long fdflags = H2(__NR_fcntl, dirfd, F_GETFD);
        if (fdflags < 0)
            return fdflags;
        long fd = dirfd, copy = -1;
        if (fdflags & 1 /* FD_CLOEXEC */) {
            copy = H3(__NR_fcntl, dirfd, F_DUPFD, 0);
            if (copy < 0)
                return copy;
            fd = copy;
        }
        xc_fd_path(full, fd);
        long r = do_exec(full, (char *const *)a[2], (char *const *)a[3], copy >= 0);
        if (copy >= 0)
            H1(__NR_close, copy);
        return r;
    }
    if (dirfd != AT_FDCWD && path[0] != '/') {
        /* relative to dirfd: /proc/self/fd/DIRFD/PATH */
        unsigned long n = xc_strlen(path);
        if (n >= 4096)
            return -XC_ENAMETOOLONG;
        char *buf = full;
        unsigned long size = n + 40;
        if (size > sizeof full) { /* rare: a long path gets its own mapping */
            long m = H6(__NR_mmap, 0, size, 3, 0x22, -1, 0);
            if (XC_ERR(m))
                return m;
            buf = (char *)m;
        }
        char *p = xc_fd_path(buf, dirfd);
        *p++ = '/';
        xc_memcpy(p, path, n + 1);
        long r = exec_at_path(buf, a, flags);
        if (buf != full)
            H2(__NR_munmap, buf, size);
        return r;
    }
    return exec_at_path(path, a, flags);
}

XC_HOT static long exec_at_path(const char *path, const long *a, long flags)
{
    if (flags & AT_SYMLINK_NOFOLLOW) {
        struct xc_statx st;
        long r = H5(__NR_statx, AT_FDCWD, path, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, XC_STATX_BASIC_STATS, &st);
        if (r < 0)
            return r;
        if ((st.mode & 0170000) == 0120000)
            return -XC_ELOOP;
    }
    return do_exec(path, (char *const *)a[2], (char *const *)a[3], 0);
}

/* --- the table and the trap handler --------------------------------------- */

#define NR_MAX XC_NR_MAX
#define HANDLER_FORWARD(name) forward
#define HANDLER_TRANSLATE(name) sys_##name
#define HANDLER_SPECIAL(name) sys_##name
#define HANDLER_EMULATE(name) sys_##name
enum { FORWARD, TRANSLATE, SPECIAL, EMULATE, REFUSED };

static const xc_handler table[NR_MAX] = {
#define XC_SYSCALL(nr, name, how, note) [nr] = HANDLER_##how(name),
#include "syscalls.def"
#undef XC_SYSCALL
};

static const uint8_t how_of[NR_MAX] = {
#define XC_SYSCALL(nr, name, how, note) [nr] = how,
#include "syscalls.def"
#undef XC_SYSCALL
};

/* Which arguments of a call are file descriptors (bit i: argument i).  A
 * program naming one of the LibOS's own fds gets EBADF, as if it were closed. */
#define FD0 1
#define FD1 2
#define FD2 4
#define FD4 16
static const uint8_t fd_args[NR_MAX] = {
    [__NR_read] = FD0, [__NR_write] = FD0, [__NR_close] = FD0, [__NR_fstat] = FD0, [__NR_lseek] = FD0,
    [__NR_mmap] = FD4, [__NR_ioctl] = FD0, [__NR_pread64] = FD0, [__NR_pwrite64] = FD0,
    [__NR_readv] = FD0, [__NR_writev] = FD0, [__NR_dup] = FD0, [__NR_dup2] = FD0,
    [__NR_sendfile] = FD0 | FD1, [__NR_connect] = FD0, [__NR_accept] = FD0, [__NR_sendto] = FD0,
    [__NR_recvfrom] = FD0, [__NR_sendmsg] = FD0, [__NR_recvmsg] = FD0, [__NR_shutdown] = FD0,
    [__NR_bind] = FD0, [__NR_listen] = FD0, [__NR_getsockname] = FD0, [__NR_getpeername] = FD0,
    [__NR_setsockopt] = FD0, [__NR_getsockopt] = FD0, [__NR_flock] = FD0, [__NR_fsync] = FD0,
    [__NR_fdatasync] = FD0, [__NR_ftruncate] = FD0, [__NR_fchdir] = FD0, [__NR_fchmod] = FD0,
    [__NR_fchown] = FD0, [__NR_fstatfs] = FD0, [__NR_fsetxattr] = FD0, [__NR_fgetxattr] = FD0,
    [__NR_flistxattr] = FD0, [__NR_fremovexattr] = FD0, [__NR_fadvise64] = FD0,
    [__NR_epoll_wait] = FD0, [__NR_epoll_ctl] = FD0 | FD2, [__NR_inotify_add_watch] = FD0,
    [__NR_inotify_rm_watch] = FD0, [__NR_openat] = FD0, [__NR_mkdirat] = FD0, [__NR_mknodat] = FD0,
    [__NR_fchownat] = FD0, [__NR_newfstatat] = FD0, [__NR_unlinkat] = FD0,
    [__NR_renameat] = FD0 | FD2, [__NR_linkat] = FD0 | FD2, [__NR_symlinkat] = FD1,
    [__NR_readlinkat] = FD0, [__NR_fchmodat] = FD0, [__NR_faccessat] = FD0, [__NR_pselect6] = 0,
    [__NR_splice] = FD0 | FD2, [__NR_tee] = FD0 | FD1, [__NR_utimensat] = FD0,
    [__NR_epoll_pwait] = FD0, [__NR_timerfd_settime] = FD0, [__NR_timerfd_gettime] = FD0,
    [__NR_accept4] = FD0, [__NR_signalfd4] = FD0, [__NR_dup3] = FD0, [__NR_preadv] = FD0,
    [__NR_pwritev] = FD0, [__NR_recvmmsg] = FD0, [__NR_sendmmsg] = FD0, [__NR_renameat2] = FD0 | FD2,
    [__NR_copy_file_range] = FD0 | FD2, [__NR_preadv2] = FD0, [__NR_pwritev2] = FD0,
    [__NR_statx] = FD0, [__NR_faccessat2] = FD0, [__NR_fallocate] = FD0, [__NR_getdents64] = FD0,
    [__NR_pidfd_send_signal] = FD0, [__NR_fchmodat2] = FD0, [__NR_setxattrat] = FD0,
    [__NR_getxattrat] = FD0, [__NR_listxattrat] = FD0, [__NR_removexattrat] = FD0,
};

XC_HOT static int names_libos_fd(long nr, const long *a)
{
    unsigned int m = fd_args[nr];
    for (int i = 0; m; i++, m >>= 1)
        if ((m & 1) && is_libos_fd(a[i]))
            return 1;
    return 0;
}

XC_HOT static long serve(long nr, const long *a, struct xc_ucontext *uc)
{
    return names_libos_fd(nr, a) ? -XC_EBADF : table[nr](nr, a, uc);
}

/* --- the container's profile and the trace --------------------------------- */

static const char *const names[NR_MAX] = {
#define XC_SYSCALL(nr, name, how, note) [nr] = #name,
#include "syscalls.def"
#undef XC_SYSCALL
};

/* Which argument is a path, plus one (0: none), for the trace. */
static const uint8_t path_arg[NR_MAX] = {
    [__NR_open] = 1, [__NR_stat] = 1, [__NR_lstat] = 1, [__NR_access] = 1, [__NR_readlink] = 1,
    [__NR_unlink] = 1, [__NR_mkdir] = 1, [__NR_rmdir] = 1, [__NR_chdir] = 1, [__NR_chmod] = 1,
    [__NR_truncate] = 1, [__NR_rename] = 1, [__NR_execve] = 1, [__NR_openat] = 2,
    [__NR_newfstatat] = 2, [__NR_faccessat] = 2, [__NR_faccessat2] = 2, [__NR_readlinkat] = 2,
    [__NR_unlinkat] = 2, [__NR_mkdirat] = 2, [__NR_statx] = 2, [__NR_execveat] = 2,
};

/* "[pid] name(a0, a1, a2) = r" (strace's shape) on XC_TRACE_FD; *done*: r is known. */
static void trace_call(long nr, const long *a, long r, int done, int trapped)
{
    struct xc_line l = {0};
    xc_line_str(&l, "[");
    xc_line_dec(&l, sys_getpid(0, 0, 0));
    xc_line_str(&l, "] ");
    xc_line_str(&l, names[nr]);
    xc_line_str(&l, "(");
    for (int i = 0; i < 3; i++) {
        if (i)
            xc_line_str(&l, ", ");
        if (path_arg[nr] == i + 1 && a[i] && (done ? r != -XC_EFAULT : 0)) {
            char q[2] = {'"', 0};
            xc_line_str(&l, q);
            const char *p = (const char *)a[i];
            for (int k = 0; p[k] && k < 200; k++) {
                q[0] = p[k];
                xc_line_str(&l, q);
            }
            xc_line_str(&l, "\"");
        } else {
            xc_line_hex(&l, (unsigned long)a[i]);
        }
    }
    xc_line_str(&l, ") = ");
    if (done)
        xc_line_dec(&l, r);
    else
        xc_line_str(&l, "?");
    xc_line_str(&l, trapped ? " (trap)" : "");
    xc_line_flush(&l, XC_TRACE_FD);
}

/* A call under the profile: refused with an errno, forwarded instead of
 * answered in the LibOS, traced. */
static long profiled(long nr, const long *a, struct xc_ucontext *uc, unsigned int pr)
{
    int trace = (pr & XC_PROFILE_TRACE) || (xc_stats->flags & XC_FLAG_TRACE);
    int noreturn = nr == __NR_execve || nr == __NR_execveat || nr == __NR_exit || nr == __NR_exit_group;
    if (trace && noreturn)
        trace_call(nr, a, 0, 0, uc != 0);
    long r;
    if ((pr & 15) == XC_PROFILE_REFUSE)
        r = -(long)(pr >> 8);
    else if ((pr & 15) == XC_PROFILE_FORWARD && how_of[nr] == EMULATE && !names_libos_fd(nr, a))
        r = xc_host_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    else
        r = serve(nr, a, uc);
    if (trace && !noreturn)
        trace_call(nr, a, r, 1, uc != 0);
    return r;
}

/* Whether a patched site of *nr* may skip the LibOS (a direct gate, gate.S):
 * the LibOS would pass it to the host unchanged, the profile says nothing of
 * it and the trace is off.  Returns which arguments are fds (bit i: argument
 * i), which the trampoline compares with the LibOS's own, and
 * XC_DIRECT_PATH1 if the second argument is a path the trampoline must look
 * at first, XC_DIRECT_OPEN2 if the third is an open's flags it must look at
 * (xc_open_writes), XC_DIRECT_STAT if xc_stat_direct serves it; -1: not
 * direct. */
int xc_direct_fds(long nr)
{
    if (nr < 0 || nr >= NR_MAX)
        return -1;
    if (xc_stats && (xc_profile_of(nr) || (xc_stats->flags & XC_FLAG_TRACE)))
        return -1;
    /* openat and newfstatat look only at paths that start "/proc" or "/dev"
     * (is_proc_self_exe, is_libos_fd_path): others may go direct; openat
     * unless it asks for write access or O_TRUNC (running.c, ETXTBSY) */
    if (nr == __NR_openat)
        return fd_args[nr] | XC_DIRECT_PATH1 | XC_DIRECT_OPEN2;
    /* newfstatat is statx and a conversion: xc_stat_direct, called from the
     * trampoline through xc_abom_stat_entry (gate.S) */
    if (nr == __NR_newfstatat)
        return fd_args[nr] | XC_DIRECT_PATH1 | XC_DIRECT_STAT;
    if (how_of[nr] != FORWARD || table[nr] != forward)
        return -1;
    return fd_args[nr];
}

/* A call from a site ABOM patched (xc_abom_entry): no trap frame. */
XC_HOT long xc_abom_dispatch(long nr, long a0, long a1, long a2, long a3, long a4, long a5)
{
    long a[6] = {a0, a1, a2, a3, a4, a5};
    if (nr < 0 || nr >= NR_MAX || !table[nr])
        return -XC_ENOSYS;
    if (xc_stats) {
        /* Plain increments, not locked ones: about 40 ns less per call; two
         * threads counting the same call at the same instant may lose one. */
        xc_stats->patched[nr]++;
        unsigned int pr = xc_profile_of(nr);
        if (pr | (xc_stats->flags & XC_FLAG_TRACE))
            return profiled(nr, a, 0, pr);
    }
    return serve(nr, a, 0);
}

XC_HOT void xc_sigsys_handler(int sig, struct xc_siginfo_sys *si, struct xc_ucontext *uc)
{
    (void)sig;
    if (si->code != 1 /* SYS_SECCOMP */) {
        /* Not a trap: the parent died (xc_ppid_watch), or someone sent SIGSYS. */
        if (rw)
            rw->ppid = 0;
        return;
    }
    struct xc_sigcontext *m = &uc->mc;
    long nr = (long)m->rax;
    long a[6] = {(long)m->rdi, (long)m->rsi, (long)m->rdx, (long)m->r10, (long)m->r8, (long)m->r9};
    long r;
    int patch = xc_abom_on;
    if (patch) {
        /* a trap at the placeholder of a mov being rewritten: the site's call */
        unsigned long resume = xc_abom_held((unsigned long)si->call_addr, &nr);
        if (resume) {
            m->rip = resume;
            patch = 0;
        }
    }
    if (nr >= 0 && nr < NR_MAX && table[nr]) {
        unsigned int pr = 0;
        if (xc_stats) {
            __atomic_fetch_add(&xc_stats->calls[nr], 1, __ATOMIC_RELAXED);
            __atomic_fetch_add(&xc_stats->by_how[how_of[nr]], 1, __ATOMIC_RELAXED);
            pr = xc_profile_of(nr) | (unsigned int)(xc_stats->flags & XC_FLAG_TRACE);
        }
        if (patch)
            xc_abom_try(nr, (unsigned long)si->call_addr);
        r = pr ? profiled(nr, a, uc, xc_profile_of(nr)) : serve(nr, a, uc);
    } else {
        if (xc_stats)
            __atomic_fetch_add(&xc_stats->by_how[REFUSED], 1, __ATOMIC_RELAXED);
        r = -XC_ENOSYS;
    }
    m->rax = (uint64_t)r;
}

/* on_stack: SA_ONSTACK, for Go programs.  Go runs system calls on goroutine
 * stacks of a few KB, too small for a ~3.6 KB trap frame (pitfall 5), and
 * gives every thread an alternate signal stack.  Other programs get the
 * trap frame on their current stack: with SA_ONSTACK, a signal delivered
 * while the LibOS forwards a call would run on the alternate stack even
 * when its handler did not ask for it. */
long xc_install_handler(int on_stack)
{
    struct xc_sigaction sa = {
        .handler = (void *)xc_sigsys_handler,
        .flags = XC_SA_SIGINFO | XC_SA_RESTORER | XC_SA_NODEFER | (on_stack ? XC_SA_ONSTACK : 0),
        .restorer = (void *)xc_restorer,
        .mask = 0,
    };
    return H4(__NR_rt_sigaction, XC_SIGSYS, &sa, 0, 8);
}
