/*
 * Security probes for the X-LibOS, run inside a container.
 *
 *   libos_probe never GATE_ADDR   every never-allowed call, from the program's
 *                                 code and through the LibOS's own gate
 *   libos_probe filter            the program cannot remove or weaken the filter
 *   libos_probe sigsys            ... nor take or block the LibOS's SIGSYS
 *   libos_probe region            ... nor remap, unprotect or unmap the LibOS
 *   libos_probe fds               ... nor close or replace the LibOS's fds
 *   libos_probe checks GATE LO TEXT_END HI
 *                                 the interface's argument checks, through the
 *                                 gate and from the program
 *   libos_probe abom...           ABOM's rewrites keep the program's meaning
 *
 * Each prints one line per check, "name: result", and exits 0; the test
 * compares the transcript.  Results are errno names, never raw numbers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/seccomp.h>

#define LIBOS_BASE 0x10000000UL
#define LIBOS_FD 127 /* abi.h: XC_LIBOS_FD, XC_STATS_FD */
#define STATS_FD 126

static const char *err_name(long r)
{
    if (r >= 0)
        return "OK";
    switch (-r) {
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case ENOENT: return "ENOENT";
    case ENOTDIR: return "ENOTDIR";
    case ENOTTY: return "ENOTTY";
    case ENOMEM: return "ENOMEM";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case ETXTBSY: return "ETXTBSY";
    case EROFS: return "EROFS";
    case EIO: return "EIO";
    default: return "other";
    }
}

/* A raw `syscall` instruction in the program's own code. */
static long raw(long nr, long a, long b, long c, long d, long e, long f)
{
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

typedef long (*gate_fn)(long nr, long a1, long a2, long a3, long a4, long a5, long a6);

struct call {
    const char *name;
    long nr, a, b, c;
};

static const struct call never[] = {
    {"ptrace", SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0},
    {"mount", SYS_mount, (long)"none", (long)"/tmp", (long)"tmpfs"},
    {"umount2", SYS_umount2, (long)"/proc", 0, 0},
    {"pivot_root", SYS_pivot_root, (long)"/", (long)"/"},
    {"keyctl", SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, 0, 0},
    {"add_key", SYS_add_key, (long)"user", (long)"k", (long)"v"},
    {"bpf", SYS_bpf, 0, 0, 0},
    {"perf_event_open", SYS_perf_event_open, 0, 0, -1},
    {"userfaultfd", SYS_userfaultfd, 0, 0, 0},
    {"io_uring_setup", SYS_io_uring_setup, 1, 0, 0},
    {"kexec_load", SYS_kexec_load, 0, 0, 0},
    {"init_module", SYS_init_module, 0, 0, 0},
    {"delete_module", SYS_delete_module, (long)"x", 0, 0},
    {"open_by_handle_at", SYS_open_by_handle_at, -100, 0, 0},
    {"unshare", SYS_unshare, CLONE_NEWUTS, 0, 0},
    {"setns", SYS_setns, 0, CLONE_NEWNET, 0},
    {"seccomp", SYS_seccomp, SECCOMP_SET_MODE_STRICT, 0, 0},
    {"clone-newpid", SYS_clone, CLONE_NEWPID | SIGCHLD, 0, 0},
    {"execveat-other-fd", SYS_execveat, 0, (long)"", 0},
};

static int probe_never(unsigned long gate)
{
    gate_fn g = (gate_fn)gate;
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
        const struct call *c = &never[i];
        long r1 = raw(c->nr, c->a, c->b, c->c, 0, 0, 0);
        long r2 = g(c->nr, c->a, c->b, c->c, 0, 0, 0);
        printf("%s: program %s, gate %s\n", c->name, err_name(r1), err_name(r2));
    }
    char host[65] = {0};
    gethostname(host, sizeof host - 1);
    printf("hostname unchanged: %s\n", strcmp(host, "xcprobe") == 0 ? "yes" : host);
    return 0;
}

/* The argument checks of the exokernel interface (src/libos/interface.def):
 * each call through the LibOS's gate, and (where the LibOS forwards it) as
 * the program's own system call. */
