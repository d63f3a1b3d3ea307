/*
 * x86-64 instruction lengths, for ABOM's instruction-boundary proof.
 *
 * ABOM decodes a function from its first byte (known from .eh_frame or the
 * symbol table) up to a system call site; a site is patched only if its
 * bytes are instruction starts on that walk.  The decoder knows the length
 * of every instruction a compiler emits in 64-bit mode: legacy prefixes,
 * REX, the one-, two- and three-byte maps, VEX and EVEX.  What it does not
 * know it reports as -1, and the site is left alone: an unknown opcode is a
 * refusal, never a guess.  xcontainers/abom.py decodes the same functions
 * with capstone; a test compares the two on real binaries.
 */
#include "xc.h"

/* Operand shape of an opcode: does a ModRM byte follow, and which immediate. */
enum {
    BAD = 0,   /* invalid in 64-bit mode, or not known here */
    NONE = 1,  /* no ModRM, no immediate */
    M = 2,     /* ModRM */
    IB = 4,    /* imm8 */
    IW = 8,    /* imm16 */
    IZ = 16,   /* imm16 with 66, else imm32 */
    IV = 32,   /* imm64 with REX.W, else as IZ (b8-bf) */
    AO = 64,   /* moffs: 8 bytes, 4 with 67 */
    F6 = 128,  /* group 3: imm only for /0 and /1 (test) */
};

#define R4(x) x, x, x, x
#define R8(x) R4(x), R4(x)
#define R16(x) R8(x), R8(x)

static const uint8_t one[256] = {
    /* 00 */ M, M, M, M, IB, IZ, BAD, BAD, M, M, M, M, IB, IZ, BAD, BAD,
    /* 10 */ M, M, M, M, IB, IZ, BAD, BAD, M, M, M, M, IB, IZ, BAD, BAD,
    /* 20 */ M, M, M, M, IB, IZ, BAD, BAD, M, M, M, M, IB, IZ, BAD, BAD,
    /* 30 */ M, M, M, M, IB, IZ, BAD, BAD, M, M, M, M, IB, IZ, BAD, BAD,
    /* 40 */ R16(BAD), /* REX, taken before */
    /* 50 */ R16(NONE),
    /* 60 */ BAD, BAD, BAD, M, BAD, BAD, BAD, BAD, IZ, M | IZ, IB, M | IB, NONE, NONE, NONE, NONE,
    /* 70 */ R16(IB),
    /* 80 */ M | IB, M | IZ, BAD, M | IB, M, M, M, M, M, M, M, M, M, M, M, M,
    /* 90 */ NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, BAD, NONE, NONE, NONE, NONE, NONE,
    /* a0 */ AO, AO, AO, AO, NONE, NONE, NONE, NONE, IB, IZ, NONE, NONE, NONE, NONE, NONE, NONE,
    /* b0 */ R8(IB), R8(IV),
    /* c0 */ M | IB, M | IB, IW, NONE, BAD, BAD, M | IB, M | IZ, IW | IB, NONE, IW, NONE, NONE, IB, BAD, NONE,
    /* d0 */ M, M, M, M, BAD, BAD, BAD, NONE, M, M, M, M, M, M, M, M,
    /* e0 */ IB, IB, IB, IB, IB, IB, IB, IB, IZ, IZ, BAD, IB, NONE, NONE, NONE, NONE,
    /* f0 */ BAD, NONE, BAD, BAD, NONE, NONE, M | F6, M | F6, NONE, NONE, NONE, NONE, NONE, NONE, M, M,
};

static const uint8_t two[256] = {
    /* 00 */ M, M, M, M, BAD, NONE, NONE, NONE, NONE, NONE, BAD, NONE, BAD, M, NONE, BAD,
    /* 10 */ R16(M),
    /* 20 */ M, M, M, M, BAD, BAD, BAD, BAD, M, M, M, M, M, M, M, M,
    /* 30 */ NONE, NONE, NONE, NONE, NONE, NONE, BAD, NONE, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD,
    /* 40 */ R16(M),
    /* 50 */ R16(M),
    /* 60 */ R16(M),
    /* 70 */ M | IB, M | IB, M | IB, M | IB, M, M, M, NONE, M, M, BAD, BAD, M, M, M, M,
    /* 80 */ R16(IZ),
    /* 90 */ R16(M),
    /* a0 */ NONE, NONE, NONE, M, M | IB, M, BAD, BAD, NONE, NONE, NONE, M, M | IB, M, M, M,
    /* b0 */ M, M, M, M, M, M, M, M, M, M, M | IB, M, M, M, M, M,
    /* c0 */ M, M, M | IB, M, M | IB, M | IB, M | IB, M, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE,
    /* d0 */ R16(M),
    /* e0 */ R16(M),
    /* f0 */ R16(M),
};

