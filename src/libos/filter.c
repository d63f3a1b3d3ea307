/*
 * The exokernel interface as a seccomp-BPF program.
 *
 * The kernel runs this filter on every system call of the container:
 *
 *   rt_sigreturn                      -> allow, from anywhere (it only restores
 *                                        the caller's own saved registers)
 *   not x86-64, or an x32 number      -> kill the process
 *   issued outside the gate           -> SIGSYS: the LibOS serves the call
 *   issued from the gate, on the list -> allow (after the argument check of
 *                                        its line in interface.def)
 *   issued from the gate, not listed  -> EPERM; it never runs on the host
 *
 * The instruction pointer the kernel reports is the address after the
 * 2-byte `syscall`, so the gate's range is (start, end].  The list is
 * searched as a binary tree over the sorted numbers.
 */
#include "xc.h"

#include <asm/unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

extern char __start_xc_gate[], __stop_xc_gate[];

enum check { ANY, CLONE, PRCTL, EXEC_LIBOS };

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

#define MAX_INSNS 1024
static struct sock_filter prog[MAX_INSNS];
static unsigned int n_insns;

#define NS_FLAGS 0x7e020000u /* CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET */
#define OFF_NR 0
#define OFF_ARCH 4
#define OFF_IP_LO 8
#define OFF_IP_HI 12
#define OFF_ARG0_LO 16
#define OFF_ARG0_HI 20

static unsigned int emit(uint16_t code, uint32_t k, uint8_t jt, uint8_t jf)
{
    if (n_insns >= MAX_INSNS)
        xc_die("seccomp program too long", 0);
    prog[n_insns] = (struct sock_filter){code, jt, jf, k};
    return n_insns++;
}

/* Labels at the end of the program, patched once their place is known. */
struct fixup {
    unsigned int at;
    int target; /* 0 allow, 1 trap, 2 errno, 3 kill, 4.. check blocks */
};
static struct fixup fixups[512];
static unsigned int n_fixups;

static void ja_to(int target)
{
    unsigned int at = emit(BPF_JMP | BPF_JA, 0, 0, 0);
    fixups[n_fixups++] = (struct fixup){at, target};
}

/* Emit the search for the sorted numbers idx[lo, hi). */
static void emit_tree(const unsigned int *idx, int lo, int hi)
{
    if (hi - lo <= 3) {
        for (int i = lo; i < hi; i++) {
            const struct host_call *h = &interface[idx[i]];
            emit(BPF_JMP | BPF_JEQ | BPF_K, h->nr, 0, 1);
            ja_to(h->check == ANY ? 0 : 3 + (int)h->check);
        }
        ja_to(2);
        return;
    }
    int mid = (lo + hi) / 2;
    emit(BPF_JMP | BPF_JGE | BPF_K, interface[idx[mid]].nr, 0, 1);
    unsigned int right = emit(BPF_JMP | BPF_JA, 0, 0, 0);
    emit_tree(idx, lo, mid);
    prog[right].k = n_insns - right - 1;
    emit_tree(idx, mid, hi);
}

long xc_install_filter(void)
{
    unsigned long start = (unsigned long)__start_xc_gate, end = (unsigned long)__stop_xc_gate;
    unsigned int idx[N_HOST];
    unsigned int labels[8];

    if ((start >> 32) != (end >> 32))
        xc_die("the gate crosses a 4 GiB boundary", 0);
    for (unsigned int i = 0; i < N_HOST; i++)
        idx[i] = i;
    for (unsigned int i = 1; i < N_HOST; i++) /* insertion sort by number */
        for (unsigned int j = i; j > 0 && interface[idx[j - 1]].nr > interface[idx[j]].nr; j--) {
            unsigned int t = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = t;
        }
    n_insns = n_fixups = 0;
    emit(BPF_LD | BPF_W | BPF_ABS, OFF_ARCH, 0, 0);
    emit(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    ja_to(3);
    emit(BPF_LD | BPF_W | BPF_ABS, OFF_NR, 0, 0);
    emit(BPF_JMP | BPF_JEQ | BPF_K, __NR_rt_sigreturn, 0, 1);
    ja_to(0);
    emit(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1); /* x32 ABI */
    ja_to(3);
    emit(BPF_LD | BPF_W | BPF_ABS, OFF_IP_HI, 0, 0);
    emit(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(start >> 32), 1, 0);
    ja_to(1);
    emit(BPF_LD | BPF_W | BPF_ABS, OFF_IP_LO, 0, 0);
    emit(BPF_JMP | BPF_JGT | BPF_K, (uint32_t)start, 1, 0);
    ja_to(1);
    emit(BPF_JMP | BPF_JGT | BPF_K, (uint32_t)end, 0, 1);
    ja_to(1);
    emit(BPF_LD | BPF_W | BPF_ABS, OFF_NR, 0, 0);
    emit_tree(idx, 0, (int)N_HOST);

    labels[0] = emit(BPF_RET | BPF_K, SECCOMP_RET_ALLOW, 0, 0);
    labels[1] = emit(BPF_RET | BPF_K, SECCOMP_RET_TRAP, 0, 0);
    labels[2] = emit(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | XC_EPERM, 0, 0);
    labels[3] = emit(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS, 0, 0);
    /* CLONE: no namespace flags */
    labels[3 + CLONE] = emit(BPF_LD | BPF_W | BPF_ABS, OFF_ARG0_LO, 0, 0);
    emit(BPF_JMP | BPF_JSET | BPF_K, NS_FLAGS, 1, 0);
    emit(BPF_RET | BPF_K, SECCOMP_RET_ALLOW, 0, 0);
    emit(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | XC_EPERM, 0, 0);
    /* PRCTL: never PR_SET_SECCOMP (22) or PR_SET_MM (35) */
    labels[3 + PRCTL] = emit(BPF_LD | BPF_W | BPF_ABS, OFF_ARG0_LO, 0, 0);
    emit(BPF_JMP | BPF_JEQ | BPF_K, 22, 2, 0);
    emit(BPF_JMP | BPF_JEQ | BPF_K, 35, 1, 0);
    emit(BPF_RET | BPF_K, SECCOMP_RET_ALLOW, 0, 0);
    emit(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | XC_EPERM, 0, 0);
    /* EXEC_LIBOS: execveat(XC_LIBOS_FD, ...) only */
    labels[3 + EXEC_LIBOS] = emit(BPF_LD | BPF_W | BPF_ABS, OFF_ARG0_LO, 0, 0);
    emit(BPF_JMP | BPF_JEQ | BPF_K, XC_LIBOS_FD, 0, 3);
    emit(BPF_LD | BPF_W | BPF_ABS, OFF_ARG0_HI, 0, 0);
    emit(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1);
    emit(BPF_RET | BPF_K, SECCOMP_RET_ALLOW, 0, 0);
    emit(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | XC_EPERM, 0, 0);

    for (unsigned int i = 0; i < n_fixups; i++) {
        int t = fixups[i].target;
        prog[fixups[i].at].k = labels[t] - fixups[i].at - 1;
    }
    struct sock_fprog fprog = {(unsigned short)n_insns, prog};
    return H3(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog);
}

/* How many distinct host calls the interface allows (for `--xc-interface`). */
unsigned long xc_interface_size(void)
{
    return N_HOST;
}
