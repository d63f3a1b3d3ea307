/* The container's init (see init.h, xcontainers/init.py, credentials.py). */
#include "init.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "abi.h"
#include "json.h"
#include "libos.h"
#include "rootfs.h"

/* --- credentials (credentials.py) ------------------------------------------------------- */

static int last_cap(void)
{
    char *t = read_file("/proc/sys/kernel/cap_last_cap", 64, NULL);
    if (t == NULL)
        return 40; /* len(CAPABILITIES) - 1 */
    int n = atoi(t);
    free(t);
    return n;
}

static int capset3(unsigned long long eff, unsigned long long prm, unsigned long long inh)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    data[0].effective = (uint32_t)eff;
    data[1].effective = (uint32_t)(eff >> 32);
    data[0].permitted = (uint32_t)prm;
    data[1].permitted = (uint32_t)(prm >> 32);
    data[0].inheritable = (uint32_t)inh;
    data[1].inheritable = (uint32_t)(inh >> 32);
    return syscall(SYS_capset, &hdr, data);
}

static int apply_rlimits(const struct spec *sp)
{
    static const char *const names[] = {
        "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS",
        "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS", "RLIMIT_SIGPENDING",
        "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
    };
    for (int i = 0; i < sp->nrlimits; i++) {
        const struct rlim *l = &sp->rlimits[i];
        struct rlimit r = {l->soft == ~0ULL ? RLIM_INFINITY : l->soft, l->hard == ~0ULL ? RLIM_INFINITY : l->hard};
        if (r.rlim_cur > r.rlim_max)
            return xcr_fail("process.rlimits %s (soft %llu, hard %llu): current limit exceeds maximum limit",
                            names[l->resource], l->soft, l->hard);
        if (setrlimit(l->resource, &r) < 0)
            return xcr_fail_errno("process.rlimits %s (soft %llu, hard %llu)", names[l->resource], l->soft, l->hard);
    }
    return 0;
}

