/*
 * crt0 of the freestanding C corpus (guests/c): one flat image that boots on the embedded machine
 * and on QEMU, linked identity-mapped at 1 MiB (GVA = GPA, code model small).
 *
 * Embedded machine: every VP starts at `_start` in 64-bit long mode with the first 1 GiB
 * identity-mapped by 2 MiB pages, RDI = VP index, RSI = VP count (see src/emu/x86_64/boot-state.ts).
 * Only VP 0 runs the program; any other VP halts.
 *
 * QEMU (`-kernel`): a Multiboot v1 header (a.out kludge) makes QEMU's loader place the file at
 * 1 MiB, zero the BSS and enter `entry32` in 32-bit protected mode. entry32 recreates the embedded
 * machine's boot state (the same identity tables at GPA 0x1000/0x2000/0x3000, CR0 = 0x80010033,
 * CR4 = PAE, EFER.LME/NXE, 64-bit CS 0x08, data 0x10, every GPR 0 but RSI = 1) and jumps to
 * `_start`, so both machines run the same instructions from `_start` on.
 *
 * `_start` (crt0_start64): stack, IDT (32 vectors: an unexpected exception prints its vector, error
 * code and RIP on the console and powers off), SSE enabled as an OS does (CR0.EM clear, CR0.MP and
 * CR4.OSFXSR|OSXMMEXCPT set), XSAVE (CR4.OSXSAVE, XCR0 = x87|SSE) when CPUID.1:ECX.XSAVE says so,
 * BSS cleared, then main(); its return value is printed ("exit 0x...") and the machine powers off
 * through the ACPI PM1a control port 0x604 (SLP_EN), which both machines implement.
 *
 * Also here: memcpy memmove memset memcmp strlen (gcc calls them even when freestanding),
 * crt0_set_gate (a guest's own interrupt handler) and crt0_power_off.
 */
    .set CONSOLE, 0xe9
    .set PM1A_CNT, 0x604
    .set SLP_EN, 0x2000
    .set STACK_SIZE, 0x10000

/* ---------------------------------------------------------------- boot page (first in the file) */
    .section .boot, "ax"
    .code64
    .globl _start
_start:
    jmp     crt0_start64

/* ---------------------------------------------------------------- Multiboot v1 entry (QEMU) */
    .set MB_MAGIC, 0x1badb002
    .set MB_FLAGS, 0x00010000               /* bit 16: the address fields are valid (a.out kludge) */
    .set BOOT_PML4, 0x1000
    .set BOOT_PDPT, 0x2000
    .set BOOT_PD, 0x3000
    .set MSR_EFER, 0xc0000080

    .balign 4
    .globl multiboot_header
multiboot_header:
    .long   MB_MAGIC
    .long   MB_FLAGS
    .long   -(MB_MAGIC + MB_FLAGS)
    .long   multiboot_header                /* header_addr */
    .long   _start                          /* load_addr: the file's first byte */
    .long   image_load_end                  /* load_end_addr */
    .long   __bss_end                       /* bss_end_addr: the loader zeroes the BSS */
    .long   entry32                         /* entry_addr */

    .code32
    .globl entry32
entry32:
    cli
    cld
    mov     $0x80000000, %eax
    cpuid
    cmp     $0x80000001, %eax
    jb      no_long_mode
    mov     $0x80000001, %eax
    cpuid
    bt      $29, %edx
    jnc     no_long_mode
    mov     %edx, %ebp                      /* feature bits, for NX */

    mov     $BOOT_PML4, %edi                /* PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000, 2 MiB pages */
    mov     $(3 * 4096 / 4), %ecx
    xor     %eax, %eax
    rep stosl
    movl    $(BOOT_PDPT | 3), BOOT_PML4
    movl    $(BOOT_PD | 3), BOOT_PDPT
    mov     $BOOT_PD, %edi
    mov     $0x83, %eax
    xor     %ecx, %ecx
1:  mov     %eax, (%edi,%ecx,8)
    add     $0x200000, %eax
    inc     %ecx
    cmp     $512, %ecx
    jne     1b

    lgdt    gdt64_descriptor
    lidt    no_idt_descriptor
    mov     $0x20, %eax                     /* CR4 = PAE */
    mov     %eax, %cr4
    mov     $BOOT_PML4, %eax
    mov     %eax, %cr3
    mov     $MSR_EFER, %ecx
    rdmsr
    or      $0x100, %eax                    /* LME */
    bt      $20, %ebp
    jnc     2f
    or      $0x800, %eax                    /* NXE */
2:  wrmsr
    mov     $0x80010033, %eax               /* CR0 = PE | MP | ET | NE | WP | PG */
    mov     %eax, %cr0
    ljmp    $0x08, $entry64

no_long_mode:
    mov     $no_long_mode_msg, %esi
3:  movzbl  (%esi), %eax
    test    %al, %al
    jz      4f
    out     %al, $CONSOLE
    inc     %esi
    jmp     3b
