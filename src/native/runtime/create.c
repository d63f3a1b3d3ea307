/*
 * create and run: container.Runtime.create/run for the configs spec.c takes.
 *
 *     xc-runtime create ID              (the runtime, R)
 *       checks (nothing changed yet; anything unusual: the Python runtime)
 *       ROOT/ID reserved ("creating"), exec.fifo, the LibOS's fds,
 *       the cgroup made and its limits set
 *       clone(CLONE_NEW* | SIGCHLD) ─> init (I, pid 1 of its pid namespace)
 *                                      (with namespaces to join: a setup
 *                                      process setns()es, then clones I)
 *                                      I joins its cgroup itself (cgroup.c:
 *       <─ 'J'                         cgroup_join_self; cloned into the v2 one)
 *       oom_score_adj, the state saved, 'G' ─> I: rootfs, credentials ...
 *       <─ 'R' (ready), or 'E' + why
 *       "created", the pid file
 *
 * A failure once something was made is undone as Runtime._undo_create does
 * (processes, cgroup, state directory; mounts live in the container's mount
 * namespace), and then the Python runtime is run with the same command: it
 * does the work again and reports the error exactly as it words it.
 */
#include "xcr.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "init.h"
#include "libos.h"
#include "lifecycle.h"
#include "ops.h"
#include "spec.h"
#include "state.h"

struct creation {
    const struct opts *o;
    struct spec sp;
    struct cgroup cg;
    struct state st;
    char *dir;
    bool reserved, cgroup_made;
    pid_t init_pid, setup_pid;
    int sync[2]; /* [0] the runtime's end, [1] the init's */
    int dir_fd, libos_fd, stats_fd;
    int cg2_fd;   /* the v2 cgroup directory (clone3's CLONE_INTO_CGROUP), or -1 */
    bool into_v2; /* (in the init) cloned into it */
    bool joined;  /* the init's 'J' received */
};

/* --- deciding ------------------------------------------------------------------------------ */

static int plan_create(const struct opts *o, struct creation *c)
{
    memset(c, 0, sizeof *c);
    c->o = o;
    c->sync[0] = c->sync[1] = c->dir_fd = c->libos_fd = c->stats_fd = c->cg2_fd = -1;
    if (!id_valid(o->id))
        return xcr_fail("invalid container id");
    c->dir = state_dir(o->root, o->id);
    if (isdir(c->dir))
        return xcr_fail("the container exists");
    if (spec_load(o->bundle, &c->sp) < 0)
        return -1;
    mark("config");
    char *path;
    if (cgroup_resolve_path(c->sp.cgroups_path, o->id, &path) < 0 || cgroup_open(path, &c->cg) < 0)
        return -1;
    if (c->sp.libos) {
        char *img = path_join(package_dir(), "xc-libos");
        bool ok = access(img, R_OK) == 0;
        free(img);
        if (!ok)
            return xcr_fail("the X-LibOS image is not built");
    }
    return 0;
}

/* --- undoing ---------------------------------------------------------------------------------- */

static void wait_gone(pid_t pid, double timeout)
{
    int fd AUTOCLOSE = syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0) {
        struct pollfd p = {fd, POLLIN, 0};
        while (poll(&p, 1, (int)(timeout * 1000)) < 0 && errno == EINTR)
            ;
    }
    waitpid(pid, NULL, WNOHANG);
}

static void undo_create(struct creation *c)
{
    if (c->setup_pid > 0) {
        kill(c->setup_pid, SIGKILL);
        waitpid(c->setup_pid, NULL, 0);
    }
    if (c->init_pid > 0) {
        kill(c->init_pid, SIGKILL);
        wait_gone(c->init_pid, 5.0);
    }
    if (c->cgroup_made) {
        cgroup_kill_all(&c->cg, SIGKILL);
        if (cgroup_destroy(&c->cg, 5.0) < 0) {
            char *w = xasprintf("removing cgroup of %s: %s", c->o->id, xcr_error);
            log_warning(w);
            free(w);
        }
    }
    if (c->reserved)
        store_remove(c->o->root, c->o->id);
    int *fds[] = {&c->sync[0], &c->sync[1], &c->dir_fd, &c->libos_fd, &c->stats_fd, &c->cg2_fd};
    for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
        if (*fds[i] >= 0) {
            close(*fds[i]);
            *fds[i] = -1;
        }
}