static int probe_checks(unsigned long gate, unsigned long lo, unsigned long text_end, unsigned long hi)
{
    gate_fn g = (gate_fn)gate;
    int p[2];
    if (pipe(p) != 0)
        return 1;
    int v = 0, sv[2];
    unsigned long fsbase;
    struct { const char *name; long nr, a, b, c; int forwarded; } calls[] = {
        {"ioctl FIONBIO", SYS_ioctl, p[0], 0x5421, (long)&v, 1},
        {"ioctl FIONREAD", SYS_ioctl, p[0], 0x541B, (long)&v, 1},
        {"ioctl TCGETS of a pipe", SYS_ioctl, p[0], 0x5401, (long)&v, 1},
        {"ioctl TIOCSTI", SYS_ioctl, p[0], 0x5412, (long)"x", 1},
        {"ioctl TIOCSETD", SYS_ioctl, p[0], 0x5423, (long)&v, 1},
        {"ioctl BLKGETSIZE64", SYS_ioctl, p[0], 0x80081272, (long)&v, 1},
        {"ioctl with a request in the high half", SYS_ioctl, p[0], 0x100005421L, (long)&v, 1},
        {"fcntl F_GETFL", SYS_fcntl, p[0], F_GETFL, 0, 1},
        {"fcntl 9999", SYS_fcntl, p[0], 9999, 0, 1},
        {"socket AF_INET6", SYS_socket, 10 /* AF_INET6 */, 2 /* SOCK_DGRAM */, 0, 1},
        {"socket AF_NETLINK route", SYS_socket, 16, 3 /* SOCK_RAW */, 0, 1},
        {"socket AF_NETLINK netfilter", SYS_socket, 16, 3, 12, 1},
        {"socket AF_NETLINK generic", SYS_socket, 16, 3, 16, 1},
        {"socket AF_PACKET", SYS_socket, 17, 3, 0, 1},
        {"socket AF_ALG", SYS_socket, 38, 5 /* SOCK_SEQPACKET */, 0, 1},
        {"socket AF_VSOCK", SYS_socket, 40, 1, 0, 1},
        {"socketpair AF_UNIX", SYS_socketpair, 1, 1, 0, 1},
        {"socketpair AF_TIPC", SYS_socketpair, 30, 5, 0, 1},
        {"prctl PR_SET_NAME", SYS_prctl, PR_SET_NAME, (long)"probe", 0, 1},
        {"prctl PR_SET_SYSCALL_USER_DISPATCH", SYS_prctl, 59, 0, 0, 1},
        {"prctl 12345", SYS_prctl, 12345, 0, 0, 1},
        {"prctl PR_SET_MM", SYS_prctl, PR_SET_MM, 0, 0, 1},
        {"arch_prctl ARCH_GET_FS", SYS_arch_prctl, 0x1003, (long)&fsbase, 0, 1},
        {"arch_prctl ARCH_MAP_VDSO_64", SYS_arch_prctl, 0x2003, 0x7f0000000000L, 0, 1},
        {"arch_prctl ARCH_SHSTK_ENABLE", SYS_arch_prctl, 0x5001, 1, 0, 1},
        {"mprotect of the LibOS's code", SYS_mprotect, lo, 4096, PROT_READ, 0},
        {"mprotect PROT_NONE of the code's last page", SYS_mprotect, text_end - 4096, 4096, PROT_NONE, 0},
        {"mprotect PROT_EXEC of the LibOS's data", SYS_mprotect, text_end, 4096, PROT_READ | PROT_EXEC, 0},
        {"mprotect PROT_READ of the LibOS's data", SYS_mprotect, text_end, 4096, PROT_READ, 0},
        {"mprotect PROT_EXEC just below the LibOS", SYS_mprotect, lo - 8192, 8192, PROT_READ | PROT_EXEC, 0},
        {"mmap MAP_FIXED over the LibOS", SYS_mmap, hi - 4096, 4096, PROT_READ, 0},
        {"munmap of the LibOS", SYS_munmap, lo, 4096, 0, 0},
        {"munmap across the LibOS's end", SYS_munmap, hi - 4096, 8192, 0, 0},
        {"munmap of 8 GiB below the LibOS", SYS_munmap, 0x100000, 1L << 33, 0, 0},
        {"munmap above 4 GiB", SYS_munmap, 1L << 40, 4096, 0, 0},
        {"madvise into the LibOS", SYS_madvise, lo - 8192, 8192 + 4096, MADV_DONTNEED, 0},
        {"madvise just below the LibOS", SYS_madvise, lo - 8192, 8192, MADV_DONTNEED, 0},
        {"madvise of 0 bytes in the LibOS", SYS_madvise, lo + 4096, 0, MADV_DONTNEED, 0},
        {"mremap from the LibOS", SYS_mremap, lo, 4096, 4096, 0},
    };
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        long a = calls[i].a, b = calls[i].b, c = calls[i].c, d = 0, e = 0;
        if (calls[i].nr == SYS_socketpair)
            d = (long)sv;
        if (calls[i].nr == SYS_mmap)
            d = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, e = -1;
        long r2 = g(calls[i].nr, a, b, c, d, e, 0);
        if (calls[i].forwarded)
            printf("%s: program %s, gate %s\n", calls[i].name, err_name(raw(calls[i].nr, a, b, c, d, e, 0)),
                   err_name(r2));
        else
            printf("%s: gate %s\n", calls[i].name, err_name(r2));
    }
    /* The one mmap over the LibOS the filter allows: its code again, shared, from its fd (what
     * the LibOS does at start); and the same with one argument changed. */
    struct { const char *name; long len, prot, flags, fd, off; } remaps[] = {
        {"as at start", text_end - lo, PROT_READ | PROT_EXEC, MAP_SHARED | MAP_FIXED | MAP_POPULATE, LIBOS_FD, 0},
        {"private", text_end - lo, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_FIXED | MAP_POPULATE, LIBOS_FD, 0},
        {"writable", text_end - lo, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_SHARED | MAP_FIXED | MAP_POPULATE,
         LIBOS_FD, 0},
        {"a page shorter", text_end - lo - 4096, PROT_READ | PROT_EXEC, MAP_SHARED | MAP_FIXED | MAP_POPULATE,
         LIBOS_FD, 0},
        {"another offset", text_end - lo, PROT_READ | PROT_EXEC, MAP_SHARED | MAP_FIXED | MAP_POPULATE, LIBOS_FD,
         4096},
        {"another fd", text_end - lo, PROT_READ | PROT_EXEC, MAP_SHARED | MAP_FIXED | MAP_POPULATE, p[0], 0},
        {"without MAP_POPULATE", text_end - lo, PROT_READ | PROT_EXEC, MAP_SHARED | MAP_FIXED, LIBOS_FD, 0},
    };
    for (size_t i = 0; i < sizeof remaps / sizeof remaps[0]; i++)
        printf("mmap of the LibOS's code, shared from its fd, %s: gate %s\n", remaps[i].name,
               err_name(g(SYS_mmap, lo, remaps[i].len, remaps[i].prot, remaps[i].flags, remaps[i].fd,
                          remaps[i].off)));
    /* A forced write (what ptrace and /proc/self/mem do) into the code: it copies only private pages */
    int mem = open("/proc/self/mem", O_RDWR);
    char nop = (char)0x90;
    printf("write through /proc/self/mem into the LibOS's code: %s\n",
           mem < 0 ? err_name(-errno) : pwrite(mem, &nop, 1, (off_t)(text_end - 1)) == 1 ? "OK" : err_name(-errno));
    if (mem >= 0)
        close(mem);
    /* mremap of a page of ours onto the LibOS */
    char *mine = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("mremap MREMAP_FIXED onto the LibOS: gate %s\n",
           err_name(g(SYS_mremap, (long)mine, 4096, 4096, MREMAP_MAYMOVE | MREMAP_FIXED, lo, 0)));
    printf("still served: %s\n", getppid() >= 0 && raw(SYS_getpid, 0, 0, 0, 0, 0, 0) == getpid() ? "yes" : "no");
    return 0;
}