4:  hlt
    jmp     4b

    .code64
entry64:
    mov     $0x10, %eax
    mov     %eax, %ds
    mov     %eax, %es
    mov     %eax, %ss
    mov     %eax, %fs
    mov     %eax, %gs
    mov     $0x7000, %esp                   /* a scratch stack below the image for the PUSH below */
    xor     %eax, %eax
    xor     %ebx, %ebx
    xor     %ecx, %ecx
    xor     %edx, %edx
    xor     %ebp, %ebp
    xor     %r8d, %r8d
    xor     %r9d, %r9d
    xor     %r10d, %r10d
    xor     %r11d, %r11d
    xor     %r12d, %r12d
    xor     %r13d, %r13d
    xor     %r14d, %r14d
    xor     %r15d, %r15d
    xor     %edi, %edi
    mov     $1, %esi
    push    $2                              /* RFLAGS = 0x2 (after the XORs), as the embedded machine boots */
    popfq
    mov     $0, %esp                        /* RSP = 0 (MOV leaves RFLAGS alone) */
    jmp     _start

    .balign 8
gdt64:
    .quad   0
    .quad   0x00af9b000000ffff              /* 0x08: 64-bit code */
    .quad   0x00cf93000000ffff              /* 0x10: flat data */
gdt64_end:
gdt64_descriptor:
    .word   gdt64_end - gdt64 - 1
    .quad   gdt64
no_idt_descriptor:
    .word   0
    .quad   0
no_long_mode_msg:
    .asciz  "crt0: this CPU has no long mode\n"

/* ---------------------------------------------------------------- 64-bit start (both machines) */
    .text
    .globl crt0_start64
crt0_start64:
    cli
    cld
    test    %rdi, %rdi
    jnz     crt0_park                       /* only VP 0 runs the program */

    /* BSS (16-byte aligned by the link map) in quadwords; the stack is not in it. */
    lea     __bss_start(%rip), %rdi
    lea     __bss_end(%rip), %rcx
    sub     %rdi, %rcx
    shr     $3, %rcx
    xor     %eax, %eax
    rep stosq
    lea     crt0_stack_top(%rip), %rsp
    xor     %ebp, %ebp

    call    crt0_build_idt
    lidt    crt0_idt_descriptor(%rip)

    /* SSE as an OS enables it: CR0.EM = 0, CR0.MP = 1, CR0.TS = 0; CR4.OSFXSR | OSXMMEXCPT. */
    mov     %cr0, %rax
    and     $~0xc, %rax                     /* EM (bit 2), TS (bit 3) */
    or      $0x2, %rax                      /* MP */
    mov     %rax, %cr0
    mov     %cr4, %rax
    or      $0x600, %rax
    mov     %rax, %cr4

    /* XSAVE when CPUID.1:ECX bit 26 says so: CR4.OSXSAVE, then XCR0 = x87 | SSE. */
    mov     $1, %eax
    xor     %ecx, %ecx
    cpuid
    bt      $26, %ecx
    jnc     5f
    mov     %cr4, %rax
    or      $0x40000, %rax
    mov     %rax, %cr4
    xor     %ecx, %ecx
    mov     $3, %eax
    xor     %edx, %edx
    xsetbv
5:
    /* The registers main() starts with are the same on both machines. */
    xor     %eax, %eax
    xor     %ebx, %ebx
    xor     %ecx, %ecx
    xor     %edx, %edx
    xor     %esi, %esi
    xor     %edi, %edi
    xor     %r8d, %r8d
    xor     %r9d, %r9d
    xor     %r10d, %r10d
    xor     %r11d, %r11d
    xor     %r12d, %r12d
    xor     %r13d, %r13d
    xor     %r14d, %r14d
    xor     %r15d, %r15d
    .globl crt0_call_main
crt0_call_main:
    call    main
    .globl crt0_main_returned
crt0_main_returned:
    mov     %rax, %rbx
    lea     exit_msg(%rip), %rdi
    call    crt0_puts
    mov     %rbx, %rdi
    call    crt0_put_hex
    mov     $'\n', %al
    out     %al, $CONSOLE
    .globl crt0_power_off
crt0_power_off:
    mov     $PM1A_CNT, %dx
    mov     $SLP_EN, %ax
    out     %ax, %dx
crt0_park:
    cli
    hlt
    jmp     crt0_park

/* crt0_puts(rdi = NUL-terminated string); clobbers rax, rdi. */
crt0_puts:
    movzbl  (%rdi), %eax
    test    %al, %al
    jz      6f
    out     %al, $CONSOLE
    inc     %rdi
    jmp     crt0_puts
6:  ret

/* crt0_put_hex(rdi): 0x and 16 hex digits; clobbers rax, rcx, rdx. */
crt0_put_hex:
    mov     %rdi, %rdx
    mov     $'0', %al
    out     %al, $CONSOLE
    mov     $'x', %al
    out     %al, $CONSOLE
    mov     $16, %ecx
