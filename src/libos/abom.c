/*
 * ABOM: online binary optimization of system call sites.
 *
 * On the first trap at a site whose bytes are
 *
 *     b8 NN NN NN NN      mov $nr, %eax        (NN == the trapped number)
 *     0f 05               syscall
 *
 * the five bytes of the mov become `e9 rel32` (jmp) to a per-site trampoline
 * near the site; the `syscall` stays.  The trampoline:
 *
 *     48 8d 64 24 80            lea -0x80(%rsp),%rsp   skip the red zone (pitfall 1)
 *     b8 NN NN NN NN            mov $nr,%eax           what the site did
 *     ff 14 25 SS SS SS SS      call *SLOT             SLOT holds xc_abom_entry (below 2 GiB)
 *     48 8d a4 24 80 00 00 00   lea 0x80(%rsp),%rsp
 *     e9 RR RR RR RR            jmp site+7             back after the syscall
 *
 * xc_abom_entry (gate.S) keeps every register but rax, rcx and r11, and the
 * flags; the LibOS is built -mgeneral-regs-only, so vector state is
 * untouched (pitfall 6).  The call is served by the same table as a trap,
 * and forwarded calls leave from the gate: no trap, no signal frame.
 *
 * Why this is safe to do while other threads run (pitfall 3): the 8 bytes
 * from the mov's first byte are replaced by one 8-byte store, which x86 makes
 * atomic when it does not cross a cache line (sites that would are left
 * alone), and both the old and the new bytes are correct code: a thread
 * that already executed the mov resumes at the untouched `syscall` (and
 * traps as before).  The immediate must equal the trapped number, so the
 * bytes are the mov that ran (pitfall 2 would need a b8 inside a longer
 * instruction that also loaded exactly this number).  Calls whose handlers
 * need the trap frame (rt_sigprocmask, pause, sigaltstack, clone,
 * rt_sigreturn) are never patched.  Patching is serialized by a lock, is
 * idempotent (the bytes are checked again under it) and remembers refusals.
 */
#include "xc.h"

#include <asm/unistd.h>

#define PAGE 4096UL
#define TRAMP_SIZE 32
#define MAX_TRAMP_PAGES 64
#define REFUSED_SLOTS 1024

extern void xc_abom_entry(void);
/* The absolute address the trampolines call through (must be below 2 GiB). */
const uint64_t xc_abom_entry_slot = (uint64_t)xc_abom_entry;

struct tramp_page {
    unsigned long base;
    unsigned int used;
};

/* Writable bookkeeping: its own mapping, outside the sealed LibOS image. */
struct abom_state {
    int lock;
    unsigned int n_pages;
    struct tramp_page pages[MAX_TRAMP_PAGES];
    unsigned long refused[REFUSED_SLOTS]; /* sites left alone (open addressing) */
    char maps[4096];                      /* /proc/self/maps, read under the lock */
};

static struct abom_state *st;
int xc_abom_on;

void xc_abom_init(void)
{
    if (!xc_stats || !(xc_stats->flags & XC_FLAG_ABOM))
        return;
    long p = H6(__NR_mmap, 0, (sizeof(struct abom_state) + PAGE - 1) & ~(PAGE - 1), 3 /* RW */,
                0x22 /* PRIVATE|ANON */, -1, 0);
    if (XC_ERR(p))
        return;
    st = (struct abom_state *)p;
    xc_abom_on = 1;
}

/* Numbers whose handlers use the trap frame, or that must stay traps. */
static int patchable(long nr)
{
    switch (nr) {
    case __NR_rt_sigprocmask:
    case __NR_rt_sigreturn:
    case __NR_pause:
    case __NR_sigaltstack:
    case __NR_clone:
    case __NR_clone3:
        return 0;
    default:
        return nr >= 0 && nr < XC_NR_MAX;
    }
}

static void lock(void)
{
    while (__atomic_exchange_n(&st->lock, 1, __ATOMIC_ACQUIRE))
        H0(__NR_sched_yield);
}

static void unlock(void)
{
    __atomic_store_n(&st->lock, 0, __ATOMIC_RELEASE);
}

static unsigned int hash(unsigned long a)
{
    return (unsigned int)((a * 0x9E3779B97F4A7C15UL) >> 54) % REFUSED_SLOTS;
}

