/*
 * syscall_bench: system call micro-benchmark (a benchmark, not a test).
 *
 *     syscall_bench OP N
 *
 * runs OP N times and prints one JSON line
 *
 *     {"op":"getppid","n":500000,"ns_per_op":912.3}
 *
 * Time is read with clock_gettime(CLOCK_MONOTONIC), which is served by the
 * vDSO (no system call, so it never traps into the LibOS either).  A short
 * warm-up (untimed) comes first, so a first-use cost (page faults, a LibOS
 * that rewrites a site on its first trap) is not charged to the loop.
 *
 * Ops:
 *   getppid    getppid()
 *   trapsite   getppid through a site ABOM cannot rewrite (the number comes from
 *              a register and no padding is in reach): under the X-LibOS every call
 *              takes the trap path
 *   getpid     glibc's getpid() (a `mov $39,%eax; syscall` site; glibc caches nothing
 *              since 2.25, so natively every call enters the kernel)
 *   gettid     glibc's gettid() (a `mov $186,%eax; syscall` site)
 *   getrandom  16 bytes from getrandom(2)
 *   uname      uname(2)
 *   write1     1-byte write to /dev/null
 *   read1      1-byte read from /dev/zero
 *   openclose  open + close of /dev/null
 *   openwrite  open for writing + close of /dev/null (under the X-LibOS an open
 *              for writing looks for a running program first: running.c)
 *   stat       stat("/")
 *   pipe       1-byte round trip between two processes over two pipes,
 *              both pinned to one CPU (see pipe_setup)
 *   fork       fork + _exit(0) in the child + waitpid
 *   forkexec   fork + execve of this program ("noop") + waitpid
 *   noop       exits at once (the target of forkexec)
 *   park       writes a byte to fd 1, waits for one on fd 0, exits (the
 *              target of forkexec's shape probe)
 *
 * fork and forkexec add what the process model costs to the line: CPU time
 * per op (user and system, this process and its children: less sensitive
 * than the time to other load on the machine), minor
 * page faults per op in the children (RUSAGE_CHILDREN, over the timed loop:
 * for forkexec, the new image's too) and in this process; this process's
 * page tables (VmPTE, kB), mappings (lines of /proc/self/maps) and fd table
 * size (FDSize); and the same of one child at rest, after the fork (fork:
 * blocked in a read) or after the exec (forkexec: `park`, blocked likewise):
 *
 *     {"op":"fork","n":2000,"ns_per_op":98000.0,"cpu_ns_per_op":97000.0,"minflt_child":30.1,
 *      "minflt_self":12.0,"pte_kb":36,"maps":12,"fdsize":64,
 *      "child_pte_kb":36,"child_maps":12,"child_minflt":25}
 *
 * Build: gcc -O2 -static -o syscall_bench syscall_bench.c
 * Exit status: 0 on success, 1 on a failed system call (reason on stderr),
 * 2 on a usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *self_path;   /* what forkexec executes */

static void die(const char *op, const char *what)
{
    fprintf(stderr, "syscall_bench %s: %s: %s\n", op, what, strerror(errno));
    exit(1);
}

static inline long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Each op: run `n` iterations; return 0, or exit(1) via die(). */

static void op_getppid(long n)
{
    for (long i = 0; i < n; i++)
        (void)getppid();
}

/* `mov %edx,%eax; syscall` with the next function right after it. */
__asm__(".pushsection .text.trapsite,\"ax\",@progbits\n.p2align 4, 0xf4\n"
        ".globl trapsite_getppid\n.type trapsite_getppid,@function\ntrapsite_getppid:\n.cfi_startproc\n"
        "mov $110, %edx\nmov %edx, %eax\nsyscall\nret\n.cfi_endproc\n"
        ".globl trapsite_end\ntrapsite_end:\n.cfi_startproc\nret\n.cfi_endproc\n.popsection\n");
long trapsite_getppid(void);

static void op_trapsite(long n)
{
    for (long i = 0; i < n; i++)
        (void)trapsite_getppid();
}

static void op_getpid(long n)
{
    for (long i = 0; i < n; i++)
        (void)getpid();
}

static void op_gettid(long n)
{
    for (long i = 0; i < n; i++)
        (void)gettid();
}

static void op_getrandom(long n)
{
    char buf[16];
    for (long i = 0; i < n; i++)
        if (getrandom(buf, sizeof buf, 0) != (ssize_t)sizeof buf)
            die("getrandom", "getrandom");
}

static void op_uname(long n)
{
    struct utsname u;
    for (long i = 0; i < n; i++)
        if (uname(&u) != 0)
            die("uname", "uname");
}

