/*
 * The exokernel interface as a seccomp-BPF program.
 *
 * The kernel runs this filter on every system call of the container:
 *
 *   rt_sigreturn                      -> allow, from anywhere (it only restores
 *                                        the caller's own saved registers)
 *   not x86-64, or an x32 number      -> kill the process
 *     (0x40000000 <= nr < 0x80000000)
 *   issued outside the gate           -> SIGSYS: the LibOS serves the call
 *   issued from the gate, on the list -> allow, after the argument check of its
 *                                        line in interface.def (below)
 *   issued from the gate, not listed  -> EPERM; it never runs on the host
 *
 * The instruction pointer the kernel reports is the address after the
 * 2-byte `syscall`, so the gate's range is (start, end].  The list is
 * searched as a binary tree over the sorted numbers.
 *
 * The program can reach the gate too (it shares the address space with the
 * LibOS and may jump into it), so what the gate allows, with these checks,
 * is what the container can ask of the host: the LibOS's own checks make
 * its answers right, these make the boundary.  Classic BPF sees each 64-bit
 * argument as two 32-bit halves (the low one at the lower offset); an int
 * argument is compared on its low half only, as the kernel reads it.
 */
#include "xc.h"

#include <asm/unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

extern char __start_xc_gate[], __stop_xc_gate[];
extern char __executable_start[], _end[];

/* The fds the LibOS keeps for the whole life of a process (the trace's,
 * XC_TRACE_FD, is the program's own while the trace is off). */
static const uint32_t libos_fds[] = {XC_STATS_FD, XC_LIBOS_FD};
#define N_LIBOS_FDS (sizeof libos_fds / sizeof libos_fds[0])

enum check {
    ANY, CLONE, PRCTL, EXEC_LIBOS, IOCTL, FCNTL, SOCKET, ARCH_PRCTL, MMAP, MPROTECT, NOT_LIBOS, MREMAP,
    CLOSE, DUP3, CLOSE_RANGE, N_CHECKS
};

struct host_call {
    unsigned int nr;
    enum check check;
};

static const struct host_call interface[] = {
#define XC_HOST(nr, name, check) {nr, check},
#include "interface.def"
#undef XC_HOST
};
#define N_HOST (sizeof interface / sizeof interface[0])

/* --- the allow-lists (the why of each: interface.def) ---------------------- */

/* ioctl requests: terminals, the generic fd ones, files' flags and clones,
 * sockets' queue sizes, timestamps, owners and interface configuration,
 * the entropy count.  Not TIOCSTI (typing into a terminal another process
 * reads), TIOCLINUX, TIOCCONS, TIOCSETD (line disciplines), TIOCSSERIAL,
 * TIOCSLCKTRMIOS, nor any device's own requests (block, loop, tun, kvm,
 * drm, sound, input, perf, nsfs, pidfd, filesystems' private ones). */
