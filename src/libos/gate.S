/*
 * The gate: the only `syscall` instructions the exokernel interface lets
 * reach the host.  The seccomp filter (filter.c) allows a system call only
 * when the instruction pointer after it lies in the section `xc_gate`
 * (__start_xc_gate, __stop_xc_gate]; every `syscall` anywhere else traps
 * into the LibOS's SIGSYS handler.
 */
#include "abi.h"

/*
 * The entry table of binaries `xc abom patch` rewrote, at XC_ABOM_TABLE (the
 * image's first code page: layout.ld puts this section there).  A pointer
 * per number to its 16-byte stub, then the stubs:
 *     b8 NN NN NN NN   mov $nr,%eax
 *     e9 RR RR RR RR   jmp xc_abom_table_entry
 * and `0f 0b` (ud2) for the numbers `xc abom patch` never points a site at.
 * Part of the image: shared page cache in every process, no mapping of its
 * own, nothing to build at start.
 */
    .section xc_abom, "ax", @progbits
    .globl xc_abom_table
xc_abom_table:
    .set xc_nr, 0
    .rept XC_NR_MAX
    .quad xc_abom_stubs + 16 * xc_nr
    .set xc_nr, xc_nr + 1
    .endr
xc_abom_stubs:
    .set xc_nr, 0
    .rept XC_NR_MAX
    .if XC_ABOM_UNPATCHABLE(xc_nr)
    ud2
    .else
    mov $xc_nr, %eax
    jmp xc_abom_table_entry
    .endif
    .balign 16, 0xcc
    .set xc_nr, xc_nr + 1
    .endr
    .size xc_abom_table, . - xc_abom_table

/*
 * The only path execveat may take from the gate (filter.c, EXEC_LIBOS): an
 * empty string among the constants.  At start the LibOS maps its code
 * segment again, shared from the read-only image on XC_LIBOS_FD (xc_main,
 * loader.c): a mapping that was never writable, so that nothing changes the
 * string: the filter refuses mprotect, munmap, mmap and mremap over the code,
 * and the kernel refuses a forced write (/proc/self/mem) into a shared
 * mapping that cannot be written (EIO; it copies only private pages).  So
 * execveat from the gate runs the file open on XC_LIBOS_FD, with
 * AT_EMPTY_PATH, or nothing.
 */
    .section .rodata
    .globl xc_exec_path
xc_exec_path:
    .byte 0

/*
 * The LibOS's writable state, which its seal leaves writable (libos.c,
 * xc_seal): zero pages of the image's bss segment, after all the sealed
 * ones; only the pages touched cost memory, so the state every process
 * touches comes first and fills two pages: the process's state (struct
 * xc_rw), the first XC_GATE_HEAD direct gates' return addresses and the
 * head of ABOM's bookkeeping (struct abom_state up to its sites,
 * XC_RW_ABOM_HEAD bytes) share the first, the sites are the second.  Then
 * the rest of ABOM's bookkeeping, written only once ABOM looks at an
 * object, and the other direct gates' return addresses, once it gives out
 * more than XC_GATE_HEAD gates.
 */
    .section xc_rw, "aw", @nobits
    .balign 4096
    .globl xc_rw_start, xc_gate_back_head, xc_gate_back, xc_rw_page, xc_abom_area, xc_rw_end
xc_rw_start:
xc_rw_page:
    .zero 4096 - XC_RW_ABOM_HEAD - 8 * XC_GATE_HEAD
xc_gate_back_head:
    .zero 8 * XC_GATE_HEAD
xc_abom_area:
    .zero XC_RW_ABOM_SIZE
    .balign 4096
xc_gate_back:
    .zero 8 * (XC_GATE_DIRECT - XC_GATE_HEAD)
    .balign 4096
xc_rw_end:

    .section .text
    .globl _start
    .type _start, @function
