/*
 * The vDSO, as the LibOS uses it: the kernel maps into every process a small
 * shared object (AT_SYSINFO_EHDR) whose functions read the time, the
 * resolution of the clocks and the current CPU from a data page the kernel
 * keeps up to date, without entering the kernel.  Programs call it through
 * libc, so those calls never reach the LibOS; a program that makes the
 * system call itself (static binaries without vDSO support, raw syscall(2))
 * traps, and the LibOS answers from the same functions: clock_gettime,
 * gettimeofday, time, clock_getres and getcpu then need no host call for
 * the clocks the vDSO keeps (REALTIME, MONOTONIC, MONOTONIC_RAW, the two
 * COARSE ones, BOOTTIME, TAI), and clock_getres needs none at all.
 *
 * The vDSO is found at start from the ELF dynamic section of the image the
 * kernel mapped (DT_SYMTAB, DT_STRTAB, DT_HASH for the number of symbols,
 * or the section headers when there is no DT_HASH).  Two constants of the
 * boot are kept from it: the high-resolution timer's resolution and the
 * coarse clocks' (a tick).  A vDSO function that cannot answer falls back
 * to its own `syscall`, which traps like any other outside the gate: the
 * LibOS then asks the host (xc_vdso_served, never the vDSO again).  The
 * program may unmap or move the vDSO (CRIU does): the LibOS forgets it then
 * (xc_vdso_forget) and asks the host.  Without a vDSO the resolutions are
 * the usual ones: 1 ns, and a tick of 4 ms (HZ=250).
 */
#include "xc.h"

#include <linux/elf.h>

/* In the bss (zero until xc_vdso_init): the image has no initialized data,
 * so no file-backed data page of its own in every process. */
struct xc_vdso xc_vdso;

static int name_is(const char *a, const char *b)
{
    return xc_strcmp(a, b) == 0;
}

/* The symbols of the image at *base*, looked up by name. */
static void resolve(unsigned long base)
{
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
    if (eh->e_ident[0] != 0x7f || eh->e_ident[1] != 'E' || eh->e_ident[2] != 'L' || eh->e_ident[3] != 'F' ||
        eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_phentsize != sizeof(Elf64_Phdr))
        return;
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(base + eh->e_phoff);
    unsigned long bias = 0, end = 0;
    const Elf64_Dyn *dyn = 0;
    int have_load = 0;
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type == PT_LOAD) {
            if (!have_load)
                bias = base + ph[i].p_offset - ph[i].p_vaddr;
            have_load = 1;
            if (ph[i].p_vaddr + ph[i].p_memsz > end)
                end = ph[i].p_vaddr + ph[i].p_memsz;
        } else if (ph[i].p_type == PT_DYNAMIC) {
            dyn = (const Elf64_Dyn *)ph[i].p_vaddr; /* relative to the bias, below */
        }
    }
    if (!have_load || !dyn)
        return;
    dyn = (const Elf64_Dyn *)((unsigned long)dyn + bias);
    const Elf64_Sym *sym = 0;
    const char *str = 0;
    const uint32_t *hash = 0;
    for (; dyn->d_tag != DT_NULL; dyn++) {
        if (dyn->d_tag == DT_SYMTAB)
            sym = (const Elf64_Sym *)(dyn->d_un.d_ptr + bias);
        else if (dyn->d_tag == DT_STRTAB)
            str = (const char *)(dyn->d_un.d_ptr + bias);
        else if (dyn->d_tag == DT_HASH)
            hash = (const uint32_t *)(dyn->d_un.d_ptr + bias);
    }
    if (!sym || !str)
        return;
    unsigned long nsyms = 0;
    if (hash) {
        nsyms = hash[1]; /* nchain: one per symbol */
    } else if (eh->e_shentsize == sizeof(Elf64_Shdr) && eh->e_shoff) {
        const Elf64_Shdr *sh = (const Elf64_Shdr *)(base + eh->e_shoff);
        for (int i = 0; i < eh->e_shnum; i++)
            if (sh[i].sh_type == SHT_DYNSYM && sh[i].sh_entsize == sizeof(Elf64_Sym))
                nsyms = sh[i].sh_size / sizeof(Elf64_Sym);
    }
    for (unsigned long i = 0; i < nsyms; i++) {
        if (ELF64_ST_TYPE(sym[i].st_info) != STT_FUNC || sym[i].st_shndx == SHN_UNDEF)
            continue;
        const char *n = str + sym[i].st_name;
        void *fn = (void *)(sym[i].st_value + bias);
        if (name_is(n, "__vdso_clock_gettime"))
            xc_vdso.clock_gettime = (long (*)(long, void *))fn;
        else if (name_is(n, "__vdso_clock_getres"))
            xc_vdso.clock_getres = (long (*)(long, void *))fn;
        else if (name_is(n, "__vdso_gettimeofday"))
            xc_vdso.gettimeofday = (long (*)(void *, void *))fn;
        else if (name_is(n, "__vdso_time"))
            xc_vdso.time = (long (*)(long *))fn;
        else if (name_is(n, "__vdso_getcpu"))
            xc_vdso.getcpu = (long (*)(unsigned *, unsigned *, void *))fn;
    }
    xc_vdso.lo = base;
    xc_vdso.hi = bias + ((end + 4095) & ~4095UL);
}

/* At start, before the LibOS is sealed. */
void xc_vdso_init(const uint64_t *auxv)
{
    xc_vdso.hres_ns = 1;
    xc_vdso.coarse_ns = 4000000;
    for (; auxv[0] != 0 /* AT_NULL */; auxv += 2)
        if (auxv[0] == 33 /* AT_SYSINFO_EHDR */)
            resolve((unsigned long)auxv[1]);
    struct { long sec, nsec; } res;
    if (xc_vdso.clock_getres && xc_vdso.clock_getres(1 /* CLOCK_MONOTONIC */, &res) == 0)
        xc_vdso.hres_ns = res.nsec;
    if (xc_vdso.clock_getres && xc_vdso.clock_getres(6 /* CLOCK_MONOTONIC_COARSE */, &res) == 0)
        xc_vdso.coarse_ns = res.nsec;
}

/* The program unmaps, moves, remaps or reprotects [addr, addr+len): if that
 * touches the vDSO, the LibOS stops calling it (the resolutions stay). */
void xc_vdso_forget(unsigned long addr, unsigned long len)
{
    if (!xc_vdso.lo || addr >= xc_vdso.hi || addr + len <= xc_vdso.lo)
        return;
    xc_unseal();
    xc_vdso.clock_gettime = 0;
    xc_vdso.clock_getres = 0;
    xc_vdso.gettimeofday = 0;
    xc_vdso.time = 0;
    xc_vdso.getcpu = 0;
    xc_vdso.lo = xc_vdso.hi = 0;
    xc_seal();
}

/* Whether a trap at *ip* (the address after its `syscall`) came from the
 * vDSO's own fallback: then the vDSO must not be asked again. */
int xc_vdso_trapped(unsigned long ip)
{
    return ip > xc_vdso.lo && ip <= xc_vdso.hi;
}
