/*
 * The loader: how every process of an X-Container starts.
 *
 * The runtime executes this image (from a memfd kept on fd XC_LIBOS_FD) as
 *     xc-libos --xc-init PATH ARGV0 ARGS...
 * and the LibOS executes it again for every execve of the program as
 *     xc-libos --xc-exec PATH ARGV0 ARGS...
 * The kernel maps the image at its link address (XC_LIBOS_BASE); the loader
 * then installs the SIGSYS handler (signal handlers do not survive execve),
 * on the first start the seccomp filter (it does survive, and stacks), and
 * maps the program the way the kernel's binfmt_elf would: its PT_LOAD
 * segments (at a random base for ET_DYN), its interpreter (PT_INTERP), a
 * `#!` interpreter, then a new initial stack with the program's argv, the
 * same environment and an auxiliary vector describing the program (AT_PHDR,
 * AT_ENTRY, AT_BASE, AT_EXECFN; AT_RANDOM and the vDSO kept).
 */
#include "xc.h"
#include "sitecache.h"

#include <asm/unistd.h>
#include <linux/auxvec.h>
#include <linux/elf.h>

extern char __executable_start[]; /* the linker's: the image's first byte */

#define PAGE 4096UL
#define PAGE_DOWN(x) ((x) & ~(PAGE - 1))
#define PAGE_UP(x) (((x) + PAGE - 1) & ~(PAGE - 1))
#define PROT_READ 1
#define PROT_WRITE 2
#define PROT_EXEC 4
#define MAP_PRIVATE 2
#define MAP_FIXED 0x10
#define MAP_ANONYMOUS 0x20
#define O_RDONLY 0
#define O_CLOEXEC 02000000
#define AT_FDCWD -100

extern char _end[];

/* Whether [start, end) meets the LibOS's image, from XC_LIBOS_BASE (its
 * headers, ABOM's entry table, the gate, its code and state) to its last
 * page.  A segment wrapping past the end of the address space meets it. */
static int over_the_libos(unsigned long start, unsigned long end)
{
    unsigned long lo = XC_LIBOS_BASE, hi = PAGE_UP((unsigned long)_end);
    return end < start || (start < hi && end > lo);
}

struct image {
    unsigned long base, entry, phdr, phnum;
    int is_go; /* carries a Go build ID note */
    char interp[256];
    const struct xc_statx *st; /* the file's statx, if the caller made one (else the site cache asks) */
};

static long pread_all(long fd, void *buf, unsigned long len, long off)
{
    struct { void *b; unsigned long l; } iov = {buf, len};
    return H5(__NR_preadv2, fd, &iov, 1, off, 0);
}

static int prot_of(uint32_t f)
{
    return (f & PF_R ? PROT_READ : 0) | (f & PF_W ? PROT_WRITE : 0) | (f & PF_X ? PROT_EXEC : 0);
}

/* The program's file, open where the caller's execve left it (its exec
 * request's fd), plus 1; 0: none; and whether that file is the caller's own
 * program, whose path xc_proc.exe already holds (XC_REQ_SAME_EXE), and the
 * loader read it.  (Zero-initialized: the image has no initialized data,
 * layout.ld.) */
static long given_fd;
static int given_same, same_exe_read;

/* Open *path* and read its first bytes (up to *size*) into *hdr*: the fd, or
 * -errno; *n: the bytes read (or -errno).  The file the caller left open
 * serves instead, once, if it can be read (the request that names it lives
 * in the container's segment: anything else there, or no fd, and the path
 * is opened as before). */
static long open_program(const char *path, char *hdr, unsigned long size, long *n)
{
    long given = given_fd - 1;
    given_fd = 0;
    if (given >= 0) {
        *n = pread_all(given, hdr, size, 0);
        if (*n >= 0) {
            same_exe_read = given_same;
            return given;
        }
    }
    path = xc_interp_path(path);
    if (!path)
        return -XC_ENOENT;
    long fd = H3(__NR_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0)
        *n = pread_all(fd, hdr, size, 0);
    return fd;
}

/* Map the ELF file open on *fd*, whose first *n* bytes are in *hdr*; fill
 * *img*.  Returns 0 or -errno. */
