/*
 * state, kill, delete, start: container.Runtime's verbs on a saved state.
 *
 * Each one first decides, without changing anything, whether it can do
 * exactly what the Python runtime would; if not (an unknown or malformed
 * state, a container that is not in a state the verb's success path takes,
 * hooks to run, a freezer dance), it falls back and the Python runtime does
 * the command, errors included.
 */
#include "lifecycle.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "ops.h"
#include "state.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int pidfd_open_(pid_t pid)
{
    return syscall(SYS_pidfd_open, pid, 0);
}

/* --- state ------------------------------------------------------------------------ */

int cmd_state(const struct opts *o)
{
    struct state st;
    if (state_load(o->root, o->id, &st) < 0)
        fallback("state: %s", xcr_error);
    struct jval *ver = json_get(st.config, "ociVersion");
    if (ver != NULL && ver->t != J_STR)
        fallback("state: config.ociVersion is not a string");
    log_debug("native path: state %s", o->id);
    const char *live = state_live(&st);
    struct jval *out = json_new(J_OBJ);
    json_set(out, "ociVersion", ver ? ver : json_str("1.0.2"));
    json_set(out, "id", json_str(st.id));
    json_set(out, "pid", json_int_new(strcmp(live, ST_STOPPED) != 0 ? st.pid : 0));
    json_set(out, "status", json_str(live));
    json_set(out, "bundle", json_str(st.bundle));
    json_set(out, "rootfs", json_str(st.rootfs));
    json_set(out, "created", json_str(st.created));
    json_set(out, "owner", json_str(st.owner));
    json_set(out, "annotations", st.annotations);
    struct sbuf b = {0};
    json_dump_pretty(&b, out, 0);
    sb_putc(&b, '\n');
    fwrite(b.s, 1, b.len, stdout);
    return 0;
}

/* --- kill ---------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int sig;
} SIGNALS[] = {
    {"SIGHUP", SIGHUP},       {"SIGINT", SIGINT},       {"SIGQUIT", SIGQUIT},     {"SIGILL", SIGILL},
    {"SIGTRAP", SIGTRAP},     {"SIGABRT", SIGABRT},     {"SIGIOT", SIGIOT},       {"SIGBUS", SIGBUS},
    {"SIGFPE", SIGFPE},       {"SIGKILL", SIGKILL},     {"SIGUSR1", SIGUSR1},     {"SIGSEGV", SIGSEGV},
    {"SIGUSR2", SIGUSR2},     {"SIGPIPE", SIGPIPE},     {"SIGALRM", SIGALRM},     {"SIGTERM", SIGTERM},
    {"SIGSTKFLT", SIGSTKFLT}, {"SIGCHLD", SIGCHLD},     {"SIGCLD", SIGCHLD},      {"SIGCONT", SIGCONT},
    {"SIGSTOP", SIGSTOP},     {"SIGTSTP", SIGTSTP},     {"SIGTTIN", SIGTTIN},     {"SIGTTOU", SIGTTOU},
    {"SIGURG", SIGURG},       {"SIGXCPU", SIGXCPU},     {"SIGXFSZ", SIGXFSZ},     {"SIGVTALRM", SIGVTALRM},
    {"SIGPROF", SIGPROF},     {"SIGWINCH", SIGWINCH},   {"SIGIO", SIGIO},         {"SIGPOLL", SIGPOLL},
    {"SIGPWR", SIGPWR},       {"SIGSYS", SIGSYS},
};

/* runtime_cli.parse_signal for plain ASCII; -1 for anything else. */
int parse_signal(const char *text)
{
    char t[32];
    while (*text == ' ' || *text == '\t' || *text == '\n')
        text++;
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\t' || text[n - 1] == '\n'))
        n--;
    if (n == 0 || n > 20)
        return -1;
    bool digits = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = text[i];
        if (c >= 0x80)
            return -1;
        t[i] = (c >= 'a' && c <= 'z') ? c - 32 : c;
        digits &= c >= '0' && c <= '9';
    }
    t[n] = 0;
    if (digits) {
        int x = atoi(t);
        return (x > 0 && x < 65) ? x : -1;
    }
    char name[40];
    snprintf(name, sizeof name, "%s%s", strncmp(t, "SIG", 3) == 0 ? "" : "SIG", t);
    for (size_t i = 0; i < sizeof SIGNALS / sizeof *SIGNALS; i++)
        if (strcmp(name, SIGNALS[i].name) == 0)
            return SIGNALS[i].sig;
    return -1;
}