static int apply_user_and_caps(const struct spec *sp)
{
    int last = last_cap();
    if (sp->has_caps)
        for (int c = 0; c <= last; c++)
            if (!(c < 64 && (sp->caps_bounding >> c) & 1) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
                goto fail;
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
        goto fail;
    gid_t *gids = xmalloc(sizeof(gid_t) * (sp->ngids + 1));
    for (int i = 0; i < sp->ngids; i++)
        gids[i] = sp->gids[i];
    if (setgroups(sp->ngids, gids) < 0 || setresgid(sp->gid, sp->gid, sp->gid) < 0 ||
        setresuid(sp->uid, sp->uid, sp->uid) < 0 || prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
        goto fail;
    if (sp->has_caps) {
        if (capset3(sp->caps_effective, sp->caps_permitted, sp->caps_inheritable) < 0 ||
            prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
            goto fail;
        for (int i = 0; i < sp->nambient; i++) {
            int n = sp->ambient[i];
            if (n < 0 || n > last)
                continue;
            if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, n, 0, 0) < 0 && errno != EPERM)
                goto fail;
        }
    } else if (sp->uid != 0) {
        if (capset3(0, 0, 0) < 0)
            goto fail;
    }
    return 0;
fail:
    return xcr_fail_errno("process.user / process.capabilities");
}

/* credentials.default_home, in the container's root. */
static int default_home(unsigned uid, char **out)
{
    *out = NULL;
    size_t len;
    char *t = read_file("/etc/passwd", 1 << 24, &len);
    if (t == NULL) {
        *out = xstrdup("/");
        return 0;
    }
    /* Python reads it as UTF-8 text with universal newlines: refuse what
     * it would read differently */
    if (strlen(t) != len || strchr(t, '\r') || !utf8_valid(t, len))
        return xcr_fail("/etc/passwd: not plain UTF-8 text");
    char want[16];
    snprintf(want, sizeof want, "%u", uid);
    char *save = NULL;
    for (char *line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[7];
        int n = 0;
        char *p = line;
        for (; n < 7; n++) {
            f[n] = p;
            char *c = strchr(p, ':');
            if (c == NULL) {
                n++;
                break;
            }
            *c = 0;
            p = c + 1;
        }
        if (n >= 6 && strcmp(f[2], want) == 0) {
            *out = xstrdup(*f[5] ? f[5] : "/");
            break;
        }
    }
    free(t);
    if (*out == NULL)
        *out = xstrdup("/");
    return 0;
}

static bool isfile(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* credentials.find_executable: argv[0] as execvp would, in the container. */
static int find_executable(const char *name, char **env, int nenv, const char *cwd, char **out)
{
    char *r = py_repr(name);
    if (strchr(name, '/')) {
        char *path = name[0] == '/' ? xstrdup(name) : path_join(cwd, name);
        struct stat st;
        if (stat(path, &st) < 0)
            return xcr_fail("exec: %s: no such file or directory", r);
        if (S_ISDIR(st.st_mode) || access(path, X_OK) < 0)
            return xcr_fail("exec: %s: permission denied", r);
        *out = path;
        return 0;
    }
    const char *search = "";
    for (int i = 0; i < nenv; i++)
        if (strncmp(env[i], "PATH=", 5) == 0)
            search = env[i] + 5;
    if (*search) {
        char *copy = xstrdup(search);
        char *s = copy;
        for (;;) {
            char *colon = strchr(s, ':');
            if (colon)
                *colon = 0;
            char *p = path_join(*s ? s : ".", name);
            if (isfile(p) && access(p, X_OK) == 0) {
                *out = p;
                return 0;
            }
            free(p);
            if (!colon)
                break;
            s = colon + 1;
        }
    }
    return xcr_fail("exec: %s: executable file not found in $PATH", r);
}

/* --- the init --------------------------------------------------------------------------- */

_Noreturn static void die(struct init_ctx *c)
{
    struct sbuf b = {0};
    sb_putc(&b, 'E');
    sb_puts(&b, xcr_error);
    if (send(c->sync, b.s, b.len, MSG_NOSIGNAL) < 0) {
        /* the runtime is gone */
    }
    _exit(1);
}

static void mark_fds_cloexec(int keep_below)
{
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        int self = dirfd(d);
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            int fd = atoi(e->d_name);
            if (fd >= keep_below && fd != self && fd != XC_LIBOS_FD && fd != XC_STATS_FD && fd != XC_TRACE_FD)
                fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
        closedir(d);
    }
    for (int fd = 3; fd < keep_below; fd++) {
        int fl = fcntl(fd, F_GETFD);
        if (fl >= 0)
            fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
    }
}

static int keep_libos_fds(struct init_ctx *c)
{
    struct {
        int fd, target;
        const char *what;
    } fds[] = {{c->libos_fd, XC_LIBOS_FD, "image"}, {c->stats_fd, XC_STATS_FD, "statistics"}};
    if (c->libos_fd >= 0 && 3 + c->preserve_fds > XC_TRACE_FD)
        return xcr_fail("X-LibOS: --preserve-fds %d passes fds up to %d, but fds %d-%d are the X-LibOS's",
                        c->preserve_fds, 2 + c->preserve_fds, XC_TRACE_FD, XC_LIBOS_FD);
    for (int i = 0; i < 2; i++) {
        if (fds[i].fd < 0)
            continue;
        if (dup2(fds[i].fd, fds[i].target) < 0)
            return xcr_fail_errno("X-LibOS: keeping the %s on fd %d", fds[i].what, fds[i].target);
        close(fds[i].fd);
    }
    return 0;
}

/* The environment as os.execve(dict(e.split("=", 1) for e in env)) gives it:
 * one entry per name, at its first place, with its last value. */
static char **exec_env(char **env, int n)
{
    char **out = xmalloc(sizeof(char *) * (n + 1));
    int k = 0;
    for (int i = 0; i < n; i++) {
        size_t nl = strchr(env[i], '=') - env[i];
        int j;
        for (j = 0; j < k; j++)
            if (strncmp(out[j], env[i], nl + 1) == 0)
                break;
        out[j] = env[i];
        if (j == k)
            k++;
    }
    out[k] = NULL;
    return out;
}

_Noreturn void init_main(struct init_ctx *c)
{
    const struct spec *sp = c->sp;
    char msg;
    ssize_t n;
    /* Of the host's state directory only exec.fifo is needed, and not a
     * directory: from here on no fd of ours names a host directory. */
    int fifo = openat(c->dir_fd, "exec.fifo", O_PATH | O_CLOEXEC);
    if (fifo < 0) {
        xcr_fail_errno("exec.fifo");
        die(c);
    }
    close(c->dir_fd);
    while ((n = recv(c->sync, &msg, 1, 0)) < 0 && errno == EINTR)
        ;
    if (n != 1 || msg != 'G')
        _exit(1); /* the runtime gave up */
    if (setsid() < 0) {
        xcr_fail_errno("setsid");
        die(c);
    }
    if (sp->cgroupns_new && unshare(CLONE_NEWCGROUP) < 0) {
        xcr_fail_errno("unshare(CLONE_NEWCGROUP)");
        die(c);
    }
    if (!c->no_new_keyring)
        syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, NULL); /* errors ignored, as runc */
    if (rootfs_prepare(sp, c->cg) < 0)
        die(c);
    mark("mounts");
    if (rootfs_pivot(sp, c->no_pivot) < 0 || rootfs_finish(sp) < 0)
        die(c);
    if (sp->hostname && *sp->hostname && sethostname(sp->hostname, strlen(sp->hostname)) < 0) {
        xcr_fail_errno("sethostname");
        die(c);
    }
    if (sp->domainname && *sp->domainname && setdomainname(sp->domainname, strlen(sp->domainname)) < 0) {
        xcr_fail_errno("setdomainname");
        die(c);
    }
    if (makedirs(sp->cwd, 0755) < 0) {
        /* ignored, as init._chdir */
    }
    if (chdir(sp->cwd) < 0) {
        char *r = py_repr(sp->cwd);
        xcr_fail_errno("process.cwd %s", r);
        die(c);
    }
    /* init._chdir: the cwd must lie inside the container's root (a path
     * through /proc/self/fd could name a host directory: CVE-2024-21626);
     * getcwd() refuses a cwd outside the root */
    char cwdbuf[4096];
    if (getcwd(cwdbuf, sizeof cwdbuf) == NULL || cwdbuf[0] != '/') {
        char *r = py_repr(sp->cwd);
        xcr_fail("process.cwd %s: leads outside the container's root", r);
        die(c);
    }
    /* the environment: HOME added from the container's /etc/passwd */
    char **env = xmalloc(sizeof(char *) * (sp->nenv + 2));
    int nenv = 0;
    bool home = false;
    for (int i = 0; i < sp->nenv; i++) {
        env[nenv++] = sp->env[i];
        home |= strncmp(sp->env[i], "HOME=", 5) == 0;
    }
    if (!home) {
        char *h;
        if (default_home(sp->uid, &h) < 0)
            die(c);
        env[nenv++] = xasprintf("HOME=%s", h);
    }
    char *path = NULL;
    if (find_executable(sp->args[0], env, nenv, sp->cwd, &path) < 0)
        die(c);
    if (sp->has_umask)
        umask(sp->umask);
    if (keep_libos_fds(c) < 0 || apply_rlimits(sp) < 0)
        die(c);
    char fifo_path[64];
    snprintf(fifo_path, sizeof fifo_path, "/proc/self/fd/%d", fifo);
    if (!lexists(fifo_path)) {
        xcr_fail("the container has no /proc: the init reaches exec.fifo through /proc/self/fd");
        die(c);
    }
    if (apply_user_and_caps(sp) < 0)
        die(c);
    if (sp->nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        xcr_fail_errno("no_new_privs");
        die(c);
    }
    mark_fds_cloexec(3 + c->preserve_fds);
    mark("init");
    if (send(c->sync, "R", 1, MSG_NOSIGNAL) != 1)
        _exit(1);
    close(c->sync);

    /* Wait for `start`: opening a fifo for writing blocks until a reader comes. */
    /* The O_PATH fd is reopened through /proc, as runc does. */
    int fd = open(fifo_path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "0", 1) != 1) {
        fprintf(stderr, "xc-runtime: waiting for start: %s\n", strerror(errno));
        _exit(1);
    }
    close(fd);
    close(fifo);

    /* init._exec: default signal dispositions, an empty mask, then the program */
    int sigs[] = {SIGPIPE, SIGXFSZ, SIGINT, SIGTERM, SIGCHLD};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        signal(sigs[i], SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    char **envp = exec_env(env, nenv);
    mark("exec");
    if (c->libos_fd >= 0) {
        /* The program's path in an exec request (abi.h, struct xc_exec_req)
         * for this process, its argv the image's own (/proc/PID/cmdline);
         * where the path does not fit, ahead of it in argv. */
        struct xc_exec_req req = {.pid = getpid(), .mode = XC_REQ_INIT,
                                  .argv_hash = xc_argv_hash(sp->nargs, sp->args)};
        int skip = 3;
        if (sp->nargs > 0 && strlen(path) < sizeof req.path) {
            strcpy(req.path, path);
            if (pwrite(XC_STATS_FD, &req, sizeof req, XC_EXEC_REQ_OFFSET) == (ssize_t)sizeof req)
                skip = 0;
        }
        char **argv = xmalloc(sizeof(char *) * (sp->nargs + 4));
        argv[0] = XC_IMAGE_NAME;
        argv[1] = XC_ARG_INIT;
        argv[2] = path;
        for (int i = 0; i < sp->nargs; i++)
            argv[skip + i] = sp->args[i];
        argv[skip + sp->nargs] = NULL;
        syscall(SYS_execveat, XC_LIBOS_FD, "", argv, envp, AT_EMPTY_PATH);
    } else {
        char **argv = xmalloc(sizeof(char *) * (sp->nargs + 1));
        for (int i = 0; i < sp->nargs; i++)
            argv[i] = sp->args[i];
        argv[sp->nargs] = NULL;
        execve(path, argv, envp);
    }
    int e = errno;
    fprintf(stderr, "xc-runtime: exec %s: %s\n", sp->args[0], strerror(e));
    _exit(e == ENOENT ? 127 : 126);
}
