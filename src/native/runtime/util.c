/* Errors, strings, paths, files, phase marks and the log of the native path. */
#include "xcr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "json.h"

char xcr_error[2048];

int xcr_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(xcr_error, sizeof xcr_error, fmt, ap);
    va_end(ap);
    return -1;
}

int xcr_fail_errno(const char *fmt, ...)
{
    int e = errno;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(xcr_error, sizeof xcr_error, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof xcr_error)
        snprintf(xcr_error + n, sizeof xcr_error - n, ": %s", strerror(e));
    errno = e;
    return -1;
}

/* --- memory and strings --------------------------------------------------- */

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fputs("xc-runtime: out of memory\n", stderr);
        _exit(1);
    }
    return p;
}

void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL) {
        fputs("xc-runtime: out of memory\n", stderr);
        _exit(1);
    }
    return p;
}

char *xstrdup(const char *s)
{
    size_t n = strlen(s);
    char *p = xmalloc(n + 1);
    memcpy(p, s, n + 1);
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = NULL;
    if (vasprintf(&p, fmt, ap) < 0) {
        fputs("xc-runtime: out of memory\n", stderr);
        _exit(1);
    }
    va_end(ap);
    return p;
}

void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->s = xrealloc(b->s, cap);
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

void sb_puts(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

void sb_putc(struct sbuf *b, char c)
{
    sb_add(b, &c, 1);
}

void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        sb_add(b, tmp, n);
        return;
    }
    char *big = xmalloc(n + 1);
    va_start(ap, fmt);
    vsnprintf(big, n + 1, fmt, ap);
    va_end(ap);
    sb_add(b, big, n);
    free(big);
}

/* --- paths, as posixpath ------------------------------------------------------ */

char *path_normpath(const char *p)
{
    if (*p == 0)
        return xstrdup(".");
    int initial = 0;
    if (p[0] == '/')
        initial = (p[1] == '/' && p[2] != '/') ? 2 : 1;
    size_t n = strlen(p);
    /* components as (start, len) */
    const char **cs = xmalloc(sizeof(char *) * (n + 1));
    size_t *cl = xmalloc(sizeof(size_t) * (n + 1));
    size_t k = 0;
    const char *s = p;
    while (*s) {
        while (*s == '/')
            s++;
        if (!*s)
            break;
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        bool dot = len == 1 && s[0] == '.';
        bool dotdot = len == 2 && s[0] == '.' && s[1] == '.';
        if (!dot) {
            if (!dotdot || (!initial && k == 0) || (k > 0 && cl[k - 1] == 2 && cs[k - 1][0] == '.' && cs[k - 1][1] == '.')) {
                cs[k] = s;
                cl[k] = len;
                k++;
            } else if (k > 0) {
                k--;
            }
        }
        s += len;
    }
    struct sbuf b = {0};
    for (int i = 0; i < initial; i++)
        sb_putc(&b, '/');
    for (size_t i = 0; i < k; i++) {
        if (i)
            sb_putc(&b, '/');
        sb_add(&b, cs[i], cl[i]);
    }
    free(cs);
    free(cl);
    if (b.len == 0)
        sb_putc(&b, '.');
    return b.s;
}

char *path_join(const char *a, const char *b)
{
    if (b[0] == '/')
        return xstrdup(b);
    size_t n = strlen(a);
    if (n == 0 || a[n - 1] == '/')
        return xasprintf("%s%s", a, b);
    return xasprintf("%s/%s", a, b);
}

char *path_abspath(const char *p)
{
    if (p[0] == '/')
        return path_normpath(p);
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd) == NULL)
        return NULL;
    char *j = path_join(cwd, p);
    char *r = path_normpath(j);
    free(j);
    return r;
}

char *path_dirname(const char *p)
{
    const char *slash = strrchr(p, '/');
    if (slash == NULL)
        return xstrdup("");
    size_t i = slash - p + 1;
    char *head = xmalloc(i + 1);
    memcpy(head, p, i);
    head[i] = 0;
    bool all_slash = true;
    for (size_t j = 0; j < i; j++)
        if (head[j] != '/')
            all_slash = false;
    if (!all_slash)
        while (i > 0 && head[i - 1] == '/')
            head[--i] = 0;
    return head;
}

const char *path_basename(const char *p)
{
    const char *slash = strrchr(p, '/');
    return slash ? slash + 1 : p;
}

char *py_repr(const char *s)
{
    bool has_sq = strchr(s, '\'') != NULL, has_dq = strchr(s, '"') != NULL;
    char q = (has_sq && !has_dq) ? '"' : '\'';
    struct sbuf b = {0};
    sb_putc(&b, q);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '\\' || *c == q) {
            sb_putc(&b, '\\');
            sb_putc(&b, *c);
        } else if (*c == '\t') {
            sb_puts(&b, "\\t");
        } else if (*c == '\n') {
            sb_puts(&b, "\\n");
        } else if (*c == '\r') {
            sb_puts(&b, "\\r");
        } else if (*c < 0x20 || *c == 0x7f) {
            sb_printf(&b, "\\x%02x", *c);
        } else {
            sb_putc(&b, *c);
        }
    }
    sb_putc(&b, q);
    return b.s;
}

/* --- files ------------------------------------------------------------------ */