/* What /proc/self/exe says in programs this one executes by each name of
 * its own file: itself, while it has a second (hard) link and by that link
 * (the kernel names the file by the link it was opened through), by a
 * symlink (resolved), renamed and renamed back, with its directory renamed,
 * and (*other*) the same file through another mount. */
static int probe_exe_print(void)
{
    char b[4096];
    ssize_t n = readlink("/proc/self/exe", b, sizeof b - 1);
    if (n < 0)
        printf("readlink: %s\n", err_name(-errno));
    else
        printf("%.*s\n", (int)n, b);
    return 0;
}

static void exe_of(const char *how, const char *path)
{
    printf("%s: ", how);
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        execl(path, path, "exe-print", (char *)NULL);
        printf("exec %s\n", err_name(-errno));
        _exit(127);
    }
    int st;
    waitpid(p, &st, 0);
}

static int probe_exe_names(const char *self, const char *other)
{
    char hl[256], sl[256], mv[256];
    snprintf(hl, sizeof hl, "%s-hardlink", self);
    snprintf(sl, sizeof sl, "%s-symlink", self);
    snprintf(mv, sizeof mv, "%s-renamed", self);
    exe_of("itself", self);
    exe_of("itself again", self);
    if (other) /* (before the file changes below: only the mount tells it apart) */
        exe_of("through another mount", other);
    /* (also before: only the path, which no longer leads to the file, tells it apart) */
    const char *slash = strrchr(self, '/');
    if (slash && slash != self) {
        char dir[256], moved[256], path[300];
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - self), self);
        snprintf(moved, sizeof moved, "%s-renamed", dir);
        snprintf(path, sizeof path, "%s%s", moved, slash);
        if (rename(dir, moved) == 0) {
            exe_of("its directory renamed", path);
            rename(moved, dir);
        }
    }
    if (link(self, hl) != 0) {
        printf("link: %s\n", err_name(-errno));
        return 1;
    }
    exe_of("itself, with a second link", self);
    exe_of("by the second link", hl);
    unlink(hl);
    exe_of("itself, one link again", self);
    if (symlink(self, sl) == 0) {
        exe_of("by a symlink", sl);
        unlink(sl);
    }
    if (rename(self, mv) == 0) {
        exe_of("renamed", mv);
        rename(mv, self);
    }
    exe_of("renamed back", self);
    return 0;
}

/* A forged exec request for this process's next exec (the statistics
 * segment is writable from the gate), naming as the program's open file an
 * fd that is closed, a pipe, or the segment itself: the new image loads the
 * path instead and runs. */
static uint32_t argv_hash(int argc, char *const *argv)
{
    uint32_t h = 2166136261u ^ (uint32_t)argc;
    for (int i = 0; i < argc; i++)
        for (size_t k = 0; k == 0 || argv[i][k - 1]; k++)
            h = (h ^ (unsigned char)argv[i][k]) * 16777619u;
    return h;
}

static int probe_forged_fd(unsigned long gate)
{
    gate_fn g = (gate_fn)gate;
    struct { const char *how; int fd; } cases[] = {
        {"a closed fd", 99}, {"a pipe", -1}, {"the statistics fd", STATS_FD}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        printf("%s: ", cases[i].how);
        fflush(stdout);
        pid_t p = fork();
        if (p == 0) {
            int fd = cases[i].fd, pp[2];
            if (fd < 0 && pipe(pp) == 0)
                fd = pp[0];
            char *av[] = {"/probe", "exe-print", NULL};
            struct {
                int64_t pid;
                uint32_t mode, flags, hash, fd;
                char path[120], exe[104];
            } req = {getpid(), 2 /* XC_REQ_EXEC */, 0, argv_hash(2, av), (uint32_t)fd + 1, "/probe", "/probe"};
            long w = g(SYS_pwrite64, STATS_FD, (long)&req, sizeof req, 65536 /* slot 0 */, 0, 0);
            if (w != (long)sizeof req) {
                printf("pwrite %s\n", err_name(w));
                _exit(1);
            }
            execv("/probe", av);
            printf("exec %s\n", err_name(-errno));
            _exit(127);
        }
        int st;
        waitpid(p, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            printf("(status %d)\n", st);
    }
    return 0;
}

static int probe_filter(void)
{
    printf("prctl(PR_SET_SECCOMP, STRICT): %s\n",
           err_name(raw(SYS_prctl, PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0, 0)));
    printf("seccomp(SET_MODE_STRICT): %s\n",
           err_name(raw(SYS_seccomp, SECCOMP_SET_MODE_STRICT, 0, 0, 0, 0, 0)));
    printf("prctl(PR_SET_MM): %s\n", err_name(raw(SYS_prctl, PR_SET_MM, 1, 0, 0, 0, 0)));
    printf("prctl(PR_GET_SECCOMP): %ld\n", raw(SYS_prctl, PR_GET_SECCOMP, 0, 0, 0, 0, 0));
    printf("still served: %s\n", getppid() >= 0 ? "yes" : "no");
    return 0;
}

static volatile int app_sigsys;
static void on_sigsys(int sig)
{
    (void)sig;
    app_sigsys = 1;
}

static int probe_sigsys(void)
{
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_sigsys;
    printf("sigaction(SIGSYS): %s\n", sigaction(SIGSYS, &sa, NULL) == 0 ? "OK" : "error");
    sigaction(SIGSYS, NULL, &old);
    printf("reads back the program's handler: %s\n", old.sa_handler == on_sigsys ? "yes" : "no");
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGSYS);
    printf("block SIGSYS: %s\n", sigprocmask(SIG_BLOCK, &set, NULL) == 0 ? "OK" : "error");
    /* Every call below still traps into the LibOS and is served. */
    pid_t p = getpid();
    printf("served after blocking: %s\n", p > 0 ? "yes" : "no");
    sigprocmask(SIG_BLOCK, NULL, &set);
    printf("SIGSYS reported blocked: %s\n", sigismember(&set, SIGSYS) ? "yes" : "no");
    printf("program handler ran: %s\n", app_sigsys ? "yes" : "no");
    return 0;
}

