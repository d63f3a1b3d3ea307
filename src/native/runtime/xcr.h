/*
 * xc-runtime's native fast path: the common header.
 *
 * The native path does the common container operations (run, create,
 * start, state, kill, delete on configs it fully supports) with exactly the
 * behaviour and on-disk state of the Python runtime (src/xcontainers/), and
 * hands everything else to it (fallback.c).
 *
 * One error convention, as crun's: a function that can fail returns -1
 * (or NULL) after filling the process's error message with xcr_fail() or
 * xcr_fail_errno(); the caller either adds context and returns -1 too, or
 * decides (report it, or fall back to the Python runtime).  Messages name
 * what was wrong, as the Python runtime's do.
 */
#ifndef XCR_H
#define XCR_H

#define _GNU_SOURCE
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* --- errors ------------------------------------------------------------- */

extern char xcr_error[2048];
int xcr_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The message, then ": strerror(errno)". */
int xcr_fail_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* --- small helpers ------------------------------------------------------ */

void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growing string. */
struct sbuf {
    char *s;
    size_t len, cap;
};
void sb_add(struct sbuf *b, const char *s, size_t n);
void sb_puts(struct sbuf *b, const char *s);
void sb_putc(struct sbuf *b, char c);
void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline void closep(int *fd)
{
    extern int close(int);
    if (*fd >= 0)
        close(*fd);
}
#define AUTOCLOSE __attribute__((cleanup(closep)))

/* Python's os.path.normpath / join / abspath, for identical paths. */
char *path_normpath(const char *p);
char *path_join(const char *a, const char *b);
char *path_abspath(const char *p);
char *path_dirname(const char *p);
const char *path_basename(const char *p);

/* Python's repr() of a str (quotes and escapes), for messages. */
char *py_repr(const char *s);

/* Whole file into a NUL-terminated buffer (at most max bytes); NULL + errno. */
char *read_file(const char *path, size_t max, size_t *len);
char *read_file_at(int dirfd, const char *path, size_t max, size_t *len);
/* One write(2) of s; -1 with errno. */
int write_file(const char *path, const char *s, size_t n, int flags, mode_t mode);
int write_all(int fd, const char *s, size_t n);

/* os.makedirs(path, mode, exist_ok=True): parents 0777, the last one mode
 * (both under the umask); an existing non-directory is an error (EEXIST). */
int makedirs(const char *path, mode_t mode);
bool lexists(const char *path);
bool isdir(const char *path);

/* Field 22 of /proc/PID/stat, or -1 (gone, zombie): state.process_start_time. */
long long process_start_time(pid_t pid);

/* "%Y-%m-%dT%H:%M:%S.NNNNNNNNNZ" of now, as the Python runtime writes it. */
char *now_rfc3339(void);

/* --- named points (XC_TIMING, XC_FAULT), as xcontainers.points ---------- */
/* This process has passed *point* (a key of points.POINTS): a line to the
 * XC_TIMING file; with XC_FAULT=point, SIGKILL to itself (the fault tests). */
void mark(const char *point);
/* Its two halves, where the native path passes a point in two processes:
 * "namespaces", timed where clone() returns, killed in the new init. */
void mark_timing(const char *point);
void mark_fault(const char *point);

/* --- the log (--log, --log-format, --debug), as xcontainers.log --------- */
struct logcfg {
    const char *path;
    bool json;
    bool debug;
};
extern struct logcfg xcr_log;
/* The program the debug lines name ("xc-runtime"; xc's entry point sets "xc"). */
extern const char *xcr_prog;
void log_error(const char *msg);
void log_warning(const char *msg);
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* --- handing over to the Python runtime (fallback.c) --------------------- */
/* exec the Python runtime with the original argv; never returns.  (xc's
 * entry point makes it exec xc's Python command line instead: the module
 * whose main() runs, and the interpreter's flags.) */
_Noreturn void fallback(const char *why, ...) __attribute__((format(printf, 1, 2)));
extern const char *xcr_fallback_module; /* "xcontainers.runtime_cli" */
extern const char *xcr_fallback_flags;  /* "-IS" */
/* Run the Python runtime with these arguments (NULL-terminated) in a child;
 * its wait status. */
int run_python(char *const args[]);
/* Where the package (runtime_cli.py, xc-libos) lives: the directory of
 * this executable. */
const char *package_dir(void);

extern int xcr_argc;
extern char **xcr_argv;

#endif
