/* Assembly of the debugregs guest: the #DB and #BP entry stubs and the code its breakpoints,
   watchpoint and single steps land on. */
    .text
/* Interrupt stubs: save the caller-saved registers, call handler(frame) where frame points at the
   CPU's frame (RIP, CS, RFLAGS, RSP, SS), restore, IRETQ. */
    .macro STUB name, handler
    .globl \name
\name:
    push    %rax
    push    %rcx
    push    %rdx
    push    %rsi
    push    %rdi
    push    %r8
    push    %r9
    push    %r10
    push    %r11
    lea     72(%rsp), %rdi
    cld
    call    \handler
    pop     %r11
    pop     %r10
    pop     %r9
    pop     %r8
    pop     %rdi
    pop     %rsi
    pop     %rdx
    pop     %rcx
    pop     %rax
    iretq
    .endm

    STUB db_entry, db_handler
    STUB bp_entry, bp_handler

/* u64 dr_target(u64 x): the DR0 execute breakpoint's address. */
    .globl dr_target
dr_target:
    lea     0x11(%rdi,%rdi,2), %rax
    ret

/* u64 tf_region(void *dst, const void *src): sets TF with POPFQ, runs a few instructions (a
   3-iteration REP MOVSB among them: one trap per iteration) and clears TF with POPFQ again (which
   still traps: TF was set when it began). */
    .globl tf_region
tf_region:
    xor     %eax, %eax
    pushfq
    orq     $0x100, (%rsp)
    popfq
    mov     $3, %ecx
    rep movsb
    add     $5, %rax
    nop
    lea     7(%rax,%rax), %rax
    pushfq
    andq    $~0x100, (%rsp)
    popfq
    .globl tf_region_end
tf_region_end:
    ret

/* void do_int3(void): a breakpoint instruction; the handler records the frame's RIP (after it). */
    .globl do_int3
do_int3:
    int3
    .globl after_int3
after_int3:
    ret