/* Length of the ModRM byte and what follows it (SIB, displacement); -1 if
 * the bytes end first. */
static int modrm_len(const uint8_t *p, int avail)
{
    if (avail < 1)
        return -1;
    int mod = p[0] >> 6, rm = p[0] & 7, n = 1;
    if (mod != 3 && rm == 4) {
        if (avail < 2)
            return -1;
        if (mod == 0 && (p[1] & 7) == 5)
            n += 4;
        n++;
    }
    if (mod == 0 && rm == 5)
        n += 4; /* rip-relative */
    else if (mod == 1)
        n += 1;
    else if (mod == 2)
        n += 4;
    return n <= avail ? n : -1;
}

/* Immediate after an opcode of the one- or two-byte map's *shape*. */
static int imm_len(unsigned shape, int opsize16, int rexw, int addr32)
{
    int n = 0;
    if (shape & IB)
        n += 1;
    if (shape & IW)
        n += 2;
    if (shape & IZ)
        n += opsize16 ? 2 : 4;
    if (shape & IV)
        n += rexw ? 8 : opsize16 ? 2 : 4;
    if (shape & AO)
        n += addr32 ? 4 : 8;
    return n;
}

/* VEX/EVEX: map 1 opcodes that take an imm8. */
static int vex_map1_imm(uint8_t op)
{
    return (op >= 0x70 && op <= 0x73) || op == 0xc2 || op == 0xc4 || op == 0xc5 || op == 0xc6;
}

int xc_insn_len(const uint8_t *p, int avail)
{
    int i = 0, opsize16 = 0, addr32 = 0, rexw = 0;
    for (;; i++) {
        if (i >= avail || i >= 14)
            return -1;
        uint8_t b = p[i];
        if (b == 0x66)
            opsize16 = 1;
        else if (b == 0x67)
            addr32 = 1;
        else if (!(b == 0xf0 || b == 0xf2 || b == 0xf3 || b == 0x2e || b == 0x36 || b == 0x3e || b == 0x26 ||
                   b == 0x64 || b == 0x65))
            break;
    }
    if ((p[i] & 0xf0) == 0x40) {
        rexw = p[i] & 8;
        if (++i >= avail)
            return -1;
    }
    uint8_t op = p[i++];
    int n;
    if (op == 0xc4 || op == 0xc5 || op == 0x62) {
        /* VEX (c4: 3 bytes, c5: 2) and EVEX (62: 4): the map, then opcode + ModRM. */
        int map, plen = op == 0xc5 ? 1 : op == 0xc4 ? 2 : 3;
        if (i + plen + 1 >= avail)
            return -1;
        map = op == 0xc5 ? 1 : op == 0xc4 ? (p[i] & 0x1f) : (p[i] & 0x07);
        if (map < 1 || map > 3)
            return -1;
        i += plen;
        uint8_t vop = p[i++];
        if (map == 1 && vop == 0x77 && op != 0x62)
            return i; /* vzeroupper / vzeroall */
        n = modrm_len(p + i, avail - i);
        if (n < 0)
            return -1;
        i += n;
        if (map == 3 || (map == 1 && vex_map1_imm(vop)))
            i += 1;
        return i <= avail ? i : -1;
    }
    if (op == 0x8f && i < avail && (p[i] & 0x1f) >= 8) {
        /* AMD XOP (8f with map 8-10; 8f /0 with a ModRM is pop r/m) */
        int map = p[i] & 0x1f;
        i += 2;
        if (i >= avail || map > 10)
            return -1;
        i++; /* opcode */
        n = modrm_len(p + i, avail - i);
        if (n < 0)
            return -1;
        i += n + (map == 8 ? 1 : map == 10 ? 4 : 0);
        return i <= avail ? i : -1;
    }
    unsigned shape;
    if (op == 0x0f) {
        if (i >= avail)
            return -1;
        uint8_t op2 = p[i++];
        if (op2 == 0x38 || op2 == 0x3a) {
            if (i >= avail)
                return -1;
            i++; /* the third opcode byte */
            shape = M | (op2 == 0x3a ? IB : 0);
        } else {
            shape = two[op2];
        }
    } else {
        shape = one[op];
    }
    if (shape == BAD)
        return -1;
    uint8_t modrm = 0;
    if (shape & M) {
        if (i >= avail)
            return -1;
        modrm = p[i];
        n = modrm_len(p + i, avail - i);
        if (n < 0)
            return -1;
        i += n;
    }
    i += imm_len(shape, opsize16, rexw, addr32);
    if ((shape & F6) /* f6: imm8, f7: imm16/32, for test (/0, /1) only */ && ((modrm >> 3) & 7) < 2)
        i += op == 0xf6 ? 1 : opsize16 ? 2 : 4;
    return i <= avail ? i : -1;
}

