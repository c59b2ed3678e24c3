/*
 * vmm-debug demo guest (aarch64). Starts at `_start` in EL1 with the MMU off (QEMU -M virt
 * -kernel: RAM at 0x40000000, this image at 0x40080000; x0 is ignored). VP 0 builds translation
 * tables (4 KiB granule, 48-bit VAs) that map the kernel, RAM and the PL011 UART in the upper
 * range through TTBR1 at VA = 0xffff000000000000 + PA (GVA != GPA), plus a temporary identity map
 * through TTBR0 used only while the MMU is switched on. Each VP enables the MMU, jumps to the
 * upper range, drops its identity map (TTBR0_EL1 = 0, TCR_EL1.EPD0 = 1), installs VBAR_EL1 and
 * then calls `tick` in a loop on its own 64-bit counter, printing the counter to the PL011 every
 * 2^22 iterations. VP 0 starts the other VPs with PSCI CPU_ON (HVC) until one is refused.
 * Exceptions print their class (ESR_EL1.EC), ESR, ELR, FAR and vector slot, then the VP waits.
 * The VP index is MPIDR_EL1.Aff0 (at most 8 VPs).
 */
    .set KERNEL_VMA, 0xffff000000000000
    .set UART_PA, 0x09000000
    .set UART_VA, KERNEL_VMA + UART_PA
    .set UART_DR, 0x00
    .set UART_FR, 0x18
    .set UART_CR, 0x30
    .set RAM_PA, 0x40000000
    .set MAX_VPS, 8
    .set STACK_SIZE, 0x4000
    .set REPORT_MASK, 0x3fffff

    .set PSCI_CPU_ON, 0xc4000003            /* SMC64 function id, called through HVC on -M virt */
    .set PSCI_ALREADY_ON, -4

    /* Descriptor bits (stage 1, 4 KiB granule). */
    .set D_TABLE, 0x3                       /* L0-L2 table descriptor */
    .set D_BLOCK, 0x1                       /* L1/L2 block */
    .set D_PAGE, 0x3                        /* L3 page */
    .set D_ATTR_NORMAL, 0 << 2              /* MAIR attr 0 */
    .set D_ATTR_DEVICE, 1 << 2              /* MAIR attr 1 */
    .set D_AP_RO, 2 << 6                    /* EL1 read-only (EL0 none) */
    .set D_SH_INNER, 3 << 8
    .set D_AF, 1 << 10
    .set D_PXN, 1 << 53
    .set D_UXN, 1 << 54
    .set NORMAL_RW, D_ATTR_NORMAL | D_SH_INNER | D_AF | D_PXN | D_UXN
    .set NORMAL_RX, D_ATTR_NORMAL | D_SH_INNER | D_AF | D_AP_RO | D_UXN
    .set NORMAL_RWX, D_ATTR_NORMAL | D_SH_INNER | D_AF
    .set DEVICE_RW, D_ATTR_DEVICE | D_AF | D_PXN | D_UXN

    /* MAIR_EL1: attr 0 Normal write-back RW-allocate, attr 1 Device-nGnRE. */
    .set MAIR_VALUE, 0x04ff
    /* TCR_EL1: T0SZ = T1SZ = 16 (48-bit VAs), 4 KiB granules (TG0 = 0, TG1 = 2), walks inner
       shareable write-back; IPS is filled in from ID_AA64MMFR0_EL1.PARange. */
    .set TCR_VALUE, (16 << 0) | (1 << 8) | (1 << 10) | (3 << 12) | (16 << 16) | (1 << 24) | (1 << 26) | (3 << 28) | (2 << 30)
    .set TCR_EPD0, 1 << 7
    .set SCTLR_M, 1 << 0
    .set SCTLR_C, 1 << 2
    .set SCTLR_I, 1 << 12

/* mov64 reg, constant */
    .macro mov64 reg, value
    movz    \reg, #((\value) & 0xffff)
    movk    \reg, #(((\value) >> 16) & 0xffff), lsl #16
    movk    \reg, #(((\value) >> 32) & 0xffff), lsl #32
    movk    \reg, #(((\value) >> 48) & 0xffff), lsl #48
    .endm

/* PA of a kernel (upper-range) symbol, for the boot code running with the MMU off. */
    .macro pa reg, sym
    ldr     \reg, =(\sym - KERNEL_VMA)
    .endm