int cmd_kill(const struct opts *o)
{
    struct state st;
    if (state_load(o->root, o->id, &st) < 0)
        fallback("kill: %s", xcr_error);
    const char *live = state_live(&st);
    if (strcmp(live, ST_STOPPED) == 0)
        fallback("kill: the container is stopped");
    int sig = parse_signal(o->signal);
    if (sig < 0)
        fallback("kill: signal %s", o->signal);
    if (o->all) {
        struct cgroup cg;
        if (st.cgroup->n == 0 || cgroup_from_state(st.cgroup, &cg) < 0)
            fallback("kill --all: %s", xcr_error);
        log_debug("native path: kill --all %s", o->id);
        if (cgroup_kill_all(&cg, sig) < 0 ||
            (strcmp(live, ST_PAUSED) == 0 && sig == SIGKILL && cgroup_thaw(&cg) < 0)) {
            log_error(xcr_error);
            return 1;
        }
        return 0;
    }
    int fd AUTOCLOSE = pidfd_open_(st.pid);
    if (fd < 0)
        fallback("kill: pidfd_open: %s", strerror(errno));
    if (process_start_time(st.pid) != st.pid_start)
        fallback("kill: the init is gone");
    log_debug("native path: kill %s", o->id);
    if (syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0) < 0)
        fallback("kill: pidfd_send_signal: %s", strerror(errno));
    return 0;
}

/* xc_cli.cmd_stop: SIGTERM to the init, then, if the container has not
 * stopped within timeout seconds, SIGKILL to all of it.  1 (nothing sent,
 * xcr_error says why: the caller falls back), 0, or -1 with xcr_error. */
