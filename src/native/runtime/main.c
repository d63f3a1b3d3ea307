/*
 * xc-runtime's entry point: runc's global flags and the verb.
 *
 * A command line it reads exactly as xcontainers.runtime_cli would, for a
 * verb it implements (run, create, start, state, kill, delete), is handled
 * here; any other (other verbs, --help, --version, flag spellings it does
 * not know: abbreviations, clusters, Go-style single dashes) goes to the
 * Python runtime unchanged.  So does everything when XC_RUNTIME_NATIVE=0 is
 * set, or when not running as root (rootless mode is the Python runtime's).
 */
#include "ops.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A flag's value: the rest after '=', or the next argument unless it
 * looks like a flag (which the Python parser refuses). */
static const char *value(int argc, char **argv, int *i, const char *name)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (a[n] == '=')
        return a + n + 1;
    if (*i + 1 >= argc || argv[*i + 1][0] == '-' || argv[*i + 1][0] == 0)
        fallback("flag %s without a plain value", name);
    return argv[++*i];
}

static bool is(const char *a, const char *name, bool takes_value)
{
    size_t n = strlen(name);
    return strncmp(a, name, n) == 0 && (a[n] == 0 || (takes_value && a[n] == '='));
}

static int parse_int(const char *s)
{
    if (*s == 0 || strlen(s) > 6)
        fallback("not a small integer: %s", s);
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            fallback("not a small integer: %s", s);
    return atoi(s);
}

int main(int argc, char **argv)
{
    xcr_argc = argc;
    xcr_argv = argv;
    mark("interpreter");
    /* as the Python runtime (the interpreter ignores it): a closed stdout is
     * an error to report, not a silent death; the init resets it */
    signal(SIGPIPE, SIG_IGN);
    struct opts o = {0};
    o.root = getenv("XC_RUNTIME_ROOT");
    if (o.root == NULL)
        o.root = "/run/xc-runtime";
    o.bundle = ".";
    o.signal = "SIGTERM";

    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] != 0; i++) {
        const char *a = argv[i];
        if (is(a, "--root", true))
            o.root = value(argc, argv, &i, "--root");
        else if (is(a, "--log", true))
            xcr_log.path = value(argc, argv, &i, "--log");
        else if (is(a, "--log-format", true)) {
            const char *f = value(argc, argv, &i, "--log-format");
            if (strcmp(f, "json") != 0 && strcmp(f, "text") != 0)
                fallback("--log-format %s", f);
            xcr_log.json = strcmp(f, "json") == 0;
        } else if (is(a, "--debug", false))
            xcr_log.debug = true;
        else if (is(a, "--systemd-cgroup", false))
            ;
        else if (is(a, "--rootless", true)) {
            const char *r = value(argc, argv, &i, "--rootless");
            if (strcmp(r, "auto") != 0 && strcmp(r, "false") != 0)
                fallback("--rootless %s", r);
        } else if (is(a, "--criu", true))
            (void)value(argc, argv, &i, "--criu");
        else
            fallback("global flag %s", a);
    }
    if (xcr_log.path && *xcr_log.path == 0)
        xcr_log.path = NULL;
    if (i >= argc)
        fallback("no command");
    o.verb = argv[i++];
    bool create_like = strcmp(o.verb, "create") == 0 || strcmp(o.verb, "run") == 0;
    bool run = strcmp(o.verb, "run") == 0;
    bool kill_ = strcmp(o.verb, "kill") == 0;
    bool delete_ = strcmp(o.verb, "delete") == 0;
    if (!create_like && !kill_ && !delete_ && strcmp(o.verb, "start") != 0 && strcmp(o.verb, "state") != 0)
        fallback("the %s command", o.verb);
    if (*o.root == 0)
        fallback("an empty --root");

    const char *pos[3];
    int npos = 0;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1] != 0) {
            if (create_like && (is(a, "--bundle", true) || is(a, "-b", false)))
                o.bundle = value(argc, argv, &i, a[1] == 'b' ? "-b" : "--bundle");
            else if (create_like && is(a, "--pid-file", true))
                o.pid_file = value(argc, argv, &i, "--pid-file");
            else if (create_like && is(a, "--preserve-fds", true))
                o.preserve_fds = parse_int(value(argc, argv, &i, "--preserve-fds"));
            else if (create_like && is(a, "--no-pivot", false))
                o.no_pivot = true;
            else if (create_like && is(a, "--no-new-keyring", false))
                o.no_new_keyring = true;
            else if (run && (is(a, "--detach", false) || is(a, "-d", false)))
                o.detach = true;
            else if (run && is(a, "--keep", false))
                o.keep = true;
            else if (kill_ && (is(a, "--all", false) || is(a, "-a", false)))
                o.all = true;
            else if (delete_ && (is(a, "--force", false) || is(a, "-f", false)))
                o.force = true;
            else
                fallback("%s flag %s", o.verb, a);
            continue;
        }
        if (npos == (kill_ ? 2 : 1))
            fallback("unexpected argument %s", a);
        pos[npos++] = a;
    }
    if (npos == 0)
        fallback("missing argument");
    o.id = pos[0];
    if (kill_ && npos == 2)
        o.signal = pos[1];

    const char *env = getenv("XC_RUNTIME_NATIVE");
    if (env && strcmp(env, "0") == 0)
        fallback("XC_RUNTIME_NATIVE=0");
    if (geteuid() != 0)
        fallback("not root (rootless mode)");
    mark("imports");

    int code;
    if (create_like)
        code = run ? cmd_run(&o) : cmd_create(&o);
    else if (strcmp(o.verb, "start") == 0)
        code = cmd_start(&o);
    else if (strcmp(o.verb, "state") == 0)
        code = cmd_state(&o);
    else if (kill_)
        code = cmd_kill(&o);
    else
        code = cmd_delete(&o);
    mark("end");
    if (fflush(stdout) != 0 || fflush(stderr) != 0)
        code = code ? code : 1;
    _exit(code);
}