/* Padding the compiler or linker put between code: nop forms and int3. */
int xc_insn_is_padding(const uint8_t *p, int len)
{
    int i = 0;
    while (i < len - 1 && (p[i] == 0x66 || p[i] == 0x2e))
        i++;
    if (i == len - 1 && (p[i] == 0x90 || p[i] == 0xcc))
        return 1;
    return i + 1 < len && p[i] == 0x0f && p[i + 1] == 0x1f;
}

/* Where a direct branch goes, for the walk's branch-target check; 0 if the
 * instruction at *p* (at address *at*, *len* bytes) is not one. */
unsigned long xc_insn_branch_target(const uint8_t *p, int len, unsigned long at)
{
    int i = 0;
    while (i < len && (p[i] == 0x66 || p[i] == 0x2e || p[i] == 0x3e || p[i] == 0xf2 || p[i] == 0xf3))
        i++;
    if (i >= len)
        return 0;
    uint8_t op = p[i];
    long rel;
    if ((op >= 0x70 && op <= 0x7f) || op == 0xeb || (op >= 0xe0 && op <= 0xe3))
        rel = (int8_t)p[len - 1];
    else if (op == 0xe8 || op == 0xe9 || (op == 0x0f && i + 1 < len && (p[i + 1] & 0xf0) == 0x80))
        rel = (int32_t)((uint32_t)p[len - 4] | (uint32_t)p[len - 3] << 8 | (uint32_t)p[len - 2] << 16 |
                        (uint32_t)p[len - 1] << 24);
    else
        return 0;
    return at + (unsigned long)len + (unsigned long)rel;
}

/* Does control never fall through to the next instruction? (ret, jmp, ud2, hlt) */
int xc_insn_ends_flow(const uint8_t *p, int len)
{
    int i = 0;
    while (i < len && (p[i] == 0xf2 || p[i] == 0xf3 || p[i] == 0x3e || p[i] == 0x2e || (p[i] & 0xf0) == 0x40))
        i++; /* bnd / notrack prefixes, REX */
    if (i >= len)
        return 0;
    uint8_t op = p[i];
    if (op == 0xc3 || op == 0xc2 || op == 0xe9 || op == 0xeb || op == 0xf4)
        return 1;
    if (op == 0x0f && i + 1 < len && p[i + 1] == 0x0b)
        return 1;
    if (op == 0xff && i + 1 < len && (((p[i + 1] >> 3) & 7) == 4 || ((p[i + 1] >> 3) & 7) == 5))
        return 1;
    return 0;
}

/* An indirect jmp (ff /4, ff /5): a jump table may reach any byte. */
int xc_insn_is_indirect_jmp(const uint8_t *p, int len)
{
    int i = 0;
    while (i < len && (p[i] == 0xf2 || p[i] == 0xf3 || p[i] == 0x3e || p[i] == 0x2e || (p[i] & 0xf0) == 0x40))
        i++;
    return i + 1 < len && p[i] == 0xff && (((p[i + 1] >> 3) & 7) == 4 || ((p[i + 1] >> 3) & 7) == 5);
}

/* Whether the instruction at *p* (*len* bytes, a whole instruction) does
 * the same wherever it runs and leaves rax (and eax, ax, al, ah) alone: the
 * instructions ABOM's APART rewrite copies into a trampoline, from between
 * a `mov $nr,%eax` and its syscall.  A short list of what compilers put
 * there (moves, stores, loads, lea, simple arithmetic, SSE moves and
 * logic), never with a rip-relative operand, a branch, a call or a
 * system call; anything else is a refusal.  xcontainers/abom.py has the
 * same list (_movable). */
