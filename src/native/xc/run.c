/*
 * `xc run` of a stored image, as xc_cli.cmd_run does it:
 *
 *   checks (nothing made yet; anything unusual falls back): garbage, the
 *   container id, the bundle's name free, the image and its run template,
 *   the command and environment it gets
 *   BUNDLES/ID: marker, overlay root                           [mounted]
 *   the WorkingDir, the bridge's network (net.c), the DNS
 *   files, config.json                                         [configured]
 *   create (the native runtime's code, in this process), start, wait
 *   (foreground; -d prints the id), then with --rm: delete; the network
 *   removed (by a child of its own); with --rm: unmount [unmounted], remove
 *   the bundle
 *
 * config.json is the image's run template (xcontainers/runtemplate.py: the
 * config xc_cli._bundle and imagerun.apply_config make for the image) with
 * what belongs to this container and these flags put in, in the places
 * Python puts them, then network.attach's changes (namespace, DNS files).
 */
#include "xc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../runtime/lifecycle.h"
#include "../runtime/ops.h"
#include "../runtime/state.h"

static void push(struct jval *a, struct jval *v)
{
    a->v = xrealloc(a->v, sizeof(struct jval *) * (a->n + 1));
    a->v[a->n++] = v;
}

/* process.args: Entrypoint + (the command, else Cmd); --entrypoint P: P (if
 * not "") + the command.  NULL when empty (Python's error). */
static struct jval *process_args(const struct jval *tpl, const struct run_args *a)
{
    struct jval *args = json_new(J_ARR);
    if (a->entrypoint != NULL) {
        if (*a->entrypoint)
            push(args, json_str(a->entrypoint));
        for (int i = 0; i < a->ncmd; i++)
            push(args, json_str(a->cmd[i]));
    } else {
        struct jval *ep = json_get(tpl, "entrypoint"), *cmd = json_get(tpl, "cmd");
        for (size_t i = 0; i < ep->n; i++)
            push(args, ep->v[i]);
        if (a->ncmd > 0)
            for (int i = 0; i < a->ncmd; i++)
                push(args, json_str(a->cmd[i]));
        else
            for (size_t i = 0; i < cmd->n; i++)
                push(args, cmd->v[i]);
    }
    return args->n ? args : NULL;
}

/* imagerun._merge_env(image env + defaults (the template's), -e): a later
 * K=V replaces K where it stands; a bare K takes the caller's value, if any. */
static void merge_env(struct jval *env, const struct run_args *a)
{
    for (int i = 0; i < a->nenv; i++) {
        const char *kv = a->env[i];
        const char *eq = strchr(kv, '=');
        size_t kn = eq ? (size_t)(eq - kv) : strlen(kv);
        char *entry;
        if (eq) {
            entry = xstrdup(kv);
        } else {
            const char *v = getenv(kv);
            if (v == NULL || *kv == 0)
                continue;
            entry = xasprintf("%s=%s", kv, v);
        }
        bool done = false;
        for (size_t j = 0; j < env->n && !done; j++) {
            const char *s = env->v[j]->s;
            const char *e = strchr(s, '=');
            size_t n = e ? (size_t)(e - s) : strlen(s);
            if (n == kn && strncmp(s, kv, kn) == 0) {
                env->v[j] = json_str(entry);
                done = true;
            }
        }
        if (!done)
            push(env, json_str(entry));
        free(entry);
    }
}

/* xc_cli._parse_size on what it reads exactly here: digits (at most 15,
 * so that float() keeps them), an optional k/m/g, any trailing b/B. */
static bool parse_size(const char *text, long long *out)
{
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == 'b' || text[n - 1] == 'B'))
        n--;
    long long unit = 1;
    if (n > 0) {
        char u = text[n - 1] | 0x20;
        if (u == 'k' || u == 'm' || u == 'g') {
            unit = u == 'k' ? 1LL << 10 : u == 'm' ? 1LL << 20 : 1LL << 30;
            n--;
        }
    }
    if (n == 0 || n > 15)
        return false;
    long long x = 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] < '0' || text[i] > '9')
            return false;
        x = x * 10 + (text[i] - '0');
    }
    if (x > (1LL << 52) / unit)
        return false;
    *out = x * unit;
    return true;
}

static struct jval *limit(long long v)
{
    struct jval *o = json_new(J_OBJ);
    json_set(o, "limit", json_int_new(v));
    return o;
}

/* The config for this container: -1 (fall back) for a command Python
 * would refuse. */
