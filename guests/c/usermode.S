/* Assembly of the usermode guest: the interrupt stubs (one per vector the program's IDT names),
   the SYSCALL entry, the switches between the kernel and user mode (IRETQ, far RET, and back),
   and the probes: small functions that run one instruction which may fault and, when it does,
   are resumed after it by the kernel's handler (a table of (fault RIP, resume RIP) pairs, the
   way an OS's exception table works).

   Selectors: 0x08 kernel code, 0x10 kernel data, 0x1b user data (DPL 3), 0x23 user 64-bit code
   (DPL 3), 0x28 the TSS. */
    .set USER_CS, 0x23
    .set USER_SS, 0x1b
    .set KERNEL_DS, 0x10

/* The site table: (the RIP of an instruction that may fault or trap, the RIP after it). */
    .section .rodata.sites, "a"
    .balign 8
    .globl sites_start
sites_start:

/* SITE insn: remember the stack pointer (probe_rsp, for frames made relative to it), run insn
   as a site of the table. */
    .macro SITE insn:vararg
    mov     %rsp, probe_rsp(%rip)
1:  \insn
2:
    .pushsection .rodata.sites, "a"
    .quad   1b, 2b
    .popsection
    .endm

    .text
/* ---------------------------------------------------------------- interrupt stubs */
/* Every stub makes one frame: 15 GPRs, vector, error code (0 when the CPU pushes none), then the
   CPU's RIP CS RFLAGS RSP SS (struct regs in usermode.c); trap_handler(regs) may edit it. */
    .macro VEC n
    .balign 16
    .globl vec_\n
vec_\n:
    .if (\n == 8) || (\n >= 10 && \n <= 14) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30)
    push    $\n
    .else
    push    $0
    push    $\n
    .endif
    jmp     trap_common
    .endm

    .balign 16
    .globl vec_table_start
vec_table_start:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    VEC \n
    .endr
    VEC 128
    VEC 129
    VEC 131

trap_common:
    push    %rax
    push    %rcx
    push    %rdx
    push    %rbx
    push    %rbp
    push    %rsi
    push    %rdi
    push    %r8
    push    %r9
    push    %r10
    push    %r11
    push    %r12
    push    %r13
    push    %r14
    push    %r15
    mov     %rsp, %rdi              /* 22 quadwords on a 16-aligned frame: aligned for the call */
    cld
    call    trap_handler
    pop     %r15
    pop     %r14
    pop     %r13
    pop     %r12
    pop     %r11
    pop     %r10
    pop     %r9
    pop     %r8
    pop     %rdi
    pop     %rsi
    pop     %rbp
    pop     %rbx
    pop     %rdx
    pop     %rcx
    pop     %rax
    add     $16, %rsp
    iretq

/* ---------------------------------------------------------------- SYSCALL entry */
/* At CPL 0 on the user's stack: switch to the syscall stack, keep the user's RIP (RCX), RFLAGS
   (R11) and the argument registers, call syscall_handler(nr, a1, a2, saved), SYSRETQ back. */
    .globl syscall_entry
syscall_entry:
    mov     %rsp, syscall_user_rsp(%rip)
    lea     syscall_stack_top(%rip), %rsp
    push    %rcx
    push    %r11
    push    %rdi
    push    %rsi
    push    %rdx
    push    %r8
    push    %r9
    push    %r10
    mov     %rsp, %rcx
    mov     %rsi, %rdx
    mov     %rdi, %rsi
    mov     %rax, %rdi
    call    syscall_handler
    pop     %r10
    pop     %r9
    pop     %r8
    pop     %rdx
    pop     %rsi
    pop     %rdi
    pop     %r11
    pop     %rcx
    mov     syscall_user_rsp(%rip), %rsp
    .globl syscall_sysret
syscall_sysret:
    sysretq

/* ---------------------------------------------------------------- kernel <-> user */
/* u64 enter_user(u64 rip, u64 rsp, u64 rflags, u64 how): how 0 IRETQ, 1 far RET (RETFQ; RFLAGS
   stays the kernel's). Returns the value the user passed to its "done" call (resume_kernel). */
    .globl enter_user
enter_user:
    push    %rbx
    push    %rbp
    push    %r12
    push    %r13
    push    %r14
    push    %r15
    mov     %rsp, kernel_ctx_rsp(%rip)
    cmp     $1, %rcx
    je      1f
    push    $USER_SS
    push    %rsi
    push    %rdx
    push    $USER_CS
    push    %rdi
    .globl enter_user_iretq
enter_user_iretq:
    iretq
1:  push    $USER_SS
    push    %rsi
    push    $USER_CS
    push    %rdi
    .globl enter_user_retf
enter_user_retf:
    lretq

