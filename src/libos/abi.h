/*
 * Constants shared by the LibOS (C and assembly) and the Python runtime.
 * xcontainers/libos.py reads the #define lines of this file: keep them of
 * the form "#define XC_NAME value".
 */
#ifndef XC_ABI_H
#define XC_ABI_H

/* Where the LibOS image is linked (below 2 GiB, for ABOM's call *abs32). */
#define XC_LIBOS_BASE 0x10000000
/* The fd on which every container process keeps the LibOS image open.  The
 * LibOS's fds are below 128: a fork copies the fd table up to the highest
 * open fd, and an fd of 1023 made every process's table 1,024 entries (8 KB
 * to allocate, fill and free at each fork), where 128 fit in 1 KB. */
#define XC_LIBOS_FD 127
/* The fd of the container's shared statistics segment (struct xc_stats). */
#define XC_STATS_FD 126
/* Size of the statistics segment in bytes. */
#define XC_STATS_SIZE 69632
/* Highest system call number the table and the statistics cover, plus one. */
#define XC_NR_MAX 512
/* argv[1] of the LibOS image when the runtime starts a container's first process. */
#define XC_ARG_INIT "--xc-init"
/* argv[1] when the LibOS re-executes itself to serve the program's execve. */
#define XC_ARG_EXEC "--xc-exec"
/* argv[1] for fexecve of a close-on-exec fd: PATH is /proc/self/fd/N, a
 * copy the new image closes once the program is loaded. */
#define XC_ARG_EXEC_FD "--xc-exec-fd"

/* The entry table of binaries `xc abom patch` rewrote: the first page of the
 * LibOS image's code (gate.S, placed by layout.ld), XC_NR_MAX 8-byte
 * pointers, then a 16-byte stub per number.  A pre-patched site is
 * `ff 14 25 <XC_ABOM_TABLE + 8 * nr>` (call *abs32). */
#define XC_ABOM_TABLE 0x10001000
/* Numbers whose handlers need the trap frame: rt_sigprocmask, rt_sigreturn,
 * pause, sigaltstack, clone3, never patched; and clone, patched online only
 * (its trampoline sends a clone with a new stack to the trap path), never
 * through the table: its stub is ud2.  (C and assembler.) */
#define XC_ABOM_NEEDS_FRAME(nr) ((nr) == 14 || (nr) == 15 || (nr) == 34 || (nr) == 131 || (nr) == 435)
#define XC_ABOM_UNPATCHABLE(nr) (XC_ABOM_NEEDS_FRAME(nr) || (nr) == 56)

/* How many direct gates (gate.S) ABOM's forwarding trampolines may use in a
 * process; sites beyond them forward through the LibOS. */
#define XC_GATE_DIRECT 2048
/* ... the first of them keep their return addresses in the first writable
 * page (gate.S, xc_gate_back_head), which every process writes anyway: a
 * process that takes a few direct gates (a loader that rewrote its program's
 * sites from the site cache) touches no page more for them. */
#define XC_GATE_HEAD 48
/* Room for ABOM's bookkeeping (abom.c, struct abom_state) in the LibOS's
 * writable pages (gate.S, section xc_rw): internal to the image.  Its head
 * (the fields before its second table of sites) takes the last XC_RW_ABOM_HEAD bytes of the
 * first writable page, after the process's state (struct xc_rw), so that
 * its first sites share that page and the rest start the second: a process
 * that traps at a few sites writes one page. */
#define XC_RW_ABOM_SIZE 81920
#define XC_RW_ABOM_HEAD 2408
/* ABOM's rewritten pages of a program's text are mapped again as aligned
 * chunks of this many bytes (abom.c, text_replace; sitecache.c): the rest of
 * the text stays a clean file mapping, which a fork does not copy. */
#define XC_OWN_CHUNK 131072UL
/* Entries of the statistics segment's ring of fork children's sites. */
#define XC_CHILD_SITES 64
/* Entries of the statistics segment's cache of ABOM's site decisions. */
#define XC_SITE_CACHE 100 /* (in the segment's third page, with the ring above) */
#define XC_STATS_MAGIC 0x3453544154534358ULL /* "XCSTATS4" */
/* Exec requests in the statistics segment (struct xc_exec_req): what the
 * LibOS image executed next is to load, keyed by the pid that executes it,
 * so that the image's argv is the program's own (/proc/PID/cmdline).  An
 * exec whose path or caller's path does not fit, or that finds no free
 * entry, passes them in argv as before (XC_ARG_*, the program's argv slid
 * over them). */
#define XC_EXEC_REQS 16
#define XC_EXEC_REQ_PATH 120
#define XC_EXEC_REQ_EXE 104
#define XC_REQ_INIT 1    /* the container's first program: as XC_ARG_INIT */
#define XC_REQ_EXEC 2    /* as XC_ARG_EXEC */
#define XC_REQ_EXEC_FD 3 /* as XC_ARG_EXEC_FD */
#define XC_REQ_ARGV_MADE 1 /* flags: a script's argv is made (interpreters first, as Linux's exec) */
#define XC_REQ_SAME_EXE 2  /* flags: the program is the caller's own file (fd), whose path exe is */
/* Where they are: a page of their own 64 KB into the segment (the kernel
 * maps a file's cached pages in 64 KB windows at a read fault: a fault on
 * the segment's head does not map this one); the new image reads its
 * request from the file (preadv2) and never maps the page; the segment is
 * sparse up to it. */
#define XC_EXEC_REQ_OFFSET 65536
/* Entries of the statistics segment's table of running programs (running.c). */
#define XC_TXT_MAX 128
/* An entry's pid while the process that claimed it fills it in. */
#define XC_TXT_WRITING -1
/* ABOM: rewrite system call sites into calls to the LibOS. */
#define XC_FLAG_ABOM 1
/* Trace: the LibOS writes a line per system call and per ABOM verdict to XC_TRACE_FD. */
#define XC_FLAG_TRACE 2
/* Some call has a profile entry (profile[] is not all zeros): without it the
 * LibOS never reads profile[], so a default container's processes leave that
 * page of the segment alone (one page less per container). */
#define XC_FLAG_PROFILE 4
/* The fd the trace goes to, when XC_FLAG_TRACE is set. */
#define XC_TRACE_FD 125
/* Per-call profile actions (low byte of xc_stats.profile[nr]). */
#define XC_PROFILE_DEFAULT 0
#define XC_PROFILE_FORWARD 1
#define XC_PROFILE_REFUSE 2
#define XC_PROFILE_TRACE 16
/* ABOM's verdicts on a site: the first three patch it, the others say why not. */
#define XC_ABOM_MOV32 0
#define XC_ABOM_MOV64 1
#define XC_ABOM_JUMP 2
#define XC_ABOM_APART 3
#define XC_ABOM_SPECIAL 4
#define XC_ABOM_NOT_FILE 5
#define XC_ABOM_NO_FUNCTION 6
#define XC_ABOM_UNDECODABLE 7
#define XC_ABOM_NOT_BOUNDARY 8
#define XC_ABOM_IMM_MISMATCH 9
#define XC_ABOM_NO_GAP 10
#define XC_ABOM_CACHE_LINE 11
#define XC_ABOM_NO_ROOM 12
#define XC_ABOM_PROTECT 13
#define XC_ABOM_VERDICTS 16


#ifndef __ASSEMBLER__
#include <stdint.h>
/* The statistics segment, shared by every process of a container and read
 * by the runtime (xcontainers/libos.py mirrors this layout). */
