/*
 * `xc run --stats`: what the X-LibOS did, read from the container's
 * statistics segment when it has exited and written as libos.read_stats
 * and libos.format_stats write it.  The segment is the container's to
 * write: a wrong magic is reported, never trusted.
 */
#include "xc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abi.h"

/* libos.table(): name and how of each number the LibOS serves */
static const struct {
    int nr;
    const char *name, *how;
} rows[] = {
#define XC_SYSCALL(nr, name, how, note) {nr, #name, #how},
#include "syscalls.def"
#undef XC_SYSCALL
};

/* libos.ABOM_VERDICT_NAMES, by value */
static const char *const verdicts[] = {"mov32",        "mov64",        "jump",   "apart",      "special",
                                       "not-file",     "no-function",  "undecodable", "not-boundary",
                                       "imm-mismatch", "no-gap",       "cache-line",  "no-room", "protect"};

static const char *row_of(int nr, const char **how)
{
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
        if (rows[i].nr == nr) {
            *how = rows[i].how;
            return rows[i].name;
        }
    *how = "";
    return NULL;
}

struct count {
    int nr;
    unsigned long long n;
};

static int by_count(const void *a, const void *b)
{
    const struct count *x = a, *y = b;
    if (x->n != y->n)
        return x->n < y->n ? 1 : -1;
    return x->nr - y->nr; /* (Python's sort is stable over numbers in order) */
}

int print_stats(int fd)
{
    size_t head = offsetof(struct xc_stats, calls) + 2 * sizeof(uint64_t) * XC_NR_MAX;
    struct xc_stats *st = xmalloc(head);
    ssize_t n = pread(fd, st, head, 0);
    if (n != (ssize_t)head)
        return xcr_fail(n < 0 ? "X-LibOS statistics: %m" : "X-LibOS statistics: the segment is cut short");
    if (st->magic != XC_STATS_MAGIC)
        return xcr_fail("X-LibOS statistics: not a statistics segment (the container overwrote it?)");
    static const char *const how[] = {"forwarded", "translated", "special", "emulated", "refused"};
    unsigned long long trapped = 0, patched = 0;
    for (int i = 0; i < 5; i++)
        trapped += st->by_how[i];
    struct count *calls = xmalloc(sizeof *calls * XC_NR_MAX);
    int nc = 0;
    for (int nr = 0; nr < XC_NR_MAX; nr++) {
        patched += st->patched[nr];
        if (st->calls[nr] + st->patched[nr])
            calls[nc++] = (struct count){nr, st->calls[nr] + st->patched[nr]};
    }
    qsort(calls, (size_t)nc, sizeof *calls, by_count);
    struct sbuf b = {0};
    sb_printf(&b, "X-LibOS: %llu system calls served in the LibOS by %llu program start(s) (%llu via execve)\n",
              trapped + patched, (unsigned long long)st->processes, (unsigned long long)st->execs);
    sb_puts(&b, "  by path: ");
    for (int i = 0; i < 5; i++)
        sb_printf(&b, "%s %llu, ", how[i], (unsigned long long)st->by_how[i]);
    sb_printf(&b, "patched %llu (ABOM: %llu sites patched, %llu left alone)\n", patched,
              (unsigned long long)st->sites_patched, (unsigned long long)st->sites_refused);
    sb_puts(&b, "  ABOM sites: ");
    bool any = false;
    for (size_t v = 0; v < sizeof verdicts / sizeof *verdicts; v++)
        if (st->sites_by[v]) {
            sb_printf(&b, "%s%s %llu", any ? ", " : "", verdicts[v], (unsigned long long)st->sites_by[v]);
            any = true;
        }
    sb_puts(&b, any ? "\n" : "none\n");
    sb_puts(&b, "  most frequent: ");
    for (int i = 0; i < nc && i < 8; i++) {
        const char *h, *name = row_of(calls[i].nr, &h);
        if (name)
            sb_printf(&b, "%s%s %llu", i ? ", " : "", name, calls[i].n);
        else
            sb_printf(&b, "%ssyscall_%d %llu", i ? ", " : "", calls[i].nr, calls[i].n);
    }
    sb_puts(&b, "\n");
    fflush(stdout);
    write_all(2, b.s, b.len);
    free(b.s);
    free(calls);
    free(st);
    return 0;
}
