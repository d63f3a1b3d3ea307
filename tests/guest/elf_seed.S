/*
 * The seed of the ELF loader fuzzer (tests/fuzz.py): a program without libc
 * that writes a line from its data, checks that its bss is zero, and exits
 * 0.  Built as a static executable, a static PIE, a PIE with an interpreter
 * (PT_INTERP) and with a Go build-ID note, then mutated.  Position
 * independent (rip-relative only), so every build needs no relocation.
 */
    .text
    .globl _start
_start:
    mov $1, %eax                /* write(1, msg, len) */
    mov $1, %edi
    lea msg(%rip), %rsi
    mov $len, %edx
    syscall
    mov zero(%rip), %rdi        /* exit_group(bss word): 0 unless the bss was not cleared */
    mov $231, %eax
    syscall
    hlt

    .data
msg:
    .ascii "elf-seed: ran\n"
    .set len, . - msg

    .bss
    .balign 8
zero:
    .skip 8192

#ifdef GO_NOTE
    .section .note.go.buildid, "a", @note
    .balign 4
    .long 4                     /* namesz: "Go\0\0" */
    .long 8                     /* descsz */
    .long 4                     /* type: the Go linker's build ID */
    .asciz "Go"
    .balign 4
    .ascii "xcfuzzid"
#endif
    .section .note.GNU-stack, "", @progbits
