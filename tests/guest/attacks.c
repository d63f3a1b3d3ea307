/*
 * Attacks on the isolation of an X-Container, run inside one (tests/test_attacks.py).
 *
 *   attacks run [ATTACK...]     every attack (or those named), each in a child
 *                               process that names itself "a:ATTACK" so that the
 *                               host's trace can tell them apart
 *   attacks watch SECONDS       look for processes whose exe, cwd, root or fds
 *                               lie outside the container (CVE-2019-5736,
 *                               CVE-2024-21626), while the host runs `exec`
 *   attacks plant-fd FD PATH    put an O_PATH fd of PATH on FD (125, 126) and wait:
 *                               does the runtime reopen it for the next `exec`?
 *   attacks show-fd FD          what this process got on FD
 *   attacks forge-stats         scribble over the shared statistics segment
 *   attacks cwd                 where this process starts (and after an exec)
 *   attacks exec-each DIR S     execute every file in DIR, S seconds each (the ELF fuzzer)
 *   attacks tiocsti             push input into the terminal on stdin
 *
 * The LibOS's addresses come from /attack-syms (written by the test from the
 * image's symbols): "name 0xADDR" lines, and "site 0xADDR KIND" for every
 * `syscall` instruction in the gate.  Without the file (runc) the attacks
 * that need the LibOS say "skipped".
 *
 * Every result is one line "ATTACK/CHECK: RESULT", where RESULT is an errno
 * name, OK, a value, or how a process died ("killed SIGSYS"); a child that
 * ends prints "ATTACK: exit N" or "ATTACK: killed SIGx".
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "abi.h" /* the LibOS's constants (src/libos/abi.h) */
#define LIBOS_FD XC_LIBOS_FD
#define STATS_FD XC_STATS_FD
#define TRACE_FD XC_TRACE_FD
#define STR_(x) #x
#define STR(x) STR_(x)
#define ABOM_TABLE ((unsigned long)XC_ABOM_TABLE)
#define X32_BIT 0x40000000L

/* --- results ----------------------------------------------------------------- */

static const char *attack = "main";

static void res(const char *check, const char *fmt, ...)
{
    va_list ap;
    char buf[512];
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    printf("%s/%s: %s\n", attack, check, buf);
    fflush(stdout);
}

/* A result as a name: OK for >= 0, else the errno's name. */
static const char *en(long r)
{
    static char buf[8][32];
    static int k;
    if (r >= 0)
        return "OK";
    const char *n = strerrorname_np((int)-r);
    char *b = buf[k++ & 7];
    snprintf(b, 32, "%s", n ? n : "E?");
    if (!n)
        snprintf(b, 32, "E%ld", -r);
    return b;
}

static const char *signame(int sig)
{
    const char *s = sigabbrev_np(sig);
    static char buf[16];
    snprintf(buf, sizeof buf, "SIG%s", s ? s : "?");
    return buf;
}

/* --- raw calls: from the program's code, and into the LibOS's gate -------- */

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

/*
 * long gate_jump(unsigned long at, long nr, const long args[6])
 * Jump to the instruction *at* (a `syscall` in the LibOS's gate) with rax = nr
 * and the argument registers loaded, on a stack filled with the address of
 * gate_landing (and rbx pointing into it): whatever the gate's code does after
 * its syscall (ret; pop, ret; jmp through a slot we set) comes back to
 * gate_landing, which returns rax to the caller on the caller's stack.
 * sigreturn_into(uc) does the same through a forged rt_sigreturn frame.
 */
unsigned long gate_saved_rsp, landing_top;
long gate_jump(unsigned long at, long nr, const long *args);
long sigreturn_into(void *uc);
void gate_landing(void);
__asm__(".text\n"
        ".globl gate_jump\n.type gate_jump,@function\ngate_jump:\n"
        "push %rbx\npush %rbp\npush %r12\npush %r13\npush %r14\npush %r15\n"
        "mov %rsp, gate_saved_rsp(%rip)\n"
        "mov %rdi, %r11\nmov %rsi, %rax\nmov %rdx, %r12\n"
        "mov (%r12), %rdi\nmov 8(%r12), %rsi\nmov 16(%r12), %rdx\n"
        "mov 24(%r12), %r10\nmov 32(%r12), %r8\nmov 40(%r12), %r9\n"
        "mov landing_top(%rip), %rsp\nmov %rsp, %rbx\n"
        "jmp *%r11\n"
        ".globl sigreturn_into\n.type sigreturn_into,@function\nsigreturn_into:\n"
        "push %rbx\npush %rbp\npush %r12\npush %r13\npush %r14\npush %r15\n"
        "mov %rsp, gate_saved_rsp(%rip)\n"
        "mov %rdi, %rsp\nmov $15, %eax\nsyscall\nhlt\n"
        ".globl gate_landing\n.type gate_landing,@function\ngate_landing:\n"
        "mov gate_saved_rsp(%rip), %rsp\n"
        "pop %r15\npop %r14\npop %r13\npop %r12\npop %rbp\npop %rbx\nret\n");

#define LANDING_WORDS 16384
static unsigned long landing_stack[LANDING_WORDS] __attribute__((aligned(64)));

/* --- the LibOS's symbols ------------------------------------------------------- */

struct site {
    unsigned long at;
    char kind[48]; /* "ret" (xc_host_syscall), "direct:N:SLOT" (its return slot), or the function's name */
};
static struct site sites[4096];
static int n_sites;
static struct {
    char name[48];
    unsigned long addr;
} syms[64];
static int n_syms, have_libos;

static void load_syms(void)
{
    FILE *f = fopen("/attack-syms", "r");
    char line[160];
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        char a[48], b[48];
        unsigned long v;
        if (sscanf(line, "site %lx %47s", &v, a) == 2 && n_sites < 4096) {
            sites[n_sites].at = v;
            snprintf(sites[n_sites].kind, sizeof sites[n_sites].kind, "%s", a);
            n_sites++;
        } else if (sscanf(line, "%47s %lx", b, &v) == 2 && n_syms < 64) {
            snprintf(syms[n_syms].name, sizeof syms[n_syms].name, "%s", b);
            syms[n_syms++].addr = v;
        }
    }
    fclose(f);
    have_libos = 1;
}

static unsigned long sym(const char *name)
{
    for (int i = 0; i < n_syms; i++)
        if (strcmp(syms[i].name, name) == 0)
            return syms[i].addr;
    fprintf(stderr, "attacks: no symbol %s in /attack-syms\n", name);
    exit(2);
}

/* The `syscall` instruction of xc_host_syscall: `syscall; ret`. */
static unsigned long gate_insn(void)
{
    for (int i = 0; i < n_sites; i++)
        if (strcmp(sites[i].kind, "xc_host_syscall") == 0)
            return sites[i].at;
    fprintf(stderr, "attacks: no xc_host_syscall site\n");
    exit(2);
}

static long gate6(long nr, long a, long b, long c, long d, long e, long f)
{
    long args[6] = {a, b, c, d, e, f};
    return gate_jump(gate_insn(), nr, args);
}

/* --- child processes -------------------------------------------------------- */

static char *shared; /* a page shared with the children that run one check each */

static void put(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(shared, 4096, fmt, ap);
    va_end(ap);
}

static const char *status_name(int st)
{
    static char buf[32];
    if (WIFSIGNALED(st))
        snprintf(buf, sizeof buf, "killed %s", signame(WTERMSIG(st)));
    else
        snprintf(buf, sizeof buf, "exit %d", WEXITSTATUS(st));
    return buf;
}

/* Run fn(arg) in a child; the check's result is what it put(), or how it died. */
static void sub(const char *check, void (*fn)(long), long arg)
{
    shared[0] = 0;
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        fn(arg);
        _exit(0);
    }
    int st = 0;
    waitpid(p, &st, 0);
    if (WIFSIGNALED(st))
        res(check, "killed %s", signame(WTERMSIG(st)));
    else
        res(check, "%s", shared[0] ? shared : status_name(st));
}