static int probe_region(unsigned long state)
{
    void *base = (void *)LIBOS_BASE;
    if (state) {
        /* A direct store into the LibOS's state (sealed read-only). */
        pid_t p = fork();
        if (p == 0) {
            *(volatile char *)state = 1;
            _exit(0);
        }
        int st = 0;
        waitpid(p, &st, 0);
        printf("store into the LibOS's state: %s\n",
               WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV ? "SIGSEGV" : "stored");
        p = fork();
        if (p == 0) {
            *(volatile char *)(LIBOS_BASE + 0x1000) = 1;
            _exit(0);
        }
        waitpid(p, &st, 0);
        printf("store into the LibOS's code: %s\n",
               WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV ? "SIGSEGV" : "stored");
    }
    printf("mprotect RWX: %s\n", err_name(raw(SYS_mprotect, (long)base, 4096, 7, 0, 0, 0)));
    printf("munmap: %s\n", err_name(raw(SYS_munmap, (long)base, 4096, 0, 0, 0, 0)));
    printf("mmap MAP_FIXED: %s\n",
           err_name(raw(SYS_mmap, (long)base, 4096, 3, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)));
    printf("mremap onto it: %s\n", err_name(raw(SYS_mremap, (long)base, 4096, 8192, 0, 0, 0)));
    printf("still served: %s\n", getppid() >= 0 ? "yes" : "no");
    return 0;
}

static int probe_fds(void)
{
    printf("close(libos fd): %s\n", err_name(raw(SYS_close, LIBOS_FD, 0, 0, 0, 0, 0)));
    printf("close(stats fd): %s\n", err_name(raw(SYS_close, STATS_FD, 0, 0, 0, 0, 0)));
    printf("dup2(0, libos fd): %s\n", err_name(raw(SYS_dup2, 0, LIBOS_FD, 0, 0, 0, 0)));
    printf("dup3(0, libos fd): %s\n", err_name(raw(SYS_dup3, 0, LIBOS_FD, 0, 0, 0, 0)));
    printf("close_range(3, ~0): %s\n", err_name(raw(SYS_close_range, 3, ~0U, 0, 0, 0, 0)));
    /* exec still works, so the image survived. */
    execl("/bin/sh", "sh", "-c", "echo exec after close_range: OK", (char *)NULL);
    printf("exec after close_range: %s\n", strerror(errno));
    return 1;
}

/* --- ABOM ------------------------------------------------------------------ */

/* Sites with the exact bytes `b8 imm32 0f 05`; each returns its syscall's result. */
#define SITE(name, nr)                                                              \
    __attribute__((noinline, noclone)) static long name(void)                                                          \
    {                                                                               \
        long r;                                                                     \
        __asm__ volatile(".globl " #name "_at\n" #name "_at:\n"                    \
                         ".byte 0xb8\n.long " #nr "\nsyscall"                       \
                         : "=a"(r) : : "rcx", "r11", "memory");                     \
        return r;                                                                   \
    }
SITE(site_getpid, 39)
SITE(site_getppid, 110)
extern const unsigned char site_getpid_at[], site_getppid_at[];

/* eax = 110 (getppid), but the bytes before `syscall` are a mov $39 that never ran. */
static long site_skipped_mov(void)
{
    long r;
    __asm__ volatile("mov $110, %%eax\n jmp 1f\n .byte 0xb8\n .long 39\n1: syscall"
                     : "=a"(r) : : "rcx", "r11", "memory");
    return r;
}

/* A value in the red zone (below rsp) across the system call. */
static long site_red_zone(void)
{
    long out;
    __asm__ volatile("movq $0x1234567, -8(%%rsp)\n"
                     "movq $0x7654321, -128(%%rsp)\n"
                     ".byte 0xb8\n .long 39\n syscall\n"
                     "mov -8(%%rsp), %%rdx\n add -128(%%rsp), %%rdx\n mov %%rdx, %0"
                     : "=r"(out) : : "rax", "rcx", "rdx", "r11", "memory");
    return out;
}

/* Registers and flags the kernel keeps across `syscall` are kept. */
static int site_keeps_registers(void)
{
    unsigned long rdx = 0, rsi = 0, r8 = 0, r9 = 0, r10 = 0, flags_ok = 0;
    __asm__ volatile("mov $0x11, %%rdx\n mov $0x22, %%rsi\n mov $0x33, %%r8\n mov $0x44, %%r9\n"
                     "mov $0x55, %%r10\n stc\n"
                     ".byte 0xb8\n .long 39\n syscall\n"
                     "setc %%al\n movzbq %%al, %5\n"
                     "mov %%rdx, %0\n mov %%rsi, %1\n mov %%r8, %2\n mov %%r9, %3\n mov %%r10, %4\n"
                     : "=m"(rdx), "=m"(rsi), "=m"(r8), "=m"(r9), "=m"(r10), "=r"(flags_ok)
                     : : "rax", "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11", "memory");
    return rdx == 0x11 && rsi == 0x22 && r8 == 0x33 && r9 == 0x44 && r10 == 0x55 && flags_ok == 1;
}