static long load_elf_fd(long fd, const char *hdr, long n, struct image *img)
{
    long r = -XC_ENOEXEC;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)hdr;
    if (n < (long)sizeof *eh || eh->e_ident[0] != 0x7f || eh->e_ident[1] != 'E' ||
        eh->e_ident[2] != 'L' || eh->e_ident[3] != 'F' || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_machine != EM_X86_64 || (eh->e_type != ET_EXEC && eh->e_type != ET_DYN) ||
        eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 || eh->e_phnum > 64 ||
        eh->e_phoff + eh->e_phnum * sizeof(Elf64_Phdr) > (unsigned long)n)
        goto out;
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(hdr + eh->e_phoff);
    unsigned long lo = ~0UL, hi = 0;
    img->interp[0] = 0;
    img->phdr = 0;
    img->is_go = 0;
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type == PT_LOAD) {
            if (PAGE_DOWN(ph[i].p_vaddr) < lo)
                lo = PAGE_DOWN(ph[i].p_vaddr);
            if (ph[i].p_vaddr + ph[i].p_memsz > hi)
                hi = ph[i].p_vaddr + ph[i].p_memsz;
        } else if (ph[i].p_type == PT_NOTE && ph[i].p_filesz >= 16) {
            /* The Go linker's build ID note: name "Go", type 4. */
            char buf[256];
            const char *note = buf;
            unsigned long len = ph[i].p_filesz < sizeof buf ? ph[i].p_filesz : sizeof buf;
            /* Notes usually lie in the first page, already read: no host call then. */
            if (ph[i].p_offset <= (unsigned long)n && len <= (unsigned long)n - ph[i].p_offset)
                note = hdr + ph[i].p_offset;
            if (note != buf || pread_all(fd, buf, len, (long)ph[i].p_offset) == (long)len) {
                for (unsigned long o = 0; o + 16 <= len;) {
                    uint32_t namesz = *(uint32_t *)(note + o), descsz = *(uint32_t *)(note + o + 4);
                    uint32_t type = *(uint32_t *)(note + o + 8);
                    if ((namesz == 3 || namesz == 4) && type == 4 && xc_strncmp(note + o + 12, "Go", 3) == 0)
                        img->is_go = 1;
                    o += 12 + ((namesz + 3) & ~3U) + ((descsz + 3) & ~3U);
                }
            }
        } else if (ph[i].p_type == PT_INTERP) {
            if (ph[i].p_filesz == 0 || ph[i].p_filesz >= sizeof img->interp)
                goto out;
            if (ph[i].p_offset <= (unsigned long)n && ph[i].p_filesz <= (unsigned long)n - ph[i].p_offset)
                /* in the first page, as a rule: no host call */
                xc_memcpy(img->interp, hdr + ph[i].p_offset, ph[i].p_filesz);
            else if (pread_all(fd, img->interp, ph[i].p_filesz, (long)ph[i].p_offset) != (long)ph[i].p_filesz)
                goto out;
            img->interp[ph[i].p_filesz] = 0;
        }
    }
    if (hi <= lo)
        goto out;
    unsigned long base = 0;
    if (eh->e_type == ET_DYN) {
        /* Let the kernel choose (randomized) room for the whole image. */
        long at = H6(__NR_mmap, 0, PAGE_UP(hi) - lo, 0, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (XC_ERR(at)) {
            r = at;
            goto out;
        }
        base = (unsigned long)at - lo;
    }
    /* Never over the LibOS itself (Linux's own binfmt_elf has nothing there
     * to keep; a program that asks for that place cannot have it here):
     * ENOMEM, as for a mapping the kernel cannot place.  Every segment is
     * checked before the first is mapped. */
    for (int i = 0; i < eh->e_phnum; i++)
        if (ph[i].p_type == PT_LOAD &&
            over_the_libos(PAGE_DOWN(base + ph[i].p_vaddr), PAGE_UP(base + ph[i].p_vaddr + ph[i].p_memsz))) {
            r = -XC_ENOMEM;
            goto out;
        }
    /* Sites other processes of the container had rewritten in this file
     * (sitecache.c): its code is mapped writable until they are. */
    struct xc_site_load sl;
    unsigned long code_lo = ~0UL, code_hi = 0;
    xc_site_cache_lookup(fd, img->st, &sl);
    for (int i = 0; i < eh->e_phnum; i++) {
        const Elf64_Phdr *p = &ph[i];
        if (p->p_type != PT_LOAD)
            continue;
        unsigned long start = PAGE_DOWN(base + p->p_vaddr);
        unsigned long file_end = base + p->p_vaddr + p->p_filesz;
        unsigned long mem_end = base + p->p_vaddr + p->p_memsz;
        int prot = prot_of(p->p_flags);
        if (p->p_filesz) {
            /* Writable first only where the rest of the last file page must
             * be zeroed (the start of .bss): one call less per segment. */
            int zero = p->p_memsz > p->p_filesz && (file_end & (PAGE - 1));
            int sites = !(prot & PROT_WRITE) && xc_site_cache_wants(&sl, p->p_vaddr, p->p_filesz, prot);
            long m = H6(__NR_mmap, start, PAGE_UP(file_end) - start, zero || sites ? prot | PROT_WRITE : prot,
                        MAP_PRIVATE | MAP_FIXED, fd, PAGE_DOWN(p->p_offset));
            if (XC_ERR(m)) {
                r = m;
                goto out;
            }
            if (zero)
                xc_memset((void *)file_end, 0, PAGE_UP(file_end) - file_end);
            if (sites) {
                /* the rest of the last page is no other segment's (nor bss) */
                int tail_free = p->p_memsz == p->p_filesz;
                for (int j = 0; j < eh->e_phnum; j++)
                    if (j != i && ph[j].p_type == PT_LOAD && PAGE_DOWN(base + ph[j].p_vaddr) < PAGE_UP(file_end) &&
                        PAGE_UP(base + ph[j].p_vaddr + ph[j].p_memsz) > PAGE_DOWN(file_end))
                        tail_free = 0;
                xc_site_cache_opened(&sl, start, PAGE_UP(file_end), base + p->p_vaddr, file_end, prot, tail_free);
            }
            else if (zero && !(prot & PROT_WRITE))
                H3(__NR_mprotect, start, PAGE_UP(file_end) - start, prot);
            if ((prot & PROT_EXEC) && base + p->p_vaddr < code_lo)
                code_lo = base + p->p_vaddr;
            if ((prot & PROT_EXEC) && file_end > code_hi)
                code_hi = file_end;
        }
        unsigned long anon = p->p_filesz ? PAGE_UP(file_end) : start;
        if (PAGE_UP(mem_end) > anon) {
            long m = H6(__NR_mmap, anon, PAGE_UP(mem_end) - anon, prot,
                        MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0);
            if (XC_ERR(m)) {
                r = m;
                goto out;
            }
        }
        if (p->p_offset == 0 && !img->phdr)
            img->phdr = base + p->p_vaddr + eh->e_phoff;
    }
    xc_site_cache_done(&sl, base, code_lo, code_hi);
    for (int i = 0; i < eh->e_phnum; i++)
        if (ph[i].p_type == PT_PHDR)
            img->phdr = base + ph[i].p_vaddr;
    img->base = base;
    img->entry = base + eh->e_entry;
    img->phnum = eh->e_phnum;
    r = 0;
out:
    return r;
}

