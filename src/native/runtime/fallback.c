/*
 * Handing a command over to the Python runtime.
 *
 * The native path handles only what it does exactly as the Python runtime
 * does; for everything else (other commands, --help, configs with features
 * it lacks, every error it meets before it changed anything) it executes
 * the Python runtime with the same arguments, as the old launcher did:
 *
 *     PYTHON -IS -c "import sys; sys.path.insert(0, SRC); from
 *                    xcontainers.runtime_cli import main; main()" ARGS...
 *
 * PYTHON is the interpreter the package was built with (XC_PYTHON, set by
 * setup.py), SRC the directory above the package, found from this
 * executable's own path (it lives in the package, next to the LibOS image).
 */
#include "xcr.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef XC_PYTHON
#define XC_PYTHON "/usr/bin/python3"
#endif

int xcr_argc;
char **xcr_argv;

const char *package_dir(void)
{
    static char dir[PATH_MAX];
    if (dir[0] == 0) {
        ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
        if (n <= 0) {
            strcpy(dir, ".");
        } else {
            dir[n] = 0;
            char *slash = strrchr(dir, '/');
            if (slash == dir)
                slash[1] = 0;
            else if (slash)
                *slash = 0;
        }
    }
    return dir;
}

/* A Python bytes literal of s, decoded as the file system would. */
static void py_path_literal(struct sbuf *b, const char *s)
{
    sb_puts(b, "b'");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            *c == '/' || *c == '_' || *c == '-' || *c == '.')
            sb_putc(b, *c);
        else
            sb_printf(b, "\\x%02x", *c);
    }
    sb_puts(b, "'.decode('utf-8', 'surrogateescape')");
}

const char *xcr_fallback_module = "xcontainers.runtime_cli";
const char *xcr_fallback_flags = "-IS";

/* PYTHON FLAGS -c CODE (MODULE's main()), then n more arguments from args. */
static char **python_argv(char *const *args, int n, const char *module, const char *flags)
{
    char *src = path_dirname(package_dir());
    struct sbuf code = {0};
    sb_puts(&code, "import sys; sys.path.insert(0, ");
    py_path_literal(&code, src);
    sb_printf(&code, "); from %s import main; main()", module);
    free(src);
    char **argv = xmalloc(sizeof(char *) * (n + 5));
    int k = 0;
    argv[k++] = XC_PYTHON;
    argv[k++] = (char *)flags;
    argv[k++] = "-c";
    argv[k++] = code.s;
    for (int i = 0; i < n; i++)
        argv[k++] = args[i];
    argv[k] = NULL;
    return argv;
}

_Noreturn void fallback(const char *why, ...)
{
    char reason[1024];
    va_list ap;
    va_start(ap, why);
    vsnprintf(reason, sizeof reason, why, ap);
    va_end(ap);
    log_debug("python path: %s", reason);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGINT);
    sigprocmask(SIG_UNBLOCK, &s, NULL); /* (held during a native create) */
    fflush(stdout);
    fflush(stderr);
    execv(XC_PYTHON, python_argv(xcr_argv + 1, xcr_argc - 1, xcr_fallback_module, xcr_fallback_flags));
    fprintf(stderr, "%s: cannot start Python (%s): %s\n", xcr_prog, XC_PYTHON, strerror(errno));
    _exit(1);
}

int run_python(char *const args[])
{
    int n = 0;
    while (args[n])
        n++;
    char **argv = python_argv(args, n, "xcontainers.runtime_cli", "-IS");
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execv(XC_PYTHON, argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return status;
}