7:  rol     $4, %rdx
    mov     %edx, %eax
    and     $0xf, %eax
    cmp     $10, %eax
    jb      8f
    add     $('a' - '0' - 10), %eax
8:  add     $'0', %eax
    out     %al, $CONSOLE
    dec     %ecx
    jnz     7b
    ret

/* IDT: vector n -> crt0_vectors + 16 * n, 64-bit interrupt gates, DPL 0. */
crt0_build_idt:
    lea     crt0_idt(%rip), %rdi
    lea     crt0_vectors(%rip), %rdx
    xor     %ecx, %ecx
9:  mov     %rdx, %rax
    mov     %ax, (%rdi)
    movw    $0x08, 2(%rdi)
    movw    $0x8e00, 4(%rdi)
    shr     $16, %rax
    mov     %ax, 6(%rdi)
    shr     $16, %rax
    mov     %eax, 8(%rdi)
    movl    $0, 12(%rdi)
    add     $16, %rdi
    add     $16, %rdx
    inc     %ecx
    cmp     $32, %ecx
    jne     9b
    ret

/* void crt0_set_gate(int vector, void (*handler)(void)): an interrupt gate to the guest's handler. */
    .globl crt0_set_gate
crt0_set_gate:
    movslq  %edi, %rdi
    shl     $4, %rdi
    lea     crt0_idt(%rip), %rax
    add     %rax, %rdi
    mov     %rsi, %rax
    mov     %ax, (%rdi)
    movw    $0x08, 2(%rdi)
    movw    $0x8e00, 4(%rdi)
    shr     $16, %rax
    mov     %ax, 6(%rdi)
    shr     $16, %rax
    mov     %eax, 8(%rdi)
    movl    $0, 12(%rdi)
    ret

/* 32 stubs of 16 bytes; vectors without a CPU error code push 0 so the frame is uniform. */
    .balign 16
    .globl crt0_vectors
crt0_vectors:
    .set vec, 0
    .rept 32
    .balign 16
    .if (vec == 8) || (vec >= 10 && vec <= 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    push    $vec
    .else
    push    $0
    push    $vec
    .endif
    jmp     crt0_exception
    .set vec, vec + 1
    .endr

/* Frame: (rsp) vector, 8(rsp) error code, 16(rsp) RIP. Prints and powers off. */
    .globl crt0_exception
crt0_exception:
    lea     exc_msg(%rip), %rdi
    call    crt0_puts
    mov     (%rsp), %rdi
    call    crt0_put_hex
    lea     exc_err(%rip), %rdi
    call    crt0_puts
    mov     8(%rsp), %rdi
    call    crt0_put_hex
    lea     exc_rip(%rip), %rdi
    call    crt0_puts
    mov     16(%rsp), %rdi
    call    crt0_put_hex
    mov     $'\n', %al
    out     %al, $CONSOLE
    jmp     crt0_power_off

/* ---------------------------------------------------------------- string routines (SysV ABI) */
    .globl memcpy
memcpy:
    mov     %rdi, %rax
    mov     %rdx, %rcx
    rep movsb
    ret

    .globl memmove
memmove:
    mov     %rdi, %rax
    mov     %rdx, %rcx
    cmp     %rsi, %rdi
    jbe     10f
    lea     -1(%rsi,%rcx), %rsi
    lea     -1(%rdi,%rcx), %rdi
    std
    rep movsb
    cld
    ret
10: rep movsb
    ret

    .globl memset
memset:
    mov     %rdi, %r8
    mov     %esi, %eax
    mov     %rdx, %rcx
    rep stosb
    mov     %r8, %rax
    ret

    .globl memcmp
memcmp:
    xor     %eax, %eax
    test    %rdx, %rdx
    jz      12f
11: movzbl  (%rdi), %eax
    movzbl  (%rsi), %ecx
    sub     %ecx, %eax
    jnz     12f
    inc     %rdi
    inc     %rsi
    dec     %rdx
    jnz     11b
12: ret

    .globl strlen
strlen:
    mov     %rdi, %rdx
    xor     %eax, %eax
    mov     $-1, %rcx
    repne scasb
    lea     -1(%rdi), %rax
    sub     %rdx, %rax
    ret

/* ---------------------------------------------------------------- data */
    .section .rodata
exit_msg:   .asciz "exit "
exc_msg:    .asciz "crt0: unexpected exception vector "
exc_err:    .asciz " error "
exc_rip:    .asciz " rip "

    .data
    .balign 16
crt0_idt_descriptor:
    .word   32 * 16 - 1
    .quad   crt0_idt

    .bss
    .balign 16
    .globl crt0_idt
crt0_idt:   .skip 32 * 16
    .section .stack, "aw", @nobits          /* after the BSS, not cleared */
    .balign 4096
crt0_stack: .skip STACK_SIZE
    .globl crt0_stack_top
crt0_stack_top:
