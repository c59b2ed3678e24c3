# run_sse(state, code): load RAX..R15 (not RSP), RFLAGS, MXCSR and XMM0..XMM15 from state, call
# code (one instruction followed by RET), store them back. Layout (bytes): GPRs 0..127, RFLAGS 128,
# MXCSR 136, XMM0..XMM15 at 144 + 16 n.
        .intel_syntax noprefix
        .text
        .globl run_sse
run_sse:
        push rbx
        push rbp
        push r12
        push r13
        push r14
        push r15
        mov [rip + saved_state], rdi
        mov [rip + saved_code], rsi
        .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
        movdqu xmm\n, [rdi + 144 + 16 * \n]
        .endr
        ldmxcsr [rdi + 136]
        push qword ptr [rdi + 128]
        popfq
        mov rax, [rdi + 0]
        mov rcx, [rdi + 8]
        mov rdx, [rdi + 16]
        mov rbx, [rdi + 24]
        mov rbp, [rdi + 40]
        mov rsi, [rdi + 48]
        mov r8, [rdi + 64]
        mov r9, [rdi + 72]
        mov r10, [rdi + 80]
        mov r11, [rdi + 88]
        mov r12, [rdi + 96]
        mov r13, [rdi + 104]
        mov r14, [rdi + 112]
        mov r15, [rdi + 120]
        mov rdi, [rdi + 56]
        call [rip + saved_code]
        pushfq
        push rdi
        mov rdi, [rip + saved_state]
        mov [rdi + 0], rax
        mov [rdi + 8], rcx
        mov [rdi + 16], rdx
        mov [rdi + 24], rbx
        mov [rdi + 40], rbp
        mov [rdi + 48], rsi
        mov [rdi + 64], r8
        mov [rdi + 72], r9
        mov [rdi + 80], r10
        mov [rdi + 88], r11
        mov [rdi + 96], r12
        mov [rdi + 104], r13
        mov [rdi + 112], r14
        mov [rdi + 120], r15
        pop rax
        mov [rdi + 56], rax
        pop rax
        mov [rdi + 128], rax
        stmxcsr [rdi + 136]
        .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
        movdqu [rdi + 144 + 16 * \n], xmm\n
        .endr
        mov eax, 0x1f80
        mov [rip + saved_code], rax
        ldmxcsr [rip + saved_code]
        pop r15
        pop r14
        pop r13
        pop r12
        pop rbp
        pop rbx
        ret
        .data
saved_state: .quad 0
saved_code: .quad 0
        .section .note.GNU-stack,"",@progbits
