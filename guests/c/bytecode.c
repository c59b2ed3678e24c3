/* A small stack-machine bytecode interpreter: a dense switch (a jump table at -O2) and a
   computed-goto version of the same machine, running a sieve, a Collatz search and a GCD loop. */
#include "rt.h"

enum {
  OP_PUSH, OP_LOAD, OP_STORE, OP_ADD, OP_SUB, OP_MUL, OP_DIVU, OP_MODU, OP_LT, OP_EQ,
  OP_JMP, OP_JZ, OP_DUP, OP_DROP, OP_SWAP, OP_AND, OP_SHR, OP_LOADI, OP_STOREI, OP_HALT,
  OP_COUNT
};

#define MEM 2048
typedef struct {
  i64 stack[64];
  i64 mem[MEM];
  u64 steps;
} machine;

static i64 run_switch(machine *m, const i64 *code) {
  int pc = 0, sp = 0;
  for (;;) {
    m->steps++;
    i64 op = code[pc++];
    switch (op) {
    case OP_PUSH: m->stack[sp++] = code[pc++]; break;
    case OP_LOAD: m->stack[sp++] = m->mem[code[pc++]]; break;
    case OP_STORE: m->mem[code[pc++]] = m->stack[--sp]; break;
    case OP_ADD: sp--; m->stack[sp - 1] += m->stack[sp]; break;
    case OP_SUB: sp--; m->stack[sp - 1] -= m->stack[sp]; break;
    case OP_MUL: sp--; m->stack[sp - 1] *= m->stack[sp]; break;
    case OP_DIVU: sp--; m->stack[sp - 1] = (i64)((u64)m->stack[sp - 1] / (u64)m->stack[sp]); break;
    case OP_MODU: sp--; m->stack[sp - 1] = (i64)((u64)m->stack[sp - 1] % (u64)m->stack[sp]); break;
    case OP_LT: sp--; m->stack[sp - 1] = m->stack[sp - 1] < m->stack[sp]; break;
    case OP_EQ: sp--; m->stack[sp - 1] = m->stack[sp - 1] == m->stack[sp]; break;
    case OP_JMP: pc = (int)code[pc]; break;
    case OP_JZ: pc = m->stack[--sp] == 0 ? (int)code[pc] : pc + 1; break;
    case OP_DUP: m->stack[sp] = m->stack[sp - 1]; sp++; break;
    case OP_DROP: sp--; break;
    case OP_SWAP: { i64 t = m->stack[sp - 1]; m->stack[sp - 1] = m->stack[sp - 2]; m->stack[sp - 2] = t; break; }
    case OP_AND: sp--; m->stack[sp - 1] &= m->stack[sp]; break;
    case OP_SHR: sp--; m->stack[sp - 1] = (i64)((u64)m->stack[sp - 1] >> m->stack[sp]); break;
    case OP_LOADI: m->stack[sp - 1] = m->mem[m->stack[sp - 1]]; break;
    case OP_STOREI: sp -= 2; m->mem[m->stack[sp + 1]] = m->stack[sp]; break;
    case OP_HALT: return sp ? m->stack[sp - 1] : 0;
    default: return -1;
    }
  }
}

static i64 run_goto(machine *m, const i64 *code) {
  static void *const table[OP_COUNT] = {
    &&l_push, &&l_load, &&l_store, &&l_add, &&l_sub, &&l_mul, &&l_divu, &&l_modu, &&l_lt, &&l_eq,
    &&l_jmp, &&l_jz, &&l_dup, &&l_drop, &&l_swap, &&l_and, &&l_shr, &&l_loadi, &&l_storei, &&l_halt,
  };
  int pc = 0, sp = 0;
#define NEXT do { m->steps++; goto *table[code[pc++]]; } while (0)
  NEXT;
l_push: m->stack[sp++] = code[pc++]; NEXT;
l_load: m->stack[sp++] = m->mem[code[pc++]]; NEXT;
l_store: m->mem[code[pc++]] = m->stack[--sp]; NEXT;
l_add: sp--; m->stack[sp - 1] += m->stack[sp]; NEXT;
l_sub: sp--; m->stack[sp - 1] -= m->stack[sp]; NEXT;
l_mul: sp--; m->stack[sp - 1] *= m->stack[sp]; NEXT;
l_divu: sp--; m->stack[sp - 1] = (i64)((u64)m->stack[sp - 1] / (u64)m->stack[sp]); NEXT;
l_modu: sp--; m->stack[sp - 1] = (i64)((u64)m->stack[sp - 1] % (u64)m->stack[sp]); NEXT;
l_lt: sp--; m->stack[sp - 1] = m->stack[sp - 1] < m->stack[sp]; NEXT;
l_eq: sp--; m->stack[sp - 1] = m->stack[sp - 1] == m->stack[sp]; NEXT;
l_jmp: pc = (int)code[pc]; NEXT;
l_jz: pc = m->stack[--sp] == 0 ? (int)code[pc] : pc + 1; NEXT;
l_dup: m->stack[sp] = m->stack[sp - 1]; sp++; NEXT;
l_drop: sp--; NEXT;
l_swap: { i64 t = m->stack[sp - 1]; m->stack[sp - 1] = m->stack[sp - 2]; m->stack[sp - 2] = t; } NEXT;
l_and: sp--; m->stack[sp - 1] &= m->stack[sp]; NEXT;
l_shr: sp--; m->stack[sp - 1] = (i64)((u64)m->stack[sp - 1] >> m->stack[sp]); NEXT;
l_loadi: m->stack[sp - 1] = m->mem[m->stack[sp - 1]]; NEXT;
l_storei: sp -= 2; m->mem[m->stack[sp + 1]] = m->stack[sp]; NEXT;
l_halt: return sp ? m->stack[sp - 1] : 0;
#undef NEXT
}

