/* Freestanding helpers; the compiler may also emit calls to memcpy/memset. */
#include "xc.h"

#include <asm/unistd.h>

/* rep movsb/stosb: fast on every x86-64 of the last decade (ERMS); the
 * direction flag is clear wherever the LibOS runs (the kernel clears it for
 * a signal handler, xc_abom_entry does `cld`). */
XC_HOT void *xc_memcpy(void *d, const void *s, size_t n)
{
    void *r = d;
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
    return r;
}

void *xc_memset(void *d, int c, size_t n)
{
    void *r = d;
    __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return r;
}

void *memcpy(void *d, const void *s, size_t n) __attribute__((alias("xc_memcpy")));
void *memset(void *d, int c, size_t n) __attribute__((alias("xc_memset")));

void *memmove(void *d, const void *s, size_t n)
{
    unsigned char *dp = d;
    const unsigned char *sp = s;
    if (dp < sp) {
        while (n--)
            *dp++ = *sp++;
    } else {
        while (n--)
            dp[n] = sp[n];
    }
    return d;
}

XC_HOT size_t xc_strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

int xc_strcmp(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return (unsigned char)*a - (unsigned char)*b;
}

int xc_strncmp(const char *a, const char *b, size_t n)
{
    for (; n; n--, a++, b++) {
        if (*a != *b)
            return (unsigned char)*a - (unsigned char)*b;
        if (!*a)
            return 0;
    }
    return 0;
}

char *xc_strrchr(const char *s, int c)
{
    const char *last = NULL;
    for (; *s; s++)
        if (*s == (char)c)
            last = s;
    return (char *)last;
}

void xc_puts(int fd, const char *s)
{
    H3(__NR_write, fd, s, xc_strlen(s));
}

void xc_die(const char *what, long err)
{
    struct xc_line l = {0};
    xc_line_str(&l, "xc-libos: ");
    xc_line_str(&l, what);
    if (err) {
        xc_line_str(&l, ": error ");
        xc_line_dec(&l, -err);
    }
    xc_line_flush(&l, 2);
    H1(__NR_exit_group, 127);
    __builtin_unreachable();
}

char *xc_fd_path(char *buf, long fd)
{
    const char *pre = "/proc/self/fd/";
    char *p = buf, digits[20];
    int i = 0;
    while (*pre)
        *p++ = *pre++;
    do {
        digits[i++] = (char)('0' + fd % 10);
        fd /= 10;
    } while (fd);
    while (i)
        *p++ = digits[--i];
    *p = 0;
    return p;
}

/* --- lines for the trace ------------------------------------------------ */

void xc_line_str(struct xc_line *l, const char *s)
{
    while (*s && l->n < (int)sizeof l->b - 1)
        l->b[l->n++] = *s++;
}

void xc_line_dec(struct xc_line *l, long v)
{
    char buf[24];
    int i = sizeof buf;
    unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;
    buf[--i] = 0;
    do {
        buf[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        buf[--i] = '-';
    xc_line_str(l, buf + i);
}

void xc_line_hex(struct xc_line *l, unsigned long v)
{
    char buf[20];
    int i = sizeof buf;
    buf[--i] = 0;
    do {
        buf[--i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    buf[--i] = 'x';
    buf[--i] = '0';
    xc_line_str(l, buf + i);
}

/* Write the line and a newline to *fd* in one write. */
void xc_line_flush(struct xc_line *l, int fd)
{
    l->b[l->n++] = '\n';
    H3(__NR_write, fd, l->b, l->n);
    l->n = 0;
}