struct xc_stats {
    uint64_t magic;              /* XC_STATS_MAGIC */
    uint64_t flags;              /* the container's profile, set by the runtime: XC_FLAG_* */
    uint64_t processes;          /* loader starts: the first process and each execve */
    uint64_t execs;              /* execve served */
    uint64_t by_how[5];          /* traps served: FORWARD, TRANSLATE, SPECIAL, EMULATE, refused */
    uint64_t patched_calls;      /* unused (0): the calls through patched sites are the sum of patched[] */
    uint64_t sites_patched;      /* sites ABOM rewrote */
    uint64_t sites_refused;      /* sites ABOM looked at and left alone */
    uint64_t sites_by[XC_ABOM_VERDICTS]; /* sites by ABOM's verdict, XC_ABOM_* */
    uint64_t uts_generation;     /* bumped by sethostname/setdomainname: uname caches drop */
    uint64_t reserved[3];
    uint64_t calls[XC_NR_MAX];   /* traps per system call number */
    uint64_t patched[XC_NR_MAX]; /* patched calls per system call number */
    /* The container's LibOS profile, written by the runtime before start. */
    uint16_t profile[XC_NR_MAX]; /* per call: XC_PROFILE_* | errno << 8 */
    char uname_release[65];      /* reported by uname() when not empty */
    char uname_version[65];
    /* ABOM's site cache (sitecache.c): (file key, site | nr | count | state).
     * It and the head of the table of running programs share the segment's
     * third page, which every exec reads: with the first page (the head and
     * calls[]), what an idle container's process touches. */
    uint64_t sites_from_cache;   /* sites the loader rewrote from it */
    uint64_t site_cache[XC_SITE_CACHE][2];
    /* The programs the container's processes run, whose files Linux would
     * refuse to open for writing (ETXTBSY; running.c).  pid: 0 free,
     * XC_TXT_WRITING being filled, else the process running (dev, ino);
     * ro: the program was started from a read-only mount. */
    uint64_t txt_live;           /* entries not free */
    uint64_t txt_rw;             /* ... of them, programs not on a read-only mount */
    uint64_t txt_top;            /* entries [0, txt_top) were ever used */
    uint64_t txt_full;           /* programs not entered: the table was full */
    struct xc_txt {
        int64_t pid;
        uint64_t dev, ino, ro;
    } txt[XC_TXT_MAX];
    /* (Last: only fork children that trap touch it.)  Sites where fork children trapped, for their parent to rewrite before
     * its next fork (abom.c, xc_abom_fork_begin): a ring of (parent's pid,
     * site | nr << 48), the parent's pid written last; 0: free. */
    uint64_t child_sites_next;
    uint64_t child_sites[XC_CHILD_SITES][2];
};

/* The exec requests, at XC_EXEC_REQ_OFFSET of the segment. */
struct xc_exec_req {
    int64_t pid;   /* 0 free, -1 being filled, else the process that executes */
    uint32_t mode;  /* XC_REQ_* */
    uint32_t flags; /* XC_REQ_ARGV_MADE */
    uint32_t argv_hash; /* xc_argv_hash of the argv executed with it (two threads of one
                           process that execute at once each leave one) */
    uint32_t fd;    /* the program's file, which the caller opened for its checks and left
                       open across the exec (not close-on-exec), plus 1; 0: the loader opens
                       path */
    char path[XC_EXEC_REQ_PATH]; /* the program to load */
    char exe[XC_EXEC_REQ_EXE];   /* the calling program's file (xc_proc.exe), or "" */
};
_Static_assert(sizeof(struct xc_stats) <= XC_EXEC_REQ_OFFSET &&
                   XC_EXEC_REQ_OFFSET + XC_EXEC_REQS * sizeof(struct xc_exec_req) <= XC_STATS_SIZE,
               "struct xc_stats, the exec requests: XC_EXEC_REQ_OFFSET, XC_STATS_SIZE");
#define XC_EXEC_REQ(stats) ((struct xc_exec_req *)((char *)(stats) + XC_EXEC_REQ_OFFSET))
/* FNV-1a (32 bits) over argc and each argv string with its NUL: which
 * request is an image's, with its pid (the runtimes compute the same:
 * native/runtime/init.c, xcontainers/init.py). */
static inline uint32_t xc_argv_hash_bytes(uint32_t h, const char *p, unsigned long n)
{
    for (unsigned long i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

static inline uint32_t xc_argv_hash(int argc, char *const *argv)
{
    uint32_t h = 2166136261u ^ (uint32_t)argc;
    for (int i = 0; i < argc; i++) {
        unsigned long n = 0;
        while (argv[i][n])
            n++;
        h = xc_argv_hash_bytes(h, argv[i], n + 1);
    }
    return h;
}
#endif

#endif