int xc_insn_movable(const uint8_t *p, int len)
{
    int i = 0, rex = 0, sse_prefix = 0;
    while (i < len && (p[i] == 0x66 || p[i] == 0x64 || p[i] == 0x65 || p[i] == 0xf2 || p[i] == 0xf3)) {
        sse_prefix |= p[i] == 0xf2 || p[i] == 0xf3;
        i++;
    }
    if (i < len && (p[i] & 0xf0) == 0x40)
        rex = p[i++];
    if (i >= len)
        return 0;
    uint8_t op = p[i++];
    /* ModRM operand kinds: RM_W the r/m operand is written, REG_W the reg
     * operand is, NO_W neither (a compare, a store to memory only: MEM_ONLY) */
    enum { NO_W, RM_W, REG_W, MEM_ONLY };
    int kind = -1, group = -1;
    if (op == 0x0f) {
        if (i >= len)
            return 0;
        uint8_t op2 = p[i++];
        if (op2 == 0x1f || (op2 >= 0x10 && op2 <= 0x17) || op2 == 0x28 || op2 == 0x29 || op2 == 0x2e ||
            op2 == 0x2f || (op2 >= 0x54 && op2 <= 0x6f) || op2 == 0x7f || op2 == 0xd6 || op2 == 0xd4 ||
            op2 == 0xdb || op2 == 0xdf || op2 == 0xeb || op2 == 0xef || (op2 >= 0xf8 && op2 <= 0xfe))
            kind = NO_W; /* an xmm (or mm) register or memory is written, never a general one */
        else if (sse_prefix)
            return 0;
        else if (op2 == 0xb6 || op2 == 0xb7 || op2 == 0xbe || op2 == 0xbf || op2 == 0xaf ||
                 (op2 >= 0x40 && op2 <= 0x4f))
            kind = REG_W;
        else if (op2 >= 0x90 && op2 <= 0x9f)
            kind = MEM_ONLY; /* setcc to memory */
        else
            return 0;
    } else if (sse_prefix) {
        return 0;
    } else if (op >= 0xb8 && op <= 0xbf) {
        return ((op & 7) | (rex & 1) << 3) != 0; /* mov $imm, reg */
    } else if (op >= 0x50 && op <= 0x57) {
        return i == len; /* push */
    } else if (op >= 0x58 && op <= 0x5f) {
        return i == len && ((op & 7) | (rex & 1) << 3) != 0; /* pop, not into rax */
    } else if (op == 0x90) {
        return i == len && !(rex & 1); /* nop (41 90 is xchg %r8,%rax) */
    } else if (op == 0x89 || op == 0x01 || op == 0x09 || op == 0x21 || op == 0x29 || op == 0x31 || op == 0xc1 ||
               op == 0xd1 || op == 0xd3) {
        kind = RM_W;
    } else if (op == 0x8b || op == 0x03 || op == 0x0b || op == 0x23 || op == 0x2b || op == 0x33 || op == 0x8d ||
               op == 0x63) {
        kind = REG_W;
    } else if (op == 0x39 || op == 0x3b || op == 0x85 || op == 0x38 || op == 0x3a || op == 0x84) {
        kind = NO_W;
    } else if (op == 0x88) {
        kind = MEM_ONLY;
    } else if (op == 0xc7 || op == 0xc6 || op == 0x81 || op == 0x83 || op == 0xf7 || op == 0xff) {
        group = op;
        kind = RM_W;
    } else {
        return 0;
    }
    if (i >= len)
        return 0;
    uint8_t modrm = p[i];
    int mod = modrm >> 6, reg = (modrm >> 3) & 7, rm = modrm & 7;
    if (mod == 0 && rm == 5)
        return 0; /* rip-relative */
    if (op == 0x8d && mod == 3)
        return 0;
    switch (group) {
    case 0xc7: /* mov $imm, r/m: /0 only; the byte form to memory only */
    case 0xc6:
        if (reg != 0 || (group == 0xc6 && mod == 3))
            return 0;
        break;
    case 0x81: /* add or adc sbb and sub xor; cmp (/7) writes nothing */
    case 0x83:
        if (reg == 7)
            kind = NO_W;
        break;
    case 0xf7: /* test (/0) writes nothing; not, neg (/2, /3) their operand; mul and div rax */
        if (reg == 0)
            kind = NO_W;
        else if (reg != 2 && reg != 3)
            return 0;
        break;
    case 0xff: /* inc, dec */
        if (reg > 1)
            return 0;
        break;
    }
    if (kind == MEM_ONLY)
        return mod != 3;
    if (kind == RM_W && mod == 3)
        return (rm | (rex & 1) << 3) != 0;
    if (kind == REG_W)
        return (reg | (rex & 4) << 1) != 0;
    return 1;
}
