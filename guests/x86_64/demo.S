/*
 * vmm-debug demo guest (x86-64). Boots on the embedded machine already in long mode with the
 * first 1 GiB identity-mapped (RDI = VP index, RSI = VP count, at most 8), builds its own page tables that map the
 * kernel at 0xffffffff80000000 (GVA != GPA), drops the identity map, and then every VP calls
 * `tick` in a loop on its own 64-bit counter, printing the counter to the debug console
 * (port 0xE9) every 2^23 iterations. Exceptions print their vector and halt.
 */
    .set KERNEL_VMA, 0xffffffff80000000
    .set CONSOLE, 0xe9
    .set STACK_SIZE, 0x4000
    .set REPORT_MASK, 0x7fffff

/* ---------------------------------------------------------------- identity-mapped boot */
    .section .boot, "ax"
    .code64
    .globl _start
_start:
    mov     %rdi, %r15                      /* r15 = VP index for the rest of the run */
    test    %rdi, %rdi
    jnz     ap_wait

    /* VP 0: record the VP count, zero and fill the page tables (identity map still on). */
    movabs  $(vp_count - KERNEL_VMA), %rdi
    mov     %rsi, (%rdi)
    movabs  $(page_tables - KERNEL_VMA), %rdi
    mov     $(5 * 4096 / 8), %rcx
    xor     %eax, %eax
    cld
    rep stosq

    movabs  $(pml4 - KERNEL_VMA), %rdi
    movabs  $(pdpt_low - KERNEL_VMA), %rax
    or      $3, %rax
    mov     %rax, (%rdi)                    /* PML4[0]   -> identity PDPT (boot only) */
    movabs  $(pdpt_high - KERNEL_VMA), %rax
    or      $3, %rax
    mov     %rax, 511*8(%rdi)               /* PML4[511] -> kernel PDPT */

    movabs  $(pdpt_low - KERNEL_VMA), %rdi
    movq    $0x83, (%rdi)                   /* PDPT[0]: one 1 GiB page at GPA 0 */

    movabs  $(pdpt_high - KERNEL_VMA), %rdi
    movabs  $(pd_high - KERNEL_VMA), %rax
    or      $3, %rax
    mov     %rax, 510*8(%rdi)               /* PDPT[510] -> PD for 0xffffffff80000000 */

    movabs  $(pd_high - KERNEL_VMA), %rdi
    movabs  $(pt_high - KERNEL_VMA), %rax
    or      $3, %rax
    mov     %rax, (%rdi)                    /* PD[0] -> 4 KiB page table for GPA 0..2 MiB */
    mov     $1, %ecx
1:  mov     %rcx, %rax
    shl     $21, %rax
    or      $0x83, %rax                     /* 2 MiB pages for GPA 2 MiB..1 GiB */
    mov     %rax, (%rdi,%rcx,8)
    inc     %ecx
    cmp     $512, %ecx
    jne     1b

    /* PT: 4 KiB pages; the kernel's text pages are read-only. */
    movabs  $(pt_high - KERNEL_VMA), %rdi
    movabs  $(text_start - KERNEL_VMA), %r8
    movabs  $(text_end - KERNEL_VMA), %r9
    xor     %ecx, %ecx
2:  mov     %rcx, %rax
    shl     $12, %rax
    mov     %rax, %rdx
    or      $3, %rax
    cmp     %r8, %rdx
    jb      3f
    cmp     %r9, %rdx
    jae     3f
    and     $~2, %rax                       /* text: present, not writable */
3:  mov     %rax, (%rdi,%rcx,8)
    inc     %ecx
    cmp     $512, %ecx
    jne     2b

    movabs  $(tables_ready - KERNEL_VMA), %rdi
    movq    $1, (%rdi)
    jmp     enter_kernel

ap_wait:                                    /* other VPs: wait until VP 0 built the tables */
    movabs  $(tables_ready - KERNEL_VMA), %rdi
4:  pause
    cmpq    $0, (%rdi)
    je      4b

enter_kernel:
    movabs  $(pml4 - KERNEL_VMA), %rax
    mov     %rax, %cr3
    movabs  $kernel_main, %rax
    jmp     *%rax

/* ---------------------------------------------------------------- kernel (higher half) */
    .text
    .globl text_start
text_start:
kernel_main:
    /* Stack: VP n uses stacks + (n+1) * STACK_SIZE. */
    lea     stacks(%rip), %rsp
    mov     %r15, %rax
    inc     %rax
    shl     $14, %rax
    add     %rax, %rsp

    lidt    idt_descriptor(%rip)
    test    %r15, %r15
    jnz     ap_arrive

    call    build_idt
    /* Wait for every other VP to reach the higher half, then drop the identity map. */
    mov     vp_count(%rip), %rcx
5:  pause
    mov     arrived(%rip), %rax
    inc     %rax
    cmp     %rcx, %rax
    jb      5b
    movq    $0, pml4(%rip)
    mov     %cr3, %rax
    mov     %rax, %cr3
    movq    $1, idt_ready(%rip)
    jmp     run