/* Map an ELF file by path (the interpreter), reading its first page into
 * *hdr* (HDR_SIZE bytes); fill *img*.  0 or -errno. */
#define HDR_SIZE 4096
static long load_elf(const char *path, char *hdr, struct image *img)
{
    long n = 0;
    long fd = open_program(path, hdr, HDR_SIZE, &n);
    if (fd < 0)
        return fd;
    img->st = 0;
    long r = load_elf_fd(fd, hdr, n, img);
    H1(__NR_close, fd);
    return r;
}

/* If the file's first *n* bytes *hdr* start with "#!", copy the line into
 * *line* (256 bytes: Linux reads no more of it), cut it there into the
 * interpreter (*interp) and its optional argument (*arg), and return 1; 0 if
 * not a script. */
long xc_parse_shebang(const char *hdr, long n, char *line, char **interp, char **arg)
{
    if (n > 255)
        n = 255;
    if (n < 2 || hdr[0] != '#' || hdr[1] != '!')
        return 0;
    xc_memcpy(line, hdr, (size_t)n);
    line[n] = 0;
    char *p = line + 2, *end;
    for (end = p; *end && *end != '\n'; end++)
        ;
    *end = 0;
    while (*p == ' ' || *p == '\t')
        p++;
    char *q = p;
    while (*q && *q != ' ' && *q != '\t')
        q++;
    *arg = 0;
    if (*q) {
        *q++ = 0;
        while (*q == ' ' || *q == '\t')
            q++;
        /* Linux passes the rest of the line, trailing blanks removed, as one argument. */
        char *t = q + xc_strlen(q);
        while (t > q && (t[-1] == ' ' || t[-1] == '\t'))
            *--t = 0;
        if (*q)
            *arg = q;
    }
    if (!*p)
        return -XC_ENOEXEC;
    *interp = p;
    return 1;
}

/* What /proc/self/exe should say: the file open on *fd* (symlinks resolved), or *path*;
 * and, where that is the only name the file has on its mount, the file's
 * identity, for this process's execs of the same file (libos.c, same_exe). */
static void resolve_exe(long fd, const char *path, const struct xc_statx *st)
{
    xc_proc.exe_ctime = 0;
    if (st && (st->mask & XC_STATX_EXE) == XC_STATX_EXE && st->nlink == 1 &&
        (st->mode & 0170000) == 0100000 /* S_IFREG */) {
        xc_proc.exe_mnt = st->rest[0];
        xc_proc.exe_ctime = st->ctime.sec * 1000000000L + st->ctime.nsec;
    }
    if (same_exe_read && xc_proc.exe[0] == '/')
        return; /* (xc_main put the caller's path there: the same file, the same name) */
    char fdlink[40];
    xc_fd_path(fdlink, fd);
    long n = H4(__NR_readlinkat, AT_FDCWD, fdlink, xc_proc.exe, sizeof xc_proc.exe - 1);
    if (n > 0 && xc_proc.exe[0] == '/') {
        xc_proc.exe[n] = 0;
        return;
    }
    xc_proc.exe_ctime = 0; /* (not the kernel's name for it) */
    n = (long)xc_strlen(path);
    if (n < (long)sizeof xc_proc.exe)
        xc_memcpy(xc_proc.exe, path, (size_t)n + 1);
}

/* What the program's initial stack needs to know of what load_program mapped. */
struct loaded {
    unsigned long entry, at_base, prog_entry, phdr, phnum;
    int argc;
    char **argv;
};

/*
 * Open the program (following up to XC_SHEBANG_MAX levels of `#!` interpreters, as
 * Linux's exec does: a sixth is ELOOP), map it
 * and its interpreter, fill *out*.  Its frame holds the loader's scratch:
 * the first page of each file and the images' descriptions.  It runs below
 * the program's initial stack, which xc_load_and_run has already made room
 * for, so the program's stack later grows over the pages it touched instead
 * of starting below them.  The `#!` lines (the interpreters' paths and
 * arguments the new argv points to) go to *lines* and the new argv to
 * *args*, in the caller's frame, above the initial stack.
 */
