/*
 * ABOM's site cache: what one process of a container learnt about a
 * program's system call sites, for the next process that runs that file.
 *
 * A freshly executed program starts with every site unpatched: static and
 * dynamic glibc make about 14 calls once each at start (brk, arch_prctl,
 * set_tid_address, set_robust_list, rseq, prlimit64, readlink, getrandom,
 * mprotect, exit_group ...), each a trap (~4-5 us here), and one process
 * never traps at one of them often enough for ABOM to rewrite it.  The same
 * file is executed again and again in a container (a shell's commands, a
 * server's workers), so the container's processes share what ABOM decided:
 *
 *   1. The loader identifies each ELF file it maps (the program, its
 *      interpreter) by a 64-bit key of its device, inode, size, mtime and
 *      ctime (one statx), and remembers where it put the file's executable
 *      segments (xc_site_cache_lookup, xc_site_cache_done).
 *   2. A process's first trap at a site of such a file counts the site in
 *      the shared table (the statistics segment, `site_cache`): (key, the
 *      site's ELF address, its number).  When a site has trapped in
 *      SITE_CACHE_LEARN processes, the one that sees it last asks ABOM for
 *      its full decision (the same look at the function, its instruction
 *      boundaries and the number as for a trap) and records a mov32 or
 *      mov64 verdict, a jump one with the padding slot ABOM took (within a
 *      jmp rel8 of the syscall), an apart one with how far before the
 *      syscall its mov is, or a refusal (xc_site_cache_trap, _learnt).
 *   3. The loader of a later process that maps the same file maps its code
 *      writable, rewrites each recorded site whose bytes are still exactly
 *      `b8 imm32 0f 05` (or `48 c7 c0 imm32 0f 05`) with imm32 the recorded
 *      number, or, for a jump, `0f 05` with five bytes of padding at the
 *      slot, or, for an apart site, `b8 imm32` followed only by instructions
 *      xc_insn_movable accepts up to the `0f 05` (xc_abom_apart_ok),
 *      through a trampoline of its own as ABOM would, then makes the
 *      code read-only again (one mprotect, the mapping stays whole): the
 *      site never traps.  The written pages are private copies, as ABOM's
 *      rewrites are; they give the whole mapping an anon_vma, which would
 *      make every fork copy the page-table entries of all of the code, so
 *      before the process's first fork the chunks without one are mapped
 *      again, clean (abom.c, clean_text; a process that never forks
 *      never pays for it).  The trampolines go after the file's bytes in
 *      the code's last page when no other segment shares that page (no
 *      mapping of their own), else where ABOM puts its own.
 *
 * The table is data the LibOS verifies, never code: it is in memory every
 * process of the container can write, so an entry only names a place and
 * a number; the loader rewrites nothing but the two exact mov+syscall
 * forms with that number and, for a jump, a syscall and five bytes of
 * padding (nops, int3) within a jmp rel8 of it, inside an executable
 * segment of the file with that identity, and the trampoline it jumps to is
 * the LibOS's own (`mov $nr,%eax; call xc_abom_entry`, back after the
 * syscall).  A changed file has another key (its mtime, ctime, size or
 * inode), so a stale entry is never used; if the bytes differ anyway the
 * site is left to trap.
 * What an entry forged by another process of the same container could
 * still do: have such a 7-byte pattern rewritten where it is not an
 * instruction boundary (ABOM's own check, which needs the function's
 * unwind entry, is too costly to redo at every load).  The processes of one
 * container share one LibOS and trust each other (docs/security.md); other
 * containers have segments of their own.
 */
#include "xc.h"
#include "sitecache.h"

#include <asm/unistd.h>

#include <stddef.h>

_Static_assert(offsetof(struct xc_stats, sites_from_cache) == 9608,
               "struct xc_stats: STATS_SITES_FROM_CACHE_OFFSET (xcontainers/libos_abi.py)");
_Static_assert(offsetof(struct xc_stats, site_cache) >= 2 * 4096 && offsetof(struct xc_stats, txt) + 32 * 4 < 3 * 4096,
               "struct xc_stats: the site cache and the first entries of the running programs' table "
               "share the segment's third page");

/* A site is learnt once it has trapped in this many processes. */
#define SITE_CACHE_LEARN 2

/* Entry word 1: the site's ELF address (of its `0f 05`), for a jump
 * rewrite where its padding slot is (rel8 from the end of the syscall), its
 * number, how many processes trapped there, what is known. */
#define E_VADDR ((1UL << 39) - 1)
#define E_SLOT(w) ((long)(int8_t)(((w) >> 39) & 0xff))
#define E_NR(w) ((long)(((w) >> 47) & 511))
#define E_COUNT(w) ((unsigned)(((w) >> 56) & 15))
#define E_STATE(w) ((unsigned)((w) >> 60))
#define E_MAKE(vaddr, nr, count, state) \
    ((uint64_t)(vaddr) | (uint64_t)(nr) << 47 | (uint64_t)(count) << 56 | (uint64_t)(state) << 60)
enum { COUNTING, LEARNING, KNOWN_MOV32, KNOWN_MOV64, REFUSED, KNOWN_JUMP, KNOWN_APART };
#define KNOWN(w)                                                                                       \
    (E_STATE(w) == KNOWN_MOV32 || E_STATE(w) == KNOWN_MOV64 || E_STATE(w) == KNOWN_JUMP ||            \
     E_STATE(w) == KNOWN_APART)
/* An APART site's mov is this many bytes before its syscall (the slot's bits). */
#define E_APART(w) ((unsigned long)(((w) >> 39) & 0xff))

/* The files the loader mapped in this process, with their code (sealed
 * with the LibOS's state once the program starts). */
#define MAX_IMAGES 4
static struct {
    uint64_t key;
    unsigned long lo, hi, bias, ino;
} images[MAX_IMAGES];
static int n_images;

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ULL;
    return h ^ (h >> 29);
}

static int cache_on(void)
{
    return xc_abom_on && xc_stats;
}

void xc_site_cache_lookup(long fd, const struct xc_statx *given, struct xc_site_load *sl)
{
    sl->key = 0;
    sl->n = 0;
    sl->n_open = 0;
    if (!cache_on() || n_images == MAX_IMAGES)
        return;
    /* statx (newfstatat is not on the interface): dev, ino, size, mtime, ctime */
    struct xc_statx own;
    const struct xc_statx *sp = given;
    if (!sp || (sp->mask & XC_STATX_SITE_CACHE) != XC_STATX_SITE_CACHE) {
        if (H5(__NR_statx, fd, "", 0x1000 /* AT_EMPTY_PATH */, XC_STATX_SITE_CACHE, &own) < 0)
            return;
        sp = &own;
    }
    const struct xc_statx st = *sp;
    const uint64_t words[] = {(uint64_t)st.dev_major << 32 | st.dev_minor, st.ino, st.size,
                              (uint64_t)st.mtime.sec, st.mtime.nsec, (uint64_t)st.ctime.sec, st.ctime.nsec};
    uint64_t k = 0;
    for (unsigned i = 0; i < sizeof words / sizeof words[0]; i++)
        k = mix(k, words[i]);
    sl->key = k ? k : 1;
    sl->ino = st.ino;
    for (int i = 0; i < XC_SITE_CACHE && sl->n < XC_SITE_LOAD_MAX; i++) {
        uint64_t *e = xc_stats->site_cache[i];
        if (__atomic_load_n(&e[0], __ATOMIC_ACQUIRE) != sl->key)
            continue;
        uint64_t w = __atomic_load_n(&e[1], __ATOMIC_RELAXED);
        if (KNOWN(w))
            sl->sites[sl->n++] = w;
    }
}

int xc_site_cache_wants(const struct xc_site_load *sl, unsigned long vaddr, unsigned long filesz, int prot)
{
    if (!(prot & 4) || sl->n_open == XC_SITE_LOAD_SEGS)
        return 0;
    for (int i = 0; i < sl->n; i++) {
        unsigned long a = sl->sites[i] & E_VADDR;
        if (a >= vaddr + 7 && a + 2 <= vaddr + filesz)
            return 1;
    }
    return 0;
}