static int make_config(const struct image *img, const struct run_args *a, const char *cid, const char *bundle,
                       const char *hostname, const struct bridge_net *br, struct jval **out)
{
    struct jval *spec = json_get(img->tpl, "spec"), *proc = json_get(spec, "process");
    struct jval *lx = json_get(spec, "linux");
    struct jval *args = process_args(img->tpl, a);
    if (args == NULL)
        return xcr_fail("the image has no command");
    json_set(proc, "args", args);
    merge_env(json_get(proc, "env"), a);
    json_set(spec, "hostname", json_str(hostname));
    struct jval *res = json_get(lx, "resources");
    if (a->memory && *a->memory) {
        long long bytes;
        if (!parse_size(a->memory, &bytes))
            return xcr_fail("--memory %s", a->memory);
        json_set(res, "memory", limit(bytes));
    }
    if (a->pids_limit)
        json_set(res, "pids", limit(a->pids_limit));
    json_set(lx, "cgroupsPath", json_str(xasprintf("/xc/%s", cid)));
    struct jval *ann = json_get(spec, "annotations");
    if (a->no_libos)
        json_set(ann, "org.xcontainers.libos", json_str("off"));
    if (a->no_abom)
        json_set(ann, "org.xcontainers.libos.abom", json_str("off"));
    /* network.attach: the DNS files, and the network namespace */
    struct jval *dns = bundle_dns_files(bundle, a->network, hostname, br);
    if (dns == NULL)
        return -1;
    struct jval *nss = json_get(lx, "namespaces"), *keep = json_new(J_ARR);
    if (nss == NULL || nss->t != J_ARR)
        return xcr_fail("the template has no namespaces");
    for (size_t i = 0; i < nss->n; i++) {
        struct jval *t = json_get(nss->v[i], "type");
        if (!(json_is_str(t) && strcmp(t->s, "network") == 0))
            push(keep, nss->v[i]);
    }
    if (strcmp(a->network, "host") != 0) {
        struct jval *ns = json_new(J_OBJ);
        json_set(ns, "type", json_str("network"));
        if (br) /* the namespace made for it; none: a new one the runtime makes */
            json_set(ns, "path", json_str(br->netns));
        push(keep, ns);
    }
    json_set(lx, "namespaces", keep);
    if (strcmp(a->network, "none") == 0) {
        /* links.CONTAINER_SYSCTLS */
        struct jval *sysctl = json_opt(lx, "sysctl");
        if (sysctl == NULL)
            sysctl = json_new(J_OBJ);
        else if (sysctl->t != J_OBJ)
            return xcr_fail("the template's sysctl");
        json_set(sysctl, "net.ipv4.ping_group_range", json_str("0 2147483647"));
        json_set(sysctl, "net.ipv4.ip_unprivileged_port_start", json_str("0"));
        json_set(lx, "sysctl", sysctl);
    }
    struct jval *mounts = json_get(spec, "mounts"), *ms = json_new(J_ARR);
    if (mounts == NULL || mounts->t != J_ARR)
        return xcr_fail("the template has no mounts");
    for (size_t i = 0; i < mounts->n; i++) {
        struct jval *d = json_get(mounts->v[i], "destination");
        bool replaced = false;
        for (size_t j = 0; j < dns->n; j++)
            replaced |= json_is_str(d) && strcmp(d->s, json_get(dns->v[j], "destination")->s) == 0;
        if (!replaced)
            push(ms, mounts->v[i]);
    }
    for (size_t j = 0; j < dns->n; j++)
        push(ms, dns->v[j]);
    json_set(spec, "mounts", ms);
    *out = spec;
    return 0;
}

/* The bridge network made for this container, if any: removed with it. */
static const char *net_root, *net_cid;

/* network.detach, as _release_network reports it (a warning); once the
 * container has exited, in a child of its own (net_detach_later). */
static void release_network(bool later)
{
    if (net_cid && (later ? net_detach_later : net_detach)(net_root, net_cid) < 0)
        fprintf(stderr, "xc: warning: removing the network of %s: %s\n", net_cid, xcr_error);
    net_cid = NULL;
}

/* Undo what was made (the network, the bundle; a container is undone by
 * the runtime's own code) and hand the command to Python. */
_Noreturn static void undo_and_fall_back(const char *bundle, const char *why)
{
    char msg[sizeof xcr_error];
    snprintf(msg, sizeof msg, "%s", why);
    if (net_cid && net_detach(net_root, net_cid) < 0) {
        fprintf(stderr, "xc: %s\n", xcr_error);
        _exit(1);
    }
    net_cid = NULL;
    if (bundle_remove(bundle) < 0) {
        fprintf(stderr, "xc: %s\n", xcr_error);
        _exit(1);
    }
    fallback("%s (undone)", msg);
}