/* --- 1. calls the interface never allows --------------------------------------- */

struct call {
    const char *name;
    long nr;
    long a[6];
};

#define S(x) ((long)(x))
/* Arguments chosen so that each call would fail harmlessly even if it ran. */
static const struct call never[] = {
    {"mount", SYS_mount, {S("none"), S("/nonexistent-xc"), S("tmpfs"), 0, 0}},
    {"umount2", SYS_umount2, {S("/nonexistent-xc"), 0}},
    {"pivot_root", SYS_pivot_root, {S("/nonexistent-xc"), S("/nonexistent-xc")}},
    {"move_mount", SYS_move_mount, {-1, S(""), -1, S(""), 0}},
    {"open_tree", SYS_open_tree, {-1, S("/nonexistent-xc"), 0}},
    {"fsopen", SYS_fsopen, {S("xc-nofs"), 0}},
    {"fsmount", SYS_fsmount, {-1, 0, 0}},
    {"fspick", SYS_fspick, {-1, S(""), 0}},
    {"mount_setattr", SYS_mount_setattr, {-1, S(""), 0, 0, 0}},
    {"ptrace", SYS_ptrace, {PTRACE_ATTACH, 0x3ffffff0, 0, 0}},
    {"process_vm_readv", SYS_process_vm_readv, {1, 0, 0, 0, 0, 0}},
    {"process_vm_writev", SYS_process_vm_writev, {1, 0, 0, 0, 0, 0}},
    {"kcmp", SYS_kcmp, {1, 1, 0 /* KCMP_FILE */, 0, 0}},
    {"pidfd_getfd", SYS_pidfd_getfd, {-1, 0, 0}},
    {"bpf", SYS_bpf, {0 /* BPF_MAP_CREATE */, 0, 0}},
    {"perf_event_open", SYS_perf_event_open, {0, 0, -1, -1, 0}},
    {"userfaultfd", SYS_userfaultfd, {0x7fffffff}},
    {"io_uring_setup", SYS_io_uring_setup, {0, 0}},
    {"io_uring_enter", SYS_io_uring_enter, {-1, 0, 0, 0, 0, 0}},
    {"io_uring_register", SYS_io_uring_register, {-1, 0, 0, 0}},
    {"keyctl", SYS_keyctl, {0 /* KEYCTL_GET_KEYRING_ID */, -0x7fff, 0}},
    {"add_key", SYS_add_key, {S("xc-notype"), S("d"), 0, 0, -2}},
    {"request_key", SYS_request_key, {S("xc-notype"), S("d"), 0, 0}},
    {"kexec_load", SYS_kexec_load, {0, 0x7fffffff, 0, 0}},
    {"kexec_file_load", SYS_kexec_file_load, {-1, -1, 0, 0, 0}},
    {"init_module", SYS_init_module, {0, 0, S("")}},
    {"finit_module", SYS_finit_module, {-1, S(""), 0}},
    {"delete_module", SYS_delete_module, {S("xc_nonexistent"), 0}},
    {"open_by_handle_at", SYS_open_by_handle_at, {-1, 0, 0}},
    {"unshare", SYS_unshare, {CLONE_NEWUTS}},
    {"setns", SYS_setns, {-1, 0}},
    {"seccomp", SYS_seccomp, {SECCOMP_SET_MODE_FILTER, 0, 0}},
    {"reboot", SYS_reboot, {0, 0, 0, 0}},
    {"swapon", SYS_swapon, {S("/nonexistent-xc"), 0}},
    {"swapoff", SYS_swapoff, {S("/nonexistent-xc")}},
    {"acct", SYS_acct, {S("/nonexistent-xc")}},
    {"syslog", SYS_syslog, {10 /* SYSLOG_ACTION_SIZE_BUFFER */, 0, 0}},
    {"quotactl", SYS_quotactl, {0, 0, 0, 0}},
    {"chroot", SYS_chroot, {S("/nonexistent-xc")}},
    {"iopl", SYS_iopl, {0}},
    {"ioperm", SYS_ioperm, {0, 0, 0}},
    {"adjtimex", SYS_adjtimex, {0}},
    {"fanotify_init", SYS_fanotify_init, {0, 0}},
    {"memfd_secret", 447, {0}},
    {"mseal", 462, {0x10000000, 4096, 0}},
    {"modify_ldt", SYS_modify_ldt, {0, 0, 0}},
    {"clone3", SYS_clone3, {0, 0}},
    {"execve", SYS_execve, {S("/nonexistent-xc"), 0, 0}},
};
#define N_NEVER (sizeof never / sizeof never[0])

static void atk_never_app(void)
{
    for (size_t i = 0; i < N_NEVER; i++) {
        const long *a = never[i].a;
        res(never[i].name, "%s", en(raw(never[i].nr, a[0], a[1], a[2], a[3], a[4], a[5])));
    }
}

static void atk_never_gate(void)
{
    if (!have_libos) {
        res("all", "skipped (no LibOS)");
        return;
    }
    for (size_t i = 0; i < N_NEVER; i++) {
        const long *a = never[i].a;
        res(never[i].name, "%s", en(gate6(never[i].nr, a[0], a[1], a[2], a[3], a[4], a[5])));
    }
}

/* --- 2. every `syscall` instruction of the gate, entered with a forbidden number ---- */

static volatile long sig_rax;
static void land_on_fault(int sig, siginfo_t *si, void *ucv)
{
    (void)sig, (void)si;
    ucontext_t *uc = ucv;
    uc->uc_mcontext.gregs[REG_RIP] = (greg_t)gate_landing; /* rax: the syscall's result */
}

static unsigned long unaligned_at;
static void unaligned_try(long nr)
{
    long args[6] = {S("/nonexistent-xc"), S("/nonexistent-xc"), 0, 0, 0, 0};
    put("%s", en(gate_jump(unaligned_at, nr, args)));
}

static void atk_gate_every(void)
{
    if (!have_libos) {
        res("all", "skipped (no LibOS)");
        return;
    }
    struct sigaction sa = {0};
    sa.sa_sigaction = land_on_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    static const long nrs[] = {SYS_mount, SYS_ptrace, SYS_unshare, SYS_bpf, SYS_execve, SYS_init_module};
    static const char *nrname[] = {"mount", "ptrace", "unshare", "bpf", "execve", "init_module"};
    long args[6] = {0, 0, 0, 0, 0, 0};
    int direct = 0, direct_eperm = 0;
    for (int i = 0; i < n_sites; i++) {
        struct site *s = &sites[i];
        unsigned long *slotp = 0; /* a direct gate's return slot: "direct:I:SLOT" (attackkit.py) */
        if (strncmp(s->kind, "unaligned:", 10) == 0) {
            /* two bytes inside another instruction: what follows is anyone's guess */
            char key[96];
            for (size_t k = 0; k < sizeof nrs / sizeof nrs[0]; k++) {
                snprintf(key, sizeof key, "%s@%#lx.%s", s->kind, s->at, nrname[k]);
                unaligned_at = s->at;
                sub(key, unaligned_try, nrs[k]);
            }
            continue;
        }
        if (strncmp(s->kind, "direct:", 7) == 0) {
            const char *c = strchr(s->kind + 7, ':');
            if (!c) {
                res("direct", "%#lx: no slot in %s", s->at, s->kind);
                continue;
            }
            slotp = (unsigned long *)strtoul(c + 1, NULL, 16);
        }
        for (size_t k = 0; k < sizeof nrs / sizeof nrs[0]; k++) {
            args[0] = S("/nonexistent-xc"); /* mount's source, execve's path, ... */
            args[1] = S("/nonexistent-xc");
            if (nrs[k] == SYS_ptrace) {
                args[0] = PTRACE_ATTACH;
                args[1] = 0x3ffffff0;
            }
            if (nrs[k] == SYS_unshare || nrs[k] == SYS_init_module)
                args[0] = args[1] = 0;
            long old = 0;
            if (slotp) {
                old = (long)*slotp;
                *slotp = (unsigned long)gate_landing;
            }
            long r = gate_jump(s->at, nrs[k], args);
            if (slotp)
                *slotp = (unsigned long)old;
            if (slotp) {
                direct++;
                direct_eperm += r == -EPERM;
                if (r != -EPERM)
                    res("direct", "%#lx %s %s", s->at, nrname[k], en(r));
            } else {
                char key[96];
                snprintf(key, sizeof key, "%s@%#lx.%s", s->kind, s->at, nrname[k]);
                res(key, "%s", r == 0 ? "0 (rax cleared after the call)" : en(r));
            }
        }
    }
    res("direct-count", "%d calls through %d direct gates, %d EPERM", direct, direct / 6, direct_eperm);
}