ap_arrive:
    lock incq arrived(%rip)
6:  pause
    cmpq    $0, idt_ready(%rip)
    je      6b

run:
    lea     hello(%rip), %rsi
    call    puts
    mov     %r15, %rax
    call    put_hex
    call    newline

    /* r12 = this VP's counter: counter for VP 0, counter_vp1 for VP 1, 64 bytes apart. */
    lea     counter(%rip), %r12
    mov     %r15, %rax
    shl     $6, %rax
    add     %rax, %r12

    .globl main_loop
main_loop:
    mov     %r12, %rdi
    call    tick
    test    $REPORT_MASK, %eax
    jnz     main_loop
    call    report
    jmp     main_loop

/* tick(rdi = &counter) -> rax = new value. The function the demo calls in its loop. */
    .globl tick
tick:
    mov     (%rdi), %rax
    add     $1, %rax
    mov     %rax, (%rdi)
    ret

/* Prints "vp N counter=0x..." for counter value rax. */
report:
    push    %rax
    lea     report_prefix(%rip), %rsi
    call    puts
    mov     %r15, %rax
    call    put_hex
    lea     report_counter(%rip), %rsi
    call    puts
    pop     %rax
    call    put_hex
    call    newline
    ret

/* puts(rsi = NUL-terminated string) to the debug console. */
puts:
    push    %rax
7:  movzbl  (%rsi), %eax
    test    %al, %al
    jz      8f
    out     %al, $CONSOLE
    inc     %rsi
    jmp     7b
8:  pop     %rax
    ret

/* put_hex(rax): 0x followed by 16 hex digits. */
put_hex:
    push    %rcx
    push    %rdx
    mov     %rax, %rdx
    mov     $'0', %al
    out     %al, $CONSOLE
    mov     $'x', %al
    out     %al, $CONSOLE
    mov     $16, %ecx
9:  rol     $4, %rdx
    mov     %edx, %eax
    and     $0xf, %eax
    cmp     $10, %eax
    jb      10f
    add     $('a' - '0' - 10), %eax
10: add     $'0', %eax
    out     %al, $CONSOLE
    dec     %ecx
    jnz     9b
    pop     %rdx
    pop     %rcx
    ret

newline:
    push    %rax
    mov     $'\n', %al
    out     %al, $CONSOLE
    pop     %rax
    ret

/* Fill the IDT: vector n -> exception_stubs + 16 * n, 64-bit interrupt gates. */
build_idt:
    lea     idt(%rip), %rdi
    lea     exception_stubs(%rip), %rdx
    xor     %ecx, %ecx
11: mov     %rdx, %rax
    mov     %ax, (%rdi)                     /* offset 15:0 */
    movw    $0x08, 2(%rdi)                  /* selector */
    movw    $0x8e00, 4(%rdi)                /* present, DPL 0, interrupt gate */
    shr     $16, %rax
    mov     %ax, 6(%rdi)                    /* offset 31:16 */
    shr     $16, %rax
    mov     %eax, 8(%rdi)                   /* offset 63:32 */
    movl    $0, 12(%rdi)
    add     $16, %rdi
    add     $16, %rdx
    inc     %ecx
    cmp     $32, %ecx
    jne     11b
    ret

/* 32 stubs of 16 bytes: push the vector and report it. */
    .balign 16
    .globl exception_stubs
exception_stubs:
    .set vec, 0
    .rept 32
    .balign 16
    push    $vec
    jmp     exception_common
    .set vec, vec + 1
    .endr

exception_common:
    lea     exception_msg(%rip), %rsi
    call    puts
    mov     (%rsp), %rax
    call    put_hex
    lea     report_vp(%rip), %rsi
    call    puts
    mov     %r15, %rax
    call    put_hex
    call    newline
12: hlt
    jmp     12b

    .balign 4096
    .globl text_end
text_end:

/* ---------------------------------------------------------------- data */
    .data
    .balign 4096
page_tables:
pml4:       .fill 512, 8, 0
pdpt_low:   .fill 512, 8, 0
pdpt_high:  .fill 512, 8, 0
pd_high:    .fill 512, 8, 0
pt_high:    .fill 512, 8, 0

    .balign 64
    .globl counter
counter:        .quad 0
    .fill 7, 8, 0
    .globl counter_vp1
counter_vp1:    .quad 0
    .fill 7, 8, 0

tables_ready:   .quad 0
arrived:        .quad 0
idt_ready:      .quad 0
    .globl vp_count
vp_count:       .quad 1             /* from RSI at boot */

    .balign 16
idt_descriptor:
    .word   32 * 16 - 1
    .quad   idt
    .balign 16
idt:        .fill 32 * 2, 8, 0

hello:          .asciz "vmm-debug demo guest: running on vp "
report_prefix:  .asciz "vp "
report_vp:      .asciz " on vp "
report_counter: .asciz " counter="
exception_msg:  .asciz "exception vector "

    .balign 4096
    .globl stacks
stacks:     .fill 8 * STACK_SIZE, 1, 0