static const uint32_t ioctl_ok[] = {
    /* the most frequent first: isatty, window size, close-on-exec, non-blocking, bytes to read */
    0x5401 /* TCGETS */, 0x5413 /* TIOCGWINSZ */, 0x5451 /* FIOCLEX */, 0x5421 /* FIONBIO */,
    0x541B /* FIONREAD, SIOCINQ */, 0x5450 /* FIONCLEX */, 0x5452 /* FIOASYNC */, 0x5460 /* FIOQSIZE */,
    /* terminals */
    0x5402 /* TCSETS */, 0x5403 /* TCSETSW */, 0x5404 /* TCSETSF */, 0x5405 /* TCGETA */, 0x5406 /* TCSETA */,
    0x5407 /* TCSETAW */, 0x5408 /* TCSETAF */, 0x5409 /* TCSBRK */, 0x540A /* TCXONC */, 0x540B /* TCFLSH */,
    0x540C /* TIOCEXCL */, 0x540D /* TIOCNXCL */, 0x540E /* TIOCSCTTY */, 0x540F /* TIOCGPGRP */,
    0x5410 /* TIOCSPGRP */, 0x5411 /* TIOCOUTQ, SIOCOUTQ */, 0x5414 /* TIOCSWINSZ */, 0x5415 /* TIOCMGET */,
    0x5416 /* TIOCMBIS */, 0x5417 /* TIOCMBIC */, 0x5418 /* TIOCMSET */, 0x5419 /* TIOCGSOFTCAR */,
    0x541A /* TIOCSSOFTCAR */, 0x541E /* TIOCGSERIAL */, 0x5420 /* TIOCPKT */, 0x5422 /* TIOCNOTTY */,
    0x5424 /* TIOCGETD */, 0x5425 /* TCSBRKP */, 0x5427 /* TIOCSBRK */, 0x5428 /* TIOCCBRK */,
    0x5429 /* TIOCGSID */, 0x802C542A /* TCGETS2 */, 0x402C542B /* TCSETS2 */, 0x402C542C /* TCSETSW2 */,
    0x402C542D /* TCSETSF2 */, 0x80045430 /* TIOCGPTN */, 0x40045431 /* TIOCSPTLCK */,
    0x80045432 /* TIOCGDEV */, 0x40045436 /* TIOCSIG */, 0x5437 /* TIOCVHANGUP */, 0x80045438 /* TIOCGPKT */,
    0x80045439 /* TIOCGPTLCK */, 0x80045440 /* TIOCGEXCL */, 0x5441 /* TIOCGPTPEER */,
    0x5456 /* TIOCGLCKTRMIOS */, 0x5459 /* TIOCSERGETLSR */, 0x545C /* TIOCMIWAIT */, 0x545D /* TIOCGICOUNT */,
    /* files */
    0x2 /* FIGETBSZ */, 0x80086601 /* FS_IOC_GETFLAGS */, 0x40086602 /* FS_IOC_SETFLAGS */,
    0x80087601 /* FS_IOC_GETVERSION */, 0xC020660B /* FS_IOC_FIEMAP */, 0x40049409 /* FICLONE */,
    0x4020940D /* FICLONERANGE */, 0xC0189436 /* FIDEDUPERANGE */, 0x801C581F /* FS_IOC_FSGETXATTR */,
    0x401C5820 /* FS_IOC_FSSETXATTR */,
    /* sockets */
    0x8901 /* FIOSETOWN */, 0x8902 /* SIOCSPGRP */, 0x8903 /* FIOGETOWN */, 0x8904 /* SIOCGPGRP */,
    0x8905 /* SIOCATMARK */, 0x8906 /* SIOCGSTAMP_OLD */, 0x8907 /* SIOCGSTAMPNS_OLD */,
    0x80108906 /* SIOCGSTAMP_NEW */, 0x80108907 /* SIOCGSTAMPNS_NEW */, 0x894B /* SIOCOUTQNSD */,
    0x890B /* SIOCADDRT */, 0x890C /* SIOCDELRT */, 0x8910 /* SIOCGIFNAME */, 0x8912 /* SIOCGIFCONF */,
    0x8913 /* SIOCGIFFLAGS */, 0x8914 /* SIOCSIFFLAGS */, 0x8915 /* SIOCGIFADDR */, 0x8916 /* SIOCSIFADDR */,
    0x8917 /* SIOCGIFDSTADDR */, 0x8918 /* SIOCSIFDSTADDR */, 0x8919 /* SIOCGIFBRDADDR */,
    0x891A /* SIOCSIFBRDADDR */, 0x891B /* SIOCGIFNETMASK */, 0x891C /* SIOCSIFNETMASK */,
    0x891D /* SIOCGIFMETRIC */, 0x8921 /* SIOCGIFMTU */, 0x8922 /* SIOCSIFMTU */, 0x8927 /* SIOCGIFHWADDR */,
    0x8933 /* SIOCGIFINDEX */, 0x8935 /* SIOCGIFPFLAGS */, 0x8938 /* SIOCGIFCOUNT */, 0x8942 /* SIOCGIFTXQLEN */,
    /* the random device: how much entropy the kernel counts */
    0x80045200 /* RNDGETENTCNT */,
};

/* fcntl commands: every one Linux 6.18 knows (an unknown one is EINVAL there
 * too), so a command added later reaches the host only once listed here. */
static const uint32_t fcntl_ok[] = {
    1 /* F_GETFD */, 3 /* F_GETFL */, 2 /* F_SETFD */, 1030 /* F_DUPFD_CLOEXEC */, 4 /* F_SETFL */,
    0 /* F_DUPFD */, 5 /* F_GETLK */, 6 /* F_SETLK */, 7 /* F_SETLKW */, 8 /* F_SETOWN */, 9 /* F_GETOWN */,
    10 /* F_SETSIG */, 11 /* F_GETSIG */, 15 /* F_SETOWN_EX */, 16 /* F_GETOWN_EX */, 17 /* F_GETOWNER_UIDS */,
    36 /* F_OFD_GETLK */, 37 /* F_OFD_SETLK */, 38 /* F_OFD_SETLKW */, 1024 /* F_SETLEASE */,
    1025 /* F_GETLEASE */, 1026 /* F_NOTIFY */, 1027 /* F_DUPFD_QUERY */, 1028 /* F_CREATED_QUERY */,
    1031 /* F_SETPIPE_SZ */, 1032 /* F_GETPIPE_SZ */, 1033 /* F_ADD_SEALS */, 1034 /* F_GET_SEALS */,
    1035 /* F_GET_RW_HINT */, 1036 /* F_SET_RW_HINT */,
};

/* prctl options: the process's own attributes.  PR_SET_SECCOMP and PR_SET_MM
 * are EPERM (below); every other option not here is EINVAL, as an unknown
 * one is: notably PR_SET_SYSCALL_USER_DISPATCH (SIGSYS is the LibOS's) and
 * the options of other architectures. */
static const uint32_t prctl_ok[] = {
    15 /* PR_SET_NAME */, 24 /* PR_CAPBSET_DROP */, 47 /* PR_CAP_AMBIENT */, 1 /* PR_SET_PDEATHSIG */,
    2 /* PR_GET_PDEATHSIG */, 8 /* PR_SET_KEEPCAPS */, 38 /* PR_SET_NO_NEW_PRIVS */, 23 /* PR_CAPBSET_READ */,
    16 /* PR_GET_NAME */, 4 /* PR_SET_DUMPABLE */, 3 /* PR_GET_DUMPABLE */, 36 /* PR_SET_CHILD_SUBREAPER */,
    37 /* PR_GET_CHILD_SUBREAPER */, 39 /* PR_GET_NO_NEW_PRIVS */, 27 /* PR_GET_SECUREBITS */,
    28 /* PR_SET_SECUREBITS */, 7 /* PR_GET_KEEPCAPS */, 21 /* PR_GET_SECCOMP */, 13 /* PR_GET_TIMING */,
    14 /* PR_SET_TIMING */, 25 /* PR_GET_TSC */, 26 /* PR_SET_TSC */, 29 /* PR_SET_TIMERSLACK */,
    30 /* PR_GET_TIMERSLACK */, 31 /* PR_TASK_PERF_EVENTS_DISABLE */, 32 /* PR_TASK_PERF_EVENTS_ENABLE */,
    33 /* PR_MCE_KILL */, 34 /* PR_MCE_KILL_GET */, 40 /* PR_GET_TID_ADDRESS */, 41 /* PR_SET_THP_DISABLE */,
    42 /* PR_GET_THP_DISABLE */, 52 /* PR_GET_SPECULATION_CTRL */, 53 /* PR_SET_SPECULATION_CTRL */,
    57 /* PR_SET_IO_FLUSHER */, 58 /* PR_GET_IO_FLUSHER */, 62 /* PR_SCHED_CORE */, 65 /* PR_SET_MDWE */,
    66 /* PR_GET_MDWE */, 67 /* PR_SET_MEMORY_MERGE */, 68 /* PR_GET_MEMORY_MERGE */,
    77 /* PR_TIMER_CREATE_RESTORE_IDS */, 78 /* PR_FUTEX_HASH */, 0x41555856 /* PR_GET_AUXV */,
    0x53564d41 /* PR_SET_VMA */, 0x59616d61 /* PR_SET_PTRACER */,
};

/* arch_prctl: the fs and gs bases, CPUID faulting, the AMX permission, the
 * address-tagging and shadow-stack queries.  Not: mapping a vDSO
 * (ARCH_MAP_VDSO_*: CRIU's), enabling tagged addresses (the LibOS checks
 * ranges on untagged ones), enabling or unlocking shadow stacks (the LibOS
 * returns through frames it builds). */
static const uint32_t arch_prctl_ok[] = {
    0x1002 /* ARCH_SET_FS */, 0x1003 /* ARCH_GET_FS */, 0x1001 /* ARCH_SET_GS */, 0x1004 /* ARCH_GET_GS */,
    0x1011 /* ARCH_GET_CPUID */, 0x1012 /* ARCH_SET_CPUID */, 0x1021 /* ARCH_GET_XCOMP_SUPP */,
    0x1022 /* ARCH_GET_XCOMP_PERM */, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 0x4001 /* ARCH_GET_UNTAG_MASK */,
    0x4003 /* ARCH_GET_MAX_TAG_BITS */, 0x5005 /* ARCH_SHSTK_STATUS */,
};

/* Netlink protocols: routing (ip, getifaddrs), socket diagnostics (ss),
 * audit (what CAP_AUDIT_WRITE is for), device events.  Not netfilter, xfrm,
 * generic netlink or the others. */
static const uint32_t netlink_ok[] = {0 /* NETLINK_ROUTE */, 4 /* NETLINK_SOCK_DIAG */, 9 /* NETLINK_AUDIT */,
                                      15 /* NETLINK_KOBJECT_UEVENT */};

/* --- the program ------------------------------------------------------------- */

#define MAX_INSNS 2048
#define MAX_LABELS 256
#define MAX_OUT 4096 /* BPF_MAXINSNS */

/* The program is built in symbolic form: a jump names labels (places
 * emitted later), and the layout at the end (place_jumps) makes each
 * conditional jump reach its label directly where it can (at most 255
 * instructions ahead) and through a BPF_JA after it where it cannot.  The
 * kernel converts and compiles every instruction at each container start,
 * so the shorter program is the cheaper filter to install and to run.
 * About 60 KB, in an anonymous mapping of its own that is unmapped once the
 * filter is installed, not in the LibOS's bss, where the pages would stay
 * written for the life of the process. */
struct build {
    struct insn {
        uint16_t code;
        uint32_t k;
        int16_t jt, jf; /* a conditional jump's labels, -1: the next instruction */
    } sym[MAX_INSNS];
    uint16_t addr[MAX_INSNS + 1]; /* each one's place in the output */
    uint8_t far[MAX_INSNS];       /* 1: jt through a BPF_JA, 2: jf through one */
    unsigned int n_insns, n_labels;
    int label_at[MAX_LABELS]; /* the instruction a label names */
    struct sock_filter prog[MAX_OUT];
};
static struct build *b;

#define NS_FLAGS 0x7e020000u /* CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET */
#define OFF_NR 0
#define OFF_ARCH 4
#define OFF_IP_LO 8
#define OFF_IP_HI 12
#define ARG_LO(i) (16 + 8 * (i))
#define ARG_HI(i) (20 + 8 * (i))

static void emit_jump(uint16_t code, uint32_t k, int jt, int jf)
{
    if (b->n_insns >= MAX_INSNS)
        xc_die("seccomp program too long", 0);
    b->sym[b->n_insns++] = (struct insn){code, k, (int16_t)jt, (int16_t)jf};
}

static void emit(uint16_t code, uint32_t k)
{
    emit_jump(code, k, -1, -1);
}

static int new_label(void)
{
    if (b->n_labels >= MAX_LABELS)
        xc_die("seccomp program: too many labels", 0);
    b->label_at[b->n_labels] = -1;
    return (int)b->n_labels++;
}

static void place(int l)
{
    b->label_at[l] = (int)b->n_insns;
}

static int is_cond(uint16_t code)
{
    return BPF_CLASS(code) == BPF_JMP && BPF_OP(code) != BPF_JA;
}

/* BPF_JA: its reach has no limit (the label in k) */
static void ja(int label)
{
    emit(BPF_JMP | BPF_JA, (uint32_t)label);
}

/* if (A <op> k, or X with BPF_X) goto t else goto f; a label of -1 falls
 * through. */
static void jump(uint16_t op, uint32_t k, int t, int f)
{
    emit_jump(BPF_JMP | op, k, t, f);
}

/* The output places, given which jumps go through a BPF_JA: the jumps made
 * far only ever grow, so this ends. */
static void place_jumps(void)
{
    for (unsigned int i = 0; i < b->n_insns; i++)
        b->far[i] = 0;
    for (int again = 1; again;) {
        again = 0;
        unsigned int a = 0;
        for (unsigned int i = 0; i < b->n_insns; i++) {
            b->addr[i] = (uint16_t)a;
            a += 1 + (b->far[i] & 1) + ((b->far[i] >> 1) & 1);
            if (a > MAX_OUT)
                xc_die("seccomp program too long", a);
        }
        b->addr[b->n_insns] = (uint16_t)a;
        for (unsigned int i = 0; i < b->n_insns; i++) {
            const struct insn *s = &b->sym[i];
            if (BPF_CLASS(s->code) == BPF_JMP && BPF_OP(s->code) == BPF_JA &&
                (s->k >= b->n_labels || b->label_at[s->k] <= (int)i))
                xc_die("seccomp program: a jump backwards", (long)s->k);
            if (!is_cond(s->code))
                continue;
            for (int side = 0; side < 2; side++) {
                int l = side ? s->jf : s->jt;
                if (l < 0 || (b->far[i] >> side) & 1)
                    continue;
                int to = b->label_at[l];
                if (to <= (int)i)
                    xc_die("seccomp program: a jump backwards", to);
                if (b->addr[to] - b->addr[i] - 1 > 255) {
                    b->far[i] |= (uint8_t)(1 << side);
                    again = 1;
                }
            }
        }
    }
}

/* The program in the kernel's form; its length. */
static unsigned int lay_out(void)
{
    place_jumps();
    unsigned int n = 0;
    for (unsigned int i = 0; i < b->n_insns; i++) {
        const struct insn *s = &b->sym[i];
        unsigned int here = b->addr[i], next = b->addr[i + 1];
        if (BPF_CLASS(s->code) == BPF_JMP && BPF_OP(s->code) == BPF_JA) {
            b->prog[n++] = (struct sock_filter){s->code, 0, 0, b->addr[b->label_at[s->k]] - here - 1};
            continue;
        }
        if (!is_cond(s->code)) {
            b->prog[n++] = (struct sock_filter){s->code, 0, 0, s->k};
            continue;
        }
        unsigned int off[2], at = here + 1;
        for (int side = 0; side < 2; side++) {
            int l = side ? s->jf : s->jt;
            unsigned int to = l < 0 ? next : b->addr[b->label_at[l]];
            off[side] = (b->far[i] >> side) & 1 ? at++ - here - 1 : to - here - 1;
            if (off[side] > 255)
                xc_die("seccomp program: a jump out of reach", off[side]);
        }
        b->prog[n++] = (struct sock_filter){s->code, (uint8_t)off[0], (uint8_t)off[1], s->k};
        for (int side = 0; side < 2; side++)
            if ((b->far[i] >> side) & 1) {
                int l = side ? s->jf : s->jt;
                b->prog[n] = (struct sock_filter){BPF_JMP | BPF_JA, 0, 0, b->addr[b->label_at[l]] - n - 1};
                n++;
            }
    }
    return n;
}

static void ld(uint32_t off)
{
    emit(BPF_LD | BPF_W | BPF_ABS, off);
}

static void ret(uint32_t v)
{
    emit(BPF_RET | BPF_K, v);
}

#define ERRNO(e) (SECCOMP_RET_ERRNO | (e))

/* A in list: goto allow; else the rest of the block. */
static void allow_if_in(const uint32_t *v, unsigned int n, int allow)
{
    for (unsigned int i = 0; i < n; i++)
        jump(BPF_JEQ | BPF_K, v[i], allow, -1);
}
#define ALLOW_IF_IN(list, allow) allow_if_in(list, sizeof list / sizeof list[0], allow)