int stop_container(const char *root, const char *id, double timeout)
{
    struct state st;
    if (state_load(root, id, &st) < 0)
        return 1;
    const char *live = state_live(&st);
    if (strcmp(live, ST_STOPPED) == 0)
        return xcr_fail("the container is stopped"), 1;
    int fd AUTOCLOSE = pidfd_open_(st.pid);
    if (fd < 0 || process_start_time(st.pid) != st.pid_start)
        return xcr_fail("the init is gone"), 1;
    if (syscall(SYS_pidfd_send_signal, fd, SIGTERM, NULL, 0) < 0)
        return xcr_fail_errno("pidfd_send_signal"), 1;
    double deadline = now_s() + timeout;
    while (now_s() < deadline) {
        struct state now;
        if (state_load(root, id, &now) < 0) /* (removed meanwhile: Store.load's NotFound) */
            return xcr_fail("container %s does not exist", py_repr(id));
        if (strcmp(state_live(&now), ST_STOPPED) == 0)
            return 0;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    /* Runtime.kill(SIGKILL, all_processes=True) */
    struct state now;
    struct cgroup cg;
    if (state_load(root, id, &now) < 0)
        return xcr_fail("container %s does not exist", py_repr(id));
    live = state_live(&now);
    if (strcmp(live, ST_STOPPED) == 0)
        return xcr_fail("container %s is not running", py_repr(id));
    if (now.cgroup->n == 0 || cgroup_from_state(now.cgroup, &cg) < 0)
        return -1;
    if (cgroup_kill_all(&cg, SIGKILL) < 0 || (strcmp(live, ST_PAUSED) == 0 && cgroup_thaw(&cg) < 0))
        return -1;
    return 0;
}

/* --- delete ---------------------------------------------------------------------------- */

/* container._wait_pidfd */
static void wait_pidfd(pid_t pid, long long start, double timeout)
{
    int fd AUTOCLOSE = pidfd_open_(pid);
    if (fd < 0)
        return;
    if (process_start_time(pid) != start)
        return;
    struct pollfd p = {fd, POLLIN, 0};
    while (poll(&p, 1, (int)(timeout * 1000)) < 0 && errno == EINTR)
        ;
}

/* What delete must do, decided before anything is changed; false: fall back. */
struct delete_plan {
    struct state st;
    struct cgroup cg;
    const char *live;
};

static bool plan_delete(const char *root, const char *id, bool force, struct delete_plan *p)
{
    if (state_load(root, id, &p->st) < 0)
        return false;
    p->live = state_live(&p->st);
    bool running = strcmp(p->live, ST_RUNNING) == 0, paused = strcmp(p->live, ST_PAUSED) == 0;
    if ((running || paused) && !force)
        return xcr_fail("the container is %s", p->live), false;
    if (p->st.cgroup->n == 0)
        return xcr_fail("no cgroup record"), false;
    if (cgroup_from_state(p->st.cgroup, &p->cg) < 0)
        return false;
    if (state_has_hooks(&p->st))
        return xcr_fail("poststop hooks"), false;
    return true;
}

/* Runtime.delete(force=True) on a plan; -1 with xcr_error if the cgroup
 * could not be removed (the state is then kept, as Python keeps it). */
static int do_delete(const char *root, const char *id, struct delete_plan *p)
{
    struct state *st = &p->st;
    if (strcmp(p->live, ST_STOPPED) != 0)
        kill(st->pid, SIGKILL);
    /* failures are ignored, as Python's */
    if (cgroup_kill_all(&p->cg, SIGKILL) == 0 && strcmp(p->live, ST_PAUSED) == 0)
        cgroup_thaw(&p->cg);
    if (st->pid) {
        wait_pidfd(st->pid, st->pid_start, 10.0);
        waitpid(st->pid, NULL, WNOHANG);
    }
    mark("killed");
    if (cgroup_destroy(&p->cg, 5.0) < 0)
        return -1;
    mark("cgroup-removed");
    store_remove(root, id);
    mark("deleted");
    return 0;
}

int cmd_delete(const struct opts *o)
{
    struct delete_plan p;
    if (!plan_delete(o->root, o->id, o->force, &p))
        fallback("delete: %s", xcr_error);
    log_debug("native path: delete %s", o->id);
    if (do_delete(o->root, o->id, &p) < 0) {
        log_error(xcr_error);
        return 1;
    }
    return 0;
}

int delete_container(const char *root, const char *id, bool force)
{
    struct delete_plan p;
    if (!plan_delete(root, id, force, &p))
        return 1;
    return do_delete(root, id, &p) < 0 ? -1 : 0;
}

int delete_force(const char *root, const char *id)
{
    struct delete_plan p;
    if (!plan_delete(root, id, true, &p))
        return 1; /* the caller falls back */
    if (do_delete(root, id, &p) < 0) {
        log_warning(xcr_error);
        return -1;
    }
    return 0;
}

/* --- start ------------------------------------------------------------------------------ */

int start_container(const char *root, const char *id, bool may_fall_back)
{
    struct state st;
    if (state_load(root, id, &st) < 0) {
        if (may_fall_back)
            fallback("start: %s", xcr_error);
        return xcr_fail("container %s: %s", id, xcr_error);
    }
    const char *live = state_live(&st);
    if (may_fall_back && strcmp(live, ST_CREATED) != 0)
        fallback("start: the container is %s", live);
    if (may_fall_back && state_has_hooks(&st))
        fallback("start: poststart hooks");
    char *repr = py_repr(id);
    if (strcmp(live, ST_CREATED) != 0)
        return xcr_fail("cannot start container %s: it is %s, not created", repr, live);
    char *dir = state_dir(root, id);
    char *fifo = path_join(dir, "exec.fifo");
    int fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (may_fall_back)
            fallback("start: exec.fifo: %s", strerror(errno));
        return errno == ENOENT ? xcr_fail("cannot start container %s: it was already started", repr)
                               : xcr_fail_errno("start: %s", fifo);
    }
    if (may_fall_back)
        log_debug("native path: start %s", id);
    double deadline = now_s() + 10;
    int rc = 0;
    for (;;) {
        char c;
        ssize_t n = read(fd, &c, 1);
        if (n > 0)
            break;
        if (!state_alive(&st)) {
            /* It may have written its byte, run the program and exited
             * between the read above and this check: that is a start. */
            if (read(fd, &c, 1) > 0)
                break;
            rc = xcr_fail("cannot start container %s: its init exited", repr);
            break;
        }
        if (now_s() > deadline) {
            rc = xcr_fail("container %s: init did not answer start", repr);
            break;
        }
        struct pollfd p = {fd, POLLIN, 0};
        poll(&p, 1, 10);
    }
    close(fd);
    unlink(fifo);
    if (rc == 0) {
        mark("released");
        state_set(&st, ST_RUNNING);
        rc = state_save(root, &st);
        if (rc == 0)
            mark("started");
    }
    free(fifo);
    free(dir);
    free(repr);
    return rc;
}

int cmd_start(const struct opts *o)
{
    if (start_container(o->root, o->id, true) < 0) {
        log_error(xcr_error);
        return 1;
    }
    return 0;
}