/* A b8 27 00 00 00 that is the tail of a longer instruction (movabs to rdx). */
static unsigned long site_inside_longer(void)
{
    unsigned long rdx;
    __asm__ volatile("mov $39, %%eax\n"
                     ".byte 0x48, 0xba, 0x11, 0x22, 0x33, 0xb8, 0x27, 0x00, 0x00, 0x00\n" /* movabs $..,%rdx */
                     "syscall\n mov %%rdx, %0"
                     : "=r"(rdx) : : "rax", "rcx", "rdx", "r11", "memory");
    return rdx;
}

/* One function per ABOM verdict, each with its unwind entry (the function
 * bounds ABOM decodes from) and no padding after it unless the case wants
 * one; the label NAME_sys is the `syscall`.  Each returns rax. */
#define CASE(name, body)                                                            \
    ".p2align 4, 0xf4\n.globl " #name "\n.type " #name ",@function\n" #name ":\n.cfi_startproc\n" body  \
    "ret\n.cfi_endproc\n.size " #name ", .-" #name "\n"
__asm__(".pushsection .text.abom_cases,\"ax\",@progbits\n.p2align 6, 0xf4\n"
        /* b8 27 00 00 00 0f 05, but the b8 is the tail of a movabs: not-boundary */
        /* (the rip-relative lea between the real mov and the syscall keeps APART from it) */
        CASE(case_not_boundary, "mov $39, %eax\nlea 0(%rip), %rcx\n"
                                ".byte 0x48, 0xba, 0x11, 0x22, 0x33, 0xb8, 0x27, 0, 0, 0\n"
                                ".globl case_not_boundary_sys\ncase_not_boundary_sys: syscall\n")
        /* a real mov $39 that a jump skips: eax is 110 at the trap: imm-mismatch */
        CASE(case_imm_mismatch, "mov $110, %eax\njmp 1f\nmov $39, %eax\n"
                                "1:\n.globl case_imm_mismatch_sys\ncase_imm_mismatch_sys: syscall\n")
        /* the number from a register, no padding to jump through: no-gap */
        CASE(case_no_gap, "mov $39, %edx\nmov %edx, %eax\n"
                          ".globl case_no_gap_sys\ncase_no_gap_sys: syscall\n")
        /* the mov a few movable instructions before the syscall (one stores
         * in the red zone), no padding: apart */
        CASE(case_apart, "mov $39, %eax\nmov %rdi, %rdx\nmovq %rdi, %xmm1\nmovups %xmm1, -24(%rsp)\n"
                         ".globl case_apart_sys\ncase_apart_sys: syscall\n")
        /* the same, but control enters past the mov (which never runs): apart,
         * and the site keeps trapping, right */
        CASE(case_apart_entered, "jmp 2f\nmov $39, %eax\n3: mov %rdi, %rdx\n"
                                 ".globl case_apart_entered_sys\ncase_apart_entered_sys: syscall\nret\n"
                                 "2: mov $39, %eax\njmp 3b\n")
        /* b8 27 00 00 00 0f 05 as it should be: mov32 */
        CASE(case_mov32, ".byte 0xb8, 0x27, 0, 0, 0\n.globl case_mov32_sys\ncase_mov32_sys: syscall\n")
        /* the 9-byte form: mov64 */
        CASE(case_mov64, ".byte 0x48, 0xc7, 0xc0, 0x27, 0, 0, 0\n.globl case_mov64_sys\ncase_mov64_sys: syscall\n")
        /* a mov across two cache lines: patched in three steps (mov32) */
        ".p2align 6, 0xf4\n.skip 60, 0xf4\n.globl case_split_mov\ncase_split_mov:\n.cfi_startproc\n"
        ".byte 0xb8, 0x27, 0, 0, 0\n.globl case_split_mov_sys\ncase_split_mov_sys: syscall\nret\n.cfi_endproc\n"
        /* a mov whose first two bytes already span two lines: cache-line */
        ".p2align 6, 0xf4\n.skip 63, 0xf4\n.globl case_cache_line\ncase_cache_line:\n.cfi_startproc\n"
        ".byte 0xb8, 0x27, 0, 0, 0\n.globl case_cache_line_sys\ncase_cache_line_sys: syscall\nret\n.cfi_endproc\n"
        /* code without an unwind entry: no-function */
        ".globl case_no_function\ncase_no_function:\n.byte 0xb8, 0x27, 0, 0, 0\n"
        ".globl case_no_function_sys\ncase_no_function_sys: syscall\nret\n"
        /* the same with five bytes of padding after the function: jump */
        /* a jump site whose syscall's two bytes span two lines: jump, behind an f4 */
        ".p2align 6, 0xf4\n.skip 56, 0xf4\n.globl case_jump_split\ncase_jump_split:\n.cfi_startproc\n"
        "mov $39, %edx\nmov %edx, %eax\n.globl case_jump_split_sys\ncase_jump_split_sys: syscall\nret\n"
        ".cfi_endproc\n.p2align 4, 0x90\n"
        CASE(case_jump, "mov $39, %edx\nmov %edx, %eax\n.globl case_jump_sys\ncase_jump_sys: syscall\n")
        ".byte 0x0f, 0x1f, 0x44, 0, 0\n"
        ".globl case_end\ncase_end:\n.cfi_startproc\nret\n.cfi_endproc\n"
        ".popsection\n");
long case_not_boundary(void), case_imm_mismatch(void), case_no_gap(void), case_jump(void);
long case_mov32(void), case_mov64(void), case_no_function(void), case_split_mov(void), case_cache_line(void);
long case_jump_split(void), case_apart(void), case_apart_entered(void);

