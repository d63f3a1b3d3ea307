/*
 * ABOM: online binary optimization of system call sites.
 *
 * On the second trap at a site, ABOM finds the function around it (from the
 * object's .eh_frame, or its .symtab when there is none, as in Go
 * binaries), decodes that function from its first byte (decode.c), and
 * rewrites the site in one of four ways, all of which end in a per-site
 * trampoline near the site that calls xc_abom_entry (gate.S):
 *
 *   MOV32   b8 NN NN NN NN        mov $nr,%eax    (NN == the trapped number)
 *           0f 05                 syscall
 *     the five bytes of the mov become `e9 rel32` (jmp) to a trampoline
 *     that sets eax itself; the `syscall` stays.
 *
 *   MOV64   48 c7 c0 NN NN NN NN  mov $nr,%rax    (Go's runtime)
 *           0f 05                 syscall
 *     the same with the first five of the seven bytes; the last two are
 *     never an instruction start, so they may stay.
 *
 *   JUMP    any site, the number already in rax (xor %eax,%eax; mov
 *     %r8d,%eax; Go's `mov %rbx,%rdi; syscall` in Syscall6 ...)
 *           0f 05     syscall  ->   eb XX     jmp PAD
 *     PAD is padding the compiler left that control never reaches: the
 *     bytes between the function's end and the next function's start, or
 *     a nop run inside the function right after a ret/jmp/ud2 that no
 *     direct branch targets (in functions without indirect jumps).  PAD
 *     gets `e9 rel32` to a trampoline that leaves rax as it is.
 *
 *   APART   b8 NN NN NN NN        mov $nr,%eax    (NN == the trapped number)
 *           I1 ... Ik             instructions that run the same anywhere
 *           0f 05                 syscall         and leave rax alone
 *     where JUMP finds no padding (glibc's start-up: arch_prctl,
 *     set_robust_list): the mov becomes `e9 rel32` to a trampoline that
 *     does the mov, a copy of I1 ... Ik (decode.c, xc_insn_movable: moves,
 *     stores, lea, simple arithmetic, SSE moves; never rip-relative, never
 *     a branch), then the call; I1 ... Ik and the syscall stay, so a jump
 *     past the mov still runs them and traps.  A fault in a copy reports
 *     the trampoline's address, not the program's.
 *
 * The trampolines (their page is RWX: slots are added while others run):
 *
 *     48 8d 64 24 80            lea -0x80(%rsp),%rsp   skip the red zone (pitfall 1)
 *     b8 NN NN NN NN            mov $nr,%eax           (MOV32/MOV64 only)
 *     ff 14 25 SS SS SS SS      call *SLOT             SLOT holds xc_abom_entry (below 2 GiB)
 *     48 8d a4 24 80 00 00 00   lea 0x80(%rsp),%rsp
 *     e9 RR RR RR RR            jmp site+2             back after the syscall
 *
 * A call the LibOS only passes on to the host (read, write, sendfile, ...;
 * the profile silent on it, the trace off) skips the LibOS: its trampoline
 * counts it and jumps to a direct gate of the site's own, a `syscall` in the
 * gate section followed by a jump back (put_direct, gate.S).  A JUMP site
 * does so for the number it trapped with, and takes the full path for others.
 *
 * xc_abom_entry keeps every register but rax, rcx and r11, and the flags;
 * the LibOS is built -mgeneral-regs-only, so vector state is untouched
 * (pitfall 6).  The red zone is never touched, so sites with live red-zone
 * data are patched safely rather than refused.
 *
 * What makes each rewrite keep the program's meaning:
 *  - Instruction boundaries (pitfall 2): the bytes rewritten are, on the
 *    walk from the function's start, exactly the mov (or the syscall) and
 *    nothing else; anything the decoder does not know is a refusal.
 *  - The mov's immediate equals the trapped number: a jump straight to the
 *    `syscall` with another number in eax still reaches the untouched
 *    `syscall` and traps as before.
 *  - Other threads (pitfall 3): one atomic store per site (8 bytes for the
 *    movs, 2 for JUMP), never across a cache line; old and new bytes are
 *    both right: a thread that already ran the mov resumes at the intact
 *    `syscall`, and JUMP replaces one whole instruction by another of the
 *    same length.  PAD is written before the site and is never executed
 *    before the site jumps there.  A site whose bytes span two cache lines
 *    is rewritten in three steps behind a placeholder that stops any thread
 *    arriving meanwhile: `0f 05` (a trap the LibOS serves as the site's
 *    call), or `f4` (hlt, a fault the LibOS sends on to the trampoline) when
 *    only one byte lies in the first line (struct held).
 *  - Calls whose handlers need the trap frame (rt_sigprocmask, pause,
 *    sigaltstack, clone, clone3, rt_sigreturn) are never patched, nor the
 *    calls made once (exit, exit_group, execve, execveat: a short-lived
 *    child would pay for patching and never gain); nor is
 *    anything outside an executable file mapping (vDSO, JIT code, the LibOS).
 * Patching is serialized by a lock, idempotent (the bytes are looked at again
 * under it), and a refused site is remembered.  Every verdict is counted in
 * the statistics (sites_by) and, with tracing on, written as a line:
 *     abom PATH VADDR nr=N VERDICT
 * which xcontainers/abom.py's offline scan is tested against.
 */
#include "xc.h"
#include "sitecache.h"

#include <asm/unistd.h>

#define PAGE 4096UL
#define TRAMP_SIZE 192 /* the JUMP form (85 bytes) after a direct path (at most 104: openat's): put_direct */
#define MAX_TRAMP_PAGES 64
#define SITE_FIRST 256  /* st->first_sites: in the first page, with the head */
#define SITE_SLOTS 1024 /* one page: st->sites, once the first are taken */
#define MAX_OBJECTS 48
#define MAX_GAPS 512
#define MAX_TARGETS 256
#define MAX_PADS 16
#define MAX_HELD 256
#define MAX_GUARDS 256
#define MAX_OWN 16
#define MAX_DIRTY 4

extern void xc_abom_entry(void), xc_abom_stat_entry(void);
/* The absolute addresses the trampolines call through (must be below 2 GiB). */
const uint64_t xc_abom_entry_slot = (uint64_t)xc_abom_entry;
const uint64_t xc_abom_stat_slot = (uint64_t)xc_abom_stat_entry;

struct tramp_page {
    unsigned long base;
    unsigned int used;
};

/* A line of /proc/self/maps. */
struct mapping {
    unsigned long lo, hi, off, ino;
    int prot;
    char path[256];
};

/* An ELF object with code, as far as ABOM needs it. */
struct object {
    unsigned long lo, hi;           /* its executable mapping */
    unsigned long off;              /* ... at this offset in its file */
    unsigned long ino;
    int prot;
    unsigned long bias;             /* run-time address - ELF address */
    unsigned long eh, eh_size;      /* .eh_frame, in memory */
    unsigned long ehh, ehh_size;    /* .eh_frame_hdr (its sorted table of FDEs), in memory, or 0 */
    unsigned long symoff, symsize;  /* .symtab, in the file */
    int failed;
    int gone;                       /* unmapped or mapped over since: look again */
    char path[256];
};

/* Padding ABOM has taken for jumps: [start, end), used up to next. */
struct gap {
    unsigned long start, end, next;
};

/* A site rewritten in three steps (its bytes span two cache lines), behind
 * a placeholder over its first bytes meanwhile: `0f 05`, which traps (such a
 * trap is the site's call: xc_abom_held), or, when not even two bytes can be
 * stored at once, `f4` (hlt), which faults (the faulting thread goes on at
 * the site's trampoline: xc_abom_held_fault). */
struct held {
    unsigned long call_addr, resume; /* 0f 05: the placeholder's end, the site's;
                                        f4: the site, its trampoline */
    long nr;
    int hlt;
};

/* A load of the program's memory in a trampoline (a path's first bytes):
 * a fault there goes on at the trampoline's full path (xc_abom_guard). */
struct guard {
    unsigned long at, full;
};

/* Pages of the program's text ABOM rewrote, as a mapping of their own
 * (text_replace): [lo, hi). */
struct own {
    unsigned long lo, hi;
};

struct func {
    unsigned long start, end, next; /* next: the following function's start, 0 if unknown */
};

/* Writable bookkeeping: its own mapping, outside the sealed LibOS image. */
struct abom_state {
    int lock;
    int fork_locked; /* xc_abom_fork_begin took the lock */
    int threaded;    /* the process made a thread (or a child sharing its memory) once */
    int n_after_libos; /* trampoline pages right after the LibOS (tramp_slot); -1: that place is taken */
    unsigned long last_slot; /* the last jump rewrite's padding slot, or APART rewrite's mov (site cache) */
    long forker;     /* the process that forked with this state: a fork child's parent */
    uint64_t child_seen; /* xc_stats->child_sites_next when this process last looked */
    unsigned int n_pages, n_objects, n_gaps;
    unsigned int n_direct; /* direct gates (gate.S) taken */
    unsigned int n_held, n_guards; /* (every trap reads them: with the other counters) */
    struct tramp_page pages[MAX_TRAMP_PAGES];
    unsigned int n_own, n_dirty;
    struct own own[MAX_OWN];
    unsigned long dirty[MAX_DIRTY]; /* code the loader rewrote in place (xc_abom_dirty) */
    uint32_t first_sites[SITE_FIRST]; /* sites that trapped, and those left alone: site_state */
    uint32_t sites[SITE_SLOTS];       /* ... once first_sites is full */
    struct object objects[MAX_OBJECTS];
    struct gap gaps[MAX_GAPS];
    unsigned long targets[MAX_TARGETS];
    struct held held[MAX_HELD];
    struct guard guards[MAX_GUARDS];
    struct mapping map;
    char buf[8192]; /* /proc/self/maps, section headers, symbols: not the stack */
};

static struct abom_state *st;
int xc_abom_on;

/* The bookkeeping lives in the LibOS's writable pages (gate.S, xc_rw), zero
 * at every start: no mapping of its own.  Its head (with the first
 * SITE_FIRST sites) shares the first page with struct xc_rw, more sites are
 * the second page, the rest is touched only once ABOM looks at an object:
 * a process that traps at a few sites and rewrites none writes one page. */
extern char xc_abom_area[XC_RW_ABOM_SIZE];
_Static_assert(sizeof(struct abom_state) <= XC_RW_ABOM_SIZE, "struct abom_state: XC_RW_ABOM_SIZE (abi.h)");
_Static_assert(offsetof(struct abom_state, sites) == XC_RW_ABOM_HEAD,
               "struct abom_state: its sites start a page (XC_RW_ABOM_HEAD, abi.h)");

