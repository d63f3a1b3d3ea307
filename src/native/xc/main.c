/*
 * `xc`: the native entry point (see xc.h).  It reads the command line as
 * xc_cli.build_parser's argparse would, for `run` with the flags it takes,
 * in their exact spellings; anything else goes to Python unchanged.
 */
#include "xc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A flag's value: after '=' (long flags), or the next argument unless it
 * looks like a flag (argparse refuses that, or reads it otherwise). */
static const char *value(int argc, char **argv, int *i, const char *name)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (a[n] == '=') {
        if (name[1] != '-')
            fallback("%s=...", name);
        return a + n + 1;
    }
    if (*i + 1 >= argc || argv[*i + 1][0] == '-')
        fallback("flag %s without a plain value", name);
    return argv[++*i];
}

static bool is(const char *a, const char *name, bool takes_value)
{
    size_t n = strlen(name);
    return strncmp(a, name, n) == 0 && (a[n] == 0 || (takes_value && a[n] == '=' && name[1] == '-'));
}

/* argparse's type=int on what it accepts here: plain digits. */
static long long parse_count(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 18)
        fallback("--pids-limit %s", s);
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            fallback("--pids-limit %s", s);
    return atoll(s);
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    if (v == NULL)
        v = dflt;
    if (*v != '/')
        fallback("%s=%s: not an absolute path", name, v);
    return v;
}

/* xc_cli.STATE_ROOT, BUNDLES and imagestore's STORAGE for root */
static struct where where_from_env(void)
{
    return (struct where){
        .state_root = env_or("XC_ROOT", "/run/xc"),
        .bundles = env_or("XC_BUNDLES", "/var/lib/xcontainers/containers"),
        .storage = env_or("XC_STORAGE", "/var/lib/xcontainers/storage"),
    };
}

/* Exit with code, or 1 if what was written could not be flushed. */
_Noreturn static void finish(int code)
{
    if (fflush(stdout) != 0 || fflush(stderr) != 0)
        code = code ? code : 1;
    _exit(code);
}