/* --- the init ------------------------------------------------------------------------------------ */

static pid_t clone_process(unsigned long flags)
{
    /* fork-like: the child goes on from here, on a copy of this stack */
    return syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
}

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/* clone_process, into the container's v2 cgroup where the kernel can
 * (clone3's CLONE_INTO_CGROUP: no cgroup move later, see cgroup.c);
 * c->into_v2 tells the child which it was. */
static pid_t clone_init(struct creation *c, unsigned long flags)
{
    if (c->cg2_fd >= 0) {
        struct {
            uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
                set_tid_size, cgroup;
        } args = {.flags = flags | CLONE_INTO_CGROUP, .exit_signal = SIGCHLD, .cgroup = (uint64_t)c->cg2_fd};
        c->into_v2 = true;
        pid_t pid = syscall(SYS_clone3, &args, sizeof args);
        if (pid >= 0)
            return pid;
    }
    c->into_v2 = false;
    return clone_process(flags);
}

static int send_error(int sock)
{
    struct sbuf b = {0};
    sb_putc(&b, 'E');
    sb_puts(&b, xcr_error);
    return send(sock, b.s, b.len, MSG_NOSIGNAL);
}

/* Not dumpable until the execve, as init._hide_from_the_container: the
 * init runs this host program, whose /proc/PID/exe must stay out of reach
 * of the container's processes (CVE-2019-5736 in runc). */