_start:
    xor %ebp, %ebp
    mov %rsp, %rdi              /* argc, argv..., 0, envp..., 0, auxv */
    and $-16, %rsp
    call xc_main
    hlt

/* noreturn void xc_jump(void *entry, void *sp): start a program. */
    .globl xc_jump
    .type xc_jump, @function
xc_jump:
    mov %rsi, %rsp
    xor %eax, %eax
    xor %ebx, %ebx
    xor %ecx, %ecx
    xor %edx, %edx              /* rdx = 0: no atexit function for static programs */
    xor %esi, %esi
    xor %ebp, %ebp
    xor %r8d, %r8d
    xor %r9d, %r9d
    xor %r10d, %r10d
    xor %r11d, %r11d
    xor %r12d, %r12d
    xor %r13d, %r13d
    xor %r14d, %r14d
    xor %r15d, %r15d
    mov %rdi, %rax
    xor %edi, %edi
    jmp *%rax

/* The entries and the user-memory copies are on every call's path, a fork's
 * child's included: beside the gate (layout.ld). */
    .section xc_hot, "ax", @progbits

/* The argument registers a C call may clobber, kept by the entries below
 * (rdx rsi rdi r8 r9 r10; the entries add what else they keep). */
.macro push_args
    push %rdx
    push %rsi
    push %rdi
    push %r8
    push %r9
    push %r10
.endm
.macro pop_args
    pop %r10
    pop %r9
    pop %r8
    pop %rdi
    pop %rsi
    pop %rdx
.endm

/*
 * The entry of sites ABOM patched (abom.c): the trampoline did
 * `lea -128(%rsp),%rsp; mov $nr,%eax; call *xc_abom_entry_slot`.  Keep every
 * register the kernel would keep across `syscall` (all but rax, rcx, r11)
 * and the flags; call xc_abom_dispatch(nr, a0..a5) on an aligned stack.
 */
    .globl xc_abom_entry
    .type xc_abom_entry, @function
xc_abom_entry:
    pushfq
    cld
    push %rcx
    push_args
    push %r11
    push %rbx
    mov %rsp, %rbx
    and $-16, %rsp
    sub $8, %rsp
    push %r9                    /* a5, the 7th argument, on the stack */
    mov %r8, %r9                /* a4 */
    mov %r10, %r8               /* a3 */
    mov %rdx, %rcx              /* a2 */
    mov %rsi, %rdx              /* a1 */
    mov %rdi, %rsi              /* a0 */
    mov %rax, %rdi              /* nr */
    call xc_abom_dispatch
    mov %rbx, %rsp
    pop %rbx
    pop %r11
    pop_args
    pop %rcx
    popfq
    ret

/*
 * The direct path of a patched newfstatat site (abom.c, put_direct): the
 * trampoline checked the fd and the path's start, stepped over the red zone
 * and called here through xc_abom_stat_slot with the program's arguments
 * (rdi dfd, rsi path, rdx statbuf, r10 flags).  xc_stat_direct (libos.c)
 * answers through statx.  As xc_abom_entry: every register but rax, rcx and
 * r11 kept, and the flags; no dispatch, no table.
 */
    .globl xc_abom_stat_entry
    .type xc_abom_stat_entry, @function
xc_abom_stat_entry:
    pushfq
    cld
    push_args
    push %rbx
    mov %rsp, %rbx
    and $-16, %rsp
    mov %r10, %rcx              /* flags, the 4th C argument */
    call xc_stat_direct
    mov %rbx, %rsp
    pop %rbx
    pop_args
    popfq
    ret

/*
 * The entry of sites `xc abom patch` rewrote on disk: the site's
 * `call *XC_ABOM_TABLE+8*nr` came through the number's stub, which did
 * `mov $nr,%eax` and jumped here.  The call's return address is the only
 * thing written below the program's stack pointer (the offline analysis
 * proved nothing lives there); step over the rest of the red zone anyway.
 * A 9-byte site (mov $nr,%rax) had its syscall turned into `eb f7`: return
 * after that.
 */
    .globl xc_abom_table_entry
    .type xc_abom_table_entry, @function