int main(int argc, char **argv)
{
    xcr_argc = argc;
    xcr_argv = argv;
    xcr_prog = "xc";
    xcr_fallback_module = "xcontainers.xc_cli";
    xcr_fallback_flags = "-I"; /* (with the site module: the venv's packages, pyroute2) */
    mark("interpreter");
    signal(SIGPIPE, SIG_IGN);
    const char *dbg = getenv("XC_DEBUG");
    xcr_log.debug = dbg && *dbg && strcmp(dbg, "0") != 0;
    if (argc < 2 || (strcmp(argv[1], "run") != 0 && strcmp(argv[1], "rm") != 0 && strcmp(argv[1], "ps") != 0 &&
                     strcmp(argv[1], "stop") != 0))
        fallback("the %s command", argc < 2 ? "(no)" : argv[1]);
    const char *env = getenv("XC_NATIVE");
    if (env && strcmp(env, "0") == 0)
        fallback("XC_NATIVE=0");
    env = getenv("XC_RUNTIME_NATIVE");
    if (env && strcmp(env, "0") == 0)
        fallback("XC_RUNTIME_NATIVE=0");
    if (geteuid() != 0)
        fallback("not root (rootless mode)");

    if (strcmp(argv[1], "ps") == 0) {
        if (argc != 2)
            fallback("ps argument %s", argv[2]);
        struct where w = where_from_env();
        int code = xc_ps(&w);
        finish(code);
    }
    if (strcmp(argv[1], "stop") == 0) { /* xc stop [-t|--time SECONDS] ID */
        double timeout = 10.0;
        const char *id = NULL;
        for (int k = 2; k < argc; k++) {
            const char *s = argv[k];
            if (is(s, "-t", false) || is(s, "--time", true)) {
                const char *v = value(argc, argv, &k, s[1] == 't' ? "-t" : "--time");
                /* argparse's type=float on plain decimals only */
                if (!*v || strspn(v, "0123456789.") != strlen(v) || strchr(v, '.') != strrchr(v, '.') ||
                    strcmp(v, ".") == 0)
                    fallback("stop --time %s", v);
                timeout = strtod(v, NULL);
            } else if (s[0] == '-' || id != NULL || !utf8_valid(s, strlen(s))) {
                fallback("stop argument %s", s);
            } else {
                id = s;
            }
        }
        if (id == NULL)
            fallback("stop without an id");
        struct where w = where_from_env();
        finish(xc_stop(&w, id, timeout));
    }
    if (strcmp(argv[1], "rm") == 0) { /* xc rm [-f|--force] ID */
        bool force = false;
        const char *id = NULL;
        for (int k = 2; k < argc; k++) {
            if (strcmp(argv[k], "-f") == 0 || strcmp(argv[k], "--force") == 0)
                force = true;
            else if (argv[k][0] == '-' || id != NULL || !utf8_valid(argv[k], strlen(argv[k])))
                fallback("rm argument %s", argv[k]);
            else
                id = argv[k];
        }
        if (id == NULL)
            fallback("rm without an id");
        struct where w = where_from_env();
        int code = xc_rm(&w, id, force);
        finish(code);
    }
    struct run_args a = {0};
    a.env = xmalloc(sizeof(char *) * argc);
    a.publish = xmalloc(sizeof(char *) * argc);
    int i = 2;
    for (; i < argc; i++) {
        const char *s = argv[i];
        if (s[0] != '-' || s[1] == 0)
            break;
        if (strcmp(s, "--rm") == 0)
            a.rm = true;
        else if (strcmp(s, "-d") == 0 || strcmp(s, "--detach") == 0)
            a.detach = true;
        else if (strcmp(s, "-i") == 0 || strcmp(s, "--interactive") == 0)
            ; /* (read by nothing: stdin is the container's either way) */
        else if (strcmp(s, "--stats") == 0)
            a.stats = true;
        else if (strcmp(s, "--no-libos") == 0)
            a.no_libos = true;
        else if (strcmp(s, "--no-abom") == 0)
            a.no_abom = true;
        else if (is(s, "--name", true))
            a.name = value(argc, argv, &i, "--name");
        else if (is(s, "--hostname", true))
            a.hostname = value(argc, argv, &i, "--hostname");
        else if (is(s, "-e", false) || is(s, "--env", true))
            a.env[a.nenv++] = value(argc, argv, &i, s[1] == 'e' ? "-e" : "--env");
        else if (is(s, "-m", false) || is(s, "--memory", true))
            a.memory = value(argc, argv, &i, s[1] == 'm' ? "-m" : "--memory");
        else if (is(s, "--pids-limit", true))
            a.pids_limit = parse_count(value(argc, argv, &i, "--pids-limit"));
        else if (is(s, "--entrypoint", true))
            a.entrypoint = value(argc, argv, &i, "--entrypoint");
        else if (is(s, "-p", false) || is(s, "--publish", true))
            a.publish[a.npublish++] = value(argc, argv, &i, s[1] == 'p' ? "-p" : "--publish");
        else if (is(s, "--network", true))
            a.network = value(argc, argv, &i, "--network");
        else
            fallback("run flag %s", s);
    }
    if (i >= argc)
        fallback("no image");
    a.image = argv[i];
    a.cmd = argv + i + 1;
    a.ncmd = argc - i - 1;
    for (int k = 1; k < argc; k++)
        if (!utf8_valid(argv[k], strlen(argv[k])))
            fallback("an argument that is not UTF-8");
    if (a.network == NULL)
        a.network = "bridge"; /* (the default) */
    if (strcmp(a.network, "host") != 0 && strcmp(a.network, "none") != 0 && strcmp(a.network, "bridge") != 0)
        fallback("--network %s", a.network);
    struct where w = where_from_env();
    mark("imports");
    int code = xc_run(&w, &a);
    mark("end");
    finish(code);
}