static __attribute__((noinline)) void load_program(const char *path, int argc, char **argv, int argv_made,
                                                   char (*lines)[256], char **args, struct loaded *out)
{
    char hdr[HDR_SIZE];
    char *script_argv_prefix[3], *interp_path, *sarg;
    int nprefix = 0;
    long r;

    /* `#!` programs: argv becomes [interpreter, optional arg, script, argv[1:]].
     * Each file is opened and its first page read once (the program's fd
     * then serves the loading and /proc/self/exe). */
    long fd = -1, n = 0;
    for (int depth = 0; depth <= XC_SHEBANG_MAX; depth++) {
        fd = open_program(path, hdr, sizeof hdr, &n);
        if (fd < 0)
            xc_die("cannot execute", fd);
        r = xc_parse_shebang(hdr, n, lines[depth], &interp_path, &sarg);
        if (r < 0)
            xc_die("cannot execute", r);
        if (r == 0)
            break;
        H1(__NR_close, fd);
        if (depth == XC_SHEBANG_MAX)
            xc_die("too many levels of #! interpreters", -XC_ELOOP);
        if (argv_made) { /* (the caller's exec made it: libos.c, do_exec) */
            path = interp_path;
            continue;
        }
        /* Replace argv[0] by the script's path, prefix the interpreter. */
        script_argv_prefix[0] = interp_path;
        nprefix = 1;
        if (sarg)
            script_argv_prefix[nprefix++] = sarg;
        script_argv_prefix[nprefix++] = (char *)path;
        /* argv := prefix + argv[1:] (argv[0] of the script is dropped, as Linux does);
         * from the top down, so that args may be argv itself (a word or two to the right) */
        for (int i = argc - 1; i >= 1; i--)
            args[nprefix + i - 1] = argv[i];
        for (int i = 0; i < nprefix; i++)
            args[i] = script_argv_prefix[i];
        argc = argc - 1 + nprefix;
        args[argc] = 0;
        argv = args;
        path = interp_path;
    }

    /* One statx of the program for the site cache (its identity) and for
     * running.c (the file Linux would keep from writers). */
    struct xc_statx st;
    struct image prog, interp;
    prog.st = H5(__NR_statx, fd, "", 0x1000 /* AT_EMPTY_PATH */, XC_STATX_SITE_CACHE | XC_STATX_TXT | XC_STATX_EXE,
                 &st) == 0 ? &st : 0;
    r = n < 0 ? n : load_elf_fd(fd, hdr, n, &prog);
    if (r < 0)
        xc_die("cannot load the program", r);
    if (prog.is_go) {
        r = xc_install_handler(1);
        if (r < 0)
            xc_die("installing the SIGSYS handler", r);
    }
    out->entry = prog.entry;
    out->at_base = 0;
    if (prog.interp[0]) {
        r = load_elf(prog.interp, hdr, &interp);
        if (r < 0)
            xc_die("cannot load the program's interpreter", r);
        out->entry = interp.entry;
        out->at_base = interp.base;
    }
    out->prog_entry = prog.entry;
    out->phdr = prog.phdr;
    out->phnum = prog.phnum;
    out->argc = argc;
    out->argv = argv;

    /* What /proc/self/exe (the file, symlinks resolved) should say. */
    resolve_exe(fd, path, prog.st);
    xc_txt_learn(fd, prog.st); /* (running.c: the file Linux would keep from writers) */
    H1(__NR_close, fd);
}

/*
 * The loader keeps in this function's frame only what the program still
 * points to: the `#!` lines (the interpreters' paths and arguments in argv),
 * the argv they make, and the program's initial stack, the frame's last
 * variable, whose room is made before anything is read (for the largest
 * argv XC_SHEBANG_MAX levels of `#!` can make).  The loader's scratch (load_program: the
 * first page of each file) lives below it, where the program's stack grows
 * over it; the frame above (this one, and xc_main's with the path AT_EXECFN
 * points to) stays as it is while the program runs.  An idle program's
 * stack is then a page or two smaller than with the scratch above its
 * initial stack ([benchmarks.md](../../docs/benchmarks.md)).
 */