/* Whether [arg a, arg a + arg n) meets [lo, hi), a range below 4 GiB; goto
 * yes or no.  The kernel rounds the length up to whole pages and wants the
 * address page-aligned, as lo and hi are, so the byte range decides. */
static void overlap(int a, int n, uint32_t lo, uint32_t hi, int yes, int no)
{
    ld(ARG_HI(a));
    jump(BPF_JEQ | BPF_K, 0, -1, no);         /* starts at or above 4 GiB: no */
    ld(ARG_LO(a));
    jump(BPF_JGE | BPF_K, hi, no, -1);        /* starts at or after the range: no */
    ld(ARG_HI(n));
    jump(BPF_JEQ | BPF_K, 0, -1, yes);        /* starts before its end, 4 GiB long or more */
    ld(ARG_LO(a));
    emit(BPF_ST, 0);                    /* M[0] = start */
    ld(ARG_LO(n));
    emit(BPF_LDX | BPF_W | BPF_MEM, 0); /* X = start */
    emit(BPF_ALU | BPF_ADD | BPF_X, 0); /* A = end, modulo 2^32 */
    int no_carry = new_label();
    jump(BPF_JGT | BPF_X, 0, no_carry, -1);   /* end > start: it did not wrap */
    jump(BPF_JEQ | BPF_X, 0, no, yes);        /* a length of 0: nothing; else it wrapped past 4 GiB */
    place(no_carry);
    jump(BPF_JGT | BPF_K, lo, yes, no);       /* the end lies after the start of the range */
}