/* --- 3. other calling conventions and numbers ---------------------------------- */

static void x32_app(long nr)
{
    put("%s", en(raw(X32_BIT | nr, 0, 0, 0, 0, 0, 0)));
}

static void x32_gate(long nr)
{
    put("%s", en(gate6(X32_BIT | nr, 0, 0, 0, 0, 0, 0)));
}

static void int80(long nr)
{
    long ret;
    /* i386: eax = nr, ebx, ecx, edx = harmless arguments */
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(0), "c"(0), "d"(0) : "memory");
    put("%s", ret < 0 ? en(ret) : "OK");
}

static void nr_app(long nr)
{
    put("%s", en(raw(nr, S("none"), S("/nonexistent-xc"), S("tmpfs"), 0, 0, 0)));
}

static void nr_gate(long nr)
{
    put("%s", en(gate6(nr, S("none"), S("/nonexistent-xc"), S("tmpfs"), 0, 0, 0)));
}

static void atk_abi(void)
{
    sub("x32-getpid-app", x32_app, SYS_getpid);
    sub("x32-mount-app", x32_app, SYS_mount);
    sub("i386-getpid-int80", int80, 20);
    sub("i386-mount-int80", int80, 21);
    sub("nr-minus-1-app", nr_app, -1);
    sub("nr-high-bits-mount-app", nr_app, (1L << 32) | SYS_mount);
    if (have_libos) {
        sub("x32-mount-gate", x32_gate, SYS_mount);
        sub("nr-high-bits-mount-gate", nr_gate, (1L << 32) | SYS_mount);
        sub("nr-minus-1-gate", nr_gate, -1);
    }
}

/* --- 4. namespaces, the filter, argument checks --------------------------------- */

static void atk_args(void)
{
    fflush(stdout);
    long c = raw(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0, 0);
    if (c == 0)
        _exit(0); /* the child, in a new user namespace: it got one */
    if (c > 0)
        waitpid((pid_t)c, NULL, 0);
    res("clone-newuser-app", "%s", en(c));
    res("prctl-seccomp-app", "%s", en(raw(SYS_prctl, PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0, 0)));
    if (!have_libos)
        return;
    res("clone-newuser-gate", "%s", en(gate6(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0, 0)));
    res("clone-newnet-gate", "%s", en(gate6(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0, 0)));
    res("clone-newns-high-bits-gate", "%s",
        en(gate6(SYS_clone, (0x5aL << 32) | CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0, 0)));
    res("prctl-seccomp-gate", "%s", en(gate6(SYS_prctl, PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0, 0)));
    res("prctl-seccomp-high-bits-gate", "%s",
        en(gate6(SYS_prctl, (1L << 32) | PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0, 0)));
    res("prctl-set-mm-gate", "%s", en(gate6(SYS_prctl, PR_SET_MM, PR_SET_MM_START_CODE, 0, 0, 0, 0)));
    res("prctl-seccomp-mode", "%ld", raw(SYS_prctl, PR_GET_SECCOMP, 0, 0, 0, 0, 0));
    res("execveat-other-fd-gate", "%s", en(gate6(SYS_execveat, 0, S(""), 0, 0, AT_EMPTY_PATH, 0)));
    res("execveat-fd-high-bits-gate", "%s",
        en(gate6(SYS_execveat, (1L << 32) | LIBOS_FD, S("/nonexistent-xc"), 0, 0, 0, 0)));
    /* a filter of the program's own, stacked: even a permissive one is refused */
    struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = {1, &allow};
    res("seccomp-filter-gate", "%s", en(gate6(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, S(&prog), 0, 0, 0)));
}

/* --- 5. the LibOS's memory ----------------------------------------------------- */

struct target {
    const char *name;
    unsigned long addr;
};
static struct target targets[8];
static int n_targets;

static void find_targets(void)
{
    n_targets = 0;
    if (!have_libos)
        return;
    targets[n_targets++] = (struct target){"code", sym("xc_host_syscall") & ~4095UL};
    targets[n_targets++] = (struct target){"state", sym("xc_proc") & ~4095UL};
    targets[n_targets++] = (struct target){"gate-back", sym("xc_gate_back")};
    targets[n_targets++] = (struct target){"entry-table", ABOM_TABLE};
    unsigned long stats = *(unsigned long *)sym("xc_stats");
    if (stats)
        targets[n_targets++] = (struct target){"stats", stats};
}

static int via_gate;
static long mcall(long nr, long a, long b, long c, long d, long e)
{
    return via_gate ? gate6(nr, a, b, c, d, e, 0) : raw(nr, a, b, c, d, e, 0);
}

/* After an operation: does the LibOS still serve calls (a getppid, a write)? */
static const char *alive(void)
{
    int fd = open("/dev/null", O_WRONLY);
    int ok = fd >= 0 && write(fd, "x", 1) == 1 && getppid() >= 0;
    close(fd);
    return ok ? "served" : "broken";
}

