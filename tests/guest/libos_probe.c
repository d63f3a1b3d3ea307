/*
 * Security probes for the X-LibOS, run inside a container.
 *
 *   libos_probe never GATE_ADDR   every never-allowed call, from the program's
 *                                 code and through the LibOS's own gate
 *   libos_probe filter            the program cannot remove or weaken the filter
 *   libos_probe sigsys            ... nor take or block the LibOS's SIGSYS
 *   libos_probe region            ... nor remap, unprotect or unmap the LibOS
 *   libos_probe fds               ... nor close or replace the LibOS's fds
 *
 * Each prints one line per check, "name: result", and exits 0; the test
 * compares the transcript.  Results are errno names, never raw numbers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/seccomp.h>

#define LIBOS_BASE 0x10000000UL

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
    printf("close(1023): %s\n", err_name(raw(SYS_close, 1023, 0, 0, 0, 0, 0)));
    printf("close(1022): %s\n", err_name(raw(SYS_close, 1022, 0, 0, 0, 0, 0)));
    printf("dup2(0, 1023): %s\n", err_name(raw(SYS_dup2, 0, 1023, 0, 0, 0, 0)));
    printf("dup3(0, 1023): %s\n", err_name(raw(SYS_dup3, 0, 1023, 0, 0, 0, 0)));
    printf("close_range(3, ~0): %s\n", err_name(raw(SYS_close_range, 3, ~0U, 0, 0, 0, 0)));
    /* exec still works, so the image survived. */
    execl("/bin/sh", "sh", "-c", "echo exec after close_range: OK", (char *)NULL);
    printf("exec after close_range: %s\n", strerror(errno));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    setvbuf(stdout, NULL, _IONBF, 0);
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
    return 2;
}
