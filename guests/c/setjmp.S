/* my_setjmp / my_longjmp for the setjmp guest: the SysV callee-saved registers, RSP and the
   return address in a 8-quadword buffer. */
    .text
    .globl my_setjmp
my_setjmp:                  /* int my_setjmp(u64 buf[8]) */
    mov     %rbx, 0(%rdi)
    mov     %rbp, 8(%rdi)
    mov     %r12, 16(%rdi)
    mov     %r13, 24(%rdi)
    mov     %r14, 32(%rdi)
    mov     %r15, 40(%rdi)
    lea     8(%rsp), %rdx   /* RSP after this call returns */
    mov     %rdx, 48(%rdi)
    mov     (%rsp), %rdx    /* the return address */
    mov     %rdx, 56(%rdi)
    xor     %eax, %eax
    ret

    .globl my_longjmp
my_longjmp:                 /* void my_longjmp(u64 buf[8], int value): value 0 returns 1 */
    mov     %esi, %eax
    test    %eax, %eax
    jnz     1f
    inc     %eax
1:  mov     0(%rdi), %rbx
    mov     8(%rdi), %rbp
    mov     16(%rdi), %r12
    mov     24(%rdi), %r13
    mov     32(%rdi), %r14
    mov     40(%rdi), %r15
    mov     48(%rdi), %rsp
    jmp     *56(%rdi)