/* void resume_kernel(u64 value): back to enter_user's caller (from a handler or the SYSCALL
   entry, on whatever stack): kernel data selectors, RFLAGS = 0x2, the saved registers. */
    .globl resume_kernel
resume_kernel:
    mov     %rdi, %rax
    mov     $KERNEL_DS, %ecx
    mov     %ecx, %ss
    mov     %ecx, %ds
    mov     %ecx, %es
    mov     kernel_ctx_rsp(%rip), %rsp
    push    $2
    popfq
    pop     %r15
    pop     %r14
    pop     %r13
    pop     %r12
    pop     %rbp
    pop     %rbx
    ret

/* ---------------------------------------------------------------- probes (any CPL) */
/* Each returns what its instruction produced, or FAULTED (0xfa17ed) in RAX when the handler
   resumed it after a fault (the handler sets RAX). */
    .globl p_read64
p_read64:
    SITE    mov (%rdi), %rax
    ret

    .globl p_write64
p_write64:
    xor     %eax, %eax
    SITE    mov %rsi, (%rdi)
    ret

/* u64 p_jump(u64 target): jumps to target, which must fault on the fetch; the handler resumes at
   probe_resume. */
    .globl p_jump
p_jump:
    mov     %rsp, probe_rsp(%rip)
    lea     1f(%rip), %rax
    mov     %rax, probe_resume(%rip)
    xor     %eax, %eax
    jmp     *%rdi
1:  ret

    .globl p_cli
p_cli:
    xor     %eax, %eax
    SITE    cli
    ret

    .globl p_sti
p_sti:
    xor     %eax, %eax
    SITE    sti
    ret

    .globl p_hlt
p_hlt:
    xor     %eax, %eax
    SITE    hlt
    ret

    .globl p_read_cr0
p_read_cr0:
    xor     %eax, %eax
    SITE    mov %cr0, %rax
    ret

    .globl p_write_cr4
p_write_cr4:
    xor     %eax, %eax
    SITE    mov %rdi, %cr4
    ret

    .globl p_rdmsr
p_rdmsr:
    mov     %edi, %ecx
    xor     %eax, %eax
    xor     %edx, %edx
    SITE    rdmsr
    shl     $32, %rdx
    or      %rdx, %rax
    ret

    .globl p_lgdt
p_lgdt:
    xor     %eax, %eax
    SITE    lgdt (%rdi)
    ret

    .globl p_invlpg
p_invlpg:
    xor     %eax, %eax
    SITE    invlpg (%rdi)
    ret

    .globl p_wbinvd
p_wbinvd:
    xor     %eax, %eax
    SITE    wbinvd
    ret

/* u64 p_rdtsc(void): 1 when RDTSC ran (the count itself differs between machines), else
   FAULTED. RDX is all ones unless RDTSC wrote it (the handler sets only RAX). */
    .globl p_rdtsc
p_rdtsc:
    mov     $-1, %rdx
    xor     %eax, %eax
    SITE    rdtsc
    cmp     $-1, %rdx
    mov     $1, %eax
    mov     $0xfa17ed, %ecx
    cmove   %rcx, %rax
    xor     %edx, %edx
    ret

/* u64 p_out8(u16 port, u8 value): the value when it was allowed. */
    .globl p_out8
p_out8:
    mov     %edi, %edx
    movzbl  %sil, %eax
    SITE    outb %al, %dx
    ret

    .globl p_in8
p_in8:
    mov     %edi, %edx
    xor     %eax, %eax
    SITE    inb %dx, %al
    ret

    .globl p_in16
p_in16:
    mov     %edi, %edx
    xor     %eax, %eax
    SITE    inw %dx, %ax
    ret

    .globl p_in8_imm80
p_in8_imm80:
    xor     %eax, %eax
    SITE    inb $0x80, %al
    ret

    .globl p_int3
p_int3:
    mov     $0x33, %eax
    SITE    int3
    ret

    .globl p_int81
p_int81:
    xor     %eax, %eax
    SITE    int $0x81
    ret

    .globl p_int82
p_int82:
    xor     %eax, %eax
    SITE    int $0x82
    ret

    .globl p_int83
p_int83:
    xor     %eax, %eax
    SITE    int $0x83
    ret

    .globl p_ud2
p_ud2:
    xor     %eax, %eax
    SITE    ud2
    ret

/* u64 p_load_ds(u16 sel): loads DS then puts the boot value back (0 when the load was allowed). */
    .globl p_load_ds
p_load_ds:
    mov     %ds, %ecx
    xor     %eax, %eax
    SITE    mov %edi, %ds
    mov     %ecx, %ds
    ret

    .globl p_load_ss
p_load_ss:
    mov     %ss, %ecx
    xor     %eax, %eax
    SITE    mov %edi, %ss
    mov     %ecx, %ss
    ret