void xc_load_and_run(const char *path, int argc, char **argv, int argv_made, char **envp, uint64_t *auxv)
{
    char lines[XC_SHEBANG_MAX + 1][256]; /* touched only for `#!` programs */
    char *args[argc + 2 * XC_SHEBANG_MAX + 1]; /* a `#!` program's argv: each level adds at most 2 words */
    const char *execfn = path;
    int envc = 0, auxc = 0;
    while (envp[envc])
        envc++;
    while (auxv[2 * auxc] != AT_NULL)
        auxc++;
    /* The new initial stack: the last variable of this frame (a VLA, below
     * the others), with room for argc + 2 * XC_SHEBANG_MAX pointers of argv. */
    unsigned long cap = 1 + (unsigned long)argc + 2 * XC_SHEBANG_MAX + 1 + (unsigned long)envc + 1 + 2 * ((unsigned long)auxc + 1) + 2;
    uint64_t stack[cap];

    struct loaded ld;
    load_program(path, argc, argv, argv_made, lines, args, &ld);
    argc = ld.argc;
    argv = ld.argv;
    if (xc_proc.close_after_load >= 0)
        H1(__NR_close, xc_proc.close_after_load);
    const char *slash = xc_strrchr(execfn, '/');
    H2(__NR_prctl, 15 /* PR_SET_NAME */, slash ? slash + 1 : execfn);

    /* At the top of the room made for it, so that what is left over lies
     * below the program's stack pointer. */
    unsigned long words = 1 + (unsigned long)argc + 1 + (unsigned long)envc + 1 + 2 * ((unsigned long)auxc + 1);
    uint64_t *sp = (uint64_t *)((unsigned long)(stack + cap - words) & ~15UL), *w = sp;
    *w++ = (uint64_t)argc;
    for (int i = 0; i < argc; i++)
        *w++ = (uint64_t)argv[i];
    *w++ = 0;
    for (int i = 0; i < envc; i++)
        *w++ = (uint64_t)envp[i];
    *w++ = 0;
    for (int i = 0; i < auxc; i++) {
        uint64_t key = auxv[2 * i], val = auxv[2 * i + 1];
        switch (key) {
        case AT_PHDR: val = ld.phdr; break;
        case AT_PHNUM: val = ld.phnum; break;
        case AT_PHENT: val = sizeof(Elf64_Phdr); break;
        case AT_ENTRY: val = ld.prog_entry; break;
        case AT_BASE: val = ld.at_base; break;
        case AT_EXECFN: val = (uint64_t)execfn; break;
        default: break;
        }
        *w++ = key;
        *w++ = val;
    }
    *w++ = AT_NULL;
    *w++ = 0;
    xc_txt_enter(xc_getpid()); /* (last: a process that dies loading never ran the program) */
    xc_seal();
    xc_jump((void *)ld.entry, sp);
}

/* Entry from gate.S with the kernel's initial stack. */
XC_NORETURN void xc_main(uint64_t *sp);