static int probe_abom_cases(void)
{
    static const struct {
        const char *name;
        long (*fn)(void);
        int ppid;
    } cases[] = {
        {"not-boundary", case_not_boundary, 0}, {"imm-mismatch", case_imm_mismatch, 1},
        {"no-gap", case_no_gap, 0}, {"jump", case_jump, 0}, {"mov32", case_mov32, 0},
        {"mov64", case_mov64, 0}, {"no-function", case_no_function, 0},
        {"split-mov", case_split_mov, 0}, {"cache-line", case_cache_line, 0},
        {"jump-split", case_jump_split, 0}, {"apart", case_apart, 0}, {"apart-entered", case_apart_entered, 0},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int ok = 1;
        for (int k = 0; k < 5; k++) {
            long want = cases[i].ppid ? getppid() : getpid();
            ok &= cases[i].fn() == want;
        }
        printf("case %s: %s\n", cases[i].name, ok ? "ok" : "wrong");
    }
    return 0;
}

/* Direct gates: sites of calls the LibOS only forwards (write, read) */
__asm__(".pushsection .text\n"
        /* long direct_write(fd, buf, n): mov32 */
        ".globl direct_write\ndirect_write:\n.cfi_startproc\n"
        "mov $1, %eax\nsyscall\nret\n.cfi_endproc\n"
        /* long direct_openat(dirfd, path, flags): mov32, a direct gate that looks at the path */
        ".globl direct_openat\ndirect_openat:\n.cfi_startproc\n"
        ".globl direct_openat_site\ndirect_openat_site: mov $257, %eax\nsyscall\nret\n.cfi_endproc\n"
        /* long direct_jump(nr, a0, a1, a2): the number from a register, padding after: jump */
        ".globl direct_jump\ndirect_jump:\n.cfi_startproc\n"
        "mov %rdi, %rax\nmov %rsi, %rdi\nmov %rdx, %rsi\nmov %rcx, %rdx\n"
        ".globl direct_jump_sys\ndirect_jump_sys: syscall\nret\n.cfi_endproc\n"
        ".byte 0x0f, 0x1f, 0x44, 0, 0\n"
        /* long direct_regs(fd, buf): 1 if a 1-byte write kept every register
         * but rax, rcx, r11, and the carry flag */
        ".globl direct_regs\ndirect_regs:\n.cfi_startproc\n"
        "push %rbx\npush %rbp\npush %r12\npush %r13\npush %r14\npush %r15\n"
        "mov $0x1111, %rbx\nmov $0x2222, %rbp\nmov $0x3333, %r8\nmov $0x4444, %r9\n"
        "mov $0x5555, %r10\nmov $0x6666, %r12\nmov $0x7777, %r13\nmov $0x8888, %r14\n"
        "mov $0x9999, %r15\nmov %rdi, %r12\nmov %rsi, %r13\nmov $1, %edx\nstc\n"
        ".globl direct_regs_site\ndirect_regs_site: mov $1, %eax\nsyscall\n"
        "jnc 1f\ncmp $0x1111, %rbx\njne 1f\ncmp $0x2222, %rbp\njne 1f\ncmp $0x3333, %r8\njne 1f\n"
        "cmp $0x4444, %r9\njne 1f\ncmp $0x5555, %r10\njne 1f\ncmp %rdi, %r12\njne 1f\n"
        "cmp %rsi, %r13\njne 1f\ncmp $1, %rdx\njne 1f\ncmp $0x8888, %r14\njne 1f\n"
        "cmp $0x9999, %r15\njne 1f\nmov $1, %eax\njmp 2f\n1: xor %eax, %eax\n"
        "2: pop %r15\npop %r14\npop %r13\npop %r12\npop %rbp\npop %rbx\nret\n.cfi_endproc\n"
        ".popsection\n");
long direct_write(long fd, const void *buf, long n), direct_jump(long nr, long a0, long a1, long a2);
long direct_regs(long fd, const void *buf);
extern unsigned char direct_jump_sys[], direct_regs_site[], direct_openat_site[];
long direct_openat(long dirfd, const char *path, long flags);

/* The first two bytes of the trampoline a rewritten site leads to, as "xx xx"
 * ("8d 8f": a direct gate checking the fd in rdi; "8d 88": a JUMP site's
 * direct gate checking the number), or "unpatched". */
static const char *tramp_head(const unsigned char *p, char out[8])
{
    const unsigned char *t = NULL;
    if (p[0] == 0xeb && p[2 + (signed char)p[1]] == 0xe9)
        p += 2 + (signed char)p[1];
    if (p[0] == 0xe9) {
        int rel;
        memcpy(&rel, p + 1, 4);
        t = p + 5 + rel;
    }
    if (!t)
        return "unpatched";
    snprintf(out, 8, "%02x %02x", t[0], t[1]);
    return out;
}