/* u64 p_segs(void): DS | ES << 16 | FS << 32 | GS << 48. */
    .globl p_segs
p_segs:
    mov     %gs, %eax
    shl     $16, %rax
    mov     %fs, %ecx
    or      %rcx, %rax
    shl     $16, %rax
    mov     %es, %ecx
    or      %rcx, %rax
    shl     $16, %rax
    mov     %ds, %ecx
    or      %rcx, %rax
    ret

/* u64 p_cs_ss(void): CS | SS << 16. */
    .globl p_cs_ss
p_cs_ss:
    mov     %ss, %eax
    shl     $16, %rax
    mov     %cs, %ecx
    or      %rcx, %rax
    ret

/* Non-canonical accesses: through a general register (#GP(0)), through RBP (#SS(0)), and a PUSH
   with a non-canonical RSP (#SS(0); at CPL 0 only an IST stack can take it). The handler puts
   the frame's RSP back to probe_rsp when it is not canonical. */
    .globl p_noncanon_read
p_noncanon_read:
    movabs  $0x8000000000001000, %rdx
    xor     %eax, %eax
    SITE    mov (%rdx), %rax
    ret

    .globl p_noncanon_rbp
p_noncanon_rbp:
    push    %rbp
    movabs  $0xfff0000000002000, %rbp
    xor     %eax, %eax
    SITE    mov 8(%rbp), %rax
    pop     %rbp
    ret

    .globl p_noncanon_push
p_noncanon_push:
    mov     %rsp, %rcx
    movabs  $0x0000800000000010, %rdx
    xor     %eax, %eax
    mov     %rsp, probe_rsp(%rip)
    mov     %rdx, %rsp
1:  push    %rcx
2:  mov     %rcx, %rsp
    ret
    .pushsection .rodata.sites, "a"
    .quad   1b, 2b
    .popsection

/* A frame pushed at an odd 8: the CPU aligns RSP to 16 before it pushes (64-bit mode). Makes
   RSP = 8 mod 16 and writes the read-only page (at CPL 0 with CR0.WP: #PF, error 3). */
    .globl p_write_misaligned
p_write_misaligned:
    push    %rbx
    mov     %rsp, %rbx
    and     $-16, %rsp
    sub     $8, %rsp
    xor     %eax, %eax
    SITE    mov %rsi, (%rdi)
    mov     %rbx, %rsp
    pop     %rbx
    ret

/* u64 p_str/p_sldt/p_smsw(void), p_sgdt/p_sidt(void *buf): the UMIP instructions. */
    .globl p_str
p_str:
    xor     %eax, %eax
    SITE    str %rax
    ret

    .globl p_sldt
p_sldt:
    mov     $0x5555, %eax
    SITE    sldt %rax
    ret

    .globl p_smsw
p_smsw:
    xor     %eax, %eax
    SITE    smsw %rax
    ret

    .globl p_sgdt
p_sgdt:
    xor     %eax, %eax
    SITE    sgdt (%rdi)
    ret

    .globl p_sidt
p_sidt:
    xor     %eax, %eax
    SITE    sidt (%rdi)
    ret

/* u64 p_popf(u64 flags): POPFQ flags, then PUSHFQ: what RFLAGS became (RF and the status flags
   out). Restores the RFLAGS it found. */
    .globl p_popf
p_popf:
    pushfq
    push    %rdi
    popfq
    pushfq
    pop     %rax
    popfq
    and     $0x257702, %rax         /* ID AC NT IOPL DF IF TF, bit 1 */
    ret

/* u64 p_flags(void): RFLAGS' system bits. */
    .globl p_flags
p_flags:
    pushfq
    pop     %rax
    and     $0x257702, %rax
    ret

/* Interrupt flag at CPL 3 with IOPL 3: CLI, PUSHFQ, STI, PUSHFQ; returns IF after each (bits 0, 1). */
    .globl p_cli_sti
p_cli_sti:
    cli
    pushfq
    pop     %rax
    shr     $9, %rax
    and     $1, %eax
    sti
    pushfq
    pop     %rcx
    shr     $8, %rcx
    and     $2, %ecx
    or      %rcx, %rax
    ret

/* u64 p_iretq_self(u64 flags): IRETQ to the next instruction at the same CPL with RFLAGS = flags
   in the frame; returns the system bits RFLAGS got (IOPL changes only at CPL 0, IF only at
   CPL <= IOPL), then puts the old RFLAGS back. */
    .globl p_iretq_self
p_iretq_self:
    pushfq
    mov     %rsp, %rcx
    mov     %ss, %eax
    push    %rax
    push    %rcx
    push    %rdi
    mov     %cs, %eax
    push    %rax
    lea     1f(%rip), %rax
    push    %rax
    iretq