static void hide_from_the_container(void)
{
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* kernel.loopback_up: "lo" of a new network namespace up, as runc does. */
static int loopback_up(void)
{
    int fd AUTOCLOSE = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return xcr_fail_errno("lo");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, "lo", 3);
    int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
    if (rc == 0 && !(ifr.ifr_flags & IFF_UP)) {
        ifr.ifr_flags |= IFF_UP;
        rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    return rc < 0 ? xcr_fail_errno("lo") : 0;
}

_Noreturn static void start_init(struct creation *c)
{
    close(c->sync[0]);
    hide_from_the_container();
    if ((c->sp.unshare_flags & CLONE_NEWNET) && loopback_up() < 0) {
        send_error(c->sync[1]);
        _exit(1);
    }
    mark_fault("namespaces"); /* (timed where clone returned) */
    if (cgroup_join_self(&c->cg, c->into_v2) < 0) {
        send_error(c->sync[1]);
        _exit(1);
    }
    if (send(c->sync[1], "J", 1, MSG_NOSIGNAL) != 1)
        _exit(1);
    struct init_ctx ic = {
        .id = c->o->id,
        .sp = &c->sp,
        .cg = &c->cg,
        .sync = c->sync[1],
        .dir_fd = c->dir_fd,
        .no_pivot = c->o->no_pivot,
        .no_new_keyring = c->o->no_new_keyring,
        .preserve_fds = c->o->preserve_fds,
        .libos_fd = c->libos_fd,
        .stats_fd = c->stats_fd,
    };
    init_main(&ic);
}

/* The init, in its new namespaces; its pid in c->init_pid.
 *
 * Its parent is what it is under the Python runtime.  There a setup process
 * forks the init and exits at once, so the init's parent is the nearest
 * subreaper: in a foreground run the runtime itself (PR_SET_CHILD_SUBREAPER),
 * after create or run --detach the client's subreaper or pid 1, which
 * outlive the runtime.  It matters to the program: the LibOS keeps a
 * parent-death signal (getppid's cache), and a parent that exits while the
 * program runs interrupts its blocking calls.  So the runtime clones the
 * init itself only in a foreground run; otherwise a setup process does,
 * as it does when namespaces are to be joined. */
static int spawn_init(struct creation *c, bool foreground)
{
    unsigned long flags = c->sp.unshare_flags & ~(unsigned long)(CLONE_NEWUSER | CLONE_NEWCGROUP);
    bool joins = false;
    for (int i = 0; i < c->sp.nns; i++)
        joins |= c->sp.ns[i].path != NULL;
    if (foreground && !joins) {
        pid_t pid = clone_init(c, flags);
        if (pid < 0)
            return xcr_fail_errno("clone");
        if (pid == 0)
            start_init(c);
        mark_timing("namespaces");
        c->init_pid = pid;
        return 0;
    }
    /* a setup process (which joins the namespaces given by path, as
     * init._join) clones the init and exits */
    pid_t setup = fork();
    if (setup < 0)
        return xcr_fail_errno("fork");
    if (setup == 0) {
        hide_from_the_container();
        for (int i = 0; i < c->sp.nns; i++) {
            const struct nsent *n = &c->sp.ns[i];
            if (n->path == NULL)
                continue;
            int fd = open(n->path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                xcr_fail_errno("namespace %s path %s", n->type, n->path);
                send_error(c->sync[1]);
                _exit(1);
            }
            if (setns(fd, n->flag) < 0) {
                xcr_fail_errno("joining %s namespace %s", n->type, n->path);
                send_error(c->sync[1]);
                _exit(1);
            }
            close(fd);
        }
        pid_t pid = clone_init(c, flags);
        if (pid < 0) {
            xcr_fail_errno("clone");
            send_error(c->sync[1]);
            _exit(1);
        }
        if (pid == 0)
            start_init(c);
        mark_timing("namespaces");
        char msg[32];
        int n = snprintf(msg, sizeof msg, "P%d", (int)pid);
        send(c->sync[1], msg, n, MSG_NOSIGNAL);
        _exit(0);
    }
    c->setup_pid = setup;
    char msg[4096];
    ssize_t n;
    for (;;) { /* the init's 'J' may come first */
        while ((n = recv(c->sync[0], msg, sizeof msg - 1, 0)) < 0 && errno == EINTR)
            ;
        if (n == 1 && msg[0] == 'J') {
            c->joined = true;
            continue;
        }
        break;
    }
    waitpid(setup, NULL, 0);
    c->setup_pid = 0;
    if (n <= 0)
        return xcr_fail("the setup process died");
    msg[n] = 0;
    if (msg[0] == 'E')
        return xcr_fail("%s", msg + 1);
    c->init_pid = atoi(msg + 1);
    return 0;
}

/* The init's 'J': it is in the container's cgroup (cgroup_join_self). */
static int wait_joined(struct creation *c)
{
    char msg[4096];
    ssize_t n = 1;
    while (!c->joined) {
        while ((n = recv(c->sync[0], msg, sizeof msg - 1, 0)) < 0 && errno == EINTR)
            ;
        if (n <= 0)
            break;
        msg[n] = 0;
        if (msg[0] == 'E')
            return xcr_fail("%s", msg + 1);
        c->joined = msg[0] == 'J';
        if (!c->joined)
            return xcr_fail("the init said %c", msg[0]);
    }
    if (!c->joined) {
        char *r = py_repr(c->o->id);
        xcr_fail("container %s: the container's init died during setup", r);
        free(r);
        return -1;
    }
    return 0;
}

/* --- create -------------------------------------------------------------------------------------- */

static int write_pid_file(const char *path, pid_t pid)
{
    char *abs = path_abspath(path);
    char *dir = path_dirname(abs);
    char *tmp = xasprintf("%s/.%s.tmp", dir, path_basename(abs));
    char num[32];
    int n = snprintf(num, sizeof num, "%d", (int)pid);
    int rc = 0;
    if (write_file(tmp, num, n, O_CREAT | O_TRUNC, 0666) < 0 || rename(tmp, abs) < 0)
        rc = xcr_fail_errno("--pid-file %s", path);
    free(abs);
    free(dir);
    free(tmp);
    return rc;
}

/* Runtime.create on a plan; -1 (xcr_error set) after undoing what was made. */
static int do_create(struct creation *c, bool foreground)
{
    const struct opts *o = c->o;
    struct spec *sp = &c->sp;
    state_init(&c->st, o->id, sp->bundle, now_rfc3339(), sp->root_path, sp->annotations, cgroup_to_state(&c->cg),
               sp->raw);
    if (store_reserve(o->root, o->id) < 0)
        return xcr_fail_errno("reserving %s", c->dir);
    c->reserved = true;
    if (state_save(o->root, &c->st) < 0)
        goto fail;
    mark("reserved");
    char *fifo = path_join(c->dir, "exec.fifo");
    int rc = mkfifo(fifo, 0622);
    if (rc == 0)
        rc = chmod(fifo, 0622);
    free(fifo);
    if (rc < 0) {
        xcr_fail_errno("exec.fifo");
        goto fail;
    }
    c->dir_fd = open(c->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (c->dir_fd < 0) {
        xcr_fail_errno("%s", c->dir);
        goto fail;
    }
    if (sp->libos && ((c->libos_fd = libos_image_fd()) < 0 || (c->stats_fd = libos_stats_fd(sp->abom)) < 0))
        goto fail;
    /* The state saved above already names the cgroup directories about
     * to be made (Cgroup.to_state before create()), so that a delete after
     * a crash from here on removes them: the Python runtime saves again
     * once they are made, and once more with the init's pid, which the
     * native path leaves to the one save at "created" (an init whose
     * runtime is gone exits by itself, see init.c, and the cgroup holds it
     * meanwhile).  Each save costs here (a file replaced on ext4). */
    c->cgroup_made = true; /* (from here on, undo removes what create() made) */
    if (cgroup_create(&c->cg) < 0 || cgroup_apply(&c->cg, &sp->res) < 0)
        goto fail;
    mark("cgroup");
    if (foreground)
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    const char *v2 = cgroup_v2_dir(&c->cg);
    if (v2 != NULL)
        c->cg2_fd = open(v2, O_PATH | O_DIRECTORY | O_CLOEXEC); /* (-1: joined by cgroup.procs) */
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, c->sync) < 0) {
        xcr_fail_errno("socketpair");
        goto fail;
    }
    if (spawn_init(c, foreground) < 0)
        goto fail;
    close(c->sync[1]);
    c->sync[1] = -1;
    if (o->stats_fd)
        *o->stats_fd = c->stats_fd < 0 ? -1 : fcntl(c->stats_fd, F_DUPFD_CLOEXEC, 0);
    int *fds[] = {&c->dir_fd, &c->libos_fd, &c->stats_fd, &c->cg2_fd};
    for (int i = 0; i < 4; i++)
        if (*fds[i] >= 0) {
            close(*fds[i]);
            *fds[i] = -1;
        }
    if (wait_joined(c) < 0)
        goto fail;
    if (sp->has_oom) {
        char path[64], val[16];
        snprintf(path, sizeof path, "/proc/%d/oom_score_adj", (int)c->init_pid);
        int n = snprintf(val, sizeof val, "%d", sp->oom_score_adj);
        if (write_file(path, val, n, 0, 0) < 0) {
            xcr_fail_errno("process.oomScoreAdj %d", sp->oom_score_adj);
            goto fail;
        }
    }
    long long start = process_start_time(c->init_pid);
    state_set_pid(&c->st, c->init_pid, start < 0 ? 0 : start);
    mark("joined");
    if (send(c->sync[0], "G", 1, MSG_NOSIGNAL) != 1) {
        xcr_fail_errno("the init");
        goto fail;
    }
    char msg[4096];
    ssize_t n;
    while ((n = recv(c->sync[0], msg, sizeof msg - 1, 0)) < 0 && errno == EINTR)
        ;
    if (n <= 0) {
        char *r = py_repr(o->id);
        xcr_fail("container %s: the container's init died during setup", r);
        free(r);
        goto fail;
    }
    msg[n] = 0;
    if (msg[0] != 'R') {
        xcr_fail("%s", msg + 1);
        goto fail;
    }
    close(c->sync[0]);
    c->sync[0] = -1;
    state_set_cgroup(&c->st, cgroup_to_state(&c->cg));
    state_set(&c->st, ST_CREATED);
    if (state_save(o->root, &c->st) < 0)
        goto fail;
    if (o->pid_file && *o->pid_file && write_pid_file(o->pid_file, c->init_pid) < 0)
        goto fail;
    mark("created");
    return 0;
fail:;
    char why[sizeof xcr_error];
    memcpy(why, xcr_error, sizeof why);
    undo_create(c);
    memcpy(xcr_error, why, sizeof why);
    return -1;
}

