/*
 * vmm-debug demo guest (x86-64). Boots on the embedded machine already in long mode with the
 * first 1 GiB identity-mapped (RDI = VP index, RSI = VP count, at most 8), builds its own page tables that map the
 * kernel at 0xffffffff80000000 (GVA != GPA), drops the identity map, and then every VP calls
 * `tick` in a loop on its own 64-bit counter, printing the counter to the debug console
 * (port 0xE9) every 2^23 iterations. Exceptions print their vector and halt.
 *
 * The same flat image also boots on QEMU (`-kernel demo-x86_64.bin`): a Multiboot v1 header with
 * the a.out-kludge address fields lets QEMU's multiboot loader place the flat file at 1 MiB and
 * enter `entry32` in 32-bit protected mode. entry32 recreates the embedded machine's boot state
 * (the same GDT descriptors, the same identity tables at GPA 0x1000/0x2000/0x3000, CR0/CR4/EFER,
 * no IDT) and enters `_start` with RDI = 0, RSI = 1 (only the BSP runs). The embedded machine
 * never executes the Multiboot code: it starts every VP at `_start`, as before.
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

/* ---------------------------------------------------------------- Multiboot v1 entry (QEMU) */
/* Everything below is only reached through a Multiboot loader. It lives in the identity-mapped
   boot page, after the code above, so `_start` and every kernel address are unchanged. */
    .set MB_MAGIC, 0x1badb002
    .set MB_FLAGS, 0x00010000               /* bit 16: the address fields are valid (a.out kludge) */
    .set BOOT_PML4, 0x1000                  /* the embedded machine's boot tables, same addresses */
    .set BOOT_PDPT, 0x2000
    .set BOOT_PD, 0x3000
    .set MSR_EFER, 0xc0000080

    .balign 4
    .globl multiboot_header
multiboot_header:                           /* must sit 4-aligned in the first 8 KiB of the file */
    .long   MB_MAGIC
    .long   MB_FLAGS
    .long   -(MB_MAGIC + MB_FLAGS)          /* checksum */
    .long   multiboot_header                /* header_addr: where this header lands */
    .long   _start                          /* load_addr: GPA of the file's first byte */
    .long   image_load_end                  /* load_end_addr: GPA just past the file's last byte */
    .long   0                               /* bss_end_addr: no bss beyond the file */
    .long   entry32                         /* entry_addr */

/* Multiboot state: 32-bit protected mode, flat CS/DS, paging off, interrupts off, EAX = magic,
   EBX = info (ignored), ESP and GDTR undefined. Uses no stack. */
    .code32
    .globl entry32
entry32:
    cli
    cld
    mov     $0x80000000, %eax               /* long mode, 1 GiB pages (used by _start) and NX? */
    cpuid
    cmp     $0x80000001, %eax
    jb      no_long_mode
    mov     $0x80000001, %eax
    cpuid
    bt      $29, %edx
    jnc     no_long_mode
    bt      $26, %edx
    jnc     no_1g_pages
    mov     %edx, %ebp                      /* keep the feature bits for NX */

    /* Identity map of the first 1 GiB with 2 MiB pages, laid out as the embedded machine's loader
       does: PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000. */
    mov     $BOOT_PML4, %edi
    mov     $(3 * 4096 / 4), %ecx
    xor     %eax, %eax
    rep stosl
    movl    $(BOOT_PDPT | 3), BOOT_PML4
    movl    $(BOOT_PD | 3), BOOT_PDPT
    mov     $BOOT_PD, %edi
    mov     $0x83, %eax                     /* present | writable | 2 MiB */
    xor     %ecx, %ecx
13: mov     %eax, (%edi,%ecx,8)
    add     $0x200000, %eax
    inc     %ecx
    cmp     $512, %ecx
    jne     13b

    lgdt    gdt64_descriptor32
    lidt    no_idt_descriptor               /* no IDT, as on the embedded machine */
    mov     $0x20, %eax                     /* CR4 = PAE */
    mov     %eax, %cr4
    mov     $BOOT_PML4, %eax
    mov     %eax, %cr3
    mov     $MSR_EFER, %ecx
    rdmsr
    or      $0x100, %eax                    /* LME */
    bt      $20, %ebp
    jnc     14f
    or      $0x800, %eax                    /* NXE when the CPU has NX */
14: wrmsr
    mov     $0x80010033, %eax               /* CR0 = PE | MP | ET | NE | WP | PG */
    mov     %eax, %cr0
    ljmp    $0x08, $entry64                 /* CS = 64-bit code from our GDT */

no_long_mode:
    mov     $no_long_mode_msg, %esi
    jmp     boot_fail
no_1g_pages:
    mov     $no_1g_pages_msg, %esi
boot_fail:                                  /* print the message to port 0xE9 and halt */
    movzbl  (%esi), %eax
    test    %al, %al
    jz      16f
    out     %al, $CONSOLE
    inc     %esi
    jmp     boot_fail
16: hlt
    jmp     16b

    .code64
entry64:
    mov     $0x10, %eax
    mov     %eax, %ds
    mov     %eax, %es
    mov     %eax, %ss
    mov     %eax, %fs
    mov     %eax, %gs
    /* Point GDTR at the GDT's higher-half alias so that exception delivery still finds the code
       descriptor once the kernel drops the identity map. */
    lgdt    gdt64_descriptor_high(%rip)
    push    $2                              /* RFLAGS = 0x2 */
    popfq
    xor     %eax, %eax                      /* every GPR 0 but RDI = VP index, RSI = VP count */
    xor     %ebx, %ebx
    xor     %ecx, %ecx
    xor     %edx, %edx
    xor     %ebp, %ebp
    xor     %esp, %esp
    xor     %r8d, %r8d
    xor     %r9d, %r9d
    xor     %r10d, %r10d
    xor     %r11d, %r11d
    xor     %r12d, %r12d
    xor     %r13d, %r13d
    xor     %r14d, %r14d
    xor     %r15d, %r15d
    xor     %edi, %edi                      /* VP 0 */
    mov     $1, %esi                        /* one VP: QEMU leaves the APs waiting for a SIPI */
    jmp     _start

    .balign 8
gdt64:
    .quad   0
    .quad   0x00af9b000000ffff              /* 0x08: 64-bit code, as the embedded machine's loader */
    .quad   0x00cf93000000ffff              /* 0x10: flat data */
gdt64_end:
gdt64_descriptor32:
    .word   gdt64_end - gdt64 - 1
    .long   gdt64
    .balign 8
    .word   0, 0, 0
gdt64_descriptor_high:
    .word   gdt64_end - gdt64 - 1
    .quad   gdt64 + KERNEL_VMA
no_idt_descriptor:
    .word   0
    .long   0

no_long_mode_msg:   .asciz "vmm-debug demo guest: this CPU has no long mode\n"
no_1g_pages_msg:    .asciz "vmm-debug demo guest: needs 1 GiB pages (pdpe1gb), e.g. -cpu max\n"

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