void xc_site_cache_opened(struct xc_site_load *sl, unsigned long start, unsigned long end, unsigned long lo,
                          unsigned long hi, int prot, int tail_free)
{
    sl->open[sl->n_open].room = tail_free ? (hi + 15) & ~15UL : 0;
    sl->open[sl->n_open].start = start;
    sl->open[sl->n_open].end = end;
    sl->open[sl->n_open].lo = lo;
    sl->open[sl->n_open].hi = hi;
    sl->open[sl->n_open].prot = prot;
    sl->n_open++;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Entry *i* of the load's sites: where its rewrite writes (*at*, the mov or
 * a jump's padding slot, to the end of the syscall or of the slot), its
 * syscall and number, and the segment holding it; -1 if none the loader
 * said it may rewrite does. */
static int site_at(const struct xc_site_load *sl, int i, unsigned long base, unsigned long *at,
                   unsigned long *end, unsigned long *sys, long *nr)
{
    uint64_t w = sl->sites[i];
    *sys = base + (w & E_VADDR);
    *nr = E_NR(w);
    if (E_STATE(w) == KNOWN_JUMP) {
        unsigned long slot = *sys + 2 + (unsigned long)E_SLOT(w);
        *at = slot < *sys ? slot : *sys;
        *end = slot + 5 > *sys + 2 ? slot + 5 : *sys + 2;
    } else {
        *at = *sys - (E_STATE(w) == KNOWN_APART ? E_APART(w) : E_STATE(w) == KNOWN_MOV32 ? 5 : 7);
        *end = *sys + 2;
    }
    int seg = -1;
    for (int j = 0; j < sl->n_open; j++)
        if (*at >= sl->open[j].lo && *end <= sl->open[j].hi)
            seg = j;
    return XC_ABOM_UNPATCHABLE(*nr) ? -1 : seg;
}

/* Padding bytes (xc_insn_is_padding's instructions: nops, int3, their
 * prefixes and operand bytes), where a jump rewrite's slot may start
 * inside one (ABOM hands out a padding run five bytes at a time). */
static int padding_bytes(const unsigned char *p, int n)
{
    for (int i = 0; i < n; i++)
        if (p[i] != 0x90 && p[i] != 0xcc && p[i] != 0x66 && p[i] != 0x2e && p[i] != 0x0f && p[i] != 0x1f &&
            p[i] != 0x00 && p[i] != 0x40 && p[i] != 0x44 && p[i] != 0x80 && p[i] != 0x84)
            return 0;
    return 1;
}

void xc_site_cache_done(struct xc_site_load *sl, unsigned long base, unsigned long code_lo, unsigned long code_hi)
{
    if (!sl->key)
        return;
    int dirty = 0;
    if (code_hi > code_lo && n_images < MAX_IMAGES) {
        int im = n_images++;
        images[im].key = sl->key;
        images[im].lo = code_lo;
        images[im].hi = code_hi;
        images[im].bias = base;
        images[im].ino = sl->ino;
    }
    unsigned long at, end, sys;
    long nr;
    for (int i = 0; i < sl->n; i++) {
        int j = site_at(sl, i, base, &at, &end, &sys, &nr);
        const unsigned char *s = (const unsigned char *)sys;
        if (j < 0 || s[0] != 0x0f || s[1] != 0x05)
            continue;
        int r = -1;
        if (E_STATE(sl->sites[i]) == KNOWN_JUMP) {
            /* The syscall, and five bytes of padding at the slot (its own
             * bytes, not the syscall's; not another site's slot: the jump
             * written there is no padding). */
            unsigned long slot = sys + 2 + (unsigned long)E_SLOT(sl->sites[i]);
            if ((slot + 5 <= sys || slot >= sys + 2) && padding_bytes((const unsigned char *)slot, 5))
                r = xc_abom_patch_loaded_jump(sys, slot, nr, &sl->open[j].room, sl->open[j].end);
        } else if (E_STATE(sl->sites[i]) == KNOWN_APART) {
            /* The mov with this number, then only instructions the
             * trampoline may run in their place, up to the syscall. */
            if (xc_abom_apart_ok(at, sys, nr))
                r = xc_abom_patch_loaded(at, sys, nr, 1, &sl->open[j].room, sl->open[j].end);
        } else {
            /* The bytes are still exactly the mov and the syscall, with this number. */
            const unsigned char *m = (const unsigned char *)at;
            if (le32(s - 4) == (uint32_t)nr &&
                (sys - at == 5 ? m[0] == 0xb8 : (m[0] == 0x48 && m[1] == 0xc7 && m[2] == 0xc0)))
                r = xc_abom_patch_loaded(at, sys, nr, 0, &sl->open[j].room, sl->open[j].end);
        }
        if (r == 0) {
            __atomic_fetch_add(&xc_stats->sites_from_cache, 1, __ATOMIC_RELAXED);
            dirty = 1;
        }
    }
    if (dirty)
        xc_abom_dirty(code_lo); /* cleaned before the process's first fork (abom.c, clean_text) */
    for (int j = 0; j < sl->n_open; j++)
        H3(__NR_mprotect, sl->open[j].start, sl->open[j].end - sl->open[j].start, sl->open[j].prot);
}

/* The shared entry of the site at *sys* (of this process's image *im*), or 0;
 * with *add*, made if there is none (counted once). */
static uint64_t *entry(int im, unsigned long sys, long nr, int add)
{
    unsigned long vaddr = sys - images[im].bias;
    uint64_t key = images[im].key;
    unsigned i = (unsigned)(mix(key, vaddr) % XC_SITE_CACHE);
    for (int n = 0; n < 16; n++, i = (i + 1) % XC_SITE_CACHE) {
        uint64_t *e = xc_stats->site_cache[i];
        uint64_t k = __atomic_load_n(&e[0], __ATOMIC_ACQUIRE);
        if (k == key) {
            uint64_t w = __atomic_load_n(&e[1], __ATOMIC_RELAXED);
            if ((w & E_VADDR) == vaddr && E_NR(w) == nr)
                return e;
            continue;
        }
        if (k != 0 || !add)
            continue;
        if (__atomic_compare_exchange_n(&e[0], &k, key, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            __atomic_store_n(&e[1], E_MAKE(vaddr, nr, 1, COUNTING), __ATOMIC_RELEASE);
            return 0;
        }
    }
    return 0;
}

static int image_of(unsigned long sys)
{
    for (int i = 0; i < n_images; i++)
        if (sys >= images[i].lo && sys + 2 <= images[i].hi)
            return i;
    return -1;
}

int xc_site_cache_trap(unsigned long sys, long nr)
{
    int im;
    if (!cache_on() || nr < 0 || nr >= XC_NR_MAX || XC_ABOM_UNPATCHABLE(nr) || (im = image_of(sys)) < 0 ||
        sys - images[im].bias > E_VADDR)
        return 0;
    uint64_t *e = entry(im, sys, nr, 1);
    if (!e)
        return 0;
    uint64_t w = __atomic_load_n(&e[1], __ATOMIC_RELAXED);
    while (E_STATE(w) == COUNTING) {
        unsigned c = E_COUNT(w) + 1;
        uint64_t want = (w & ~(0xffUL << 56)) | (uint64_t)(c < 15 ? c : 15) << 56 |
                        (uint64_t)(c >= SITE_CACHE_LEARN ? LEARNING : COUNTING) << 60;
        if (__atomic_compare_exchange_n(&e[1], &w, want, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            return c >= SITE_CACHE_LEARN;
    }
    return 0;
}

void xc_site_cache_learnt(unsigned long sys, long nr, int verdict, unsigned long slot, unsigned long lo,
                          unsigned long hi, unsigned long bias, unsigned long ino)
{
    int im = image_of(sys);
    uint64_t *e = im < 0 ? 0 : entry(im, sys, nr, 0);
    if (!e)
        return;
    uint64_t w = __atomic_load_n(&e[1], __ATOMIC_RELAXED);
    if (E_STATE(w) != LEARNING)
        return;
    unsigned state = COUNTING; /* no decision (the lock was taken, another thread patched): again later */
    /* ABOM's object must be the file the loader mapped there (not something
     * the program mapped over it since). */
    int same = sys >= lo && sys + 2 <= hi && bias == images[im].bias && ino == images[im].ino;
    long rel = (long)slot - (long)(sys + 2);
    if (verdict == XC_ABOM_MOV32 || verdict == XC_ABOM_MOV64)
        state = !same ? COUNTING : verdict == XC_ABOM_MOV32 ? KNOWN_MOV32 : KNOWN_MOV64;
    else if (verdict == XC_ABOM_JUMP)
        /* where ABOM took its padding: the loader takes the same five bytes */
        state = !same ? COUNTING : slot && rel >= -128 && rel <= 127 && slot + 5 <= hi ? KNOWN_JUMP : REFUSED;
    else if (verdict == XC_ABOM_APART)
        /* where the mov is (slot): the loader checks the same instructions */
        state = !same ? COUNTING : slot >= lo && slot < sys && sys - slot <= 255 ? KNOWN_APART : REFUSED;
    else if (verdict >= XC_ABOM_SPECIAL)
        state = REFUSED;
    uint64_t want = (w & ~(0xfUL << 60) & ~(0xfUL << 56) & ~(0xffUL << 39)) |
                    (uint64_t)(state == COUNTING ? 1 : 15) << 56 | (uint64_t)state << 60 |
                    (state == KNOWN_JUMP ? (uint64_t)(uint8_t)rel << 39 : 0) |
                    (state == KNOWN_APART ? (uint64_t)(sys - slot) << 39 : 0);
    __atomic_compare_exchange_n(&e[1], &w, want, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}