/* Runtime.delete(force=True) after a run: natively, or by the Python runtime. */
void delete_after(const struct opts *o)
{
    if (delete_force(o->root, o->id) != 1)
        return;
    log_debug("python path: delete after run: %s", xcr_error);
    char *args[] = {"--root", (char *)o->root, "delete", "--force", (char *)o->id, NULL};
    run_python(args);
}

/* Ctrl-C during create: the Python runtime gets KeyboardInterrupt wherever
 * it is, undoes what it made and exits 130.  Here SIGINT waits (blocked)
 * until create is done or undone; then the container is deleted and the
 * runtime exits 130.  (fallback() unblocks it first.) */
void hold_sigint(bool hold)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGINT);
    sigprocmask(hold ? SIG_BLOCK : SIG_UNBLOCK, &s, NULL);
}

bool interrupted(void)
{
    sigset_t s;
    sigpending(&s);
    return sigismember(&s, SIGINT);
}

static int create_or_fall_back(struct creation *c, bool foreground)
{
    hold_sigint(true);
    if (do_create(c, foreground) < 0)
        fallback("create failed natively, undone: %s", xcr_error);
    if (interrupted()) {
        delete_after(c->o);
        return 130;
    }
    return 0; /* SIGINT still held: the caller lets it go */
}