static unsigned long cur_target;
static void op_mprotect(long prot)
{
    long r = mcall(SYS_mprotect, (long)cur_target, 4096, prot, 0, 0);
    put("%s, then %s", en(r), alive());
}
static void op_munmap(long unused)
{
    (void)unused;
    long r = mcall(SYS_munmap, (long)cur_target, 4096, 0, 0, 0);
    put("%s, then %s", en(r), alive());
}
static void op_mremap_move(long unused)
{
    (void)unused;
    void *to = mmap(NULL, 8192, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    long r = mcall(SYS_mremap, (long)cur_target, 4096, 4096, MREMAP_MAYMOVE | MREMAP_FIXED, (long)to);
    put("%s, then %s", en(r), alive());
}
static void op_mremap_onto(long unused)
{
    (void)unused;
    void *from = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    long r = mcall(SYS_mremap, (long)from, 4096, 4096, MREMAP_MAYMOVE | MREMAP_FIXED, (long)cur_target);
    put("%s, then %s", en(r), alive());
}
static void op_mmap_fixed(long unused)
{
    (void)unused;
    long r = via_gate ? gate6(SYS_mmap, (long)cur_target, 4096, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
                      : raw(SYS_mmap, (long)cur_target, 4096, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    put("%s, then %s", en(r), alive());
}
static void op_madvise(long advice)
{
    long r = mcall(SYS_madvise, (long)cur_target, 4096, advice, 0, 0);
    put("%s, then %s", en(r), alive());
}
static void op_store(long unused)
{
    (void)unused;
    *(volatile char *)cur_target = *(volatile char *)cur_target;
    put("stored, then %s", alive());
}
static void op_pkey_mprotect(long unused)
{
    (void)unused;
    long r = mcall(SYS_pkey_mprotect, (long)cur_target, 4096, PROT_READ | PROT_WRITE, -1, 0);
    put("%s, then %s", en(r), alive());
}

static void op_store_after(long unused);

static void memory_attacks(int gate)
{
    via_gate = gate;
    find_targets();
    if (!n_targets) {
        res("all", "skipped (no LibOS)");
        return;
    }
    char name[96];
    for (int i = 0; i < n_targets; i++) {
        cur_target = targets[i].addr;
#define T(op, fn, arg)                                                     \
    do {                                                                   \
        snprintf(name, sizeof name, "%s.%s", targets[i].name, op);         \
        sub(name, fn, arg);                                                \
    } while (0)
        T("mprotect-rw", op_mprotect, PROT_READ | PROT_WRITE);
        T("mprotect-rwx", op_mprotect, PROT_READ | PROT_WRITE | PROT_EXEC);
        T("mprotect-none", op_mprotect, PROT_NONE);
        T("pkey_mprotect", op_pkey_mprotect, 0);
        T("munmap", op_munmap, 0);
        T("mremap-away", op_mremap_move, 0);
        T("mremap-onto", op_mremap_onto, 0);
        T("mmap-fixed", op_mmap_fixed, 0);
        T("madvise-dontneed", op_madvise, MADV_DONTNEED);
        T("madvise-remove", op_madvise, MADV_REMOVE);
        if (!gate)
            T("store", op_store, 0);
#undef T
    }
    if (gate) {
        /* What the reprotection buys: a store into the LibOS's code, then a call through it. */
        cur_target = sym("xc_host_syscall") & ~4095UL;
        sub("code.store-after-mprotect", op_store_after, 0);
    }
}

static void op_store_after(long unused)
{
    (void)unused;
    long r = gate6(SYS_mprotect, (long)cur_target, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, 0, 0, 0);
    if (r < 0) {
        put("mprotect %s", en(r));
        return;
    }
    volatile unsigned char *p = (volatile unsigned char *)cur_target;
    p[4095] = p[4095];
    put("stored, then %s", alive());
}

static void atk_region_app(void)
{
    memory_attacks(0);
}

static void atk_region_gate(void)
{
    if (!have_libos) {
        res("all", "skipped (no LibOS)");
        return;
    }
    memory_attacks(1);
}

/* --- 6. the LibOS's fds ------------------------------------------------------- */

static void fd_op(long which)
{
    int fd = (int)(which & 0xffff), gate = (int)(which >> 16);
    long r;
    int n = open("/dev/null", O_RDONLY);
    switch (gate) {
    case 0: r = raw(SYS_close, fd, 0, 0, 0, 0, 0); break;
    case 1: r = raw(SYS_dup2, n, fd, 0, 0, 0, 0); break;
    case 2: r = raw(SYS_dup3, n, fd, 0, 0, 0, 0); break;
    case 3: r = raw(SYS_close_range, 3, ~0U, 0, 0, 0, 0); break;
    case 4: r = gate6(SYS_close, fd, 0, 0, 0, 0, 0); break;
    case 5: r = gate6(SYS_dup3, n, fd, 0, 0, 0, 0); break;
    default: r = gate6(SYS_close_range, 3, ~0U, 0, 0, 0, 0); break;
    }
    /* what the fd holds now (the LibOS hides its own fds from the program: ask the host) */
    char link[64], path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    long k = have_libos ? gate6(SYS_readlinkat, AT_FDCWD, S(path), S(link), sizeof link - 1, 0, 0)
                        : raw(SYS_readlinkat, AT_FDCWD, S(path), S(link), sizeof link - 1, 0, 0);
    if (k > 0)
        link[k] = 0;
    else
        snprintf(link, sizeof link, "%s", en(k));
    put("%s, now %s", en(r), link);
}

static void atk_libos_fds(void)
{
    static const int fds[] = {LIBOS_FD, STATS_FD, TRACE_FD};
    static const char *ops[] = {"close", "dup2", "dup3", "close_range"};
    char name[64];
    for (int g = 0; g < (have_libos ? 2 : 1); g++)
        for (int o = 0; o < 4; o++)
            for (int i = 0; i < 3; i++) {
                if (o == 3 && i > 0)
                    continue;
                if (g && o == 1)
                    continue; /* dup2 is not a host call on x86-64's interface: dup3 is */
                snprintf(name, sizeof name, "%s-%s%s", ops[o], o == 3 ? "3-max" : "", g ? "-gate" : "-app");
                if (o != 3)
                    snprintf(name, sizeof name, "%s-%d%s", ops[o], fds[i], g ? "-gate" : "-app");
                sub(name, fd_op, fds[i] | (long)(g ? (o == 0 ? 4 : o == 2 ? 5 : 6) : o) << 16);
            }
    res("mmap-libos-fd-app", "%s", en(raw(SYS_mmap, 0, 4096, PROT_READ, MAP_PRIVATE, LIBOS_FD, 0)));
    res("write-stats-fd-app", "%s", en(raw(SYS_write, STATS_FD, S("x"), 1, 0, 0, 0)));
    res("fchdir-libos-fd-app", "%s", en(raw(SYS_fchdir, LIBOS_FD, 0, 0, 0, 0, 0)));
    res("openat-dev-fd-libos-app", "%s",
        en(raw(SYS_openat, AT_FDCWD, S("/dev/fd/" STR(XC_LIBOS_FD)), O_RDONLY, 0, 0, 0)));
    res("openat-proc-fd-stats-app", "%s",
        en(raw(SYS_openat, AT_FDCWD, S("/proc/self/fd/" STR(XC_STATS_FD)), O_RDWR, 0, 0, 0)));
}

/* --- 7. an exec of something other than the LibOS image, through the gate --------- */

static void exec_absolute(long unused)
{
    (void)unused;
    char *argv[] = {"foreign", NULL};
    long r = gate6(SYS_execveat, LIBOS_FD, S("/foreign"), S(argv), S(environ), 0, 0);
    put("%s", en(r));
}

static void exec_swapped(long unused)
{
    (void)unused;
    char *argv[] = {"foreign", NULL};
    int fd = open("/foreign", O_RDONLY);
    long r = gate6(SYS_dup3, fd, LIBOS_FD, 0, 0, 0, 0);
    if (r < 0) {
        put("dup3 %s", en(r));
        return;
    }
    r = gate6(SYS_execveat, LIBOS_FD, S(""), S(argv), S(environ), AT_EMPTY_PATH, 0);
    put("%s", en(r));
}

static void exec_program_swap(long unused)
{
    /* the same without the gate: execve of a file the program put on LIBOS_FD */
    (void)unused;
    int fd = open("/foreign", O_RDONLY);
    long r = raw(SYS_dup2, fd, LIBOS_FD, 0, 0, 0, 0);
    char *argv[] = {"true", NULL};
    if (r >= 0)
        execv("/bin/true", argv);
    put("dup2 %s", en(r));
}

static void exec_forged_path(long unused)
{
    /* rewrite the LibOS's empty path (the only one the filter lets execveat take) through
     * /proc/self/mem, which writes read-only pages, then execveat with it */
    (void)unused;
    unsigned long p = sym("xc_exec_path");
    long mem = gate6(SYS_openat, AT_FDCWD, S("/proc/self/mem"), O_RDWR, 0, 0, 0);
    if (mem < 0) {
        put("open /proc/self/mem %s", en(mem));
        return;
    }
    long w = gate6(SYS_pwrite64, mem, S("/foreign"), 8, (long)p, 0, 0);
    if (w < 0) {
        put("pwrite %s", en(w));
        return;
    }
    char *argv[] = {"foreign", NULL};
    long r = gate6(SYS_execveat, LIBOS_FD, (long)p, S(argv), S(environ), AT_EMPTY_PATH, 0);
    put("%s", en(r));
}

static void exec_after_cloexec(long how)
{
    /* make the LibOS's image fd close-on-exec through the gate, then execve (through the
     * LibOS): the new image starts without its fd, where the program could put another file */
    long r = how ? gate6(SYS_fcntl, LIBOS_FD, F_SETFD, FD_CLOEXEC, 0, 0, 0)
                 : gate6(SYS_ioctl, LIBOS_FD, FIOCLEX, 0, 0, 0, 0);
    if (r < 0) {
        put("%s %s", how ? "F_SETFD" : "FIOCLEX", en(r));
        return;
    }
    char *argv[] = {"true", NULL};
    execv("/bin/true", argv);
    put("execv %s", en(-errno));
}

static void close_range_over(long unused)
{
    (void)unused;
    put("%s", en(gate6(SYS_close_range, 100, LIBOS_FD, 0, 0, 0, 0)));
}

static void atk_exec_foreign(void)
{
    if (!have_libos) {
        res("all", "skipped (no LibOS)");
        return;
    }
    sub("execveat-libos-fd-absolute-path-gate", exec_absolute, 0);
    sub("execveat-libos-fd-after-dup3-gate", exec_swapped, 0);
    sub("execve-after-dup2-app", exec_program_swap, 0);
    sub("execveat-forged-path-gate", exec_forged_path, 0);
    sub("execve-after-fioclex-libos-fd-gate", exec_after_cloexec, 0);
    sub("execve-after-setfd-cloexec-libos-fd-gate", exec_after_cloexec, 1);
    sub("close_range-over-libos-fds-gate", close_range_over, 0);
}

/* --- 8. forged signal frames and forged signals ---------------------------------- */

static void forge_frame(ucontext_t *uc, unsigned long rip, long rax, const long *args, int compat)
{
    memset(uc, 0, sizeof *uc);
    uc->uc_flags = 0x2 | 0x4; /* UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS */
    uc->uc_stack.ss_flags = SS_DISABLE;
    greg_t *g = uc->uc_mcontext.gregs;
    g[REG_RIP] = (greg_t)rip;
    g[REG_RSP] = (greg_t)landing_top;
    g[REG_RBX] = (greg_t)landing_top;
    g[REG_RAX] = rax;
    g[REG_RDI] = args[0];
    g[REG_RSI] = args[1];
    g[REG_RDX] = args[2];
    g[REG_R10] = args[3];
    g[REG_R8] = args[4];
    g[REG_R9] = args[5];
    /* cs | gs << 16 | fs << 32 | ss << 48 */
    g[REG_CSGSFS] = (greg_t)((compat ? 0x23UL : 0x33UL) | 0x2bUL << 48);
}

static void sigreturn_gate(long nr)
{
    static ucontext_t uc;
    long args[6] = {S("none"), S("/nonexistent-xc"), S("tmpfs"), 0, 0, 0};
    forge_frame(&uc, gate_insn(), nr, args, 0);
    put("%s", en(sigreturn_into(&uc)));
}

static void sigreturn_compat(long nr)
{
    /* 32-bit code below 4 GiB: mov $nr,%eax; int $0x80; ljmp $0x33,gate_landing */
    unsigned char *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (code == MAP_FAILED || (unsigned long)gate_landing >> 32) {
        put("no 32-bit page");
        return;
    }
    unsigned char *p = code;
    *p++ = 0xb8;
    uint32_t n = (uint32_t)nr, land = (uint32_t)(unsigned long)gate_landing;
    memcpy(p, &n, 4), p += 4;
    *p++ = 0xcd, *p++ = 0x80;
    *p++ = 0xea;
    memcpy(p, &land, 4), p += 4;
    *p++ = 0x33, *p++ = 0x00;
    static ucontext_t uc;
    long args[6] = {0};
    forge_frame(&uc, (unsigned long)code, 0, args, 1);
    long r = sigreturn_into(&uc);
    put("%s", (int)r < 0 ? en((int)r) : "OK");
}

/* Call the LibOS's SIGSYS handler with a trap that never happened. */
static void forged_trap(long nr)
{
    siginfo_t si;
    ucontext_t uc;
    memset(&si, 0, sizeof si);
    memset(&uc, 0, sizeof uc);
    si.si_signo = SIGSYS;
    si.si_code = 1; /* SYS_SECCOMP */
    si.si_call_addr = (void *)(sym("xc_host_syscall") + 0x40);
    si.si_syscall = (int)nr;
    si.si_arch = AUDIT_ARCH_X86_64;
    uc.uc_mcontext.gregs[REG_RAX] = nr;
    uc.uc_mcontext.gregs[REG_RDI] = nr == SYS_clone ? CLONE_NEWUSER | SIGCHLD : S("none");
    uc.uc_mcontext.gregs[REG_RSI] = S("/nonexistent-xc");
    uc.uc_mcontext.gregs[REG_RDX] = S("tmpfs");
    void (*h)(int, siginfo_t *, void *) = (void (*)(int, siginfo_t *, void *))sym("xc_sigsys_handler");
    h(SIGSYS, &si, &uc);
    long r = uc.uc_mcontext.gregs[REG_RAX];
    put("%s", nr == SYS_getpid && r > 0 ? "OK (the pid)" : en(r));
}

/* The same, entered through a forged rt_sigreturn frame with the handler's arguments. */
static void forged_trap_frame(long nr)
{
    static siginfo_t si;
    static ucontext_t fake, uc;
    memset(&si, 0, sizeof si);
    memset(&fake, 0, sizeof fake);
    si.si_signo = SIGSYS;
    si.si_code = 1;
    si.si_call_addr = (void *)0x1000;
    fake.uc_mcontext.gregs[REG_RAX] = nr;
    fake.uc_mcontext.gregs[REG_RDI] = S("none");
    fake.uc_mcontext.gregs[REG_RSI] = S("/nonexistent-xc");
    long args[6] = {SIGSYS, S(&si), S(&fake), 0, 0, 0};
    forge_frame(&uc, sym("xc_sigsys_handler"), 0, args, 0);
    uc.uc_mcontext.gregs[REG_RSP] = (greg_t)(landing_top - 8); /* as after a call */
    sigreturn_into(&uc);
    put("%s", en(fake.uc_mcontext.gregs[REG_RAX]));
}

static void atk_sigreturn(void)
{
    sub("compat-mode-i386-getpid", sigreturn_compat, 20);
    if (!have_libos)
        return;
    sub("frame-into-gate-mount", sigreturn_gate, SYS_mount);
    sub("frame-into-gate-ptrace", sigreturn_gate, SYS_ptrace);
    sub("frame-into-handler-ptrace", forged_trap_frame, SYS_ptrace);
    sub("frame-into-handler-mount", forged_trap_frame, SYS_mount);
    sub("call-handler-mount", forged_trap, SYS_mount);
    sub("call-handler-clone-newuser", forged_trap, SYS_clone);
    sub("call-handler-getpid", forged_trap, SYS_getpid);
}

static volatile int app_sig;
static void on_sig(int sig)
{
    app_sig = sig;
}

static void queue_self(int sig, int code, void *addr, int through_gate)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = sig;
    si.si_code = code;
    if (sig == SIGSYS) {
        si.si_call_addr = addr;
        si.si_syscall = SYS_mount;
        si.si_arch = AUDIT_ARCH_X86_64;
    } else {
        si.si_addr = addr;
    }
    long r = through_gate ? gate6(SYS_rt_sigqueueinfo, getpid(), sig, S(&si), 0, 0, 0)
                          : raw(SYS_rt_sigqueueinfo, getpid(), sig, S(&si), 0, 0, 0);
    if (r < 0)
        put("rt_sigqueueinfo %s", en(r));
    else
        put("survived (%s), program handler %s", alive(), app_sig ? "ran" : "not run");
}

static void sig_kill_sys(long h)
{
    if (h)
        signal(SIGSYS, on_sig);
    kill(getpid(), SIGSYS);
    put("survived (%s), program handler %s", alive(), app_sig ? "ran" : "not run");
}
static void sig_tgkill_sys(long unused)
{
    (void)unused;
    raw(SYS_tgkill, getpid(), gettid(), SIGSYS, 0, 0, 0);
    put("survived (%s)", alive());
}
static void sig_queue_sys_gate(long unused)
{
    (void)unused;
    queue_self(SIGSYS, 1, (void *)(gate_insn() + 2), 0);
}
static void sig_queue_sys_unmapped(long unused)
{
    (void)unused;
    queue_self(SIGSYS, 1, (void *)0xdead0000, 0);
}
static void sig_queue_sys_libos(long unused)
{
    (void)unused;
    queue_self(SIGSYS, 1, (void *)(sym("xc_sigsys_handler") + 2), 0);
}
static void sig_queue_sys_from_gate(long unused)
{
    (void)unused;
    queue_self(SIGSYS, 1, (void *)(gate_insn() + 2), 1);
}
static void sig_queue_segv(long h)
{
    if (h)
        signal(SIGSEGV, on_sig);
    queue_self(SIGSEGV, SEGV_MAPERR, (void *)0x10000000, 0);
}
static void sig_queue_bus(long h)
{
    if (h)
        signal(SIGBUS, on_sig);
    queue_self(SIGBUS, BUS_ADRERR, (void *)0x10000000, 0);
}
static void sig_kill_segv(long h)
{
    if (h)
        signal(SIGSEGV, on_sig);
    kill(getpid(), SIGSEGV);
    put("survived (%s), program handler %s", alive(), app_sig ? "ran" : "not run");
}

static void atk_signals(void)
{
    sub("kill-sigsys", sig_kill_sys, 0);
    sub("kill-sigsys-with-handler", sig_kill_sys, 1);
    sub("tgkill-sigsys", sig_tgkill_sys, 0);
    sub("kill-sigsegv", sig_kill_segv, 0);
    sub("kill-sigsegv-with-handler", sig_kill_segv, 1);
    sub("queue-sigsegv-maperr", sig_queue_segv, 0);
    sub("queue-sigsegv-maperr-with-handler", sig_queue_segv, 1);
    sub("queue-sigbus-adrerr", sig_queue_bus, 0);
    if (!have_libos)
        return;
    sub("queue-sigsys-seccomp-at-gate", sig_queue_sys_gate, 0);
    sub("queue-sigsys-seccomp-unmapped", sig_queue_sys_unmapped, 0);
    sub("queue-sigsys-seccomp-in-libos", sig_queue_sys_libos, 0);
    sub("queue-sigsys-seccomp-through-gate", sig_queue_sys_from_gate, 0);
}

/* --- 9. ptrace and memory of a sibling; the host's processes ------------------------ */

static void atk_ptrace(void)
{
    pid_t sib = fork();
    if (sib == 0) {
        prctl(PR_SET_NAME, "a:ptrace-sib");
        for (;;)
            pause();
    }
    usleep(20000);
    long r = raw(SYS_ptrace, PTRACE_ATTACH, sib, 0, 0, 0, 0);
    res("attach-sibling-app", "%s", en(r));
    if (r == 0) {
        int st;
        waitpid(sib, &st, __WALL);
        raw(SYS_ptrace, PTRACE_DETACH, sib, 0, 0, 0, 0);
    }
    r = raw(SYS_ptrace, PTRACE_SEIZE, sib, 0, 0, 0, 0);
    res("seize-sibling-app", "%s", en(r));
    if (r == 0)
        raw(SYS_ptrace, PTRACE_DETACH, sib, 0, 0, 0, 0);
    char buf[8] = {0}, mine[8] = "xcxcxcx";
    struct iovec local = {buf, sizeof buf}, remote = {mine, sizeof mine};
    res("process_vm_readv-sibling-app", "%s",
        en(raw(SYS_process_vm_readv, sib, S(&local), 1, S(&remote), 1, 0)));
    res("process_vm_writev-sibling-app", "%s",
        en(raw(SYS_process_vm_writev, sib, S(&remote), 1, S(&local), 1, 0)));
    if (have_libos) {
        res("attach-sibling-gate", "%s", en(gate6(SYS_ptrace, PTRACE_ATTACH, sib, 0, 0, 0, 0)));
        res("process_vm_writev-sibling-gate", "%s",
            en(gate6(SYS_process_vm_writev, sib, S(&remote), 1, S(&local), 1, 0)));
    }
    /* /proc/PID/mem of a process of the same container: the kernel's ptrace
     * access check, which processes of one container pass (they trust each other) */
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", sib);
    int fd = open(path, O_RDWR);
    res("proc-mem-sibling-open", "%s", fd >= 0 ? "OK (same container)" : en(-errno));
    if (fd >= 0)
        close(fd);
    /* the host's processes: none is visible in the container's pid namespace */
    int visible = 0, attached = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        int pid = atoi(e->d_name);
        if (pid <= 0)
            continue;
        visible++;
        if (pid == getpid())
            continue;
        r = raw(SYS_ptrace, PTRACE_ATTACH, pid, 0, 0, 0, 0);
        if (r == 0) {
            attached++;
            int st;
            waitpid(pid, &st, __WALL);
            raw(SYS_ptrace, PTRACE_DETACH, pid, 0, 0, 0, 0);
        }
    }
    if (d)
        closedir(d);
    res("processes-visible", "%d", visible);
    res("attached", "%d", attached);
    int esrch = 0, other = 0;
    long last = 0;
    for (int pid = 2; pid < 4096; pid++) {
        if (pid == sib || pid == getpid() || pid == getppid())
            continue;
        r = raw(SYS_ptrace, PTRACE_ATTACH, pid, 0, 0, 0, 0);
        if (r == -ESRCH)
            esrch++;
        else
            other++, last = r;
    }
    res("attach-other-pids", "%d ESRCH, %d %s", esrch, other, other ? en(last) : "other");
    kill(sib, SIGKILL);
    waitpid(sib, NULL, 0);
}

/* --- 10. /proc/self/exe (CVE-2019-5736) --------------------------------------------- */

static const char *open_name(const char *path, int flags, int gate)
{
    long fd = gate ? gate6(SYS_openat, AT_FDCWD, S(path), flags, 0, 0, 0)
                   : raw(SYS_openat, AT_FDCWD, S(path), flags, 0, 0, 0);
    if (fd >= 0)
        close((int)fd);
    return en(fd);
}

static void atk_proc_exe(void)
{
    res("open-self-exe-wronly-app", "%s", open_name("/proc/self/exe", O_WRONLY, 0));
    res("open-self-exe-rdwr-app", "%s", open_name("/proc/self/exe", O_RDWR, 0));
    res("open-pid1-exe-wronly-app", "%s", open_name("/proc/1/exe", O_WRONLY, 0));
    int fd = open("/proc/self/exe", O_PATH);
    char again[64];
    snprintf(again, sizeof again, "/proc/self/fd/%d", fd);
    res("reopen-opath-self-exe-wronly-app", "%s", fd < 0 ? en(-errno) : open_name(again, O_WRONLY, 0));
    if (have_libos) {
        /* the kernel's /proc/self/exe is the LibOS image: a sealed memfd of the container's own */
        res("open-self-exe-wronly-gate", "%s", open_name("/proc/self/exe", O_WRONLY, 1));
        long rfd = gate6(SYS_openat, AT_FDCWD, S("/proc/self/exe"), O_RDONLY, 0, 0, 0);
        char link[128] = "";
        long n = gate6(SYS_readlinkat, AT_FDCWD, S("/proc/self/exe"), S(link), sizeof link - 1, 0, 0);
        if (n > 0)
            link[n] = 0;
        res("self-exe-gate-is", "%s", link);
        if (rfd >= 0) {
            long w = gate6(SYS_write, rfd, S("x"), 1, 0, 0, 0);
            res("write-self-exe-image-gate", "%s", en(w));
            close((int)rfd);
        }
        /* the image's fd: opened read-only, sealed against writes, shrinking and growing */
        res("write-image-fd-gate", "%s", en(gate6(SYS_write, LIBOS_FD, S("x"), 1, 0, 0, 0)));
        res("ftruncate-image-gate", "%s", en(gate6(SYS_ftruncate, LIBOS_FD, 0, 0, 0, 0, 0)));
    }
    /* re-exec through /proc/self/exe: the program again, not the image */
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        char *argv[] = {"attacks", "exe-child", NULL};
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    int st;
    waitpid(p, &st, 0);
    res("reexec-proc-self-exe", "%s", status_name(st));
}

/* --- 11. leaked fds and working directory (CVE-2024-21626) --------------------------- */

/* 1 if fd names a file or directory the container cannot reach by the path it shows. */
static int foreign_fd(int fd, char *why, size_t n)
{
    char path[64], link[512];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t k = readlink(path, link, sizeof link - 1);
    if (k < 0)
        return 0;
    link[k] = 0;
    if (link[0] != '/') /* pipe:[..], socket:[..], anon_inode:... */
        return 0;
    struct stat a, b;
    if (fstat(fd, &a) < 0)
        return 0;
    if (strncmp(link, "/memfd:", 7) == 0 && a.st_nlink == 0)
        return 0;
    if (stat(link, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
        snprintf(why, n, "fd %d -> %s", fd, link);
        return 1;
    }
    return 0;
}

static void check_fds_and_cwd(const char *when)
{
    char name[64], why[600] = "";
    int leaks = 0, n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int dfd = d ? dirfd(d) : -1;
    while (d && (e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd == dfd)
            continue;
        n++;
        if (fd <= 2) {
            /* stdio: what the caller of the runtime gave, as with any OCI runtime */
            char p[64], l[512];
            snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
            ssize_t k = readlink(p, l, sizeof l - 1);
            l[k > 0 ? k : 0] = 0;
            snprintf(name, sizeof name, "%s-stdio", when);
            res(name, "fd %d -> %s", fd, l);
            continue;
        }
        if (foreign_fd(fd, why, sizeof why)) {
            leaks++;
            snprintf(name, sizeof name, "%s-leak", when);
            res(name, "%s", why);
            /* what it would give: a walk up from it */
            int up = openat(fd, "../../../..", O_PATH | O_DIRECTORY);
            if (up >= 0) {
                char l[512] = "";
                char p[64];
                snprintf(p, sizeof p, "/proc/self/fd/%d", up);
                ssize_t k = readlink(p, l, sizeof l - 1);
                if (k > 0)
                    l[k] = 0;
                res(name, "walks up to %s", l);
                close(up);
            }
        }
    }
    if (d)
        closedir(d);
    snprintf(name, sizeof name, "%s-fds", when);
    res(name, "%d open, %d beyond stdio outside the container", n, leaks);
    char cwd[512];
    snprintf(name, sizeof name, "%s-cwd", when);
    if (!getcwd(cwd, sizeof cwd)) {
        res(name, "getcwd %s (not below the container's root)", en(-errno));
        char link[512];
        ssize_t k = readlink("/proc/self/cwd", link, sizeof link - 1);
        link[k > 0 ? k : 0] = 0;
        snprintf(name, sizeof name, "%s-cwd-is", when);
        res(name, "%s", link);
        /* walk up from it: where do we get? */
        char up[3 * 40 + 32] = "";
        for (int i = 0; i < 40; i++)
            strcat(up, "../");
        strcat(up, "etc/hostname");
        char host[128] = "";
        int fd = open(up, O_RDONLY);
        ssize_t n = fd >= 0 ? read(fd, host, sizeof host - 1) : -1;
        host[n > 0 ? n : 0] = 0;
        if (n > 0 && host[n - 1] == '\n')
            host[n - 1] = 0;
        snprintf(name, sizeof name, "%s-cwd-escape", when);
        res(name, "../(x40)/etc/hostname: %s", fd >= 0 ? host : en(-errno));
        return;
    }
    struct stat a, b;
    int inside = cwd[0] == '/' && stat(".", &a) == 0 && stat(cwd, &b) == 0 && a.st_dev == b.st_dev &&
                 a.st_ino == b.st_ino;
    res(name, "%s (%s)", cwd, inside ? "inside" : "OUTSIDE");
    char root[512];
    ssize_t k = readlink("/proc/self/root", root, sizeof root - 1);
    root[k > 0 ? k : 0] = 0;
    snprintf(name, sizeof name, "%s-root", when);
    res(name, "%s", root);
}

static void atk_leaks(void)
{
    check_fds_and_cwd("start");
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        char *argv[] = {"attacks", "leaks-after-exec", NULL};
        execv("/attacks", argv);
        _exit(127);
    }
    int st;
    waitpid(p, &st, 0);
    res("exec", "%s", status_name(st));
}

/* --- the attacks ---------------------------------------------------------------- */

static const struct {
    const char *name;
    void (*fn)(void);
} attacks[] = {
    {"never-app", atk_never_app},
    {"never-gate", atk_never_gate},
    {"gate-every", atk_gate_every},
    {"abi", atk_abi},
    {"args", atk_args},
    {"region-app", atk_region_app},
    {"region-gate", atk_region_gate},
    {"libos-fds", atk_libos_fds},
    {"exec-foreign", atk_exec_foreign},
    {"sigreturn", atk_sigreturn},
    {"signals", atk_signals},
    {"ptrace", atk_ptrace},
    {"proc-exe", atk_proc_exe},
    {"leaks", atk_leaks},
};
#define N_ATTACKS (sizeof attacks / sizeof attacks[0])

static void run_one(int i)
{
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        char comm[16];
        snprintf(comm, sizeof comm, "a:%s", attacks[i].name);
        prctl(PR_SET_NAME, comm);
        attack = attacks[i].name;
        attacks[i].fn();
        fflush(stdout);
        _exit(0);
    }
    int st = 0;
    waitpid(p, &st, 0);
    printf("%s: %s\n", attacks[i].name, status_name(st));
    fflush(stdout);
}