/* The bundle after the container is gone (--rm, or a failed -d): 0, or
 * the error (written) as Python's `xc` reports it. */
static int remove_after(const char *bundle)
{
    if (bundle_remove(bundle) < 0) {
        fprintf(stderr, "xc: %s\n", xcr_error);
        return -1;
    }
    return 0;
}

int xc_run(const struct where *w, struct run_args *a)
{
    if (nothing_to_collect(w) < 0)
        fallback("garbage to collect: %s", xcr_error);
    char idbuf[13];
    const char *cid = a->name;
    if (cid == NULL) {
        unsigned char r[6];
        if (getrandom(r, sizeof r, 0) != sizeof r)
            fallback("getrandom: %s", strerror(errno));
        for (int i = 0; i < 6; i++)
            snprintf(idbuf + 2 * i, 3, "%02x", r[i]);
        cid = idbuf;
    }
    if (!id_valid(cid))
        fallback("container id %s", cid);
    char *bundle = path_join(w->bundles, cid);
    if (lexists(bundle))
        fallback("the bundle %s exists", bundle);
    if (strpbrk(bundle, ",:"))
        fallback("a bundle path with ',' or ':'");
    struct image img;
    if (image_find(w, a->image, &img) < 0)
        fallback("%s", xcr_error);
    char host12[13];
    snprintf(host12, sizeof host12, "%s", cid);
    const char *hostname = a->hostname && *a->hostname ? a->hostname : host12;
    struct bridge_net bridge, *br = NULL;
    if (a->npublish && strcmp(a->network, "bridge") != 0)
        fallback("-p with --network %s", a->network);
    if (strcmp(a->network, "bridge") == 0) {
        if (net_ready(&bridge, a->publish, a->npublish) < 0)
            fallback("--network bridge: %s", xcr_error);
        br = &bridge;
    }
    log_debug("native path: run %s", cid);

    if (makedirs(w->bundles, 0777) < 0)
        fallback("%s: %s", w->bundles, strerror(errno));
    if (mkdir(bundle, 0777) < 0)
        fallback("%s: %s", bundle, strerror(errno));
    if (bundle_mount(w, bundle, &img, a->rm) < 0)
        undo_and_fall_back(bundle, xcr_error);
    mark("mounted");
    struct jval *spec = NULL;
    if (bundle_mkdirs(bundle, &img) < 0)
        undo_and_fall_back(bundle, xcr_error);
    if (br) {
        if (net_attach(w->state_root, cid, br) < 0)
            undo_and_fall_back(bundle, xcr_error);
        net_root = w->state_root;
        net_cid = cid;
    }
    if (make_config(&img, a, cid, bundle, hostname, br, &spec) < 0)
        undo_and_fall_back(bundle, xcr_error);
    struct jval *warnings = json_get(img.tpl, "warnings");
    for (size_t i = 0; i < warnings->n; i++)
        fprintf(stderr, "xc: %s\n", warnings->v[i]->s);
    struct sbuf b = {0};
    json_dump(&b, spec);
    char *cfg = path_join(bundle, "config.json");
    if (write_file(cfg, b.s, b.len, O_CREAT | O_TRUNC, 0666) < 0)
        undo_and_fall_back(bundle, strerror(errno));
    mark("configured");

    struct opts o = {0};
    o.root = w->state_root;
    o.id = cid;
    o.bundle = bundle;
    o.detach = a->detach;
    o.keep = !a->rm;
    o.signal = "SIGTERM";
    pid_t init = 0;
    int stats_fd = -1;
    if (a->stats)
        o.stats_fd = &stats_fd;
    if (create_native(&o, !a->detach, &init) < 0)
        undo_and_fall_back(bundle, xcr_error);
    if (interrupted()) {
        delete_after(&o);
        release_network(false);
        if (a->rm || a->detach)
            remove_after(bundle);
        return 130;
    }
    if (!a->detach)
        forward_signals(init);
    hold_sigint(false);
    if (start_container(o.root, cid, false) < 0) {
        char why[sizeof xcr_error];
        memcpy(why, xcr_error, sizeof why);
        if (!o.keep || a->detach)
            delete_after(&o);
        release_network(false);
        if (a->rm || a->detach)
            remove_after(bundle);
        fprintf(stderr, "xc: %s\n", why);
        return 1;
    }
    if (a->detach) {
        printf("%s\n", cid);
        return 0;
    }
    int status, code;
    pid_t r;
    while ((r = waitpid(init, &status, 0)) < 0 && errno == EINTR)
        ;
    if (r < 0)
        code = -1;
    else if (WIFSIGNALED(status))
        code = -WTERMSIG(status);
    else
        code = WEXITSTATUS(status);
    mark("exited");
    if (!o.keep)
        delete_after(&o);
    if (stats_fd >= 0 && print_stats(stats_fd) < 0) /* (as xc_cli.cmd_run: a warning) */
        fprintf(stderr, "xc: warning: %s\n", xcr_error);
    release_network(true); /* (the container has stopped: its network goes, as Python's finally does) */
    if (a->rm && bundle_remove_later(w->bundles, bundle, cid) < 0) {
        fprintf(stderr, "xc: %s\n", xcr_error);
        return 1;
    }
    return code < 0 ? 128 - code : code;
}