1:  pushfq
    pop     %rax
    and     $0x257702, %rax
    popfq
    ret

/* u64 p_iretq_to(u16 cs, u16 ss): IRETQ to the next instruction with these selectors (RFLAGS as
   they are); 0 when it went through, FAULTED when it faulted (and RSP is put back). */
    .globl p_iretq_to
p_iretq_to:
    mov     %rsp, %rcx
    push    %rsi
    push    %rcx
    pushfq
    push    %rdi
    lea     2f(%rip), %rax
    push    %rax
    xor     %eax, %eax
    mov     %rsp, probe_rsp(%rip)
1:  iretq
2:  mov     %rcx, %rsp
    ret
    .pushsection .rodata.sites, "a"
    .quad   1b, 2b
    .popsection

/* u64 p_lret_to(u16 cs): RETFQ to the next instruction with this CS (same stack). */
    .globl p_lret_to
p_lret_to:
    mov     %rsp, %rcx
    push    %rdi
    lea     2f(%rip), %rax
    push    %rax
    xor     %eax, %eax
    mov     %rsp, probe_rsp(%rip)
1:  lretq
2:  mov     %rcx, %rsp
    ret
    .pushsection .rodata.sites, "a"
    .quad   1b, 2b
    .popsection

/* u64 p_sysret(void): SYSRETQ (at CPL 3: #GP(0)). */
    .globl p_sysret
p_sysret:
    xor     %eax, %eax
    lea     p_sysret_after(%rip), %rcx
    pushfq
    pop     %r11
    SITE    sysretq
p_sysret_after:
    ret

/* u64 p_syscall(u64 nr, u64 a1, u64 a2): SYSCALL; RCX and R11 come back as the CPU leaves them
   (RCX = the RIP after SYSCALL, R11 = RFLAGS): returned through sys_rcx / sys_r11. */
    .globl p_syscall
p_syscall:
    mov     %rdi, %rax
    mov     %rsi, %rdi
    mov     %rdx, %rsi
    mov     %rsp, probe_rsp(%rip)
    syscall
    .globl p_syscall_ret
p_syscall_ret:
    mov     %rcx, sys_rcx(%rip)
    mov     %r11, sys_r11(%rip)
    ret

/* The same with DF set across it: SFMASK clears DF in the kernel, SYSRETQ's R11 brings it back. */
    .globl p_syscall_df
p_syscall_df:
    mov     %rdi, %rax
    mov     %rsi, %rdi
    mov     %rdx, %rsi
    std
    syscall
    .globl p_syscall_df_ret
p_syscall_df_ret:
    pushfq
    cld
    pop     %rcx
    and     $0x400, %ecx
    mov     %rcx, sys_df(%rip)
    ret

/* u64 p_int80(u64 nr, u64 a1, u64 a2) */
    .globl p_int80
p_int80:
    mov     %rdi, %rax
    mov     %rsi, %rdi
    mov     %rdx, %rsi
    SITE    int $0x80
    ret

/* Reads whose value QEMU 7.2 gets wrong (known differences, see KNOWN-DIFFERENCES.md): the
   lockstep harness ends a run as known when the machines part inside these functions.
   u64 known_load_err(const u64 *p), known_load_rf(const u64 *p), known_rd_ss(void). */
    .globl known_load_err
known_load_err:
    mov     (%rdi), %rax
    ret

    .globl known_load_rf
known_load_rf:
    mov     (%rdi), %rax
    ret

    .globl known_rd_ss
known_rd_ss:
    xor     %eax, %eax
    mov     %ss, %eax
    ret

/* u64 masked_load(const u64 *p, u64 mask): *p & mask without *p passing through a register. */
    .globl masked_load
masked_load:
    mov     %rsi, %rax
    and     (%rdi), %rax
    ret

/* The user entry point (every phase): on the user stack, into C. */
    .globl user_entry
user_entry:
    call    user_main
    ud2                             /* user_main never returns */

    .bss
    .balign 16
    .globl probe_rsp, probe_resume, syscall_user_rsp, kernel_ctx_rsp, sys_rcx, sys_r11, sys_df
probe_rsp:        .skip 8
probe_resume:     .skip 8
syscall_user_rsp: .skip 8
kernel_ctx_rsp:   .skip 8
sys_rcx:          .skip 8
sys_r11:          .skip 8
sys_df:           .skip 8
    .balign 16
    .globl syscall_stack, syscall_stack_top, user_stack, user_stack_top
syscall_stack:    .skip 8192
syscall_stack_top:
user_stack:       .skip 16384
user_stack_top:

    .section .rodata.sites, "a"
    .globl sites_end
sites_end:
