/*
 * A program that is not the X-LibOS, for tests/test_attacks.py: linked so that
 * its `syscall` instructions lie inside the LibOS's gate range (the test passes
 * the address), it passes the container's filter without the LibOS.  If an
 * exec through the gate can start it, it says so and exits.
 */
    .text
    .globl _start
_start:
    mov $1, %eax                /* write(1, msg, len) */
    mov $1, %edi
    lea msg(%rip), %rsi
    mov $len, %edx
    syscall
    mov $231, %eax              /* exit_group(42) */
    mov $42, %edi
    syscall
    hlt
msg:
    .ascii "exec-foreign/foreign-program: ran without the LibOS\n"
    .set len, . - msg
    .section .note.GNU-stack, "", @progbits