/* Variables: mem[0] i, mem[1] j, mem[2] count, mem[3] n; the sieve lives at mem[100..]. */
#define SIEVE_N 600
static const i64 sieve[] = {
  /* i = 2 */
  OP_PUSH, 2, OP_STORE, 0,
  /* 4: while i < N */
  OP_LOAD, 0, OP_PUSH, SIEVE_N, OP_LT, OP_JZ, 53,
  /* 11: if mem[100+i] == 0 { count++; j = i+i; while j < N { mem[100+j] = 1; j += i } } */
  OP_LOAD, 0, OP_PUSH, 100, OP_ADD, OP_LOADI, OP_JZ, 21, OP_JMP, 44,
  /* 21 */ OP_LOAD, 2, OP_PUSH, 1, OP_ADD, OP_STORE, 2,
  /* 28 */ OP_LOAD, 0, OP_DUP, OP_ADD, OP_STORE, 1,
  /* 34: inner */ OP_LOAD, 1, OP_PUSH, SIEVE_N, OP_LT, OP_JZ, 44, OP_JMP, 60,
  /* 43 */ OP_HALT,
  /* 44: i++ */ OP_LOAD, 0, OP_PUSH, 1, OP_ADD, OP_STORE, 0, OP_JMP, 4,
  [53] = OP_LOAD, 2, OP_HALT,
  /* mark */ [60] = OP_PUSH, 1, OP_LOAD, 1, OP_PUSH, 100, OP_ADD, OP_STOREI,
  /* 68 */ OP_LOAD, 1, OP_LOAD, 0, OP_ADD, OP_STORE, 1, OP_JMP, 34,
};

/* Collatz: the longest chain below mem[3]: mem[0] n, mem[1] x, mem[2] steps, mem[4] best, mem[5] best n. */
static const i64 collatz[] = {
  OP_PUSH, 1, OP_STORE, 0,
  /* 4 */ OP_LOAD, 0, OP_LOAD, 3, OP_LT, OP_JZ, 200,
  /* 11 */ OP_LOAD, 0, OP_STORE, 1, OP_PUSH, 0, OP_STORE, 2,
  /* 19: loop while x != 1 */ OP_LOAD, 1, OP_PUSH, 1, OP_EQ, OP_JZ, 100,
  /* 26: done with n */ OP_LOAD, 4, OP_LOAD, 2, OP_LT, OP_JZ, 44,
  /* 33 */ OP_LOAD, 2, OP_STORE, 4, OP_LOAD, 0, OP_STORE, 5, OP_JMP, 44, OP_HALT,
  /* 44 */ OP_LOAD, 0, OP_PUSH, 1, OP_ADD, OP_STORE, 0, OP_JMP, 4,
  [100] = OP_LOAD, 1, OP_PUSH, 1, OP_AND, OP_JZ, 130,
  /* 107: odd: x = 3x+1 */ OP_LOAD, 1, OP_PUSH, 3, OP_MUL, OP_PUSH, 1, OP_ADD, OP_STORE, 1, OP_JMP, 140,
  [130] = OP_LOAD, 1, OP_PUSH, 1, OP_SHR, OP_STORE, 1, OP_JMP, 140,
  [140] = OP_LOAD, 2, OP_PUSH, 1, OP_ADD, OP_STORE, 2, OP_JMP, 19,
  [200] = OP_LOAD, 5, OP_HALT,
};

/* GCD of mem[0] and mem[1] by remainders. */
static const i64 gcd_loop[] = {
  /* 0: while b != 0 */ OP_LOAD, 1, OP_PUSH, 0, OP_EQ, OP_JZ, 9, OP_JMP, 30,
  /* 9: a, b = b, a % b */ OP_LOAD, 0, OP_LOAD, 1, OP_MODU, OP_LOAD, 1, OP_STORE, 0, OP_STORE, 1, OP_JMP, 0,
  [30] = OP_LOAD, 0, OP_HALT,
};

static machine vm;

static i64 run(int use_goto, const i64 *code) {
  return use_goto ? run_goto(&vm, code) : run_switch(&vm, code);
}

int main(void) {
  con_puts("bytecode: switch and computed-goto interpreters\n");
  u64 sum = 0;
  int ok = 1;
  for (int g = 0; g < 2; g++) {
    __builtin_memset(&vm, 0, sizeof vm);
    i64 primes = run(g, sieve);
    __builtin_memset(vm.mem, 0, sizeof vm.mem);
    vm.mem[3] = 300;
    i64 best = run(g, collatz);
    i64 gsum = 0;
    for (int i = 1; i < 200; i++) {
      vm.mem[0] = (i64)i * 7919 * 3;
      vm.mem[1] = (i64)i * 104729 * 6;
      gsum += run(g, gcd_loop);
    }
    con_puts(g ? "goto  " : "switch");
    con_puts(" primes<600=");
    con_dec(primes);
    con_puts(" collatz best<300=");
    con_dec(best);
    con_puts(" gcd sum=");
    con_dec(gsum);
    con_puts(" steps=");
    con_dec((i64)vm.steps);
    con_newline();
    ok = ok && primes == 109 && best == 231;
    sum = mix64(sum, (u64)primes);
    sum = mix64(sum, (u64)best);
    sum = mix64(sum, (u64)gsum);
    sum = mix64(sum, vm.steps);
  }
  con_puts(ok ? "self-check ok\n" : "self-check FAILED\n");
  print_checksum(sum);
  return ok ? 0 : 1;
}