/* ---------------------------------------------------------------- identity-mapped boot */
    .section .boot, "ax"
    .globl _start
_start:
    msr     daifset, #0xf
    mrs     x0, CurrentEL
    cmp     x0, #(1 << 2)
    b.ne    wrong_el
    mrs     x19, mpidr_el1
    and     x19, x19, #0xff                 /* x19 = VP index for the rest of the run */
    cmp     x19, #MAX_VPS
    b.hs    park
    cbnz    x19, ap_wait

    /* VP 0: zero and fill the translation tables. */
    pa      x0, page_tables
    pa      x1, page_tables_end
1:  stp     xzr, xzr, [x0], #16
    cmp     x0, x1
    b.lo    1b

    /* TTBR0 (boot only): VA 0..1 GiB -> device identity (UART), 1..2 GiB -> RAM identity. */
    pa      x0, l0_lo
    pa      x1, l1_lo
    orr     x2, x1, #D_TABLE
    str     x2, [x0]                        /* L0_lo[0] -> L1_lo */
    mov64   x2, DEVICE_RW | D_BLOCK
    str     x2, [x1]                        /* L1_lo[0]: 1 GiB device block at PA 0 */
    mov64   x2, RAM_PA | NORMAL_RWX | D_BLOCK
    str     x2, [x1, #8]                    /* L1_lo[1]: 1 GiB RAM block at PA 0x40000000 */

    /* TTBR1: VA 0xffff000000000000 + PA -> PA. */
    pa      x0, l0_hi
    pa      x1, l1_hi
    orr     x2, x1, #D_TABLE
    str     x2, [x0]                        /* L0_hi[0] -> L1_hi */
    pa      x0, l2_dev
    orr     x2, x0, #D_TABLE
    str     x2, [x1]                        /* L1_hi[0] -> L2_dev (VA +0..1 GiB) */
    pa      x0, l2_ram
    orr     x2, x0, #D_TABLE
    str     x2, [x1, #8]                    /* L1_hi[1] -> L2_ram (VA +1..2 GiB) */

    pa      x0, l2_dev
    mov64   x2, UART_PA | DEVICE_RW | D_BLOCK
    str     x2, [x0, #((UART_PA >> 21) * 8)] /* the 2 MiB holding the PL011, as Device-nGnRE */

    pa      x0, l2_ram
    pa      x1, l3_ram
    orr     x2, x1, #D_TABLE
    str     x2, [x0]                        /* L2_ram[0] -> L3_ram: first 2 MiB in 4 KiB pages */
    mov64   x2, RAM_PA | NORMAL_RW | D_BLOCK
    mov     x3, #1
2:  add     x2, x2, #0x200000               /* L2_ram[1..511]: 2 MiB RAM blocks, no execute */
    str     x2, [x0, x3, lsl #3]
    add     x3, x3, #1
    cmp     x3, #512
    b.ne    2b

    /* L3_ram: the boot and text pages are read-only and executable, the rest read-write data. */
    ldr     x4, =_start                     /* identity-mapped: its PA */
    pa      x5, text_end
    mov64   x6, NORMAL_RX | D_PAGE
    mov64   x7, NORMAL_RW | D_PAGE
    mov     x2, #RAM_PA
    mov     x3, #0
3:  mov     x8, x7
    cmp     x2, x4
    b.lo    4f
    cmp     x2, x5
    b.hs    4f
    mov     x8, x6
4:  orr     x8, x8, x2
    str     x8, [x1, x3, lsl #3]
    add     x2, x2, #0x1000
    add     x3, x3, #1
    cmp     x3, #512
    b.ne    3b

    /* Make the tables visible to the walker (written with the MMU and caches off). */
    pa      x0, page_tables
    pa      x1, page_tables_end
5:  dc      ivac, x0
    add     x0, x0, #64
    cmp     x0, x1
    b.lo    5b
    dsb     sy
    pa      x0, tables_ready
    mov     x1, #1
    str     x1, [x0]
    dsb     sy
    b       enable_mmu

ap_wait:                                    /* other VPs: wait until VP 0 built the tables */
    pa      x0, tables_ready
6:  ldr     x1, [x0]
    cbnz    x1, enable_mmu
    yield
    b       6b

enable_mmu:
    mov64   x0, MAIR_VALUE
    msr     mair_el1, x0
    mov64   x0, TCR_VALUE
    mrs     x1, id_aa64mmfr0_el1
    and     x1, x1, #7
    bfi     x0, x1, #32, #3                 /* IPS = PARange */
    msr     tcr_el1, x0
    pa      x0, l0_lo
    msr     ttbr0_el1, x0
    pa      x0, l0_hi
    msr     ttbr1_el1, x0
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    mrs     x0, sctlr_el1
    orr     x0, x0, #SCTLR_M
    orr     x0, x0, #SCTLR_C
    orr     x0, x0, #SCTLR_I
    bic     x0, x0, #(1 << 19)              /* WXN off */
    bic     x0, x0, #(1 << 1)               /* no alignment checks */
    msr     sctlr_el1, x0
    isb
    ldr     x0, =kernel_main                /* continue in the upper range */
    br      x0

wrong_el:                                   /* MMU off: print through the PL011's PA and wait */
    ldr     x1, =(wrong_el_msg - KERNEL_VMA)
    mov     x9, #UART_PA
7:  ldrb    w0, [x1], #1
    cbz     w0, park
    strb    w0, [x9, #UART_DR]
    b       7b

park:
    wfe
    b       park

    .ltorg

/* ---------------------------------------------------------------- kernel (upper range) */
    .text
    .globl text_start
text_start:
kernel_main:
    /* Drop the identity map: no more TTBR0 walks for this VP. */
    mrs     x0, tcr_el1
    orr     x0, x0, #TCR_EPD0
    msr     tcr_el1, x0
    msr     ttbr0_el1, xzr
    isb
    tlbi    vmalle1
    dsb     nsh
    isb

    ldr     x0, =vectors
    msr     vbar_el1, x0
    isb

    /* Stack: VP n uses stacks + (n+1) * STACK_SIZE. */
    ldr     x0, =stacks
    add     x1, x19, #1
    add     x0, x0, x1, lsl #14
    mov     sp, x0
    mov     x29, #0

    /* x20 = this VP's counter: counter for VP 0, counter_vp1 for VP 1, 64 bytes apart. */
    ldr     x20, =counter
    add     x20, x20, x19, lsl #6

    cbnz    x19, run
    ldr     x9, =UART_VA
    mov     w0, #0x301                      /* UARTEN | TXE | RXE */
    str     w0, [x9, #UART_CR]
    bl      start_vps

run:
    bl      console_lock_acquire
    ldr     x1, =hello
    bl      puts
    mov     x2, x19
    bl      put_hex
    bl      newline
    bl      console_lock_release

    .globl main_loop
main_loop:
    mov     x0, x20
    bl      tick
    tst     x0, #REPORT_MASK
    b.ne    main_loop
    bl      report
    b       main_loop

/* tick(x0 = &counter) -> x0 = new value. The function the demo calls in its loop. */
    .globl tick
tick:
    ldr     x1, [x0]
    add     x1, x1, #1
    str     x1, [x0]
    mov     x0, x1
    ret

/* Prints "vp N counter=0x..." for counter value x0. */
report:
    stp     x29, x30, [sp, #-32]!
    mov     x29, sp
    str     x0, [sp, #16]
    bl      console_lock_acquire
    ldr     x1, =report_prefix
    bl      puts
    mov     x2, x19
    bl      put_hex
    ldr     x1, =report_counter
    bl      puts
    ldr     x2, [sp, #16]
    bl      put_hex
    bl      newline
    bl      console_lock_release
    ldp     x29, x30, [sp], #32
    ret

/* VP 0: PSCI CPU_ON for MPIDR 1, 2, ... until one is refused; vp_count = VPs running. */
start_vps:
    mov     x24, x30
    mov     x22, #1                         /* VPs known to run */
    mov     x21, #1                         /* next target MPIDR (Aff0) */
8:  mov64   x0, PSCI_CPU_ON
    mov     x1, x21
    ldr     x2, =_start                     /* identity-mapped: the entry's PA */
    mov     x3, #0
    hvc     #0
    cbz     x0, 9f                          /* SUCCESS */
    cmn     x0, #-PSCI_ALREADY_ON
    b.ne    10f                             /* no such CPU (or no PSCI): stop */
9:  add     x22, x22, #1
    add     x21, x21, #1
    cmp     x21, #MAX_VPS
    b.lo    8b
10: ldr     x0, =vp_count
    str     x22, [x0]
    ret     x24

/* Console helpers: leaf functions that use no stack (the exception path calls them too).
   They clobber x0-x2 and x9-x12. */
console_lock_acquire:
    ldr     x9, =console_lock
    mov     w10, #1
11: ldaxr   w11, [x9]
    cbnz    w11, 11b
    stxr    w12, w10, [x9]
    cbnz    w12, 11b
    ret

console_lock_release:
    ldr     x9, =console_lock
    stlr    wzr, [x9]
    ret

/* putc(w0) */
putc:
    ldr     x9, =UART_VA
12: ldr     w10, [x9, #UART_FR]
    tbnz    w10, #5, 12b                    /* TXFF */
    strb    w0, [x9, #UART_DR]
    ret

/* puts(x1 = NUL-terminated string) */
puts:
    mov     x12, x30
13: ldrb    w0, [x1], #1
    cbz     w0, 14f
    bl      putc
    b       13b
14: ret     x12

/* put_hex(x2): 0x followed by 16 hex digits. */
put_hex:
    mov     x12, x30
    mov     w0, #'0'
    bl      putc
    mov     w0, #'x'
    bl      putc
    mov     x11, #16
15: ror     x2, x2, #60                     /* next nibble to the bottom */
    and     x0, x2, #0xf
    cmp     x0, #10
    b.lo    16f
    add     x0, x0, #('a' - '0' - 10)
16: add     x0, x0, #'0'
    bl      putc
    subs    x11, x11, #1
    b.ne    15b
    ret     x12

newline:
    mov     x12, x30
    mov     w0, #'\n'
    bl      putc
    ret     x12

/* Exception vectors: 16 slots of 0x80 bytes; each records its slot number and reports. */
    .balign 2048
    .globl vectors
vectors:
    .irp slot, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    .balign 0x80
    mov     x27, #\slot
    b       exception_common
    .endr

/* Prints "exception ec=0x.. esr=0x.. elr=0x.. far=0x.. slot=0x.. on vp 0x.." and waits. */
exception_common:
    mrs     x28, esr_el1
    ldr     x1, =exception_msg
    bl      puts
    lsr     x2, x28, #26
    bl      put_hex
    ldr     x1, =exception_esr
    bl      puts
    mov     x2, x28
    bl      put_hex
    ldr     x1, =exception_elr
    bl      puts
    mrs     x2, elr_el1
    bl      put_hex
    ldr     x1, =exception_far
    bl      puts
    mrs     x2, far_el1
    bl      put_hex
    ldr     x1, =exception_slot
    bl      puts
    mov     x2, x27
    bl      put_hex
    ldr     x1, =report_vp
    bl      puts
    mov     x2, x19
    bl      put_hex
    bl      newline
17: wfi
    b       17b

    .ltorg
    .balign 4096
    .globl text_end
text_end:

/* ---------------------------------------------------------------- data */
    .data
    .balign 4096
page_tables:
l0_lo:      .fill 512, 8, 0
l1_lo:      .fill 512, 8, 0
    .globl l0_hi
l0_hi:      .fill 512, 8, 0
l1_hi:      .fill 512, 8, 0
l2_dev:     .fill 512, 8, 0
l2_ram:     .fill 512, 8, 0
l3_ram:     .fill 512, 8, 0
page_tables_end:

    .balign 64
    .globl counter
counter:        .quad 0                     /* VP n's counter is at counter + 64 * n */
    .fill 7, 8, 0
    .globl counter_vp1
counter_vp1:    .quad 0
    .fill 7, 8, 0
    .fill (MAX_VPS - 2) * 8, 8, 0

tables_ready:   .quad 0
console_lock:   .quad 0
    .globl vp_count
vp_count:       .quad 1                     /* VPs running, counted by VP 0 */

hello:          .asciz "vmm-debug demo guest: running on vp "
report_prefix:  .asciz "vp "
report_vp:      .asciz " on vp "
report_counter: .asciz " counter="
exception_msg:  .asciz "exception ec="
exception_esr:  .asciz " esr="
exception_elr:  .asciz " elr="
exception_far:  .asciz " far="
exception_slot: .asciz " slot="
wrong_el_msg:   .asciz "vmm-debug demo guest: must start at EL1\n"

    .balign 4096
    .globl stacks
stacks:     .fill MAX_VPS * STACK_SIZE, 1, 0