static int was_refused(unsigned long site)
{
    for (unsigned int i = hash(site), n = 0; n < REFUSED_SLOTS; i = (i + 1) % REFUSED_SLOTS, n++) {
        unsigned long v = __atomic_load_n(&st->refused[i], __ATOMIC_RELAXED);
        if (v == site)
            return 1;
        if (v == 0)
            return 0;
    }
    return 1; /* full: treat everything as refused */
}

static void refuse(unsigned long site)
{
    for (unsigned int i = hash(site), n = 0; n < REFUSED_SLOTS; i = (i + 1) % REFUSED_SLOTS, n++) {
        if (st->refused[i] == 0 || st->refused[i] == site) {
            st->refused[i] = site;
            break;
        }
    }
    if (xc_stats)
        __atomic_fetch_add(&xc_stats->sites_refused, 1, __ATOMIC_RELAXED);
}

static int near(unsigned long a, unsigned long b)
{
    long d = (long)(a - b);
    return d > -0x7fff0000L && d < 0x7fff0000L;
}

/* A trampoline slot within jmp rel32 reach of *site*, or 0. */
static unsigned long tramp_slot(unsigned long site)
{
    for (unsigned int i = 0; i < st->n_pages; i++) {
        struct tramp_page *p = &st->pages[i];
        if (p->used < PAGE / TRAMP_SIZE && near(p->base, site) && near(p->base + PAGE, site))
            return p->base + TRAMP_SIZE * p->used++;
    }
    if (st->n_pages == MAX_TRAMP_PAGES)
        return 0;
    /* Look for free room near the site, below it first (1 MiB steps). */
    for (long step = 1; step < 1024; step++) {
        for (int dir = -1; dir <= 1; dir += 2) {
            unsigned long hint = ((site & ~0xfffffUL) + (unsigned long)(dir * step) * 0x100000UL);
            if (hint < 0x10000 || !near(hint, site))
                continue;
            long r = H6(__NR_mmap, hint, PAGE, 7 /* RWX */, 0x22 | 0x100000 /* MAP_FIXED_NOREPLACE */, -1, 0);
            if (XC_ERR(r))
                continue;
            if ((unsigned long)r != hint || !near((unsigned long)r, site)) {
                H2(__NR_munmap, r, PAGE);
                continue;
            }
            struct tramp_page *p = &st->pages[st->n_pages++];
            p->base = (unsigned long)r;
            p->used = 1;
            return p->base;
        }
    }
    return 0;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* Protection of the mapping holding *addr*, from /proc/self/maps; -1 if
 * unknown.  Called under the lock; the buffer is not on the stack, which may
 * be a posix_spawn child's few KB under a 3.6 KB trap frame. */
static int prot_of(unsigned long addr)
{
    static const char maps[] = "/proc/self/maps";
    char *buf = st->maps;
    const unsigned long bufsize = sizeof st->maps;
    long fd = H3(__NR_openat, -100, maps, 02000000 /* O_CLOEXEC */);
    if (fd < 0)
        return -1;
    int prot = -1;
    long carry = 0;
    for (;;) {
        long n = H3(__NR_read, fd, buf + carry, bufsize - 1 - (unsigned long)carry);
        if (n <= 0)
            break;
        n += carry;
        buf[n] = 0;
        long start = 0;
        for (long i = 0; i < n; i++) {
            if (buf[i] != '\n')
                continue;
            /* "lo-hi perms ..." */
            unsigned long lo = 0, hi = 0;
            long j = start;
            for (; j < i && buf[j] != '-'; j++)
                lo = lo * 16 + (unsigned long)(buf[j] <= '9' ? buf[j] - '0' : buf[j] - 'a' + 10);
            for (j++; j < i && buf[j] != ' '; j++)
                hi = hi * 16 + (unsigned long)(buf[j] <= '9' ? buf[j] - '0' : buf[j] - 'a' + 10);
            if (addr >= lo && addr < hi && j + 4 < i) {
                prot = (buf[j + 1] == 'r' ? 1 : 0) | (buf[j + 2] == 'w' ? 2 : 0) | (buf[j + 3] == 'x' ? 4 : 0);
                H1(__NR_close, fd);
                return prot;
            }
            start = i + 1;
        }
        carry = n - start;
        if (carry >= (long)bufsize - 1)
            carry = 0;
        memmove(buf, buf + start, (size_t)carry);
    }
    H1(__NR_close, fd);
    return prot;
}

/* Called from the trap handler for a call at *call_addr* (after its syscall).
 * Two forms of the site are known:
 *   b8 imm32 0f 05            mov $nr,%eax; syscall     (glibc, musl, busybox)
 *   48 c7 c0 imm32 0f 05      mov $nr,%rax; syscall     (Go's runtime)
 * In both, the first five bytes of the mov become the jump; the rest of the
 * mov (two bytes in the second form) is never an instruction start, so it
 * may stay as it is. */
void xc_abom_try(long nr, unsigned long call_addr)
{
    unsigned long sys = call_addr - 2;
    if (!patchable(nr) || was_refused(sys))
        return;
    lock();
    volatile unsigned char *s5 = (volatile unsigned char *)(sys - 5);
    volatile unsigned char *s7 = (volatile unsigned char *)(sys - 7);
    if ((s5[0] == 0xe9 || s7[0] == 0xe9) && s5[5] == 0x0f && s5[6] == 0x05) {
        /* patched meanwhile by another thread */
        unlock();
        return;
    }
    unsigned long mov = 0;
    if (s5[0] == 0xb8 && ((uint32_t)s5[1] | (uint32_t)s5[2] << 8 | (uint32_t)s5[3] << 16 |
                          (uint32_t)s5[4] << 24) == (uint32_t)nr)
        mov = sys - 5;
    else if (s7[0] == 0x48 && s7[1] == 0xc7 && s7[2] == 0xc0 &&
             ((uint32_t)s7[3] | (uint32_t)s7[4] << 8 | (uint32_t)s7[5] << 16 | (uint32_t)s7[6] << 24) ==
                 (uint32_t)nr)
        mov = sys - 7;
    unsigned long tramp = 0;
    int prot = -1;
    if (!mov || s5[5] != 0x0f || s5[6] != 0x05 ||
        (mov & 63) > 56 /* the 8-byte store would cross a cache line */ ||
        (sys >= (unsigned long)XC_LIBOS_BASE && sys < (unsigned long)XC_LIBOS_BASE + 0x1000000) ||
        (prot = prot_of(mov)) < 0 || !(prot & 4) || prot_of(sys + 1) != prot ||
        !(tramp = tramp_slot(mov))) {
        refuse(sys);
        unlock();
        return;
    }
    /* The trampoline (its page is RWX: slots are added while others run). */
    unsigned char *t = (unsigned char *)tramp;
    static const unsigned char head[5] = {0x48, 0x8d, 0x64, 0x24, 0x80};
    static const unsigned char tail[8] = {0x48, 0x8d, 0xa4, 0x24, 0x80, 0x00, 0x00, 0x00};
    xc_memcpy(t, head, 5);
    t[5] = 0xb8;
    put32(t + 6, (uint32_t)nr);
    t[10] = 0xff;
    t[11] = 0x14;
    t[12] = 0x25;
    put32(t + 13, (uint32_t)(unsigned long)&xc_abom_entry_slot);
    xc_memcpy(t + 17, tail, 8);
    t[25] = 0xe9;
    put32(t + 26, (uint32_t)((long)(sys + 2) - (long)(tramp + 30)));
    /* The site: one atomic 8-byte store of e9 rel32 + the next three bytes. */
    unsigned long page = mov & ~(PAGE - 1);
    unsigned long len = ((mov + 8 + PAGE - 1) & ~(PAGE - 1)) - page;
    if (H3(__NR_mprotect, page, len, prot | 2) < 0) {
        refuse(sys);
        unlock();
        return;
    }
    uint64_t old = *(volatile uint64_t *)mov, neu = old;
    unsigned char *n8 = (unsigned char *)&neu;
    n8[0] = 0xe9;
    put32(n8 + 1, (uint32_t)((long)tramp - (long)(mov + 5)));
    __atomic_store_n((uint64_t *)mov, neu, __ATOMIC_SEQ_CST);
    H3(__NR_mprotect, page, len, prot);
    if (xc_stats)
        __atomic_fetch_add(&xc_stats->sites_patched, 1, __ATOMIC_RELAXED);
    unlock();
}