char *read_file_at(int dirfd, const char *path, size_t max, size_t *len)
{
    int fd AUTOCLOSE = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap >= max) {
                free(buf);
                errno = EFBIG;
                return NULL;
            }
            cap *= 2;
            buf = xrealloc(buf, cap + 1);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            errno = e;
            return NULL;
        }
        if (r == 0)
            break;
        n += r;
    }
    if (n > max) {
        free(buf);
        errno = EFBIG;
        return NULL;
    }
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

char *read_file(const char *path, size_t max, size_t *len)
{
    return read_file_at(AT_FDCWD, path, max, len);
}

int write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        s += w;
        n -= w;
    }
    return 0;
}

int write_file(const char *path, const char *s, size_t n, int flags, mode_t mode)
{
    int fd AUTOCLOSE = open(path, flags | O_WRONLY | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    if (write(fd, s, n) < 0)
        return -1;
    return 0;
}

bool lexists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

bool isdir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int makedirs(const char *path, mode_t mode)
{
    /* head, tail = split(path); if not tail: head, tail = split(head) */
    char *head = path_dirname(path);
    char *first = NULL;
    const char *tail = path_basename(path);
    if (*tail == 0) {
        first = head;
        head = path_dirname(first);
        tail = path_basename(first);
    }
    if (*head && *tail) {
        struct stat st;
        if (stat(head, &st) < 0) {
            if (makedirs(head, 0777) < 0 && errno != EEXIST) {
                free(head);
                free(first);
                return -1;
            }
            if (strcmp(tail, ".") == 0) {
                free(head);
                free(first);
                return 0;
            }
        }
    }
    free(head);
    free(first);
    if (mkdir(path, mode) < 0) {
        int e = errno;
        if (isdir(path))
            return 0;
        errno = e;
        return -1;
    }
    return 0;
}

long long process_start_time(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    char *data = read_file(path, 1 << 16, NULL);
    if (data == NULL)
        return -1;
    char *rp = strrchr(data, ')');
    long long out = -1;
    if (rp && rp[1] == ' ' && rp[2]) {
        char *p = rp + 2;
        if (*p != 'Z' && *p != 'X') {
            /* rest[19] */
            int field = 0;
            while (*p && field < 19) {
                while (*p && *p != ' ')
                    p++;
                while (*p == ' ')
                    p++;
                field++;
            }
            if (*p)
                out = strtoll(p, NULL, 10);
        }
    }
    free(data);
    return out;
}

char *now_rfc3339(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char buf[64];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%09ldZ", (long)ts.tv_nsec);
    return xstrdup(buf);
}

/* --- named points (XC_TIMING, XC_FAULT), as xcontainers.points ------------------- */

static int point_fd = -1;
static const char *point_fault = "";

static void points_setup(void)
{
    static bool checked = false;
    if (checked)
        return;
    checked = true;
    const char *path = getenv("XC_TIMING");
    if (path && *path)
        point_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    const char *f = getenv("XC_FAULT");
    point_fault = f ? f : "";
}

void mark(const char *point)
{
    mark_timing(point);
    mark_fault(point);
}

void mark_timing(const char *point)
{
    points_setup();
    int fd = point_fd;
    if (fd >= 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        char line[128];
        int n = snprintf(line, sizeof line, "%s %lld\n", point,
                         (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
        if (n > 0 && write(fd, line, n) < 0) {
            /* as points.mark: ignored */
        }
    }
}

void mark_fault(const char *point)
{
    points_setup();
    if (*point_fault && strcmp(point, point_fault) == 0) {
        kill(getpid(), SIGKILL);
        /* still here: the container's init, pid 1 of its pid namespace,
         * which a signal from inside the namespace cannot kill */
        _exit(128 + SIGKILL);
    }
}

/* --- the log ------------------------------------------------------------------ */

struct logcfg xcr_log;
const char *xcr_prog = "xc-runtime";

static void log_write(const char *level, const char *msg)
{
    if (xcr_log.path == NULL)
        return;
    char *now = now_rfc3339();
    struct sbuf b = {0};
    if (xcr_log.json) {
        sb_puts(&b, "{\"level\": ");
        json_escape(&b, level, strlen(level));
        sb_puts(&b, ", \"msg\": ");
        json_escape(&b, msg, strlen(msg));
        sb_puts(&b, ", \"time\": ");
        json_escape(&b, now, strlen(now));
        sb_puts(&b, "}\n");
    } else {
        sb_printf(&b, "time=\"%s\" level=%s msg=\"%s\"\n", now, level, msg);
    }
    int fd AUTOCLOSE = open(xcr_log.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0 && write(fd, b.s, b.len) < 0) {
        /* as log._write: ignored */
    }
    free(b.s);
    free(now);
}

void log_error(const char *msg)
{
    log_write("error", msg);
    fprintf(stderr, "xc-runtime: %s\n", msg);
}

void log_warning(const char *msg)
{
    log_write("warning", msg);
    fprintf(stderr, "xc-runtime: warning: %s\n", msg);
}

void log_debug(const char *fmt, ...)
{
    if (!xcr_log.debug)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_write("debug", msg);
    fprintf(stderr, "%s: debug: %s\n", xcr_prog, msg);
}
