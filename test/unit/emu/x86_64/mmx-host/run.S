# run_mmx(state, code): FXRSTOR the x87/MMX/SSE image at state + 64, load RAX RCX RDX RBX RSI
# RDI from state + 0 … 40, call code (the instructions followed by RET), store the GPRs back,
# FXSAVE to state + 64 and FNSTENV to state + 576 (the full tag word at + 8), then FNINIT.
        .intel_syntax noprefix
        .text
        .globl run_mmx
run_mmx:
        push rbx
        push rbp
        push r12
        mov [rip + saved_state], rdi
        mov [rip + saved_code], rsi
        fxrstor [rdi + 64]
        mov rax, [rdi + 0]
        mov rcx, [rdi + 8]
        mov rdx, [rdi + 16]
        mov rbx, [rdi + 24]
        mov rsi, [rdi + 32]
        mov rdi, [rdi + 40]
        call [rip + saved_code]
        push rdi
        mov rdi, [rip + saved_state]
        mov [rdi + 0], rax
        mov [rdi + 8], rcx
        mov [rdi + 16], rdx
        mov [rdi + 24], rbx
        mov [rdi + 32], rsi
        pop rax
        mov [rdi + 40], rax
        fxsave [rdi + 64]
        fnstenv [rdi + 576]
        fninit
        mov eax, 0x1f80
        mov [rip + saved_code], rax
        ldmxcsr [rip + saved_code]
        pop r12
        pop rbp
        pop rbx
        ret
        .data
saved_state: .quad 0
saved_code: .quad 0
        .section .note.GNU-stack,"",@progbits