void xc_abom_init(void)
{
    if (!xc_stats || !(xc_stats->flags & XC_FLAG_ABOM))
        return;
    st = (struct abom_state *)xc_abom_area;
    xc_abom_on = 1;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* The entry table of pre-patched binaries (`xc abom patch`) is part of the
 * image, at XC_ABOM_TABLE (gate.S): check that the link put it there. */
extern const uint64_t xc_abom_table[XC_NR_MAX];

int xc_abom_table_placed(void)
{
    return (unsigned long)xc_abom_table == XC_ABOM_TABLE;
}

/* The "special" verdict (abi.h, XC_ABOM_NEEDS_FRAME): rt_sigprocmask,
 * rt_sigreturn, pause, sigaltstack and clone3, whose handlers use the trap
 * frame.  clone is patched, with a trampoline that sends a clone with a new
 * stack (a thread) to the trap path (tramp_fill).  Calls made once per
 * thread or image (exit, exit_group, execve, execveat) are patched like any
 * other once they trap often enough, which in one process they seldom do:
 * the sites a fork child traps at are rewritten in its parent instead
 * (xc_abom_fork_begin). */
_Static_assert(sizeof(struct xc_stats) <= XC_STATS_SIZE, "struct xc_stats: XC_STATS_SIZE (abi.h)");

static int patchable(long nr)
{
    return nr >= 0 && nr < XC_NR_MAX && !XC_ABOM_NEEDS_FRAME(nr);
}

/* Patching never waits for the lock: a signal handler that runs on the
 * thread holding it may trap again, and patching later is as good. */
static int try_lock(void)
{
    return !__atomic_exchange_n(&st->lock, 1, __ATOMIC_ACQUIRE);
}

static void unlock(void)
{
    __atomic_store_n(&st->lock, 0, __ATOMIC_RELEASE);
}

/* The sites that trapped, how often (up to SITE_COUNT_MAX), and those ABOM
 * left alone, in one page (a process that makes a few calls touches one
 * page of it, not several): open addressing on a 27-bit hash of the
 * address; an entry is hash << 5 | traps << 1 | refused; 0 = empty, never
 * removed.  Lossy on purpose: a site that shares another's hash (or arrives
 * when the table is full) is taken for one that trapped more often, and
 * patched sooner, or for a refused one, and left to trap; both are correct,
 * only a little slower or sooner.  Lock-free. */
#define SITE_COUNT_MAX 15
#define SITE_REFUSED (-1)

static uint32_t site_key(unsigned long site)
{
    uint32_t k = (uint32_t)((site * 0x9E3779B97F4A7C15UL) >> 37) << 5;
    return k ? k : 1U << 5;
}

/* site_state in table *t* of *slots*; *full*: the site is not there and
 * there is no room for it. */
static int site_state_in(uint32_t *t, unsigned int slots, uint32_t key, int count, int refuse, int *full)
{
    unsigned int i = (key >> 5) % slots;
    *full = 0;
    for (unsigned int n = 0; n < slots; i = (i + 1) % slots, n++) {
        uint32_t v = __atomic_load_n(&t[i], __ATOMIC_RELAXED);
        while (v == 0 || (v & ~31U) == key) {
            uint32_t traps = (v >> 1) & 15, want = v;
            if (v & 1)
                return SITE_REFUSED;
            if (refuse)
                want = key | traps << 1 | 1;
            else if (count)
                want = key | (traps < SITE_COUNT_MAX ? traps + 1 : traps) << 1;
            else
                return (int)traps; /* (0: not there) */
            if (__atomic_compare_exchange_n(&t[i], &v, want, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
                return refuse ? SITE_REFUSED : (int)((want >> 1) & 15);
            /* v now holds what another thread wrote: look again */
        }
    }
    *full = 1;
    return 0;
}

/* How many times *site* trapped (0: never), or SITE_REFUSED; with *count*,
 * one trap more first, and the new count; with *refuse*, it is refused.
 * The first SITE_FIRST sites go in the head's page (a process that traps at
 * a few sites writes no other page of ABOM's), the rest in the next page
 * (nothing is ever removed: a site not in the first table while it has
 * room is nowhere). */
static int site_state(unsigned long site, int count, int refuse)
{
    uint32_t key = site_key(site);
    int full;
    int r = site_state_in(st->first_sites, SITE_FIRST, key, count, refuse, &full);
    if (full)
        r = site_state_in(st->sites, SITE_SLOTS, key, count, refuse, &full);
    if (full)
        return refuse ? SITE_REFUSED : count ? SITE_COUNT_MAX : 0;
    return r;
}

static int was_refused(unsigned long site)
{
    return site_state(site, 0, 0) == SITE_REFUSED;
}

static const char *const verdict_names[XC_ABOM_VERDICTS] = {
    [XC_ABOM_MOV32] = "mov32",
    [XC_ABOM_MOV64] = "mov64",
    [XC_ABOM_JUMP] = "jump",
    [XC_ABOM_APART] = "apart",
    [XC_ABOM_SPECIAL] = "special",
    [XC_ABOM_NOT_FILE] = "not-file",
    [XC_ABOM_NO_FUNCTION] = "no-function",
    [XC_ABOM_UNDECODABLE] = "undecodable",
    [XC_ABOM_NOT_BOUNDARY] = "not-boundary",
    [XC_ABOM_IMM_MISMATCH] = "imm-mismatch",
    [XC_ABOM_NO_GAP] = "no-gap",
    [XC_ABOM_CACHE_LINE] = "cache-line",
    [XC_ABOM_NO_ROOM] = "no-room",
    [XC_ABOM_PROTECT] = "protect",
};

/* Count a verdict and trace it: "abom PATH VADDR nr=N VERDICT". */
static void verdict(unsigned long site, long nr, int v, const struct object *o)
{
    if (v >= XC_ABOM_SPECIAL)
        site_state(site, 0, 1);
    if (!xc_stats)
        return;
    __atomic_fetch_add(v >= XC_ABOM_SPECIAL ? &xc_stats->sites_refused : &xc_stats->sites_patched, 1,
                       __ATOMIC_RELAXED);
    __atomic_fetch_add(&xc_stats->sites_by[v], 1, __ATOMIC_RELAXED);
    if (!(xc_stats->flags & XC_FLAG_TRACE))
        return;
    struct xc_line l = {0};
    xc_line_str(&l, "abom ");
    xc_line_str(&l, o ? o->path : st->map.path[0] ? st->map.path : "-");
    xc_line_str(&l, " ");
    xc_line_hex(&l, o ? site - o->bias : site);
    xc_line_str(&l, " nr=");
    xc_line_dec(&l, nr);
    xc_line_str(&l, " ");
    xc_line_str(&l, verdict_names[v]);
    xc_line_flush(&l, XC_TRACE_FD);
}

/* --- where a site is ------------------------------------------------------- */

static unsigned long parse_hex(const char **s)
{
    unsigned long v = 0;
    for (;; (*s)++) {
        char c = **s;
        if (c >= '0' && c <= '9')
            v = v * 16 + (unsigned long)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = v * 16 + (unsigned long)(c - 'a' + 10);
        else
            return v;
    }
}

/* One line of /proc/self/maps ("lo-hi perms off dev inode   path") into *m*. */
static void parse_line(const char *s, struct mapping *m)
{
    m->lo = parse_hex(&s);
    s++;
    m->hi = parse_hex(&s);
    m->prot = (s[1] == 'r' ? 1 : 0) | (s[2] == 'w' ? 2 : 0) | (s[3] == 'x' ? 4 : 0);
    s += 6;
    m->off = parse_hex(&s);
    while (*s == ' ')
        s++;
    while (*s && *s != ' ')
        s++; /* dev */
    while (*s == ' ')
        s++;
    m->ino = 0;
    for (; *s >= '0' && *s <= '9'; s++)
        m->ino = m->ino * 10 + (unsigned long)(*s - '0');
    while (*s == ' ')
        s++;
    size_t k = 0;
    for (; s[k] && k < sizeof m->path - 1; k++)
        m->path[k] = s[k];
    m->path[k] = 0;
}

/* st->map := the executable mapping holding *addr*, from /proc/self/maps;
 * 0 if none.  Pages ABOM patched may have split the file's text into
 * several lines: contiguous executable lines of the same file are one
 * mapping here (the same object, whichever of its pages a site is on). */
static int find_mapping(unsigned long addr)
{
    char *buf = st->buf;
    const long bufsize = sizeof st->buf;
    struct mapping *run = &st->map, line;
    int have_run = 0, found = 0, done = 0;
    run->path[0] = 0;
    long fd = H3(__NR_openat, -100, "/proc/self/maps", 02000000 /* O_CLOEXEC */);
    if (fd < 0)
        return 0;
    long carry = 0;
    while (!done) {
        long n = H3(__NR_read, fd, buf + carry, bufsize - 1 - carry);
        if (n <= 0)
            break;
        n += carry;
        buf[n] = 0;
        long start = 0;
        for (long i = 0; i < n && !done; i++) {
            if (buf[i] != '\n')
                continue;
            buf[i] = 0;
            parse_line(buf + start, &line);
            start = i + 1;
            int joins = have_run && (line.prot & 4) && (run->prot & 4) && line.lo == run->hi &&
                        line.off == run->off + (run->hi - run->lo) && line.ino == run->ino && line.ino &&
                        xc_strcmp(line.path, run->path) == 0;
            if (joins) {
                run->hi = line.hi;
            } else if (found) {
                done = 1; /* the run holding addr ended */
                break;
            } else {
                *run = line;
                have_run = 1;
            }
            if (addr >= line.lo && addr < line.hi) {
                found = 1;
                if (!(line.prot & 4))
                    run->prot = line.prot;
            }
        }
        carry = n - start;
        if (carry >= bufsize - 1)
            carry = 0;
        memmove(buf, buf + start, (size_t)carry);
    }
    H1(__NR_close, fd);
    return found;
}

static long pread_all(long fd, void *buf, unsigned long len, unsigned long off)
{
    struct {
        void *base;
        unsigned long len;
    } iov = {buf, len};
    long n = H5(__NR_preadv2, fd, &iov, 1, off, 0);
    return n == (long)len ? 0 : -XC_EIO;
}

static uint64_t get(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Read the object's program and section headers from its file. */
static int object_load(struct object *o, const struct mapping *m)
{
    unsigned char *b = (unsigned char *)st->buf;
    long fd = H3(__NR_openat, -100, m->path, 02000000 /* O_RDONLY|O_CLOEXEC */);
    if (fd < 0)
        return -1;
    int ok = -1;
    struct xc_statx sb;
    unsigned char eh[64];
    if (H5(__NR_statx, fd, "", 0x1000 /* AT_EMPTY_PATH */, XC_STATX_BASIC_STATS, &sb) < 0 || sb.ino != m->ino ||
        pread_all(fd, eh, 64, 0) < 0 || get(eh, 4) != 0x464c457f || eh[4] != 2 /* 64-bit */)
        goto out;
    unsigned long phoff = get(eh + 0x20, 8), shoff = get(eh + 0x28, 8);
    unsigned int phnum = (unsigned int)get(eh + 0x38, 2), shnum = (unsigned int)get(eh + 0x3c, 2);
    unsigned int shstrndx = (unsigned int)get(eh + 0x3e, 2);
    if (get(eh + 0x36, 2) != 56 || phnum * 56 > sizeof st->buf || pread_all(fd, b, phnum * 56, phoff) < 0)
        goto out;
    int have_bias = 0;
    for (unsigned int i = 0; i < phnum; i++) {
        const unsigned char *ph = b + i * 56;
        unsigned long off = get(ph + 8, 8), vaddr = get(ph + 16, 8), filesz = get(ph + 32, 8);
        if (get(ph, 4) == 1 /* PT_LOAD */ && (off & ~(PAGE - 1)) <= m->off && m->off < off + filesz) {
            o->bias = m->lo - (vaddr - off + m->off);
            have_bias = 1;
            break;
        }
    }
    /* Section headers (at most 96) and their names (at most 2 KB). */
    if (!have_bias || shoff == 0 || shnum > 96 || shstrndx >= shnum || get(eh + 0x3a, 2) != 64 ||
        pread_all(fd, b, shnum * 64, shoff) < 0)
        goto out;
    unsigned long stroff = get(b + shstrndx * 64 + 0x18, 8), strsize = get(b + shstrndx * 64 + 0x20, 8);
    char *names = st->buf + 6144;
    if (strsize > 2047 || pread_all(fd, names, strsize, stroff) < 0)
        goto out;
    names[strsize] = 0;
    for (unsigned int i = 0; i < shnum; i++) {
        const unsigned char *sh = b + i * 64;
        unsigned long name = get(sh, 4);
        if (name >= strsize)
            continue;
        if (xc_strcmp(names + name, ".eh_frame") == 0 && get(sh + 0x10, 8)) {
            o->eh = get(sh + 0x10, 8) + o->bias;
            o->eh_size = get(sh + 0x20, 8);
        } else if (xc_strcmp(names + name, ".eh_frame_hdr") == 0 && get(sh + 0x10, 8)) {
            o->ehh = get(sh + 0x10, 8) + o->bias;
            o->ehh_size = get(sh + 0x20, 8);
        } else if (get(sh + 4, 4) == 2 /* SHT_SYMTAB */) {
            o->symoff = get(sh + 0x18, 8);
            o->symsize = get(sh + 0x20, 8);
        }
    }
    ok = o->eh || o->symoff ? 0 : -1;
out:
    H1(__NR_close, fd);
    return ok;
}

static struct object *object_of(const struct mapping *m)
{
    for (unsigned int i = 0; i < st->n_objects; i++) {
        struct object *o = &st->objects[i];
        if (!o->gone && o->lo == m->lo && o->hi == m->hi && xc_strcmp(o->path, m->path) == 0)
            return o->failed ? 0 : o;
    }
    if (st->n_objects == MAX_OBJECTS)
        return 0;
    struct object *o = &st->objects[st->n_objects++];
    xc_memset(o, 0, sizeof *o);
    o->lo = m->lo;
    o->hi = m->hi;
    o->off = m->off;
    o->ino = m->ino;
    o->prot = m->prot;
    xc_memcpy(o->path, m->path, sizeof o->path);
    o->failed = object_load(o, m) < 0;
    return o->failed ? 0 : o;
}

/* --- the function around a site -------------------------------------------- */

static unsigned long uleb(const unsigned char **p, const unsigned char *end)
{
    unsigned long v = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        unsigned char c = *(*p)++;
        v |= (unsigned long)(c & 0x7f) << shift;
        if (!(c & 0x80))
            break;
    }
    return v;
}

/* A DW_EH_PE-encoded pointer at *p; 0 (and *p = 0) if the encoding is not one used here. */
static unsigned long read_enc(int enc, const unsigned char **p, const unsigned char *end)
{
    const unsigned char *at = *p;
    unsigned long v;
    int n;
    switch (enc & 0x0f) {
    case 0x00: case 0x04: case 0x0c: n = 8; break;
    case 0x02: case 0x0a: n = 2; break;
    case 0x03: case 0x0b: n = 4; break;
    default: *p = 0; return 0;
    }
    if (at + n > end) {
        *p = 0;
        return 0;
    }
    v = get(at, n);
    if ((enc & 0x0f) == 0x0b)
        v = (unsigned long)(long)(int32_t)v;
    else if ((enc & 0x0f) == 0x0a)
        v = (unsigned long)(long)(int16_t)v;
    *p = at + n;
    if ((enc & 0x70) == 0x10)
        v += (unsigned long)at;
    else if ((enc & 0x70) != 0 || (enc & 0x80))
        *p = 0;
    return v;
}

/* The FDE pointer encoding of the CIE at *cie* (its length field); -1 if unknown. */
static int cie_encoding(const unsigned char *cie, const unsigned char *end)
{
    const unsigned char *p = cie + 8; /* after length and id */
    if (p >= end)
        return -1;
    int version = *p++;
    const char *aug = (const char *)p;
    while (p < end && *p)
        p++;
    p++;
    if (aug[0] != 'z')
        return aug[0] == 0 ? 0 : -1;
    uleb(&p, end);                              /* code alignment */
    uleb(&p, end);                              /* data alignment (sleb: only skipped) */
    if (version == 1)
        p++;
    else
        uleb(&p, end);                          /* return address register */
    uleb(&p, end);                              /* augmentation data length */
    for (const char *a = aug + 1; *a && p && p < end; a++) {
        if (*a == 'R')
            return *p;
        if (*a == 'L')
            p++;
        else if (*a == 'P') {
            int penc = *p++;
            read_enc(penc & 0x0f, &p, end);
        } else if (*a != 'S' && *a != 'B')
            return -1;
    }
    return p ? 0 : -1;
}

/* The FDE at *fde* (its length field) in .eh_frame: its function's [start, end); -1 if unreadable. */
static int fde_range(const struct object *o, const unsigned char *fde, unsigned long *start, unsigned long *end)
{
    const unsigned char *p0 = (const unsigned char *)o->eh, *eh_end = p0 + o->eh_size;
    if (fde < p0 || fde + 12 > eh_end)
        return -1;
    unsigned long len = get(fde, 4);
    const unsigned char *rec = fde + 4, *next = rec + len;
    if (len == 0 || len == 0xffffffffUL || next > eh_end)
        return -1;
    unsigned long id = get(rec, 4);
    const unsigned char *cie = rec - id;
    int enc = id == 0 || cie < p0 ? -1 : cie_encoding(cie, eh_end);
    if (enc < 0)
        return -1;
    const unsigned char *q = rec + 4;
    *start = read_enc(enc, &q, next);
    if (!q)
        return -1;
    *end = *start + read_enc(enc & 0x0f, &q, next);
    return q && *end > *start ? 0 : -1;
}

/* With .eh_frame_hdr's table (sorted by function start; the common encoding,
 * datarel sdata4): a binary search instead of a walk of every FDE, which in
 * a process that lives a few milliseconds (a fork child, a short exec) costs
 * more than the calls the patch saves.  0: found; 1: no usable table, or a
 * case the walk answers (the site is in no function the table starts, or
 * nested ones): walk. */
static int func_from_table(const struct object *o, unsigned long site, struct func *f)
{
    const unsigned char *h = (const unsigned char *)o->ehh, *h_end = h + o->ehh_size;
    if (!h || o->ehh_size < 12 || h[0] != 1 || h[2] != 0x03 /* udata4 */ || h[3] != 0x3b /* datarel sdata4 */)
        return 1;
    const unsigned char *q = h + 4;
    read_enc(h[1], &q, h_end); /* eh_frame_ptr */
    if (!q || q + 4 > h_end)
        return 1;
    unsigned long count = get(q, 4);
    const unsigned char *tab = q + 4;
    if (count == 0 || count > (unsigned long)(h_end - tab) / 8)
        return 1;
#define ENTRY_START(i) ((unsigned long)h + (unsigned long)(long)(int32_t)get(tab + 8 * (i), 4))
    unsigned long lo = 0, hi = count; /* the last entry starting at or before the site */
    while (hi - lo > 1) {
        unsigned long mid = lo + (hi - lo) / 2;
        if (ENTRY_START(mid) <= site)
            lo = mid;
        else
            hi = mid;
    }
    unsigned long start, end;
    const unsigned char *fde = h + (long)(int32_t)get(tab + 8 * lo + 4, 4);
    if (ENTRY_START(lo) > site || fde_range(o, fde, &start, &end) < 0 || start != ENTRY_START(lo) ||
        site >= end)
        return 1;
    if (lo > 0) { /* the one before must end before the site: else overlapping FDEs, the walk's case */
        unsigned long pstart, pend;
        const unsigned char *prev = h + (long)(int32_t)get(tab + 8 * (lo - 1) + 4, 4);
        if (fde_range(o, prev, &pstart, &pend) < 0 || pend > site)
            return 1;
    }
    unsigned long i = lo + 1;
    while (i < count && ENTRY_START(i) <= site)
        i++;
    f->start = start;
    f->end = end;
    f->next = i < count ? ENTRY_START(i) : 0;
    if (f->next && f->next < f->end)
        return 1; /* nested: the walk's answer */
#undef ENTRY_START
    return 0;
}

/* Walk .eh_frame's FDEs once: the one holding *site*, and the nearest
 * function start after the site (the next function, functions not
 * overlapping). */
static int func_from_eh(const struct object *o, unsigned long site, struct func *f)
{
    if (func_from_table(o, site, f) == 0)
        return 0;
    const unsigned char *p0 = (const unsigned char *)o->eh, *end = p0 + o->eh_size;
    f->start = f->end = 0;
    f->next = ~0UL;
    const unsigned char *cie_at = 0;
    int enc = -1;
    for (const unsigned char *p = p0; p + 8 <= end;) {
        unsigned long len = get(p, 4);
        if (len == 0 || len == 0xffffffffUL)
            break;
        const unsigned char *rec = p + 4, *next = rec + len;
        if (next > end)
            break;
        p = next;
        unsigned long id = get(rec, 4);
        if (id == 0)
            continue; /* a CIE */
        const unsigned char *cie = rec - id;
        if (cie != cie_at) {
            cie_at = cie;
            enc = cie < p0 ? -1 : cie_encoding(cie, end);
        }
        if (enc < 0)
            continue;
        const unsigned char *q = rec + 4;
        unsigned long begin = read_enc(enc, &q, next);
        if (!q)
            continue;
        unsigned long range = read_enc(enc & 0x0f, &q, next);
        if (!q || range == 0)
            continue;
        if (begin <= site && site < begin + range) {
            f->start = begin;
            f->end = begin + range;
        } else if (begin > site && begin < f->next) {
            f->next = begin;
        }
    }
    if (!f->start)
        return -1;
    if (f->next == ~0UL || f->next < f->end)
        f->next = 0;
    return 0;
}

/* The same from the symbol table in the file (STT_FUNC with a size). */
static int func_from_symtab(const struct object *o, unsigned long site, struct func *f)
{
    long fd = H3(__NR_openat, -100, o->path, 02000000);
    if (fd < 0)
        return -1;
    unsigned long v = site - o->bias;
    f->start = f->end = 0;
    f->next = ~0UL;
    for (int pass = 0; pass < 2; pass++) {
        const unsigned long chunk = (sizeof st->buf / 24) * 24;
        for (unsigned long off = 0; off < o->symsize; off += chunk) {
            unsigned long n = o->symsize - off < chunk ? o->symsize - off : chunk;
            if (pread_all(fd, st->buf, n, o->symoff + off) < 0)
                break;
            for (unsigned long i = 0; i + 24 <= n; i += 24) {
                const unsigned char *s = (const unsigned char *)st->buf + i;
                unsigned long value = get(s + 8, 8), size = get(s + 16, 8);
                if ((s[4] & 0xf) != 2 /* STT_FUNC */ || size == 0)
                    continue;
                if (pass == 0 && value <= v && v < value + size) {
                    f->start = value;
                    f->end = value + size;
                } else if (pass == 1 && value >= f->end && value < f->next) {
                    f->next = value;
                }
            }
        }
        if (!f->start)
            break;
    }
    H1(__NR_close, fd);
    if (!f->start)
        return -1;
    f->start += o->bias;
    f->end += o->bias;
    f->next = f->next == ~0UL ? 0 : f->next + o->bias;
    return 0;
}

/* --- the walk ------------------------------------------------------------ */

struct pad {
    unsigned long start, end;
    int inside; /* within the function (checked against branch targets) */
};

struct walk {
    int at_sys, at5, at7; /* instruction starts at site, site-5, site-7 */
    uint64_t before;      /* bit d-1: an instruction starts at site-d (d = 1..64) */
    int indirect;         /* the function has an indirect jmp */
    int n_targets;        /* -1: too many to keep */
    int n_pads;
    struct pad pads[MAX_PADS];
};

static struct gap *gap_at(unsigned long start)
{
    for (unsigned int i = 0; i < st->n_gaps; i++)
        if (st->gaps[i].start == start)
            return &st->gaps[i];
    return 0;
}

static int in_tramp_page(unsigned long a)
{
    for (unsigned int i = 0; i < st->n_pages; i++)
        if (a >= st->pages[i].base && a < st->pages[i].base + PAGE)
            return 1;
    return 0;
}

/* A jump ABOM wrote: to a trampoline, or to padding it took. */
static int is_ours(unsigned long target)
{
    if (in_tramp_page(target))
        return 1;
    for (unsigned int i = 0; i < st->n_gaps; i++)
        if (target >= st->gaps[i].start && target < st->gaps[i].end)
            return 1;
    return 0;
}

static void add_pad(struct walk *w, unsigned long start, unsigned long end, int inside)
{
    if (end - start >= 5 && w->n_pads < MAX_PADS)
        w->pads[w->n_pads++] = (struct pad){start, end, inside};
}

/* Decode [f->start, f->end) and the padding up to f->next.  Padding ABOM
 * took is skipped as the padding it was; sites it rewrote decode as
 * instructions of the lengths they had. */
static int walk(const struct func *f, unsigned long site, struct walk *w)
{
    xc_memset(w, 0, sizeof *w);
    unsigned long a = f->start, pad_start = 0;
    int after_flow_end = 0;
    while (a < f->end) {
        struct gap *g = gap_at(a);
        if (g) {
            add_pad(w, g->start, g->end, 1);
            a = g->end;
            after_flow_end = 1;
            continue;
        }
        const uint8_t *p = (const uint8_t *)a;
        int len = xc_insn_len(p, (int)(f->end - a < 15 ? f->end - a : 15));
        if (len <= 0)
            return -1;
        if (a == site)
            w->at_sys = len == 2 && p[0] == 0x0f && p[1] == 0x05;
        if (a == site - 5)
            w->at5 = 1;
        if (a == site - 7)
            w->at7 = 1;
        if (a < site && site - a <= 64)
            w->before |= 1ULL << (site - a - 1);
        unsigned long t = xc_insn_branch_target(p, len, a);
        int ours = t && is_ours(t);
        if (ours && a == site)
            w->at_sys = len == 2 && p[0] == 0xeb; /* patched already */
        if (t && !ours) {
            if (w->n_targets >= 0 && w->n_targets < MAX_TARGETS)
                st->targets[w->n_targets++] = t;
            else
                w->n_targets = -1;
        }
        if (xc_insn_is_indirect_jmp(p, len))
            w->indirect = 1;
        int padding = xc_insn_is_padding(p, len);
        if (padding && after_flow_end) {
            if (!pad_start)
                pad_start = a;
        } else {
            if (pad_start)
                add_pad(w, pad_start, a, 1);
            pad_start = 0;
            after_flow_end = !ours && xc_insn_ends_flow(p, len);
        }
        a += (unsigned long)len;
    }
    if (a != f->end)
        return -1;
    if (pad_start)
        add_pad(w, pad_start, a, 1);
    /* Between this function and the next: all padding, or not used. */
    if (f->next > f->end && f->next - f->end <= 256) {
        struct gap *g = gap_at(f->end);
        if (g) {
            add_pad(w, g->start, g->end, 0);
        } else {
            while (a < f->next) {
                int len = xc_insn_len((const uint8_t *)a, (int)(f->next - a < 15 ? f->next - a : 15));
                if (len <= 0 || !xc_insn_is_padding((const uint8_t *)a, len))
                    break;
                a += (unsigned long)len;
            }
            if (a == f->next)
                add_pad(w, f->end, f->next, 0);
        }
    }
    return 0;
}

/* Five bytes of padding within a jmp rel8 from site+2, or 0. */
static unsigned long pad_slot(const struct walk *w, unsigned long site)
{
    for (int i = 0; i < w->n_pads; i++) {
        const struct pad *pd = &w->pads[i];
        struct gap *g = gap_at(pd->start);
        if (!g) {
            if (pd->inside && (w->indirect || w->n_targets < 0))
                continue;
            int hit = 0;
            for (int k = 0; pd->inside && k < w->n_targets && !hit; k++)
                hit = st->targets[k] >= pd->start && st->targets[k] < pd->end;
            if (hit || st->n_gaps == MAX_GAPS)
                continue;
        }
        unsigned long slot = g ? g->next : pd->start;
        long rel = (long)slot - (long)(site + 2);
        if (slot + 5 > pd->end || rel < -128 || rel > 127)
            continue;
        if (!g) {
            g = &st->gaps[st->n_gaps++];
            *g = (struct gap){pd->start, pd->end, pd->start};
        }
        g->next = slot + 5;
        return slot;
    }
    return 0;
}

/* --- writing ------------------------------------------------------------- */

static int near(unsigned long a, unsigned long b)
{
    long d = (long)(a - b);
    return d > -0x7fff0000L && d < 0x7fff0000L;
}

extern char _end[], xc_rw_end[]; /* (layout.ld, gate.S) */

/* Map a trampoline page at *hint* exactly (never over anything), and take
 * its first slot; 0 if that place is not free.  (Populated: the slot is
 * written next, and filling the page within the mmap costs less than a
 * page fault's exception.) */
static unsigned long tramp_page_at(unsigned long hint)
{
    long r = H6(__NR_mmap, hint, PAGE, 7 /* RWX */, 0x22 | 0x8000 /* MAP_POPULATE */ | 0x100000 /* MAP_FIXED_NOREPLACE */,
                -1, 0);
    if (XC_ERR(r))
        return 0;
    if ((unsigned long)r != hint) {
        H2(__NR_munmap, r, PAGE);
        return 0;
    }
    struct tramp_page *p = &st->pages[st->n_pages++];
    p->base = (unsigned long)r;
    p->used = 1;
    return p->base;
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
    /* First right after the LibOS's image, for code below 2 GiB (a static
     * program's): the page shares the image's page-table page, and pages
     * added there make one mapping, so a fork copies one page table and one
     * mapping fewer than for a page of their own near the code. */
    unsigned long end = (unsigned long)_end, rw_end = (unsigned long)xc_rw_end;
    unsigned long next = (((end > rw_end ? end : rw_end) + PAGE - 1) & ~(PAGE - 1)) + st->n_after_libos * PAGE;
    if (st->n_after_libos >= 0 && near(next, site) && near(next + PAGE, site)) {
        unsigned long t = tramp_page_at(next);
        st->n_after_libos = t ? st->n_after_libos + 1 : -1; /* (taken: not there again) */
        if (t)
            return t;
    }
    /* Look for free room near the site, below it first (1 MiB steps). */
    for (long step = 1; step < 1024; step++) {
        for (int dir = -1; dir <= 1; dir += 2) {
            unsigned long hint = ((site & ~0xfffffUL) + (unsigned long)(dir * step) * 0x100000UL);
            if (hint < 0x10000 || !near(hint, site))
                continue;
            unsigned long t = tramp_page_at(hint);
            if (t)
                return t;
        }
    }
    return 0;
}

/* `e9 rel32`: jmp from *at* to *to*. */
static void put_jmp(unsigned char *at, unsigned long to)
{
    at[0] = 0xe9;
    put32(at + 1, (uint32_t)((long)to - (long)(at + 5)));
}

/* Numbers patchable() keeps on the trap path, which a JUMP trampoline
 * (whose site may make any call) sends there itself. */
static const uint32_t trap_only[] = {__NR_rt_sigprocmask, __NR_rt_sigreturn, __NR_pause, __NR_sigaltstack,
                                     __NR_clone, __NR_clone3};

/* Fill a trampoline; nr < 0: JUMP, the site's number is in rax:
 *
 *     48 8d 64 24 80            lea -0x80(%rsp),%rsp
 *     9c                        pushfq
 *     3d NN NN NN NN  74 XX     cmp $n,%eax; je slow      (each of trap_only)
 *     9d                        popfq
 *     ff 14 25 SS SS SS SS      call *SLOT
 *     48 8d a4 24 80 00 00 00   lea 0x80(%rsp),%rsp
 *     e9 RR RR RR RR            jmp site+2
 * slow:
 *     9d                        popfq
 *     48 8d a4 24 80 00 00 00   lea 0x80(%rsp),%rsp
 *     0f 05                     syscall       traps with the program's registers (clone's
 *     e9 RR RR RR RR            jmp site+2    child resumes here, on its own stack)
 */
/* `movabs $v,%r11` */
static unsigned char *put_movabs_r11(unsigned char *t, unsigned long v)
{
    t[0] = 0x49;
    t[1] = 0xbb;
    for (int i = 0; i < 8; i++)
        t[2 + i] = (unsigned char)(v >> (8 * i));
    return t + 10;
}

/* Add one to the counter at *v*, leaving the flags alone (rcx, r11 are free):
 *     49 bb VV*8      movabs $v,%r11
 *     49 8b 0b        mov (%r11),%rcx
 *     48 8d 49 01     lea 1(%rcx),%rcx
 *     49 89 0b        mov %rcx,(%r11)                                      */
static unsigned char *put_count(unsigned char *t, unsigned long v)
{
    static const unsigned char inc[10] = {0x49, 0x8b, 0x0b, 0x48, 0x8d, 0x49, 0x01, 0x49, 0x89, 0x0b};
    t = put_movabs_r11(t, v);
    xc_memcpy(t, inc, sizeof inc);
    return t + sizeof inc;
}

/* getpid and getppid, once the LibOS knows the answer, straight from the
 * trampoline (no registers saved, no call; the flags untouched):
 *     put_count(patched[nr])
 *     48 a1 AA*8      movabs (answer),%rax   the answer plus one
 *     48 89 c1        mov %rax,%rcx
 *     e3 09           jrcxz full           not known (0): the full path
 *     48 8d 41 ff     lea -1(%rcx),%rax
 *     e9 RR*4         jmp site+2
 * full: ...
 * Not with a profile entry for the call or the trace on: those need the LibOS. */
static unsigned char *put_fast_answer(unsigned char *t, long nr, unsigned long back)
{
    const long *answer = xc_cached_answer(nr);
    if (!answer || !xc_stats || xc_profile_of(nr) || (xc_stats->flags & XC_FLAG_TRACE))
        return t;
    if (nr == __NR_getpid && xc_tid_off())
        return t; /* (from the gs base: put_fast_ids) */
    t = put_count(t, (unsigned long)&xc_stats->patched[nr]);
    t[0] = 0x48;
    t[1] = 0xa1;
    for (int i = 0; i < 8; i++)
        t[2 + i] = (unsigned char)((unsigned long)answer >> (8 * i));
    t += 10;
    static const unsigned char test[9] = {0x48, 0x89, 0xc1, 0xe3, 0x09, 0x48, 0x8d, 0x41, 0xff};
    xc_memcpy(t, test, sizeof test);
    t += sizeof test;
    put_jmp(t, back);
    return t + 5;
}

/* gettid and getpid from the thread's gs base (libos.c, gs_ids: the tid,
 * the pid above it), unless the program set a gs base of its own; no flag
 * changed on the way:
 *     48 a1 AA*8        movabs (tid_off),%rax
 *     48 89 c1          mov %rax,%rcx
 *     e3 02             jrcxz +2
 *     eb XX             jmp full
 *     f3 48 0f ae c8    rdgsbase %rax
 *   gettid, the low half:
 *     89 c0             mov %eax,%eax
 *   getpid, the high half (through the stack, below the red zone):
 *     48 8d 64 24 80    lea -0x80(%rsp),%rsp
 *     50                push %rax
 *     8b 44 24 04       mov 4(%rsp),%eax
 *     48 8d a4 24 88 00 00 00    lea 0x88(%rsp),%rsp
 *   then:
 *     48 89 c1          mov %rax,%rcx
 *     e3 XX             jrcxz full            0: not learnt (a gs base of the program's)
 *     put_count(patched[nr])
 *     e9 RR*4           jmp site+2
 * full: ... */
static unsigned char *put_fast_ids(unsigned char *t, long nr, unsigned long back)
{
    const long *off = xc_tid_off();
    if ((nr != __NR_gettid && nr != __NR_getpid) || !off || !xc_stats || xc_profile_of(nr) ||
        (xc_stats->flags & XC_FLAG_TRACE))
        return t;
    t[0] = 0x48;
    t[1] = 0xa1;
    for (int i = 0; i < 8; i++)
        t[2 + i] = (unsigned char)((unsigned long)off >> (8 * i));
    t += 10;
    static const unsigned char head[7] = {0x48, 0x89, 0xc1, 0xe3, 0x02, 0xeb, 0x00};
    xc_memcpy(t, head, sizeof head);
    unsigned char *to_full1 = t + 6;
    t += sizeof head;
    static const unsigned char rd[5] = {0xf3, 0x48, 0x0f, 0xae, 0xc8};
    xc_memcpy(t, rd, sizeof rd);
    t += sizeof rd;
    static const unsigned char low[2] = {0x89, 0xc0};
    static const unsigned char high[18] = {0x48, 0x8d, 0x64, 0x24, 0x80, 0x50, 0x8b, 0x44, 0x24, 0x04,
                                           0x48, 0x8d, 0xa4, 0x24, 0x88, 0x00, 0x00, 0x00};
    if (nr == __NR_gettid) {
        xc_memcpy(t, low, sizeof low);
        t += sizeof low;
    } else {
        xc_memcpy(t, high, sizeof high);
        t += sizeof high;
    }
    static const unsigned char test[4] = {0x48, 0x89, 0xc1, 0xe3};
    xc_memcpy(t, test, sizeof test);
    unsigned char *to_full2 = t + 4;
    t += sizeof test + 1;
    t = put_count(t, (unsigned long)&xc_stats->patched[nr]);
    put_jmp(t, back);
    t += 5;
    *to_full1 = (unsigned char)(t - (to_full1 + 1));
    *to_full2 = (unsigned char)(t - (to_full2 + 1));
    return t;
}

/* The argument registers rdi rsi rdx r10 r8 r9 in `lea disp32(%reg),%ecx`:
 * the REX prefix (0: none) and the ModRM byte. */
static const unsigned char arg_rex[6] = {0, 0, 0, 0x41, 0x41, 0x41};
static const unsigned char arg_modrm[6] = {0x8f, 0x8e, 0x8a, 0x8a, 0x88, 0x89};

/* lea -0x80(%rsp),%rsp and back: a trampoline that calls steps over the
 * program's red zone first. */
static const unsigned char lea_down[5] = {0x48, 0x8d, 0x64, 0x24, 0x80};
static const unsigned char lea_up[8] = {0x48, 0x8d, 0xa4, 0x24, 0x80, 0x00, 0x00, 0x00};

/* call *slot (an absolute 32-bit address), lea_up, jmp back */
static unsigned char *put_call_back(unsigned char *t, const void *slot, unsigned long back)
{
    t[0] = 0xff; /* call *abs32 */
    t[1] = 0x14;
    t[2] = 0x25;
    put32(t + 3, (uint32_t)(unsigned long)slot);
    t += 7;
    xc_memcpy(t, lea_up, 8);
    t += 8;
    put_jmp(t, back);
    return t + 5;
}

/* A call the LibOS would pass to the host unchanged (xc_direct_fds) goes
 * through a direct gate of the site's own (gate.S); no registers saved, no
 * call, the flags untouched, the stack not used.  A JUMP site, whose number
 * is only known at run time, first checks it is the one it trapped with:
 *     8d 88 NN NN NN NN   lea -nr(%rax),%ecx     (JUMP only; the kernel reads eax)
 *     e3 02               jrcxz direct
 *     eb XX               jmp full
 * direct:
 *     8d 8f 82 ff ff ff   lea -126(%rdi),%ecx    for each fd argument (here the
 *     e3 XX               jrcxz full             first): the LibOS's own fds,
 *     8d 8f 81 ff ff ff   lea -127(%rdi),%ecx    126 and 127, are the LibOS's
 *     e3 XX               jrcxz full             to answer (EBADF)
 *     put_count(patched[nr])
 *     b8 NN NN NN NN      mov $nr,%eax           (not for JUMP: eax holds it)
 *     ff 25 00 00 00 00   jmp *0(%rip)           to the gate, whose `syscall` the
 *     GG GG GG GG GG GG GG GG                    filter allows; it jumps back to site+2
 *     8b 0e               mov (%rsi),%ecx        openat: a path that
 *     8d 89 d1 8f 90 90   lea -"/pro"(%rcx),%ecx starts "/pro" or "/dev" is the
 *     e3 XX               jrcxz full             LibOS's to look at (its own fds,
 *     8b 0e ... 8d 89 -"/dev" ... e3 XX          /proc/self/exe); a fault on the
 *                                                load goes on at full (guards)
 *     0f b6 ca            movzbl %dl,%ecx        openat: flags that ask for write
 *     0f b6 89 TT TT TT TT movzbl T(%rcx),%ecx   access (low byte: the access mode)
 *     e3 XX               jrcxz full             or O_TRUNC (second byte) are the
 *     0f b6 ce            movzbl %dh,%ecx        LibOS's to look at (running.c); T
 *     0f b6 89 TT+256 ... movzbl T+256(%rcx),%ecx is xc_open_writes, 0 where
 *     e3 XX               jrcxz full             they do
 *
 * newfstatat (XC_DIRECT_STAT), which is statx and a conversion, calls in
 * instead of the `mov` and the jump to a gate:
 *     48 8d 64 24 80            lea -0x80(%rsp),%rsp    the red zone
 *     ff 14 25 SS SS SS SS      call *xc_abom_stat_slot  xc_abom_stat_entry (gate.S)
 *     48 8d a4 24 80 00 00 00   lea 0x80(%rsp),%rsp
 *     e9 RR RR RR RR            jmp site+2
 * full: the full trampoline.  jrcxz reads rcx whole; writing ecx cleared its
 * upper half, and an fd is an int, so only the low halves are compared. */
static unsigned char *put_direct(unsigned char *t, long nr, int jump, unsigned long back)
{
    int fds = xc_direct_fds(nr);
    int n_fds = 0;
    for (int i = 0; i < 6; i++)
        n_fds += (fds >> i) & 1;
    int path = fds >= 0 && (fds & XC_DIRECT_PATH1);
    int open2 = fds >= 0 && (fds & XC_DIRECT_OPEN2);
    int stat = fds >= 0 && (fds & XC_DIRECT_STAT);
    if (fds < 0 || n_fds > (path ? 1 : 2) || (!stat && st->n_direct >= XC_GATE_DIRECT) ||
        (path && st->n_guards + 2 > MAX_GUARDS))
        return t; /* (TRAMP_SIZE has room for two fd arguments, or one and a path) */
    unsigned char *jr[9], *guard[2];
    int n = 0;
    if (jump) {
        t[0] = 0x8d;
        t[1] = 0x88;
        put32(t + 2, (uint32_t)-nr);
        t[6] = 0xe3;
        t[7] = 0x02;
        t[8] = 0xeb;
        jr[n++] = t + 9;
        t += 10;
    }
    for (int i = 0; i < 6; i++) {
        if (!((fds >> i) & 1))
            continue;
        for (int k = 0; k < 2; k++) {
            if (arg_rex[i])
                *t++ = arg_rex[i];
            t[0] = 0x8d;
            t[1] = arg_modrm[i];
            put32(t + 2, (uint32_t)-(k ? XC_LIBOS_FD : XC_STATS_FD));
            t[6] = 0xe3;
            jr[n++] = t + 7;
            t += 8;
        }
    }
    for (int k = 0; path && k < 2; k++) {
        /* 8b 0e: mov (%rsi),%ecx (a fault: the full path); 8d 89: lea -"/pro" or -"/dev"(%rcx),%ecx */
        guard[k] = t;
        t[0] = 0x8b;
        t[1] = 0x0e;
        t[2] = 0x8d;
        t[3] = 0x89;
        put32(t + 4, (uint32_t) - (k ? 0x7665642fU : 0x6f72702fU));
        t[8] = 0xe3;
        jr[n++] = t + 9;
        t += 10;
    }
    for (int k = 0; open2 && k < 2; k++) {
        t[0] = 0x0f; /* movzbl %dl,%ecx / movzbl %dh,%ecx */
        t[1] = 0xb6;
        t[2] = k ? 0xce : 0xca;
        t[3] = 0x0f; /* movzbl disp32(%rcx),%ecx */
        t[4] = 0xb6;
        t[5] = 0x89;
        put32(t + 6, (uint32_t)((unsigned long)xc_open_writes + 256UL * (unsigned long)k));
        t[10] = 0xe3;
        jr[n++] = t + 11;
        t += 12;
    }
    if (xc_stats)
        t = put_count(t, (unsigned long)&xc_stats->patched[nr]);
    if (stat) {
        xc_memcpy(t, lea_down, 5);
        t = put_call_back(t + 5, &xc_abom_stat_slot, back);
    } else {
        if (!jump) {
            t[0] = 0xb8;
            put32(t + 1, (uint32_t)nr);
            t += 5;
        }
        unsigned int g = st->n_direct++;
        unsigned long gate = (unsigned long)xc_gate_direct + 8UL * g;
        if (g < XC_GATE_HEAD)
            xc_gate_back_head[g] = back;
        else
            xc_gate_back[g - XC_GATE_HEAD] = back;
        t[0] = 0xff;
        t[1] = 0x25;
        put32(t + 2, 0);
        t += 6;
        for (int i = 0; i < 8; i++)
            t[i] = (unsigned char)(gate >> (8 * i));
        t += 8;
    }
    for (int i = 0; i < n; i++)
        *jr[i] = (unsigned char)(t - (jr[i] + 1));
    for (int k = 0; path && k < 2; k++) {
        unsigned int g = st->n_guards;
        st->guards[g] = (struct guard){(unsigned long)guard[k], (unsigned long)t};
        __atomic_store_n(&st->n_guards, g + 1, __ATOMIC_RELEASE);
    }
    return t;
}

/* A fault at a trampoline's load of a path (put_direct): its full path, or 0. */
unsigned long xc_abom_guard(unsigned long ip)
{
    if (!st)
        return 0;
    unsigned int n = __atomic_load_n(&st->n_guards, __ATOMIC_ACQUIRE);
    for (unsigned int i = 0; i < n; i++)
        if (st->guards[i].at == ip)
            return st->guards[i].full;
    return 0;
}

/* clone with a new stack (a thread, posix_spawn's child) needs the trap
 * frame (libos.c, sys_clone): a clone site's trampoline sends it to the trap
 * path from here, and only a clone without one (fork and the like) calls in:
 *     48 89 f1         mov %rsi,%rcx    the new stack (rcx is the syscall's to clobber;
 *     e3 0c            jrcxz call       jrcxz leaves the flags alone): none, the call
 *     b8 38 00 00 00   mov $56,%eax
 *     0f 05            syscall          traps; the new thread resumes right after it,
 *     e9 RR RR RR RR   jmp site+2       on its own stack
 * call: ...                                                                    */
static unsigned char *put_clone_check(unsigned char *t, unsigned long back)
{
    static const unsigned char head[12] = {0x48, 0x89, 0xf1, 0xe3, 0x0c, 0xb8, 56, 0, 0, 0, 0x0f, 0x05};
    xc_memcpy(t, head, sizeof head);
    put_jmp(t + sizeof head, back);
    return t + sizeof head + 5;
}

/* nr < 0: a JUMP site, which trapped with *seen*.  Returns the end of what
 * it wrote (at most TRAMP_SIZE bytes in). */
static unsigned long tramp_fill(unsigned long tramp, long nr, long seen, unsigned long back)
{
    unsigned char *t = (unsigned char *)tramp, *je[6];
    if (nr >= 0) {
        t = put_fast_answer(t, nr, back);
        t = put_fast_ids(t, nr, back);
        t = put_direct(t, nr, 0, back);
        if (nr == __NR_clone)
            t = put_clone_check(t, back);
    } else {
        t = put_direct(t, seen, 1, back);
    }
    xc_memcpy(t, lea_down, 5);
    t += 5;
    if (nr >= 0) {
        t[0] = 0xb8; /* mov $nr,%eax */
        put32(t + 1, (uint32_t)nr);
        t += 5;
    } else {
        *t++ = 0x9c;
        for (int i = 0; i < 6; i++) {
            t[0] = 0x3d;
            put32(t + 1, trap_only[i]);
            t[5] = 0x74;
            je[i] = t + 6;
            t += 7;
        }
        *t++ = 0x9d;
    }
    t = put_call_back(t, &xc_abom_entry_slot, back);
    if (nr < 0) {
        for (int i = 0; i < 6; i++)
            *je[i] = (unsigned char)(t - (je[i] + 1));
        *t++ = 0x9d;
        xc_memcpy(t, lea_up, 8);
        t += 8;
        t[0] = 0x0f;
        t[1] = 0x05;
        t += 2;
        put_jmp(t, back);
        t += 5;
    }
    return (unsigned long)t;
}

/* Make [a, a+n) writable (keeping it executable), for the caller to write. */
static int open_text(unsigned long a, unsigned long n, int prot)
{
    unsigned long page = a & ~(PAGE - 1), end = (a + n + PAGE - 1) & ~(PAGE - 1);
    return H3(__NR_mprotect, page, end - page, prot | 2) < 0 ? -1 : 0;
}

static void close_text(unsigned long a, unsigned long n, int prot)
{
    unsigned long page = a & ~(PAGE - 1), end = (a + n + PAGE - 1) & ~(PAGE - 1);
    H3(__NR_mprotect, page, end - page, prot);
}

/* In a process with one thread, a rewrite is written through /proc/self/mem
 * in one go: no other thread can run those bytes meanwhile (and a signal
 * handler on this one cannot run during the call), the text keeps its
 * protection and its mapping whole (mprotect splits the mapping around each
 * page it opens, and every later fork and exit then copies and tears down
 * the pieces), and it costs a call less.  -1 where it cannot (threads, no
 * /proc): the caller opens the page and stores, as it does with threads. */
static int text_write(unsigned long at, const void *bytes, unsigned long n)
{
    if (__atomic_load_n(&st->threaded, __ATOMIC_RELAXED))
        return -1;
    long fd = H3(__NR_openat, -100, "/proc/self/mem", 02 /* O_RDWR */ | 02000000 /* O_CLOEXEC */);
    if (fd < 0)
        return -1;
    struct { const void *b; unsigned long l; } iov = {bytes, n};
    long r = H5(__NR_pwritev2, fd, &iov, 1, at, 0);
    H1(__NR_close, fd);
    return r == (long)n ? 0 : -1;
}

/* --- rewritten pages, in mappings of their own ----------------------------------
 *
 * A rewrite makes a private copy of a page of the program's text.  Written
 * in place, that copy gives the whole text mapping an anon_vma, and from then
 * on every fork copies the page-table entry of every page of the text the
 * process has touched, and every exit tears them down (a file mapping with no
 * private page is not copied: the child faults in what it uses).  Measured
 * natively (fork + _exit + waitpid of a process with 3 or 8 private pages in
 * its text): +15 us per fork with 120 pages of text mapped, +127 us with
 * 1,000; with the same pages as mappings of their own, +6 and +20 us (~2 us
 * per mapping, ~0.13 us per page-table entry copied).  So the text is cut
 * into chunks of XC_OWN_CHUNK (aligned, within the file's mapping), and the
 * first rewrite in a chunk builds the chunk's new bytes off to the side, in
 * a private mapping of the same file at the same offset (the program's
 * /proc/self/maps still names the file at every address), and moves it over
 * the old pages with one mremap: the rest of the text stays a clean file
 * mapping, and the pages change at once for every thread (no placeholder).
 * Only pages that differ from the file's are copied (the others stay the
 * page cache's).  The copy was mapped writable, so the kernel accounts it
 * (VM_ACCOUNT) and never merges it back into its clean neighbours.  Later
 * rewrites in the chunk are written in place. */
static int own_find(unsigned long lo, unsigned long hi)
{
    for (unsigned int i = 0; i < st->n_own; i++)
        if (lo < st->own[i].hi && hi > st->own[i].lo)
            return (int)i;
    return -1;
}

static void own_drop(unsigned int i)
{
    st->own[i] = st->own[--st->n_own];
}

static int page_same(const uint64_t *a, const uint64_t *b)
{
    for (unsigned long k = 0; k < PAGE / 8; k++)
        if (a[k] != b[k])
            return 0;
    return 1;
}

/* One piece of a rewrite: *n* bytes for *at*. */
struct piece {
    unsigned long at;
    const void *bytes;
    unsigned long n;
};

/* Write the pieces (in st->map, the site's mapping, with protection *prot*)
 * through a copy of their chunks moved into place.  0, or -1 where it cannot
 * (the caller writes in place): a writable text (the program may write it
 * meanwhile), its file gone or another, no room to remember the chunk. */
static int text_replace(const struct piece *p, int np, int prot)
{
    unsigned long lo = ~0UL, hi = 0;
    for (int i = 0; i < np; i++) {
        if ((p[i].at & ~(XC_OWN_CHUNK - 1)) < lo)
            lo = p[i].at & ~(XC_OWN_CHUNK - 1);
        if (((p[i].at + p[i].n + XC_OWN_CHUNK - 1) & ~(XC_OWN_CHUNK - 1)) > hi)
            hi = (p[i].at + p[i].n + XC_OWN_CHUNK - 1) & ~(XC_OWN_CHUNK - 1);
    }
    lo = lo < st->map.lo ? st->map.lo : lo;
    hi = hi > st->map.hi ? st->map.hi : hi;
    if ((prot & 2) || lo >= hi)
        return -1;
    /* with the chunks already made that it overlaps (a piece across two) */
    for (int again = 1; again;) {
        again = 0;
        for (unsigned int i = 0; i < st->n_own; i++) {
            const struct own *o = &st->own[i];
            if (lo < o->hi && hi > o->lo && (o->lo < lo || o->hi > hi)) {
                lo = o->lo < lo ? o->lo : lo;
                hi = o->hi > hi ? o->hi : hi;
                again = 1;
            }
        }
    }
    if ((lo < st->map.lo || hi > st->map.hi) || (st->n_own == MAX_OWN && own_find(lo, hi) < 0))
        return -1;
    long fd = H3(__NR_openat, -100, st->map.path, 02000000 /* O_RDONLY|O_CLOEXEC */);
    if (fd < 0)
        return -1;
    struct xc_statx sb;
    long q = -1;
    if (H5(__NR_statx, fd, "", 0x1000 /* AT_EMPTY_PATH */, 0x300U /* STATX_INO | STATX_SIZE */, &sb) == 0 &&
        sb.ino == st->map.ino && sb.size > st->map.off + (hi - st->map.lo) - PAGE)
        q = H6(__NR_mmap, 0, hi - lo, 3 /* PROT_READ|PROT_WRITE */, 2 /* MAP_PRIVATE */, fd,
               st->map.off + (lo - st->map.lo));
    H1(__NR_close, fd);
    if (XC_ERR(q))
        return -1;
    /* The pages as they are now (earlier rewrites, anything else written),
     * where they differ from the file's, then the pieces. */
    uint64_t *now = (uint64_t *)st->buf;
    for (unsigned long a = lo; a < hi; a += PAGE) {
        uint64_t *copy = (uint64_t *)(q + (a - lo));
        if (xc_user_copy(now, (const void *)a, PAGE) < 0) {
            H2(__NR_munmap, q, hi - lo);
            return -1;
        }
        if (!page_same(now, copy))
            xc_memcpy(copy, now, PAGE);
    }
    for (int i = 0; i < np; i++)
        xc_memcpy((unsigned char *)q + (p[i].at - lo), p[i].bytes, p[i].n);
    if (H3(__NR_mprotect, q, hi - lo, prot) < 0 ||
        H5(__NR_mremap, q, hi - lo, hi - lo, 3 /* MREMAP_MAYMOVE|MREMAP_FIXED */, lo) != (long)lo) {
        H2(__NR_munmap, q, hi - lo);
        return -1;
    }
    for (int i; (i = own_find(lo, hi)) >= 0;)
        own_drop((unsigned int)i);
    st->own[st->n_own++] = (struct own){lo, hi};
    return 0;
}

/* Before a fork: the file's code mapped around *lo* had sites rewritten in
 * place by the loader (xc_abom_dirty), which gave the whole mapping an
 * anon_vma.  Its chunks (XC_OWN_CHUNK, aligned, as text_replace's) that hold
 * no private page (/proc/self/pagemap: present or swapped, and not a file
 * page) are mapped again from the file, the same bytes, clean (atomic for
 * other threads, as text_replace's move); the others become chunks of their
 * own.  Under the lock. */
static void clean_text(unsigned long lo)
{
    long fd = -1, pm = -1;
    if (!find_mapping(lo) || st->map.path[0] != '/' || (st->map.prot & 2) || !(st->map.prot & 4))
        goto out;
    fd = H3(__NR_openat, -100, st->map.path, 02000000 /* O_RDONLY|O_CLOEXEC */);
    pm = H3(__NR_openat, -100, "/proc/self/pagemap", 02000000);
    struct xc_statx sb;
    if (fd < 0 || pm < 0 || H5(__NR_statx, fd, "", 0x1000 /* AT_EMPTY_PATH */, 0x300U, &sb) < 0 ||
        sb.ino != st->map.ino || sb.size <= st->map.off + (st->map.hi - st->map.lo) - PAGE)
        goto out;
    const struct mapping m = st->map;
    unsigned long clean = 0; /* start of the clean run being gathered, 0: none */
    for (unsigned long c = m.lo & ~(XC_OWN_CHUNK - 1); c < m.hi; c += XC_OWN_CHUNK) {
        unsigned long a = c < m.lo ? m.lo : c, b = c + XC_OWN_CHUNK > m.hi ? m.hi : c + XC_OWN_CHUNK;
        uint64_t *e = (uint64_t *)st->buf;
        unsigned long n = (b - a) / PAGE;
        if (pread_all(pm, e, n * 8, a / PAGE * 8) < 0)
            goto out;
        int priv = 0;
        for (unsigned long k = 0; k < n; k++)
            if ((e[k] >> 62) && !((e[k] >> 61) & 1)) /* present or swapped, not a file page */
                priv = 1;
        if (!priv && !clean)
            clean = a;
        if ((priv || b == m.hi) && clean) {
            unsigned long end = priv ? a : b;
            H6(__NR_mmap, clean, end - clean, m.prot /* (PROT_* bits) */, 0x12 /* MAP_PRIVATE|MAP_FIXED */, fd,
               m.off + (clean - m.lo));
            clean = 0;
        }
        if (priv && st->n_own < MAX_OWN)
            st->own[st->n_own++] = (struct own){a, b};
    }
out:
    if (fd >= 0)
        H1(__NR_close, fd);
    if (pm >= 0)
        H1(__NR_close, pm);
}

void xc_abom_dirty(unsigned long code)
{
    if (st && st->n_dirty < MAX_DIRTY)
        st->dirty[st->n_dirty++] = code;
}

/* A rewrite's pieces: in place through /proc/self/mem where its pages are
 * already a chunk of their own and no other thread runs (fewer calls), else
 * by text_replace; -1 if neither could (threads, no /proc, no room): the
 * caller opens the pages and stores, as it did before. */
static int text_put(const struct piece *p, int np, int prot)
{
    int owned = 1;
    for (int i = 0; i < np; i++) {
        int k = own_find(p[i].at, p[i].at + p[i].n);
        if (k < 0 || p[i].at < st->own[k].lo || p[i].at + p[i].n > st->own[k].hi)
            owned = 0;
    }
    if ((!owned || __atomic_load_n(&st->threaded, __ATOMIC_RELAXED)) && text_replace(p, np, prot) == 0)
        return 0;
    for (int i = 0; i < np; i++)
        if (text_write(p[i].at, p[i].bytes, p[i].n) < 0)
            return -1;
    return 0;
}

/* Record a site about to be rewritten behind a placeholder (under the lock;
 * readers in signal handlers see the entry before the count). */
static void hold(struct held h)
{
    unsigned int n = st->n_held;
    st->held[n] = h;
    __atomic_store_n(&st->n_held, n + 1, __ATOMIC_RELEASE);
}

static int patch_mov(unsigned long mov, unsigned long sys, long nr, int prot)
{
    unsigned long tramp = tramp_slot(mov);
    if (!tramp)
        return XC_ABOM_NO_ROOM;
    tramp_fill(tramp, nr, nr, sys + 2);
    unsigned char rel[4];
    put32(rel, (uint32_t)((long)tramp - (long)(mov + 5)));
    unsigned char jmp5[5] = {0xe9, rel[0], rel[1], rel[2], rel[3]};
    if (text_put(&(struct piece){mov, jmp5, sizeof jmp5}, 1, prot) == 0)
        return sys - mov == 5 ? XC_ABOM_MOV32 : XC_ABOM_MOV64;
    if (open_text(mov, 8, prot) < 0)
        return XC_ABOM_PROTECT;
    if ((mov & 63) == 63) {
        /* Only the first byte in this line: `f4` there, then rel32 (the next
         * line's first four bytes, one aligned store), then `e9`. */
        hold((struct held){mov, tramp, nr, 1});
        __atomic_store_n((unsigned char *)mov, (unsigned char)0xf4, __ATOMIC_SEQ_CST);
        uint32_t r32;
        xc_memcpy(&r32, rel, 4);
        __atomic_store_n((uint32_t *)(mov + 1), r32, __ATOMIC_SEQ_CST);
        __atomic_store_n((unsigned char *)mov, (unsigned char)0xe9, __ATOMIC_SEQ_CST);
    } else if ((mov & 63) <= 56) {
        /* One atomic 8-byte store: e9 rel32 + the three bytes that follow. */
        uint64_t neu = *(volatile uint64_t *)mov;
        *(unsigned char *)&neu = 0xe9;
        xc_memcpy((unsigned char *)&neu + 1, rel, 4);
        __atomic_store_n((uint64_t *)mov, neu, __ATOMIC_SEQ_CST);
    } else {
        /* Across two cache lines: `0f 05` over the first two bytes (a thread
         * arriving there traps, and xc_abom_held() makes that trap the
         * site's call), then the last three, then `e9 rel[0]` over the first
         * two.  No thread ever starts an instruction inside the mov. */
        hold((struct held){mov + 2, sys + 2, nr, 0});
        __atomic_store_n((uint16_t *)mov, (uint16_t)0x050f, __ATOMIC_SEQ_CST);
        for (int i = 1; i < 4; i++)
            __atomic_store_n((unsigned char *)mov + 1 + i, rel[i], __ATOMIC_SEQ_CST);
        __atomic_store_n((uint16_t *)mov, (uint16_t)(0xe9 | rel[0] << 8), __ATOMIC_SEQ_CST);
    }
    close_text(mov, 8, prot);
    return sys - mov == 5 ? XC_ABOM_MOV32 : XC_ABOM_MOV64;
}

/* A trap at a `0f 05` placeholder of patch_mov: the site's number and where
 * the site's syscall ends; 0 if *call_addr* is not one. */
XC_HOT unsigned long xc_abom_held(unsigned long call_addr, long *nr)
{
    if (!st)
        return 0;
    unsigned int n = __atomic_load_n(&st->n_held, __ATOMIC_ACQUIRE);
    for (unsigned int i = 0; i < n; i++) {
        if (!st->held[i].hlt && st->held[i].call_addr == call_addr) {
            *nr = st->held[i].nr;
            return st->held[i].resume;
        }
    }
    return 0;
}

/* A fault at an `f4` placeholder (xc_fault_handler): the site's trampoline,
 * where the thread goes on as if the jump were already written; 0 if *ip* is
 * not one. */
unsigned long xc_abom_held_fault(unsigned long ip)
{
    if (!st)
        return 0;
    unsigned int n = __atomic_load_n(&st->n_held, __ATOMIC_ACQUIRE);
    for (unsigned int i = 0; i < n; i++)
        if (st->held[i].hlt && st->held[i].call_addr == ip)
            return st->held[i].resume;
    return 0;
}

static int patch_jump(unsigned long sys, unsigned long slot, long nr, int prot)
{
    unsigned long tramp = tramp_slot(sys);
    if (!tramp)
        return XC_ABOM_NO_ROOM;
    tramp_fill(tramp, -1, nr, sys + 2);
    unsigned char jmp5[5], jmp2[2] = {0xeb, (unsigned char)(slot - (sys + 2))};
    put_jmp(jmp5, tramp - slot + (unsigned long)jmp5); /* e9 rel32 as it will sit at slot */
    const struct piece both[2] = {{slot, jmp5, sizeof jmp5}, {sys, jmp2, sizeof jmp2}};
    st->last_slot = slot;
    if (text_put(both, 2, prot) == 0)
        return XC_ABOM_JUMP;
    if (open_text(slot, 5, prot) < 0)
        return XC_ABOM_PROTECT;
    put_jmp((unsigned char *)slot, tramp); /* padding: nothing runs it yet */
    close_text(slot, 5, prot);
    if (open_text(sys, 2, prot) < 0)
        return XC_ABOM_PROTECT;
    unsigned char rel8 = (unsigned char)(slot - (sys + 2));
    if ((sys & 63) == 63) {
        /* across two cache lines: `f4`, then rel8 (the next line's first byte), then `eb` */
        hold((struct held){sys, tramp, nr, 1});
        __atomic_store_n((unsigned char *)sys, (unsigned char)0xf4, __ATOMIC_SEQ_CST);
        __atomic_store_n((unsigned char *)sys + 1, rel8, __ATOMIC_SEQ_CST);
        __atomic_store_n((unsigned char *)sys, (unsigned char)0xeb, __ATOMIC_SEQ_CST);
    } else {
        __atomic_store_n((uint16_t *)sys, (uint16_t)(0xeb | rel8 << 8), __ATOMIC_SEQ_CST);
    }
    close_text(sys, 2, prot);
    return XC_ABOM_JUMP;
}

static uint32_t imm32(unsigned long a)
{
    const volatile unsigned char *p = (const volatile unsigned char *)a;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* APART: the `mov $nr,%eax` a site's number comes from, a few instructions
 * before it (glibc's start-up: `mov $0x111,%eax; movq %rdi,%xmm0;
 * punpcklqdq ...; movups %xmm0,0x2d8(%rbx); syscall`).  The mov is the
 * nearest instruction start whose bytes are `b8 imm32`, and every
 * instruction between it and the syscall runs the same anywhere and leaves
 * eax alone (xc_insn_movable).  The five bytes of the mov become `e9 rel32`
 * to a trampoline that does the mov, a copy of those instructions, then the
 * site's call; the bytes after the mov stay: a jump into them runs them as
 * before and traps at the untouched syscall.  Its address; 0 if there is
 * none; 1 if the site is rewritten so already (it trapped from a jump past
 * its mov). */
#define APART_MAX 40 /* bytes from the mov to the syscall: with TRAMP_SIZE's widest call path, 174 */
static unsigned long apart_mov(const struct walk *w, unsigned long sys, long nr)
{
    unsigned long next = sys; /* where the instruction looked at ends */
    for (unsigned long d = 1; d <= APART_MAX && d <= 64; d++) {
        if (!((w->before >> (d - 1)) & 1))
            continue;
        unsigned long a = sys - d;
        const uint8_t *p = (const uint8_t *)a;
        int len = (int)(next - a);
        if (len > 15 || xc_insn_len(p, len) != len || gap_at(a))
            return 0;
        if (len == 5 && p[0] == 0xe9 && in_tramp_page(a + 5 + (unsigned long)(long)(int32_t)imm32(a + 1)))
            return 1;
        if (len == 5 && p[0] == 0xb8)
            return d > 5 && imm32(a + 1) == (uint32_t)nr ? a : 0;
        if (!xc_insn_movable(p, len))
            return 0;
        next = a;
    }
    return 0;
}

/* The same check from the mov forward, for the loader (sitecache.c): a
 * `mov $nr,%eax` at *mov*, then only movable instructions up to *sys*, its
 * `0f 05`. */
int xc_abom_apart_ok(unsigned long mov, unsigned long sys, long nr)
{
    const uint8_t *m = (const uint8_t *)mov;
    if (sys <= mov + 5 || sys - mov > APART_MAX || m[0] != 0xb8 || imm32(mov + 1) != (uint32_t)nr ||
        ((const uint8_t *)sys)[0] != 0x0f || ((const uint8_t *)sys)[1] != 0x05)
        return 0;
    unsigned long a = mov + 5;
    while (a < sys) {
        int len = xc_insn_len((const uint8_t *)a, (int)(sys - a < 15 ? sys - a : 15));
        if (len <= 0 || !xc_insn_movable((const uint8_t *)a, len))
            return 0;
        a += (unsigned long)len;
    }
    return a == sys;
}

/* An APART trampoline: the mov, the instructions after it, then the call
 * path of a mov site (tramp_fill), back after the syscall. */
static unsigned long tramp_fill_apart(unsigned long tramp, unsigned long mov, unsigned long sys, long nr)
{
    unsigned char *t = (unsigned char *)tramp;
    t[0] = 0xb8;
    put32(t + 1, (uint32_t)nr);
    xc_memcpy(t + 5, (const void *)(mov + 5), sys - mov - 5);
    return tramp_fill(tramp + (sys - mov), nr, nr, sys + 2);
}

static int patch_apart(unsigned long mov, unsigned long sys, long nr, int prot)
{
    if ((mov & 63) > 56 && st->n_held == MAX_HELD)
        return XC_ABOM_CACHE_LINE;
    unsigned long tramp = tramp_slot(mov);
    if (!tramp)
        return XC_ABOM_NO_ROOM;
    tramp_fill_apart(tramp, mov, sys, nr);
    st->last_slot = mov;
    unsigned char jmp5[5];
    put_jmp(jmp5, tramp - mov + (unsigned long)jmp5); /* e9 rel32 as it will sit at mov */
    if (text_put(&(struct piece){mov, jmp5, sizeof jmp5}, 1, prot) == 0)
        return XC_ABOM_APART;
    if (open_text(mov, 8, prot) < 0)
        return XC_ABOM_PROTECT;
    if ((mov & 63) <= 56) {
        /* One atomic 8-byte store: e9 rel32 + the three bytes that follow. */
        uint64_t neu = *(volatile uint64_t *)mov;
        xc_memcpy(&neu, jmp5, sizeof jmp5);
        __atomic_store_n((uint64_t *)mov, neu, __ATOMIC_SEQ_CST);
    } else {
        /* Across two cache lines: `f4` first (a thread arriving at the mov
         * faults, and goes on at the trampoline: xc_abom_held_fault), then
         * the four bytes of rel32, then `e9`. */
        hold((struct held){mov, tramp, nr, 1});
        __atomic_store_n((unsigned char *)mov, (unsigned char)0xf4, __ATOMIC_SEQ_CST);
        for (int i = 1; i < 5; i++)
            __atomic_store_n((unsigned char *)mov + i, jmp5[i], __ATOMIC_SEQ_CST);
        __atomic_store_n((unsigned char *)mov, (unsigned char)0xe9, __ATOMIC_SEQ_CST);
    }
    close_text(mov, 8, prot);
    return XC_ABOM_APART;
}

/* Decide for the site whose `syscall` is at *sys* and write the rewrite;
 * -1 if another thread did meanwhile. */
/* The object already known to hold *sys*, as st->map, without reading
 * /proc/self/maps again (the LibOS sees every munmap, mremap and MAP_FIXED
 * mmap, which mark what they touch as gone: xc_abom_forget). */
static int known_mapping(unsigned long sys)
{
    for (unsigned int i = 0; i < st->n_objects; i++) {
        const struct object *o = &st->objects[i];
        if (!o->gone && !o->failed && sys >= o->lo && sys < o->hi) {
            st->map.lo = o->lo;
            st->map.hi = o->hi;
            st->map.off = o->off;
            st->map.ino = o->ino;
            st->map.prot = o->prot;
            xc_memcpy(st->map.path, o->path, sizeof st->map.path);
            return 1;
        }
    }
    return 0;
}

/* Whether ABOM already read the object holding *sys* (its mapping, headers
 * and unwind table), so that a decision there costs little. */
static int site_object_known(unsigned long sys)
{
    unsigned int n = __atomic_load_n(&st->n_objects, __ATOMIC_RELAXED);
    for (unsigned int i = 0; i < n; i++) {
        const struct object *o = &st->objects[i];
        if (!o->gone && !o->failed && sys >= o->lo && sys < o->hi)
            return 1;
    }
    return 0;
}

void xc_abom_forget(unsigned long addr, unsigned long len)
{
    if (!st)
        return;
    for (unsigned int i = 0; i < st->n_objects; i++) {
        struct object *o = &st->objects[i];
        if (addr < o->hi && addr + len > o->lo)
            __atomic_store_n(&o->gone, 1, __ATOMIC_RELEASE);
    }
    for (int i; (i = own_find(addr, addr + len)) >= 0;)
        own_drop((unsigned int)i);
}

static int decide(long nr, unsigned long sys, struct object **op)
{
    if (!patchable(nr) && !(xc_stats && (xc_stats->flags & XC_FLAG_TRACE)))
        return XC_ABOM_SPECIAL; /* (the trace names the site's file: look it up then) */
    if (!(known_mapping(sys) || find_mapping(sys)) || !(st->map.prot & 4) || st->map.path[0] != '/' || st->map.ino == 0 ||
        (sys >= (unsigned long)XC_LIBOS_BASE && sys < (unsigned long)XC_LIBOS_BASE + 0x1000000))
        return patchable(nr) ? XC_ABOM_NOT_FILE : XC_ABOM_SPECIAL;
    struct object *o = *op = object_of(&st->map);
    if (!patchable(nr))
        return XC_ABOM_SPECIAL;
    const volatile unsigned char *s = (const volatile unsigned char *)sys;
    int room = sys - 7 >= st->map.lo;
    if (s[0] != 0x0f || s[1] != 0x05 || (room && s[-5] == 0xe9 && in_tramp_page(sys + (unsigned long)(long)(int32_t)imm32(sys - 4))) ||
        (room && s[-7] == 0xe9 && in_tramp_page(sys - 2 + (unsigned long)(long)(int32_t)imm32(sys - 6))))
        return -1;
    struct func f;
    if (!o || (o->eh ? func_from_eh(o, sys, &f) : func_from_symtab(o, sys, &f)) < 0 ||
        f.start < st->map.lo || f.end > st->map.hi)
        return XC_ABOM_NO_FUNCTION;
    if (f.next > st->map.hi)
        f.next = 0; /* not in this mapping: no padding after the function */
    struct walk w;
    if (walk(&f, sys, &w) < 0)
        return XC_ABOM_UNDECODABLE;
    if (!w.at_sys)
        return XC_ABOM_NOT_BOUNDARY;
    int prot = st->map.prot;
    /* The two mov forms; a refusal of them is the answer if JUMP fails too. */
    int why = XC_ABOM_NO_GAP;
    int mov32 = room && s[-5] == 0xb8, mov64 = room && s[-7] == 0x48 && s[-6] == 0xc7 && s[-5] == 0xc0;
    if (mov32 || mov64) {
        unsigned long mov = sys - (mov32 ? 5 : 7);
        if (!(mov32 ? w.at5 : w.at7))
            why = XC_ABOM_NOT_BOUNDARY;
        else if (imm32(sys - 4) != (uint32_t)nr)
            why = XC_ABOM_IMM_MISMATCH;
        else if ((mov & 63) > 56 && st->n_held == MAX_HELD)
            why = XC_ABOM_CACHE_LINE; /* across two lines, and no room to hold one more site */
        else
            return patch_mov(mov, sys, nr, prot);
    }
    if ((sys & 63) == 63 && st->n_held == MAX_HELD)
        return XC_ABOM_CACHE_LINE;
    unsigned long slot = pad_slot(&w, sys);
    if (slot)
        return patch_jump(sys, slot, nr, prot);
    unsigned long mov = why == XC_ABOM_NO_GAP || why == XC_ABOM_NOT_BOUNDARY ? apart_mov(&w, sys, nr) : 0;
    if (mov == 1) {
        /* rewritten so already: control comes in past the mov, here to trap
         * each time; not looked at again */
        site_state(sys, 0, 1);
        return -1;
    }
    return mov ? patch_apart(mov, sys, nr, prot) : why;
}

/* fork: the child gets a copy of this state, which should not be
 * mid-change; if the lock stays taken (by this very thread, interrupted),
 * the child just never patches. */
/* A fork child's first trap at a site: tell its parent, which rewrites the
 * site before it forks again (learn_child_sites), so that its next children
 * find it patched.  A child lives too short for its own traps to pay for a
 * rewrite (glibc's fork child calls set_robust_list, then execve or _exit:
 * three traps, where the parent itself never calls at those sites).  The
 * ring is in the statistics segment, shared by the container's processes. */
static void child_site(unsigned long sys, long nr)
{
    long parent = __atomic_load_n(&st->forker, __ATOMIC_RELAXED);
    if (!parent || !xc_stats || !patchable(nr) || xc_getpid() == parent)
        return;
    uint64_t i = __atomic_fetch_add(&xc_stats->child_sites_next, 1, __ATOMIC_RELAXED) % XC_CHILD_SITES;
    __atomic_store_n(&xc_stats->child_sites[i][1], (uint64_t)sys | (uint64_t)nr << 48, __ATOMIC_RELAXED);
    __atomic_store_n(&xc_stats->child_sites[i][0], (uint64_t)parent, __ATOMIC_RELEASE);
}

/* Before a fork: rewrite the sites this process's children reported.  Each
 * entry is taken once (its pid cleared); decide() checks the site as for a
 * trap (a stale or forged entry can only name a site that is one). */
XC_HOT static void learn_child_sites(long me)
{
    uint64_t next = __atomic_load_n(&xc_stats->child_sites_next, __ATOMIC_ACQUIRE);
    if (next == st->child_seen || !try_lock())
        return;
    st->child_seen = next;
    for (int i = 0; i < XC_CHILD_SITES; i++) {
        uint64_t *e = xc_stats->child_sites[i], who = (uint64_t)me;
        if (__atomic_load_n(&e[0], __ATOMIC_ACQUIRE) != who)
            continue;
        uint64_t v = __atomic_load_n(&e[1], __ATOMIC_RELAXED);
        if (!__atomic_compare_exchange_n(&e[0], &who, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            continue;
        unsigned long sys = v & ((1UL << 48) - 1);
        long nr = (long)(v >> 48);
        if (was_refused(sys) || in_tramp_page(sys))
            continue;
        struct object *o = 0;
        int verdict_ = decide(nr, sys, &o);
        if (verdict_ >= 0)
            verdict(sys, nr, verdict_, o);
    }
    unlock();
}

XC_HOT void xc_abom_fork_begin(void)
{
    if (!st)
        return;
    long me = xc_getpid();
    if (st->forker != me)
        st->forker = me;
    /* (A process that never forks never pays for the cleaning.) */
    if (st->n_dirty && try_lock()) {
        while (st->n_dirty)
            clean_text(st->dirty[--st->n_dirty]);
        unlock();
    }
    if (xc_stats)
        learn_child_sites(me);
    /* One thread, not interrupted mid-patch: nothing can be mid-change, and
     * neither parent nor child writes to these pages (no copy of them). */
    if (!__atomic_load_n(&st->threaded, __ATOMIC_RELAXED) && !__atomic_load_n(&st->lock, __ATOMIC_RELAXED))
        return;
    int locked = 0;
    for (int i = 0; i < 1000 && !(locked = try_lock()); i++)
        H0(__NR_sched_yield);
    if (locked)
        st->fork_locked = 1; /* under the lock: ours to set */
}

/* Before a thread (or a child sharing the memory) is made: from now on
 * another thread may be patching when this process forks. */
void xc_abom_threads(void)
{
    if (st && !st->threaded)
        st->threaded = 1;
}

/* Whether the process may have another thread (one that could fork and exec
 * while this one holds an fd that is not close-on-exec). */
XC_HOT int xc_abom_threaded(void)
{
    return !st || __atomic_load_n(&st->threaded, __ATOMIC_RELAXED);
}

XC_HOT void xc_abom_fork_end(void)
{
    if (st && st->fork_locked) {
        st->fork_locked = 0;
        unlock();
    }
}

/* Called from the trap handler for a call at *call_addr* (after its syscall).
 * A site is looked at once it has trapped what its rewrite costs: most of a
 * short-lived process's sites run once or a few times (start-up, a fork
 * child's exit, an exec), and a trap costs ~3-5 us here, while looking at a
 * site costs ~10-30 us in an object ABOM already read, and ~100 us or more
 * at the first site of an object (its mappings, headers and unwind table,
 * walked whole when it has no .eh_frame_hdr, as static binaries do): its
 * ABOM_TRAPS_KNOWN-th trap, or ABOM_TRAPS_NEW-th.  (A rule of the
 * ski-rental kind: a process never pays more than about twice what the
 * best choice in hindsight would have cost it.) */
#define ABOM_TRAPS_KNOWN 2
#define ABOM_TRAPS_NEW 4
void xc_abom_try(long nr, unsigned long call_addr)
{
    unsigned long sys = call_addr - 2;
    if (in_tramp_page(sys))
        return;
    int traps = site_state(sys, 1, 0), learn = 0;
    if (traps == 1) {
        child_site(sys, nr);
        learn = xc_site_cache_trap(sys, nr); /* (sitecache.c: trapped in enough processes) */
    }
    if (traps == SITE_REFUSED ||
        (!learn && traps < (site_object_known(sys) ? ABOM_TRAPS_KNOWN : ABOM_TRAPS_NEW)) || !try_lock()) {
        if (learn)
            xc_site_cache_learnt(sys, nr, -1, 0, 0, 0, 0, 0);
        return;
    }
    struct object *o = 0;
    st->last_slot = 0;
    int v = was_refused(sys) ? -1 : decide(nr, sys, &o);
    if (v >= 0)
        verdict(sys, nr, v, o);
    if (learn)
        xc_site_cache_learnt(sys, nr, v, v == XC_ABOM_JUMP || v == XC_ABOM_APART ? st->last_slot : 0,
                             o ? o->lo : 0, o ? o->hi : 0, o ? o->bias : 0, o ? o->ino : 0);
    unlock();
}

/* A trampoline for a site the loader rewrites: in the rest of the code's
 * last page (*room*) while it lasts, else where ABOM puts its own. */
static unsigned long loaded_tramp(unsigned long near_to, unsigned long *room, unsigned long room_end)
{
    if (*room && *room + TRAMP_SIZE <= room_end && near(*room, near_to) && near(*room + TRAMP_SIZE, near_to)) {
        *room += TRAMP_SIZE; /* (no mapping of its own) */
        return *room - TRAMP_SIZE;
    }
    return tramp_slot(near_to);
}

/* The trampoline at *tramp* ends at *end*: one taken from the room gives
 * back what it did not use (most take 30-110 bytes of TRAMP_SIZE's 192), so
 * that more fit in the code's last page and fewer processes map a page of
 * trampolines (a mapping every fork copies).  16-byte aligned, as a slot. */
static void loaded_tramp_end(unsigned long tramp, unsigned long end, unsigned long *room)
{
    if (*room == tramp + TRAMP_SIZE)
        *room = (end + 15) & ~15UL;
}

/* The loader (sitecache.c): a site another process of the container had
 * rewritten, in a file mapped again, its bytes checked; the code is still
 * writable and no other thread runs.  The same trampoline as patch_mov's,
 * or with *apart* as patch_apart's. */
int xc_abom_patch_loaded(unsigned long mov, unsigned long sys, long nr, int apart, unsigned long *room,
                         unsigned long room_end)
{
    if (!st)
        return -1;
    unsigned long tramp = loaded_tramp(mov, room, room_end);
    if (!tramp)
        return -1;
    loaded_tramp_end(tramp,
                     apart ? tramp_fill_apart(tramp, mov, sys, nr) /* (xc_abom_apart_ok checked its bytes) */
                           : tramp_fill(tramp, nr, nr, sys + 2),
                     room);
    put_jmp((unsigned char *)mov, tramp); /* e9 rel32 over the mov */
    return 0;
}

/* The same for a jump site (patch_jump's rewrite).  The slot is not noted
 * as taken padding (st->gaps: a page of its own, at every exec): a walk of
 * the function later takes the `jmp rel8` at the site for a branch into the
 * padding there, which it then never hands out. */
int xc_abom_patch_loaded_jump(unsigned long sys, unsigned long slot, long nr, unsigned long *room,
                              unsigned long room_end)
{
    if (!st)
        return -1;
    unsigned long tramp = loaded_tramp(sys, room, room_end);
    if (!tramp)
        return -1;
    loaded_tramp_end(tramp, tramp_fill(tramp, -1, nr, sys + 2), room);
    put_jmp((unsigned char *)slot, tramp);
    *(uint16_t *)sys = (uint16_t)(0xeb | (uint8_t)(slot - (sys + 2)) << 8);
    return 0;
}