static int fd_null = -1, fd_zero = -1;

static void op_write1(long n)
{
    char c = 'x';
    for (long i = 0; i < n; i++)
        if (write(fd_null, &c, 1) != 1)
            die("write1", "write /dev/null");
}

static void op_read1(long n)
{
    char c;
    for (long i = 0; i < n; i++)
        if (read(fd_zero, &c, 1) != 1)
            die("read1", "read /dev/zero");
}

/* open /dev/null with *flags* and close it, n times */
static void open_close_loop(const char *op, long n, int flags)
{
    for (long i = 0; i < n; i++) {
        int fd = open("/dev/null", flags | O_CLOEXEC);
        if (fd < 0)
            die(op, "open /dev/null");
        if (close(fd) != 0)
            die(op, "close");
    }
}

static void op_openclose(long n)
{
    open_close_loop("openclose", n, O_RDONLY);
}

static void op_openwrite(long n)
{
    open_close_loop("openwrite", n, O_WRONLY);
}

static void op_stat(long n)
{
    struct stat st;
    for (long i = 0; i < n; i++)
        if (stat("/", &st) != 0)
            die("stat", "stat /");
}

/* Calls the X-LibOS translates into other host calls (interface.def), or
 * answers from the vDSO, each timed on its cheapest case. */
static void op_pread1(long n)
{
    char c;
    for (long i = 0; i < n; i++)
        if (pread(fd_zero, &c, 1, 0) != 1)
            die("pread1", "pread /dev/zero");
}

static void op_readv1(long n)
{
    char c;
    struct iovec iov = {&c, 1};
    for (long i = 0; i < n; i++)
        if (readv(fd_zero, &iov, 1) != 1)
            die("readv1", "readv /dev/zero");
}

static void op_fstat(long n)
{
    struct stat st;
    for (long i = 0; i < n; i++)
        if (fstat(fd_zero, &st) != 0)
            die("fstat", "fstat /dev/zero");
}

static void op_epollwait0(long n)
{
    struct epoll_event ev;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epollwait0", "epoll_create1");
    for (long i = 0; i < n; i++)
        if (epoll_wait(ep, &ev, 1, 0) != 0)
            die("epollwait0", "epoll_wait");
    close(ep);
}

/* a unix datagram sent and received back (sendto + recvfrom) */
static void op_unixdgram(long n)
{
    int sv[2];
    char c = 'x';
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) != 0)
        die("unixdgram", "socketpair");
    for (long i = 0; i < n; i++)
        if (sendto(sv[0], &c, 1, 0, NULL, 0) != 1 || recvfrom(sv[1], &c, 1, MSG_DONTWAIT, NULL, NULL) != 1)
            die("unixdgram", "sendto/recvfrom");
    close(sv[0]);
    close(sv[1]);
}

/* clock_gettime as a system call of the program's own (not through libc's vDSO) */
static void op_rawclock(long n)
{
    struct timespec ts;
    for (long i = 0; i < n; i++)
        if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts) != 0)
            die("rawclock", "clock_gettime");
}

/* pipe: the child echoes each byte back; both sides set up before timing.
 * Both processes are pinned to the CPU the parent is on: on this host a
 * wake-up across CPUs (an IPI in a nested VM) costs ~45 us against ~6 us on
 * one CPU, and where the scheduler happens to place the two processes
 * would otherwise decide the result (bimodal, 7x apart). */
static int p_to[2] = {-1, -1}, p_from[2] = {-1, -1};
static pid_t echo_pid = -1;

static void pipe_setup(void)
{
    int cpu = sched_getcpu();
    if (cpu < 0)
        die("pipe", "sched_getcpu");
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        die("pipe", "sched_setaffinity (pinning both processes to one CPU)");
    if (pipe(p_to) != 0 || pipe(p_from) != 0)
        die("pipe", "pipe");
    echo_pid = fork();
    if (echo_pid < 0)
        die("pipe", "fork");
    if (echo_pid == 0) {
        char c;
        close(p_to[1]);
        close(p_from[0]);
        for (;;) {
            ssize_t r = read(p_to[0], &c, 1);
            if (r == 0)
                _exit(0);          /* parent closed its end: done */
            if (r != 1)
                _exit(3);
            if (write(p_from[1], &c, 1) != 1)
                _exit(4);
        }
    }
    close(p_to[0]);
    close(p_from[1]);
}

static void op_pipe(long n)
{
    char c = 'p';
    for (long i = 0; i < n; i++) {
        if (write(p_to[1], &c, 1) != 1)
            die("pipe", "write");
        if (read(p_from[0], &c, 1) != 1)
            die("pipe", "read (echo process gone?)");
    }
}

static void pipe_teardown(void)
{
    int st;
    close(p_to[1]);
    if (waitpid(echo_pid, &st, 0) != echo_pid)
        die("pipe", "waitpid");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        errno = 0;
        fprintf(stderr, "syscall_bench pipe: echo process ended with status 0x%x\n", st);
        exit(1);
    }
}

static void wait_child(const char *op, pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) != pid)
        die(op, "waitpid");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "syscall_bench %s: child ended with status 0x%x%s%s\n", op, st,
                WIFSIGNALED(st) ? ", signal " : "", WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "");
        exit(1);
    }
}

static void op_fork(long n)
{
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0)
            die("fork", "fork");
        if (pid == 0)
            _exit(0);
        wait_child("fork", pid);
    }
}

static void op_forkexec(long n)
{
    char *argv[] = {(char *)self_path, "noop", "0", NULL};
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0)
            die("forkexec", "fork");
        if (pid == 0) {
            execve(self_path, argv, environ);
            fprintf(stderr, "syscall_bench forkexec: execve %s: %s\n", self_path, strerror(errno));
            _exit(127);
        }
        wait_child("forkexec", pid);
    }
}

/* --- the shape of a process, for fork and forkexec --------------------------- */

static double tv_ns(const struct timeval *tv)
{
    return (double)tv->tv_sec * 1e9 + (double)tv->tv_usec * 1e3;
}

struct shape {
    long pte_kb, maps, fdsize, minflt;
};

/* VmPTE and FDSize from /proc/PID/status, the mappings from /proc/PID/maps,
 * minor faults from /proc/PID/stat (field 10). */
static void shape_of(const char *op, const char *pid, struct shape *s)
{
    char path[64], buf[8192];
    s->pte_kb = s->maps = s->fdsize = s->minflt = -1;
    snprintf(path, sizeof path, "/proc/%s/status", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        die(op, path);
    while (fgets(buf, sizeof buf, f)) {
        sscanf(buf, "VmPTE: %ld", &s->pte_kb);
        sscanf(buf, "FDSize: %ld", &s->fdsize);
    }
    fclose(f);
    snprintf(path, sizeof path, "/proc/%s/maps", pid);
    if (!(f = fopen(path, "re")))
        die(op, path);
    s->maps = 0;
    while (fgets(buf, sizeof buf, f))
        if (strchr(buf, '\n'))
            s->maps++;
    fclose(f);
    snprintf(path, sizeof path, "/proc/%s/stat", pid);
    if (!(f = fopen(path, "re")))
        die(op, path);
    if (fgets(buf, sizeof buf, f)) {
        char *p = strrchr(buf, ')');
        /* after the comm: state ppid pgrp session tty tpgid flags minflt */
        if (p)
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %ld", &s->minflt);
    }
    fclose(f);
}

static void op_park(void)
{
    char c = 'r';
    if (write(1, &c, 1) != 1 || read(0, &c, 1) != 1)
        _exit(3);
    _exit(0);
}

/* One child at rest: after fork (blocked in a read) or after it executed
 * `park` (exec).  Its shape is read from here while it waits. */
static void child_shape(const char *op, int exec, struct shape *s)
{
    int go[2], ready[2];
    char c = 'g', pid_s[16];
    if (pipe(go) != 0 || pipe(ready) != 0)
        die(op, "pipe");
    pid_t pid = fork();
    if (pid < 0)
        die(op, "fork");
    if (pid == 0) {
        if (exec) {
            char *argv[] = {(char *)self_path, "park", "0", NULL};
            if (dup2(go[0], 0) != 0 || dup2(ready[1], 1) != 1)
                _exit(5);
            execve(self_path, argv, environ);
            _exit(127);
        }
        if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
            _exit(3);
        _exit(0);
    }
    close(go[0]);
    close(ready[1]);
    if (read(ready[0], &c, 1) != 1)
        die(op, "the probe child did not start");
    snprintf(pid_s, sizeof pid_s, "%d", (int)pid);
    shape_of(op, pid_s, s);
    if (write(go[1], &c, 1) != 1)
        die(op, "write to the probe child");
    close(go[1]);
    close(ready[0]);
    wait_child(op, pid);
}

struct op {
    const char *name;
    void (*run)(long);
    long warmup;             /* untimed iterations first (at most n) */
    void (*setup)(void);
    void (*teardown)(void);
};

static const struct op OPS[] = {
    {"getppid", op_getppid, 1000, NULL, NULL},
    {"getpid", op_getpid, 1000, NULL, NULL},
    {"trapsite", op_trapsite, 1000, NULL, NULL},
    {"gettid", op_gettid, 1000, NULL, NULL},
    {"getrandom", op_getrandom, 1000, NULL, NULL},
    {"uname", op_uname, 1000, NULL, NULL},
    {"write1", op_write1, 1000, NULL, NULL},
    {"read1", op_read1, 1000, NULL, NULL},
    {"openclose", op_openclose, 500, NULL, NULL},
    {"openwrite", op_openwrite, 500, NULL, NULL},
    {"stat", op_stat, 500, NULL, NULL},
    {"fstat", op_fstat, 1000, NULL, NULL},
    {"pread1", op_pread1, 1000, NULL, NULL},
    {"readv1", op_readv1, 1000, NULL, NULL},
    {"epollwait0", op_epollwait0, 1000, NULL, NULL},
    {"unixdgram", op_unixdgram, 500, NULL, NULL},
    {"rawclock", op_rawclock, 1000, NULL, NULL},
    {"pipe", op_pipe, 200, pipe_setup, pipe_teardown},
    {"fork", op_fork, 3, NULL, NULL},
    {"forkexec", op_forkexec, 2, NULL, NULL},
};

static void usage(void)
{
    fprintf(stderr, "usage: syscall_bench OP N\nops:");
    for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++)
        fprintf(stderr, " %s", OPS[i].name);
    fprintf(stderr, " noop\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc != 3)
        usage();
    if (strcmp(argv[1], "noop") == 0)
        return 0;
    if (strcmp(argv[1], "park") == 0)
        op_park();
    char *end;
    errno = 0;
    long n = strtol(argv[2], &end, 10);
    if (errno || *end || n <= 0)
        usage();
    const struct op *op = NULL;
    for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++)
        if (strcmp(argv[1], OPS[i].name) == 0)
            op = &OPS[i];
    if (!op)
        usage();

    /* forkexec runs this very program again: by the path we were started
     * with when it has a slash, else whatever /proc/self/exe names. */
    static char exe[4096];
    if (strchr(argv[0], '/')) {
        self_path = argv[0];
    } else {
        ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (len <= 0)
            die(op->name, "readlink /proc/self/exe");
        exe[len] = 0;
        self_path = exe;
    }
    if ((fd_null = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0)
        die(op->name, "open /dev/null");
    if ((fd_zero = open("/dev/zero", O_RDONLY | O_CLOEXEC)) < 0)
        die(op->name, "open /dev/zero");
    /* A pipe whose reader is gone must fail, not kill us silently. */
    signal(SIGPIPE, SIG_IGN);

    if (op->setup)
        op->setup();
    op->run(op->warmup < n ? op->warmup : n);
    struct rusage self0, kids0, self1, kids1;
    getrusage(RUSAGE_SELF, &self0);
    getrusage(RUSAGE_CHILDREN, &kids0);
    long long t0 = now_ns();
    op->run(n);
    long long t1 = now_ns();
    getrusage(RUSAGE_SELF, &self1);
    getrusage(RUSAGE_CHILDREN, &kids1);
    if (op->teardown)
        op->teardown();

    printf("{\"op\":\"%s\",\"n\":%ld,\"ns_per_op\":%.1f", op->name, n, (double)(t1 - t0) / (double)n);
    if (op->run == op_fork || op->run == op_forkexec) {
        struct shape me, kid;
        shape_of(op->name, "self", &me);
        child_shape(op->name, op->run == op_forkexec, &kid);
        double cpu = tv_ns(&self1.ru_utime) + tv_ns(&self1.ru_stime) + tv_ns(&kids1.ru_utime) + tv_ns(&kids1.ru_stime) -
                     (tv_ns(&self0.ru_utime) + tv_ns(&self0.ru_stime) + tv_ns(&kids0.ru_utime) + tv_ns(&kids0.ru_stime));
        printf(",\"cpu_ns_per_op\":%.1f", cpu / (double)n);
        printf(",\"minflt_child\":%.1f,\"minflt_self\":%.1f,\"pte_kb\":%ld,\"maps\":%ld,\"fdsize\":%ld,"
               "\"child_pte_kb\":%ld,\"child_maps\":%ld,\"child_minflt\":%ld",
               (double)(kids1.ru_minflt - kids0.ru_minflt) / (double)n,
               (double)(self1.ru_minflt - self0.ru_minflt) / (double)n, me.pte_kb, me.maps, me.fdsize,
               kid.pte_kb, kid.maps, kid.fdsize >= 0 ? kid.minflt : -1);
    }
    printf("}\n");
    if (fflush(stdout) != 0)
        die(op->name, "write stdout");
    return 0;
}
