/* sitecache.c: ABOM's per-container cache of site decisions (what one
 * process learnt, rewritten by the loader of the next one). */
#ifndef XC_SITECACHE_H
#define XC_SITECACHE_H

#include <stdint.h>

#define XC_SITE_LOAD_MAX 64 /* known sites rewritten per file at load */
#define XC_SITE_LOAD_SEGS 4 /* code segments opened per file */

/* What the loader knows of one file it maps. */
struct xc_site_load {
    uint64_t key;                      /* the file's identity, 0: no cache */
    unsigned long ino;
    int n, n_open;
    uint64_t sites[XC_SITE_LOAD_MAX];  /* the table's entries for it (mov32, mov64, jump) */
    struct {
        unsigned long start, end;      /* pages mapped writable for the rewrites */
        unsigned long lo, hi;          /* the file's bytes in them */
        unsigned long room;            /* [room, end): the last page's bytes after the file's, no other
                                          segment's: trampolines go there first (0: none) */
        int prot;                      /* the segment's own protection */
    } open[XC_SITE_LOAD_SEGS];
};

/* The loader, for each ELF file on *fd* it maps: look the file up; ask, per
 * PT_LOAD segment, whether to map it writable; say which it did; once all
 * are mapped, rewrite in place and reprotect (done), remembering [code_lo,
 * code_hi) as the file's code for the traps to come.  Before the process's
 * first fork, the rewritten code is cleaned (abom.c, xc_abom_dirty). */
void xc_site_cache_lookup(long fd, const struct xc_statx *st, struct xc_site_load *sl);
int xc_site_cache_wants(const struct xc_site_load *sl, unsigned long vaddr, unsigned long filesz, int prot);
void xc_site_cache_opened(struct xc_site_load *sl, unsigned long start, unsigned long end, unsigned long lo,
                          unsigned long hi, int prot, int tail_free);
void xc_site_cache_done(struct xc_site_load *sl, unsigned long base, unsigned long code_lo, unsigned long code_hi);

/* ABOM (abom.c): a process's first trap at *sys*; 1: decide now and report
 * the verdict with xc_site_cache_learnt (a jump rewrite's padding slot, ABOM's
 * object: its code's range, bias and inode). */
int xc_site_cache_trap(unsigned long sys, long nr);
void xc_site_cache_learnt(unsigned long sys, long nr, int verdict, unsigned long slot, unsigned long lo,
                          unsigned long hi, unsigned long bias, unsigned long ino);

/* abom.c: rewrite a verified mov site at load (one thread, writable code), with
 * *apart* an APART one; 0 or -1. */
int xc_abom_patch_loaded(unsigned long mov, unsigned long sys, long nr, int apart, unsigned long *room,
                         unsigned long room_end);
/* abom.c: rewrite a verified jump site at load: `jmp rel8` at *sys* to *slot*,
 * five bytes of padding, `jmp` from there to the trampoline; 0 or -1. */
int xc_abom_patch_loaded_jump(unsigned long sys, unsigned long slot, long nr, unsigned long *room,
                              unsigned long room_end);
/* abom.c: whether *mov* holds `mov $nr,%eax` and only instructions an APART
 * rewrite may copy follow it up to the syscall at *sys*. */
int xc_abom_apart_ok(unsigned long mov, unsigned long sys, long nr);
/* abom.c: the file's code mapped at *code* had pages rewritten in place:
 * before the process's first fork, the chunks (XC_OWN_CHUNK) holding none
 * of them are mapped again, clean (clean_text). */
void xc_abom_dirty(unsigned long code);

#endif