xc_abom_table_entry:
    pushfq
    mov 8(%rsp), %rcx
    cmpw $0xf7eb, (%rcx)
    jne 1f
    addq $2, 8(%rsp)
1:  popfq
    lea -120(%rsp), %rsp
    call xc_abom_entry
    lea 120(%rsp), %rsp
    ret

/*
 * The LibOS's reads and writes of the program's memory (a path, a mask, an
 * answer), which may fault where Linux would answer EFAULT: a fault with
 * the instruction pointer in [xc_user_begin, xc_user_end) resumes at
 * xc_user_fault, which returns -EFAULT to the caller (xc_fault_handler).
 * Leaf functions: nothing on the stack but the return address.
 */
    .globl xc_user_begin, xc_user_end, xc_user_fault
xc_user_begin:
/* long xc_user_copy(void *dst, const void *src, unsigned long n): 0 or -EFAULT */
    .globl xc_user_copy
    .type xc_user_copy, @function
xc_user_copy:
    mov %rdx, %rcx
    rep movsb
    xor %eax, %eax
    ret
/* long xc_user_copy8(void *dst, const void *src, unsigned long nq): nq
 * quadwords, 0 or -EFAULT; for small copies on hot paths (a struct stat),
 * where rep movs's start-up costs more than the copy */
    .globl xc_user_copy8
    .type xc_user_copy8, @function
xc_user_copy8:
    xor %eax, %eax
1:  mov (%rsi,%rax,8), %rcx
    mov %rcx, (%rdi,%rax,8)
    inc %rax
    cmp %rdx, %rax
    jb 1b
    xor %eax, %eax
    ret
/* long xc_user_strcpy(char *dst, const char *src, unsigned long max): the
 * string's length if its NUL is within max bytes (copied with it), max if
 * not (max bytes copied, no NUL), or -EFAULT */
    .globl xc_user_strcpy
    .type xc_user_strcpy, @function
xc_user_strcpy:
    xor %eax, %eax
1:  cmp %rdx, %rax
    jae 2f
    movzbl (%rsi,%rax), %ecx
    mov %cl, (%rdi,%rax)
    test %cl, %cl
    jz 2f
    inc %rax
    jmp 1b
2:  ret
xc_user_end:
xc_user_fault:
    mov $-14, %rax              /* -EFAULT */
    ret

    .section xc_gate, "ax", @progbits
    .balign 4096
/* long xc_host_syscall(nr, a1, a2, a3, a4, a5, a6) */
    .globl xc_host_syscall
    .type xc_host_syscall, @function
xc_host_syscall:
    mov %rdi, %rax              /* 48 89 f8  mov %rdi,%rax */
    mov %rsi, %rdi
    mov %rdx, %rsi
    mov %rcx, %rdx
    mov %r8, %r10
    mov %r9, %r8
    mov 8(%rsp), %r9
    syscall                     /* 0f 05: the host call */
    ret

/* long xc_syscall2_on_stack(nr, a1, a2, stack): a host call made with rsp
 * on *stack* (the program's), so that the kernel judges sigaltstack's
 * SS_ONSTACK and EPERM by where the program was, not by the trap frame. */
    .globl xc_syscall2_on_stack
    .type xc_syscall2_on_stack, @function
xc_syscall2_on_stack:
    push %rbx
    mov %rsp, %rbx
    mov %rcx, %rsp
    mov %rdi, %rax
    mov %rsi, %rdi
    mov %rdx, %rsi
    syscall
    mov %rbx, %rsp
    pop %rbx
    ret

/*
 * The direct gates of ABOM's forwarding trampolines (abom.c): a call the
 * LibOS would only pass on to the host unchanged skips the LibOS.  Its
 * trampoline counts it, sends a call naming one of the LibOS's own fds to
 * the LibOS, and otherwise jumps here with the number in eax and the
 * arguments where the program put them:
 *     0f 05                syscall            (in the gate: the filter lets it through)
 *     ff 25 RR RR RR RR    jmp *xc_gate_back+8*i(%rip)    back to the program's site
 * One per patched site, XC_GATE_DIRECT of them; the return addresses live in
 * the pages the LibOS's seal leaves writable: the first XC_GATE_HEAD in
 * xc_gate_back_head (the first writable page, which every process writes),
 * the others in xc_gate_back, page-aligned (written by abom.c, put_direct).
 */
    .balign 16
    .globl xc_gate_direct
    .type xc_gate_direct, @function
xc_gate_direct:
    .set xc_gate_i, 0
    .rept XC_GATE_DIRECT
    syscall
    .if xc_gate_i < XC_GATE_HEAD
    jmp *xc_gate_back_head + 8 * xc_gate_i(%rip)
    .else
    jmp *xc_gate_back + 8 * (xc_gate_i - XC_GATE_HEAD)(%rip)
    .endif
    .set xc_gate_i, xc_gate_i + 1
    .endr
    .size xc_gate_direct, . - xc_gate_direct

/* The SA_RESTORER of the LibOS's own SIGSYS handler. */
    .globl xc_restorer
    .type xc_restorer, @function
xc_restorer:
    mov $15, %eax               /* __NR_rt_sigreturn */
    syscall
    hlt

/*
 * long xc_clone_thread(flags, child_sp, ptid, ctid, tls)
 * clone(2) with a new stack, forwarded from the trap handler.  The child
 * starts here on child_sp, where the handler left the app's registers
 * (r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rdx rsi rdi rcx, then the app's
 * return address, which `ret` pops so that rsp becomes the app's stack).
 */
    .globl xc_clone_thread
    .type xc_clone_thread, @function
xc_clone_thread:
    xor %r9d, %r9d
    cmpl $0, xc_fsgsbase(%rip)
    je 0f
    rdgsbase %r9                /* our ids (libos.c, gs_ids): our pid above our tid */
    shr $32, %r9
0:  mov %rcx, %r10
    mov $56, %eax               /* __NR_clone */
    syscall
    test %rax, %rax
    jnz 1f
    cmpl $0, xc_fsgsbase(%rip)  /* a new thread or process learns its tid for gettid, */
    je 3f                       /* and its pid for getpid (libos.c, gs_ids): */
    mov %rdi, %rsi              /* (the flags; the stack is already the child's) */
    xor %edi, %edi
    test $0x200000, %esi        /* CLONE_CHILD_CLEARTID: the kernel keeps ctid as */
    cmovnz %r10, %rdi           /* its clear_child_tid, else NULL; */
    mov $218, %eax              /* set_tid_address(the same) returns the tid */
    syscall
    test $0x10000, %esi         /* CLONE_THREAD: its process is ours (pid in r9), */
    cmovz %rax, %r9             /* else a new one, whose pid is its tid */
    shl $32, %r9
    or %r9, %rax
    wrgsbase %rax
    mov %rsi, %rdi
3:  test $0x4000, %edi          /* a CLONE_VFORK child (posix_spawn) drops the parent's */
    jz 2f                       /* sigaltstack: its traps would land on the parent's frame */
    sub $32, %rsp
    movq $0, (%rsp)             /* ss_sp */
    movq $2, 8(%rsp)            /* ss_flags = SS_DISABLE */
    movq $0, 16(%rsp)           /* ss_size */
    mov %rsp, %rdi
    xor %esi, %esi
    mov $131, %eax              /* __NR_sigaltstack */
    syscall
    add $32, %rsp
2:  pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rdx
    pop %rsi
    pop %rdi
    pop %rcx
    xor %eax, %eax              /* the child sees 0 */
    ret
1:  ret

    .section .note.GNU-stack, "", @progbits