int create_native(const struct opts *o, bool foreground, pid_t *init_pid)
{
    struct creation c;
    if (plan_create(o, &c) < 0)
        return -1;
    hold_sigint(true);
    if (do_create(&c, foreground) < 0)
        return -1;
    *init_pid = c.init_pid;
    return 0;
}

int cmd_create(const struct opts *o)
{
    struct creation c;
    if (plan_create(o, &c) < 0)
        fallback("create: %s", xcr_error);
    log_debug("native path: create %s", o->id);
    int rc = create_or_fall_back(&c, false);
    hold_sigint(false);
    return rc;
}

/* --- run ------------------------------------------------------------------------------------------ */

static pid_t forward_to;

static void forward(int sig)
{
    if (forward_to > 0)
        kill(forward_to, sig);
}

void forward_signals(pid_t pid)
{
    forward_to = pid;
    struct sigaction sa = {0};
    sa.sa_handler = forward;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        sigaction(sigs[i], &sa, NULL);
}

int cmd_run(const struct opts *o)
{
    struct creation c;
    if (plan_create(o, &c) < 0)
        fallback("run: %s", xcr_error);
    log_debug("native path: run %s", o->id);
    int rc;
    if (o->detach) {
        rc = create_or_fall_back(&c, false);
        hold_sigint(false);
        if (rc != 0)
            return rc;
        if (start_container(o->root, o->id, false) < 0) {
            char why[sizeof xcr_error];
            memcpy(why, xcr_error, sizeof why);
            delete_after(o);
            log_error(why);
            return 1;
        }
        return 0;
    }
    if ((rc = create_or_fall_back(&c, true)) != 0)
        return rc;
    forward_signals(c.init_pid);
    hold_sigint(false);
    if (start_container(o->root, o->id, false) < 0) {
        char why[sizeof xcr_error];
        memcpy(why, xcr_error, sizeof why);
        if (!o->keep)
            delete_after(o);
        log_error(why);
        return 1;
    }
    int status, code;
    pid_t r;
    while ((r = waitpid(c.init_pid, &status, 0)) < 0 && errno == EINTR)
        ;
    if (r < 0)
        code = -1;
    else if (WIFSIGNALED(status))
        code = -WTERMSIG(status);
    else
        code = WEXITSTATUS(status);
    mark("exited");
    if (!o->keep)
        delete_after(o);
    return code < 0 ? 128 - code : code;
}