void xc_main(uint64_t *sp)
{
    int argc = (int)sp[0];
    char **argv = (char **)(sp + 1);
    char **envp = argv + argc + 1;
    char **e = envp;
    while (*e)
        e++;
    uint64_t *auxv = (uint64_t *)(e + 1);

    /* This process's pid: after an execve the calling thread leads its
     * process (its tid is the pid), and set_tid_address tells it; it holds
     * no clear_child_tid after an execve, so 0 changes nothing.  (One call
     * for the exec request's key, the pid and the tid, instead of getpid
     * twice and set_tid_address.) */
    long me = H1(__NR_set_tid_address, 0);
    /* What to load: the exec request the caller left for this process in
     * the statistics segment (argv is then the program's own), else the
     * mode and the path ahead of the program's argv. */
    xc_stats_attach();
    struct xc_exec_req req;
    int have = xc_exec_request_take(me, argc, argv, &req);
    int mode = have ? (int)req.mode
               : argc < 4 ? 0
               : xc_strcmp(argv[1], XC_ARG_INIT) == 0 ? XC_REQ_INIT
               : xc_strcmp(argv[1], XC_ARG_EXEC) == 0 ? XC_REQ_EXEC
               : xc_strcmp(argv[1], XC_ARG_EXEC_FD) == 0 ? XC_REQ_EXEC_FD : 0;
    if (mode < XC_REQ_INIT || mode > XC_REQ_EXEC_FD || (have && (!req.path[0] || argc < 1)))
        xc_die("this is the X-LibOS image: xc-runtime starts it as "
               XC_ARG_INIT " PATH ARGV0 [ARGS...]", 0);
    int init = mode == XC_REQ_INIT, close_path_fd = mode == XC_REQ_EXEC_FD;
    if (!xc_abom_table_placed())
        xc_die("the image is not linked as layout.ld says (XC_ABOM_TABLE)", 0);
    long r = xc_install_handler(0);
    if (r < 0)
        xc_die("installing the SIGSYS handler", r);
    r = xc_install_fault_handlers();
    if (r < 0)
        xc_die("installing the SIGSEGV and SIGBUS handlers", r);
    if (init) {
        r = H5(__NR_prctl, 38 /* PR_SET_NO_NEW_PRIVS */, 1, 0, 0, 0);
        if (r < 0)
            xc_die("setting no_new_privs", r);
        r = xc_install_filter();
        if (r < 0)
            xc_die("installing the seccomp filter", r);
    }
    /* What the filter's EXEC_LIBOS check relies on: the image it runs is on
     * XC_LIBOS_FD (an exec closes it there only if the program made it
     * close-on-exec from the gate), and the path it takes is "" in a mapping
     * no one can write: the code segment mapped again, shared, from that
     * read-only file (the same page-cache pages; a forced write through
     * /proc/self/mem copies only private pages: EIO).  The filter allows
     * exactly this mmap over the code (filter.c, MMAP).  MAP_POPULATE: the
     * new mapping starts without the entries the old one had, and the
     * LibOS would fault on each window of its code again. */
    if ((unsigned long)__executable_start != XC_LIBOS_BASE || xc_exec_path[0] ||
        (unsigned long)xc_exec_path >= xc_code_end())
        xc_die("the image is not linked as gate.S says (xc_exec_path)", 0);
    r = H6(__NR_mmap, XC_LIBOS_BASE, xc_code_end() - XC_LIBOS_BASE, 5 /* PROT_READ|PROT_EXEC */,
           0x8011 /* MAP_SHARED|MAP_FIXED|MAP_POPULATE */, XC_LIBOS_FD, 0);
    if (r == -XC_EBADF)
        xc_die("the LibOS image is not open on its fd (XC_LIBOS_FD)", r);
    if (r != XC_LIBOS_BASE)
        xc_die("mapping the LibOS's code shared", r);
    for (uint64_t *x = auxv; x[0] != AT_NULL; x += 2)
        if (x[0] == 26 /* AT_HWCAP2 */ && (x[1] & 2 /* HWCAP2_FSGSBASE */))
            xc_fsgsbase = 1;
    xc_tid_known(me);
    xc_vdso_init(auxv);
    xc_proc.libos_fd = XC_LIBOS_FD;
    xc_rw_init(me);
    xc_ppid_init();
    xc_abom_init();
    if (xc_stats) {
        __atomic_fetch_add(&xc_stats->processes, 1, __ATOMIC_RELAXED);
        if (!init)
            __atomic_fetch_add(&xc_stats->execs, 1, __ATOMIC_RELAXED);
    }
    /* The calling program's file, which /proc/self/exe in a `#!` line or
     * PT_INTERP names (xc_interp_path); resolve_exe then says ours.
     * (Before the program's argv slides over it.) */
    const char *exe = have ? req.exe : argv[0];
    if (!init && exe[0] == '/' && xc_strlen(exe) < sizeof xc_proc.exe)
        xc_memcpy(xc_proc.exe, exe, xc_strlen(exe) + 1);
    const char *from = have ? req.path : argv[2];
    unsigned long plen = xc_strlen(from);
    if (plen >= 4096)
        xc_die("program path too long", -XC_ENAMETOOLONG);
    char path[plen + 1]; /* (on the stack, above the program's: AT_EXECFN points here) */
    xc_memcpy(path, from, plen + 1);
    int skip = 0;
    if (!have) {
        /* argv[2] is the path, argv[3..] the program's own argv: slide the
         * program's argv strings to the start of the argument area, so
         * /proc/PID/cmdline shows the program's command line (followed by
         * NULs where the three words were). */
        char *area = argv[0], *start = argv[3];
        char *end = argv[argc - 1] + xc_strlen(argv[argc - 1]) + 1;
        unsigned long shift = (unsigned long)(start - area), len = (unsigned long)(end - start);
        memmove(area, start, len);
        xc_memset(area + len, 0, shift);
        for (int i = 3; i < argc; i++)
            argv[i] -= shift;
        skip = 3;
    }
    xc_proc.close_after_load = -1;
    if (close_path_fd && xc_strncmp(path, "/proc/self/fd/", 14) == 0) {
        long v = 0;
        for (const char *p = path + 14; *p >= '0' && *p <= '9'; p++)
            v = v * 10 + (*p - '0');
        xc_proc.close_after_load = (int)v;
    }
    if (have && req.fd && req.fd - 1 != XC_LIBOS_FD && req.fd - 1 != XC_STATS_FD) {
        given_fd = (long)req.fd;
        given_same = (req.flags & XC_REQ_SAME_EXE) != 0;
    }
    xc_load_and_run(path, argc - skip, argv + skip, have && (req.flags & XC_REQ_ARGV_MADE), envp, auxv);
}