/* One block per check; A holds nothing on entry. */
static void emit_check(enum check c, uint32_t lo, uint32_t text_end, uint32_t hi)
{
    int deny = new_label(), allow = new_label();
    switch (c) {
    case CLONE: /* clone without namespace flags */
        ld(ARG_LO(0));
        jump(BPF_JSET | BPF_K, NS_FLAGS, deny, allow);
        break;
    case PRCTL:
        ld(ARG_LO(0));
        jump(BPF_JEQ | BPF_K, 22 /* PR_SET_SECCOMP */, deny, -1);
        jump(BPF_JEQ | BPF_K, 35 /* PR_SET_MM */, deny, -1);
        ALLOW_IF_IN(prctl_ok, allow);
        ret(ERRNO(XC_EINVAL));
        break;
    case EXEC_LIBOS: /* execveat(XC_LIBOS_FD, xc_exec_path, ...) only: the path is "" in a
                      * mapping no one can write (gate.S), so the file is the one on
                      * XC_LIBOS_FD, which CLOSE, DUP3 and CLOSE_RANGE keep there */
        ld(ARG_LO(0));
        jump(BPF_JEQ | BPF_K, XC_LIBOS_FD, -1, deny);
        ld(ARG_HI(0));
        jump(BPF_JEQ | BPF_K, 0, -1, deny);
        ld(ARG_LO(1));
        jump(BPF_JEQ | BPF_K, (uint32_t)(unsigned long)xc_exec_path, -1, deny);
        ld(ARG_HI(1));
        jump(BPF_JEQ | BPF_K, 0, allow, deny);
        break;
    case CLOSE: /* close: never the LibOS's fds */
    case DUP3:  /* dup3: never onto them */
        ld(c == CLOSE ? ARG_LO(0) : ARG_LO(1));
        for (unsigned int i = 0; i < N_LIBOS_FDS; i++)
            jump(BPF_JEQ | BPF_K, libos_fds[i], deny, -1);
        ja(allow);
        break;
    case CLOSE_RANGE: /* close_range: never over them (first <= fd <= last) */
        for (unsigned int i = 0; i < N_LIBOS_FDS; i++) {
            int next = new_label();
            ld(ARG_LO(0));
            jump(BPF_JGT | BPF_K, libos_fds[i], next, -1);
            ld(ARG_LO(1));
            jump(BPF_JGE | BPF_K, libos_fds[i], deny, -1);
            place(next);
        }
        ja(allow);
        break;
    case IOCTL:
        ld(ARG_LO(1));
        ALLOW_IF_IN(ioctl_ok, allow);
        ret(ERRNO(25 /* ENOTTY */));
        break;
    case FCNTL:
        ld(ARG_LO(1));
        ALLOW_IF_IN(fcntl_ok, allow);
        ret(ERRNO(XC_EINVAL));
        break;
    case SOCKET: { /* socket and socketpair: the family, and netlink's protocol */
        int netlink = new_label();
        ld(ARG_LO(0));
        jump(BPF_JEQ | BPF_K, 1 /* AF_UNIX */, allow, -1);
        jump(BPF_JEQ | BPF_K, 2 /* AF_INET */, allow, -1);
        jump(BPF_JEQ | BPF_K, 10 /* AF_INET6 */, allow, -1);
        jump(BPF_JEQ | BPF_K, 16 /* AF_NETLINK */, netlink, -1);
        ret(ERRNO(97 /* EAFNOSUPPORT */));
        place(netlink);
        ld(ARG_LO(2));
        ALLOW_IF_IN(netlink_ok, allow);
        ret(ERRNO(93 /* EPROTONOSUPPORT */));
        break;
    }
    case ARCH_PRCTL:
        ld(ARG_LO(0));
        ALLOW_IF_IN(arch_prctl_ok, allow);
        ret(ERRNO(XC_EINVAL));
        break;
    case MMAP: { /* a fixed mapping never over the LibOS, but for the LibOS's own at start: its
                  * code segment again, shared, from XC_LIBOS_FD (xc_main; the same pages, the
                  * same call from the program changes nothing) */
        int other = new_label();
        ld(ARG_LO(3));
        jump(BPF_JSET | BPF_K, 0x10 /* MAP_FIXED */ | 0x100000 /* MAP_FIXED_NOREPLACE */, -1, allow);
        /* (the kernel keeps only the legacy flags of a MAP_SHARED mapping: the high half is dropped) */
        jump(BPF_JEQ | BPF_K, 0x8011 /* MAP_SHARED|MAP_FIXED|MAP_POPULATE */, -1, other);
        const uint32_t want[][2] = {{ARG_LO(0), (uint32_t)lo}, {ARG_HI(0), 0},
                                    {ARG_LO(1), (uint32_t)(text_end - lo)}, {ARG_HI(1), 0},
                                    {ARG_LO(2), 5 /* PROT_READ|PROT_EXEC */}, {ARG_HI(2), 0},
                                    {ARG_LO(4), XC_LIBOS_FD}, {ARG_LO(5), 0}, {ARG_HI(5), 0}};
        for (unsigned int i = 0; i < sizeof want / sizeof want[0]; i++) {
            ld(want[i][0]);
            jump(BPF_JEQ | BPF_K, want[i][1], i + 1 < sizeof want / sizeof want[0] ? -1 : allow, other);
        }
        place(other);
        overlap(0, 1, lo, hi, deny, allow);
        break;
    }
    case MPROTECT: { /* never on the LibOS's code; never PROT_EXEC on the rest of it (its seal
                      * only makes its data read-only, or writable again) */
        int data = new_label();
        overlap(0, 1, lo, text_end, deny, data);
        place(data);
        ld(ARG_LO(2));
        jump(BPF_JSET | BPF_K, 4 /* PROT_EXEC */, -1, allow);
        overlap(0, 1, lo, hi, deny, allow);
        break;
    }
    case NOT_LIBOS: /* munmap, madvise: never on the LibOS */
        overlap(0, 1, lo, hi, deny, allow);
        break;
    case MREMAP: { /* neither from nor, MREMAP_FIXED, onto the LibOS */
        int to = new_label();
        overlap(0, 1, lo, hi, deny, to);
        place(to);
        ld(ARG_LO(3));
        jump(BPF_JSET | BPF_K, 2 /* MREMAP_FIXED */, -1, allow);
        overlap(4, 2, lo, hi, deny, allow);
        break;
    }
    default:
        break;
    }
    place(deny);
    ret(ERRNO(XC_EPERM));
    place(allow);
    ret(SECCOMP_RET_ALLOW);
}