/* A verb's outcome (1: not handled, nothing done; 0; -1 with xcr_error):
 * Python takes the first, the others are this path's: 0 or 1 (written). */
static int taken(const char *verb, const char *cid, int rc)
{
    if (rc == 1)
        fallback("%s: %s", verb, xcr_error);
    log_debug("native path: %s %s", verb, cid);
    if (rc < 0) {
        fprintf(stderr, "xc: %s\n", xcr_error);
        return 1;
    }
    return 0;
}

/* `xc rm [-f] ID` as xc_cli.cmd_rm does it for a container that exists
 * and may go (stopped or created, or -f): Runtime.delete, the network,
 * the bundle.  Anything else (no such container: its bundle may be stale;
 * running without -f; hooks) goes to Python, which words the error. */
int xc_rm(const struct where *w, const char *cid, bool force)
{
    if (nothing_to_collect(w) < 0)
        fallback("garbage to collect: %s", xcr_error);
    if (!id_valid(cid))
        fallback("container id %s", cid);
    char *bundle = path_join(w->bundles, cid);
    if (strpbrk(bundle, ",:"))
        fallback("a bundle path with ',' or ':'");
    if (taken("rm", cid, delete_container(w->state_root, cid, force)) != 0)
        return 1;
    if (net_detach(w->state_root, cid) < 0) /* (_release_network: a warning) */
        fprintf(stderr, "xc: warning: removing the network of %s: %s\n", cid, xcr_error);
    return remove_after(bundle) < 0 ? 1 : 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* `xc ps` as xc_cli.cmd_ps prints it: every container of the state root,
 * by id, with its pid (0 once stopped), live status and creation time.
 * A state this code does not read goes to Python (which skips what it
 * cannot load), as does anything to collect first. */
int xc_ps(const struct where *w)
{
    if (nothing_to_collect(w) < 0)
        fallback("garbage to collect: %s", xcr_error);
    char **ids = NULL;
    size_t n = 0;
    DIR *d = opendir(w->state_root);
    if (d == NULL && errno != ENOENT)
        fallback("ps: %s: %s", w->state_root, strerror(errno));
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        char *dir = state_dir(w->state_root, e->d_name);
        if (id_valid(e->d_name) && isdir(dir)) {
            ids = xrealloc(ids, sizeof *ids * (n + 1));
            ids[n++] = xstrdup(e->d_name);
        }
        free(dir);
    }
    if (d)
        closedir(d);
    qsort(ids, n, sizeof *ids, by_name);
    struct state *st = xmalloc(sizeof *st * (n + 1));
    for (size_t i = 0; i < n; i++)
        if (state_load(w->state_root, ids[i], &st[i]) < 0)
            fallback("ps: %s: %s", ids[i], xcr_error);
    log_debug("native path: ps");
    printf("%-14s%-8s%-10s%s\n", "ID", "PID", "STATUS", "CREATED");
    for (size_t i = 0; i < n; i++) {
        const char *live = state_live(&st[i]);
        printf("%-14s%-8lld%-10s%s\n", st[i].id, strcmp(live, ST_STOPPED) != 0 ? st[i].pid : 0, live,
               st[i].created);
    }
    return 0;
}

/* `xc stop [-t SECONDS] ID` as xc_cli.cmd_stop: SIGTERM, a wait for the
 * container to stop, then SIGKILL to all of it.  A container that is not
 * running (Python's refusal), or one this code does not read, goes to Python. */
int xc_stop(const struct where *w, const char *cid, double timeout)
{
    if (!id_valid(cid))
        fallback("container id %s", cid);
    return taken("stop", cid, stop_container(w->state_root, cid, timeout));
}