static int probe_abom_direct(void)
{
    char b = 'x', h[8];
    int null = open("/dev/null", O_WRONLY), zero = open("/dev/zero", O_RDONLY);
    int ok = 1;
    for (int i = 0; i < 5; i++)
        ok &= direct_write(null, &b, 1) == 1;
    printf("direct write: %s\n", ok ? "ok" : "wrong");
    printf("direct write form: %s\n", tramp_head((const unsigned char *)direct_write, h));
    ok = 1;
    for (int i = 0; i < 5; i++)
        ok &= direct_regs(null, &b) == 1;
    printf("direct registers and flags kept: %s (%s)\n", ok ? "yes" : "no", tramp_head(direct_regs_site, h));
    printf("direct libos fds: %s %s\n", err_name(direct_write(STATS_FD, &b, 1)), err_name(direct_write(LIBOS_FD, &b, 1)));
    ok = 1;
    for (int i = 0; i < 5; i++)
        ok &= direct_jump(SYS_write, null, (long)&b, 1) == 1;
    printf("jump site write: %s\n", ok ? "ok" : "wrong");
    printf("jump site form: %s\n", tramp_head(direct_jump_sys, h));
    ok = direct_jump(SYS_getpid, 0, 0, 0) == getpid() && direct_jump(SYS_read, zero, (long)&b, 1) == 1 && b == 0 &&
         direct_jump(SYS_getppid, 0, 0, 0) == getppid();
    printf("jump site other numbers: %s\n", ok ? "ok" : "wrong");
    printf("jump site libos fd: %s\n", err_name(direct_jump(SYS_write, LIBOS_FD, (long)&b, 1)));

    /* openat: direct unless the path starts "/pro" or "/dev"; a fault on the look goes the full way */
    for (int i = 0; i < 3; i++)
        close((int)direct_openat(AT_FDCWD, "/dev/null", O_RDONLY));
    printf("openat form: %s\n", tramp_head(direct_openat_site, h));
    long fd = direct_openat(AT_FDCWD, "/probe", O_RDONLY), self = direct_openat(AT_FDCWD, "/proc/self/exe", O_RDONLY);
    struct stat s1, s2;
    printf("openat /proc/self/exe is the program: %s\n",
           fd >= 0 && self >= 0 && fstat((int)fd, &s1) == 0 && fstat((int)self, &s2) == 0 && s1.st_ino == s2.st_ino
               ? "yes" : "no");
    close((int)fd);
    close((int)self);
    printf("openat /dev/fd/<libos fd>: %s\n", err_name(direct_openat(AT_FDCWD, "/dev/fd/127", O_RDONLY)));
    printf("openat in the LibOS's dirfd: %s\n", err_name(direct_openat(STATS_FD, "x", O_RDONLY)));
    char *pg = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(pg + 4096, 4096);
    memcpy(pg + 4094, "a", 2); /* a short path at the end of the page: the 4-byte look faults */
    printf("openat of a short path at a page's end: %s\n", err_name(direct_openat(AT_FDCWD, pg + 4094, O_RDONLY)));
    printf("openat of an unmapped path: %s\n", err_name(direct_openat(AT_FDCWD, pg + 4096, O_RDONLY)));
    printf("openat of a real file after the faults: %s\n", direct_openat(AT_FDCWD, "/probe", O_RDONLY) >= 0 ? "ok" : "wrong");

    /* The running program's own file (ETXTBSY for write access or O_TRUNC), from the
     * patched site: the trampoline sends those opens to the LibOS, the others go direct
     * ("//probe": a path the trampoline would not send for its first bytes, as "/pro"). */
    static const struct { const char *name; int flags; } opens[] = {
        {"O_WRONLY", O_WRONLY}, {"O_RDWR", O_RDWR}, {"O_RDONLY|O_TRUNC", O_RDONLY | O_TRUNC},
        {"O_WRONLY|O_APPEND|O_CREAT", O_WRONLY | O_APPEND | O_CREAT}, {"O_RDONLY", O_RDONLY},
        {"O_ACCMODE", O_ACCMODE}, {"O_PATH|O_WRONLY", O_PATH | O_WRONLY},
    };
    for (size_t k = 0; k < sizeof opens / sizeof opens[0]; k++) {
        char res[3][16];
        for (int i = 0; i < 3; i++) {
            fd = direct_openat(AT_FDCWD, "//probe", opens[k].flags);
            snprintf(res[i], sizeof res[i], "%s", err_name(fd));
            if (fd >= 0)
                close((int)fd);
        }
        printf("openat of the running program %s: %s %s %s\n", opens[k].name, res[0], res[1], res[2]);
    }
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        fd = direct_openat(AT_FDCWD, "//probe", O_WRONLY);
        printf("openat of the running program for writing, from a child: %s\n", err_name(fd));
        fflush(stdout);
        _exit(0);
    }
    waitpid(child, NULL, 0);
    return 0;
}

/* uname's kept answer follows sethostname, in this process and in another
 * of the container that kept it before. */
static int probe_uts(void)
{
    struct utsname u;
    int up[2], down[2];
    char c;
    uname(&u);
    uname(&u);
    printf("before: %s\n", u.nodename);
    if (pipe(up) || pipe(down))
        return 1;
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        uname(&u);
        uname(&u);
        if (write(up[1], "x", 1) != 1 || read(down[0], &c, 1) != 1)
            _exit(1);
        uname(&u);
        printf("other process after: %s\n", u.nodename);
        _exit(0);
    }
    if (read(up[0], &c, 1) != 1)
        return 1;
    if (sethostname("xcprobe-renamed", 15) != 0)
        printf("sethostname: %s\n", strerror(errno));
    uname(&u);
    printf("after: %s\n", u.nodename);
    if (write(down[1], "x", 1) != 1)
        return 1;
    waitpid(child, NULL, 0);
    return 0;
}

#include <pthread.h>
static volatile int g_bad;
static void *hammer(void *arg)
{
    long ppid = (long)arg;
    for (int i = 0; i < 2000; i++) {
        if (site_getpid() != getpid() || site_getppid() != ppid)
            g_bad = 1;
        if (site_red_zone() != 0x1234567 + 0x7654321)
            g_bad = 1;
        if (case_split_mov() != getpid() || case_jump() != getpid() || case_mov64() != getpid() ||
            case_cache_line() != getpid() || case_jump_split() != getpid())
            g_bad = 1;
    }
    return NULL;
}

/* A clone site: long site_clone(flags, stack, ptid, ctid, tls, fn).  A fork
 * child returns 0 from it; a child on a new stack (a thread) finds fn on
 * that stack, calls it and exits; the parent returns the child's id.  The
 * LibOS rewrites the site (mov32) with a trampoline that sends a clone with
 * a new stack to the trap path. */
__asm__(".pushsection .text\n.globl site_clone\n.type site_clone,@function\nsite_clone:\n.cfi_startproc\n"
        "test %rsi, %rsi\njz 1f\nsub $16, %rsi\nmov %r9, (%rsi)\n"
        "1: mov %rcx, %r10\n.globl site_clone_mov\nsite_clone_mov: mov $56, %eax\nsyscall\n"
        "test %rax, %rax\njnz 2f\ntest %rsi, %rsi\njz 2f\n"
        "pop %rax\ncall *%rax\nmov $60, %eax\nxor %edi, %edi\nsyscall\n"
        "2: ret\n.cfi_endproc\n.size site_clone, .-site_clone\n.popsection\n");
long site_clone(unsigned long flags, void *stack, int *ptid, int *ctid, unsigned long tls, void (*fn)(void));
extern unsigned char site_clone_mov[];
static volatile int clone_flag;
static void clone_thread_fn(void)
{
    clone_flag = 42;
}

static void probe_clone_site(void)
{
    int forks_ok = 1;
    for (int i = 0; i < 6; i++) {
        long pid = site_clone(SIGCHLD, 0, 0, 0, 0, 0);
        if (pid == 0)
            _exit(7);
        int st = 0;
        forks_ok &= pid > 0 && waitpid((pid_t)pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 7;
    }
    printf("fork through a clone site: %s\n", forks_ok ? "ok" : "wrong");
    printf("clone site rewritten: %s\n", site_clone_mov[0] == 0xe9 ? "yes" : "no");
    char *stack = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    static volatile int ctid = 1;
    long t = stack == MAP_FAILED ? -1 :
             site_clone(CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
                        CLONE_CHILD_CLEARTID, stack + 65536, NULL, (int *)&ctid, 0, clone_thread_fn);
    for (int i = 0; t > 0 && ctid != 0 && i < 2000; i++)
        usleep(1000);
    printf("thread through a rewritten clone site: %s\n", t > 0 && ctid == 0 && clone_flag == 42 ? "ok" : "wrong");
}

static int probe_abom(void)
{
    long bad = 0;
    for (int i = 0; i < 1000; i++)
        bad += site_getpid() != getpid();
    printf("getpid through a patchable site: %s\n", bad ? "wrong" : "ok");
    printf("site rewritten: %s\n", site_getpid_at[0] == 0xe9 ? "yes" : "no");
    bad = 0;
    for (int i = 0; i < 100; i++)
        bad += site_skipped_mov() != getppid();
    printf("mov that did not run: %s\n", bad ? "wrong" : "ok");
    printf("red zone kept: %s\n", site_red_zone() == 0x1234567 + 0x7654321 ? "yes" : "no");
    int ok = 1;
    for (int i = 0; i < 100; i++)
        ok &= site_keeps_registers();
    printf("registers and flags kept: %s\n", ok ? "yes" : "no");
    unsigned long first = site_inside_longer(), later = 0;
    for (int i = 0; i < 10; i++)
        later = site_inside_longer();
    printf("b8 inside a longer instruction kept: %s\n", later == first ? "yes" : "no");
    probe_clone_site();
    return 0;
}

/* N fresh processes (each an execve, so every site is unpatched again)
 * running abom-threads. */
static int probe_abom_stress(int n)
{
    int bad = 0;
    for (int i = 0; i < n; i++) {
        int fd[2];
        if (pipe(fd) != 0)
            return 1;
        pid_t p = fork();
        if (p == 0) {
            dup2(fd[1], 1);
            execl("/proc/self/exe", "probe", "abom-threads", (char *)NULL);
            _exit(127);
        }
        close(fd[1]);
        char buf[256] = "";
        ssize_t k = 0, r;
        while ((r = read(fd[0], buf + k, sizeof buf - 1 - k)) > 0)
            k += r;
        close(fd[0]);
        int st = 0;
        waitpid(p, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || !strstr(buf, "sites being patched: ok"))
            bad++;
    }
    printf("%d processes x 32 threads on sites being patched: %d wrong\n", n, bad);
    return 0;
}

static int probe_abom_threads(void)
{
    for (int rep = 0; rep < 10; rep++) {
        pthread_t t[32];
        for (int i = 0; i < 32; i++)
            pthread_create(&t[i], NULL, hammer, (void *)(long)getppid());
        for (int i = 0; i < 32; i++)
            pthread_join(t[i], NULL);
    }
    printf("32 threads x 10 rounds on sites being patched: %s\n", g_bad ? "wrong" : "ok");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    setvbuf(stdout, NULL, _IONBF, 0);
    if (strcmp(argv[1], "forged-fd") == 0 && argc > 2)
        return probe_forged_fd(strtoul(argv[2], NULL, 16));
    if (strcmp(argv[1], "exe-print") == 0)
        return probe_exe_print();
    if (strcmp(argv[1], "exe-names") == 0)
        return probe_exe_names(argv[0], argc > 2 ? argv[2] : NULL);
    if (strcmp(argv[1], "checks") == 0 && argc > 5)
        return probe_checks(strtoul(argv[2], NULL, 0), strtoul(argv[3], NULL, 0), strtoul(argv[4], NULL, 0),
                            strtoul(argv[5], NULL, 0));
    if (strcmp(argv[1], "never") == 0 && argc > 2)
        return probe_never(strtoul(argv[2], NULL, 0));
    if (strcmp(argv[1], "filter") == 0)
        return probe_filter();
    if (strcmp(argv[1], "sigsys") == 0)
        return probe_sigsys();
    if (strcmp(argv[1], "region") == 0)
        return probe_region(argc > 2 ? strtoul(argv[2], NULL, 0) : 0);
    if (strcmp(argv[1], "fds") == 0)
        return probe_fds();
    if (strcmp(argv[1], "abom") == 0)
        return probe_abom();
    if (strcmp(argv[1], "abom-threads") == 0)
        return probe_abom_threads();
    if (strcmp(argv[1], "abom-stress") == 0 && argc > 2)
        return probe_abom_stress(atoi(argv[2]));
    if (strcmp(argv[1], "abom-cases") == 0)
        return probe_abom_cases();
    if (strcmp(argv[1], "abom-direct") == 0)
        return probe_abom_direct();
    if (strcmp(argv[1], "uts") == 0)
        return probe_uts();
    return 2;
}