static int check_label[N_CHECKS];
static int l_allow, l_trap, l_kill;

/* Emit the search for the sorted numbers idx[lo, hi). */
static void emit_tree(const unsigned int *idx, int lo, int hi)
{
    if (hi - lo <= 3) {
        for (int i = lo; i < hi; i++) {
            const struct host_call *h = &interface[idx[i]];
            jump(BPF_JEQ | BPF_K, h->nr, h->check == ANY ? l_allow : check_label[h->check], -1);
        }
        ret(ERRNO(XC_EPERM));
        return;
    }
    int mid = (lo + hi) / 2, right = new_label();
    jump(BPF_JGE | BPF_K, interface[idx[mid]].nr, right, -1);
    emit_tree(idx, lo, mid);
    place(right);
    emit_tree(idx, mid, hi);
}

long xc_install_filter(void)
{
    unsigned long start = (unsigned long)__start_xc_gate, end = (unsigned long)__stop_xc_gate;
    unsigned long lo = (unsigned long)__executable_start & ~4095UL, hi = ((unsigned long)_end + 4095) & ~4095UL;
    unsigned long text_end = xc_code_end();
    unsigned int idx[N_HOST];

    if ((start >> 32) != (end >> 32))
        xc_die("the gate crosses a 4 GiB boundary", 0);
    if (hi >> 32)
        xc_die("the LibOS image lies above 4 GiB", 0);
    for (unsigned int i = 0; i < N_HOST; i++)
        idx[i] = i;
    for (unsigned int i = 1; i < N_HOST; i++) /* insertion sort by number */
        for (unsigned int j = i; j > 0 && interface[idx[j - 1]].nr > interface[idx[j]].nr; j--) {
            unsigned int t = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = t;
        }
    long m = H6(__NR_mmap, 0, sizeof *b, 3 /* PROT_READ|PROT_WRITE */, 0x22 /* MAP_PRIVATE|MAP_ANONYMOUS */,
                -1, 0);
    if (XC_ERR(m))
        return m;
    b = (struct build *)m;
    l_allow = new_label(), l_trap = new_label(), l_kill = new_label();
    for (int c = 0; c < N_CHECKS; c++)
        check_label[c] = new_label();

    ld(OFF_ARCH);
    jump(BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, -1, l_kill);
    ld(OFF_NR);
    jump(BPF_JEQ | BPF_K, __NR_rt_sigreturn, l_allow, -1);
    /* x32 ABI: numbers with __X32_SYSCALL_BIT; above them (-1 ...) no ABI has
     * a call, and the LibOS answers ENOSYS as Linux does */
    int not_x32 = new_label();
    jump(BPF_JGE | BPF_K, 0x80000000u, not_x32, -1);
    jump(BPF_JGE | BPF_K, 0x40000000u, l_kill, -1);
    place(not_x32);
    ld(OFF_IP_HI);
    jump(BPF_JEQ | BPF_K, (uint32_t)(start >> 32), -1, l_trap);
    ld(OFF_IP_LO);
    jump(BPF_JGT | BPF_K, (uint32_t)start, -1, l_trap);
    jump(BPF_JGT | BPF_K, (uint32_t)end, l_trap, -1);
    ld(OFF_NR);
    emit_tree(idx, 0, (int)N_HOST);

    place(l_allow);
    ret(SECCOMP_RET_ALLOW);
    place(l_trap);
    ret(SECCOMP_RET_TRAP);
    place(l_kill);
    ret(SECCOMP_RET_KILL_PROCESS);
    for (int c = ANY + 1; c < N_CHECKS; c++) {
        place(check_label[c]);
        emit_check((enum check)c, (uint32_t)lo, (uint32_t)text_end, (uint32_t)hi);
    }

    unsigned int n = lay_out();
    struct sock_fprog fprog = {(unsigned short)n, b->prog};
    long r = H3(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog);
    H2(__NR_munmap, b, sizeof *b);
    b = 0;
    return r;
}