/* --- helpers run on their own -------------------------------------------------- */

/* Look for processes whose exe, cwd, root or fds lie outside the container. */
static int watch(int seconds)
{
    attack = "watch";
    int found = 0, seen = 0, opened = 0;
    static char known[1 << 16];
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    printf("watch: ready\n");
    fflush(stdout);
    do {
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            int pid = atoi(e->d_name);
            if (pid <= 1 || pid == getpid() || pid >= (1 << 16))
                continue;
            if (!known[pid]) {
                known[pid] = 1;
                seen++;
            }
            static const char *what[] = {"exe", "cwd", "root"};
            for (int w = 0; w < 3; w++) {
                char p[64], link[512];
                snprintf(p, sizeof p, "/proc/%d/%s", pid, what[w]);
                int fd = open(p, O_PATH);
                if (fd < 0)
                    continue;
                opened++;
                char self[64];
                snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
                ssize_t k = readlink(self, link, sizeof link - 1); /* what we hold, not what p is now */
                if (k <= 0) {
                    close(fd);
                    continue;
                }
                link[k] = 0;
                struct stat a, b;
                struct statvfs v;
                /* The LibOS image every container shares (xcontainers.libos.image_fd): a file
                 * on a detached read-only mount, which nobody can open for writing. */
                int shared_image = w == 0 && strcmp(link, "/xc-libos") == 0 && fstatvfs(fd, &v) == 0 &&
                                   (v.f_flag & ST_RDONLY);
                int foreign = fstat(fd, &a) == 0 && !(strncmp(link, "/memfd:", 7) == 0 && a.st_nlink == 0) &&
                              !shared_image &&
                              (stat(link, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino);
                if (foreign) {
                    found++;
                    char again[64];
                    snprintf(again, sizeof again, "/proc/self/fd/%d", fd);
                    int wfd = w == 0 ? open(again, O_WRONLY) : -1; /* opened only, never written */
                    res("foreign", "pid %d %s -> %s (reopen for writing: %s)", pid, what[w], link,
                        w == 0 ? (wfd >= 0 ? "OK" : en(-errno)) : "-");
                    if (wfd >= 0)
                        close(wfd);
                }
                close(fd);
            }
        }
        if (d)
            closedir(d);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (now.tv_sec - t0.tv_sec < seconds);
    res("summary", "%d processes seen, %d links opened, %d outside the container", seen, opened, found);
    return 0;
}

/* Put an O_PATH fd of PATH on FD (through the gate where the LibOS keeps FD), then wait. */
static int plant_fd(int fd, const char *path, int seconds)
{
    attack = "plant";
    int p = open(path, O_PATH);
    if (p < 0) {
        res(path, "open O_PATH %s", en(-errno));
        return 1;
    }
    long r = raw(SYS_dup2, p, fd, 0, 0, 0, 0);
    if (r < 0 && have_libos)
        r = gate6(SYS_dup3, p, fd, 0, 0, 0, 0);
    res("dup", "%d -> %d: %s", p, fd, en(r));
    printf("plant: ready\n");
    fflush(stdout);
    sleep((unsigned)seconds);
    return 0;
}

/* What this process got on FD: its kind, device, and whether it is writable. */
static int show_fd(int fd)
{
    attack = "show";
    struct statx st;
    /* the host's answer (statx is a host call of the interface); the LibOS hides its own fds */
    long r = have_libos ? gate6(SYS_statx, fd, S(""), AT_EMPTY_PATH, STATX_BASIC_STATS, S(&st), 0)
                        : raw(SYS_statx, fd, S(""), AT_EMPTY_PATH, STATX_BASIC_STATS, S(&st), 0);
    if (r < 0) {
        res("fd", "%d: %s", fd, en(r));
        return 0;
    }
    long fl = have_libos ? gate6(SYS_fcntl, fd, F_GETFL, 0, 0, 0, 0) : raw(SYS_fcntl, fd, F_GETFL, 0, 0, 0, 0);
    const char *kind = S_ISCHR(st.stx_mode) ? "char device" : S_ISBLK(st.stx_mode) ? "block device"
                       : S_ISFIFO(st.stx_mode) ? "fifo" : S_ISREG(st.stx_mode) ? "file" : "other";
    res("fd", "%d: %s %u:%u, %s", fd, kind, st.stx_rdev_major, st.stx_rdev_minor,
        fl < 0 ? en(fl) : (fl & O_ACCMODE) == O_RDWR ? "O_RDWR" : (fl & O_ACCMODE) == O_WRONLY ? "O_WRONLY"
                                                                                    : (fl & O_PATH) ? "O_PATH" : "O_RDONLY");
    return 0;
}

/* Scribble over the container's shared statistics segment, then wait for the host to read it. */
static int forge_stats(int seconds)
{
    attack = "forge-stats";
    unsigned long at = have_libos ? *(unsigned long *)sym("xc_stats") : 0;
    if (!at) {
        res("segment", "not mapped");
        return 1;
    }
    uint64_t *w = (uint64_t *)at;
    for (int i = 1; i < 4096 / 8 * 4; i++)
        w[i] = 0xffffffffffffffffULL;
    memset((char *)at + 16384 - 200, 0xff, 200); /* the uname strings, without their NULs */
    w[0] = 0x4141414141414141ULL;                  /* not the magic */
    res("segment", "%#lx overwritten", at);
    printf("forge-stats: ready\n");
    fflush(stdout);
    sleep((unsigned)seconds);
    return 0;
}

/* Execute every file in DIR (the ELF loader fuzzer's inputs), each in a child with a time
 * limit: "elf/NAME: exit N", "killed SIGx", or "execve EXXX" when the exec itself failed. */
static int exec_each(const char *dir, int seconds)
{
    attack = "elf";
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0) {
        res("dir", "%s", en(-errno));
        return 1;
    }
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (name[0] == '.')
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        shared[0] = 0;
        fflush(stdout);
        fflush(stderr);
        pid_t p = fork();
        if (p == 0) {
            alarm((unsigned)seconds);
            int null = open("/dev/null", O_WRONLY); /* a mutated program writes what it likes */
            dup2(null, 1);
            char *argv[] = {(char *)name, NULL};
            execv(path, argv);
            put("execve %s", en(-errno));
            _exit(100);
        }
        int st = 0;
        waitpid(p, &st, 0);
        if (shared[0])
            res(name, "%s", shared);
        else
            res(name, "%s", status_name(st));
    }
    printf("exec-each: done\n");
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    load_syms();
    for (int i = 0; i < LANDING_WORDS; i++)
        landing_stack[i] = (unsigned long)gate_landing;
    landing_top = (unsigned long)&landing_stack[LANDING_WORDS - 256];
    shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    const char *cmd = argc > 1 ? argv[1] : "run";
    if (strcmp(cmd, "run") == 0) {
        printf("main: %s\n", have_libos ? "LibOS symbols loaded" : "no LibOS");
        for (size_t i = 0; i < N_ATTACKS; i++) {
            int want = argc <= 2;
            for (int k = 2; k < argc; k++)
                want |= strcmp(argv[k], attacks[i].name) == 0;
            if (want)
                run_one((int)i);
        }
        printf("main: done\n");
        return 0;
    }
    if (strcmp(cmd, "exe-child") == 0) {
        attack = "proc-exe";
        char link[256];
        ssize_t k = readlink("/proc/self/exe", link, sizeof link - 1);
        link[k > 0 ? k : 0] = 0;
        res("reexec-runs", "%s", link);
        return 0;
    }
    if (strcmp(cmd, "leaks-after-exec") == 0) {
        attack = "leaks";
        check_fds_and_cwd("after-exec");
        return 0;
    }
    if (strcmp(cmd, "cwd") == 0) {
        attack = "cwd";
        check_fds_and_cwd("start");
        return 0;
    }
    if (strcmp(cmd, "watch") == 0 && argc > 2)
        return watch(atoi(argv[2]));
    if (strcmp(cmd, "plant-fd") == 0 && argc > 4)
        return plant_fd(atoi(argv[2]), argv[3], atoi(argv[4]));
    if (strcmp(cmd, "exec-each") == 0 && argc > 3)
        return exec_each(argv[2], atoi(argv[3]));
    if (strcmp(cmd, "show-fd") == 0 && argc > 2)
        return show_fd(atoi(argv[2]));
    if (strcmp(cmd, "write-fd") == 0 && argc > 3) {
        attack = "write";
        size_t n = strlen(argv[3]);
        res("fd", "%d: %s", atoi(argv[2]), en(raw(SYS_write, atoi(argv[2]), S(argv[3]), (long)n, 0, 0, 0)));
        return 0;
    }
    if (strcmp(cmd, "open") == 0 && argc > 2) {
        attack = "open";
        res(argv[2], "%s", en(raw(SYS_openat, AT_FDCWD, S(argv[2]), O_WRONLY, 0, 0, 0)));
        return 0;
    }
    if (strcmp(cmd, "tiocsti") == 0) {
        /* push characters into the input of the terminal on stdin, as if typed there */
        attack = "tiocsti";
        const char *text = argc > 2 ? argv[2] : "echo xc-injected\n";
        res("steal-controlling-tty", "%s", en(raw(SYS_ioctl, 0, TIOCSCTTY, 1, 0, 0, 0)));
        long r = 0;
        for (const char *c = text; *c && r >= 0; c++)
            r = raw(SYS_ioctl, 0, TIOCSTI, S(c), 0, 0, 0);
        res("stdin", "%s", en(r));
        return 0;
    }
    if (strcmp(cmd, "forge-stats") == 0 && argc > 2)
        return forge_stats(atoi(argv[2]));
    fprintf(stderr, "usage: attacks run [ATTACK...] | watch S | plant-fd FD PATH S | show-fd FD | "
                    "forge-stats S | cwd\n");
    return 2;
}
