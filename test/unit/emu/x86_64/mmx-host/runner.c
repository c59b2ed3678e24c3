// Reads lines "hexcode rax rcx rdx rsi rdi fcw fsw ftw mxcsr st0 … st7 x0 … x3" (hex; ftw the abridged
// byte FXSAVE keeps; st as 20 hex digits, sign/exponent then significand, in ST order; x as 32 hex
// digits, most significant first), runs the code on this host with RBX pointing at a 256-byte window
// at 0x180000 filled with (i * 37 + 11) & 0xff, and prints "rax rcx rdx rsi rdi fcw fsw ftw mxcsr
// tagword st0 … st7 x0 … x3 w0 … w255" (hex; tagword the full tag word FNSTENV stores). Code that
// raises #MF or #XM (SIGFPE), #GP or #PF (SIGSEGV) prints the state of the signal frame, "-" as
// the tag word, and " fault N" (N the vector).
// Build: gcc -O1 -o runner runner.c run.S
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

void run_mmx(uint8_t *state, void *code);

static sigjmp_buf back;
static uint8_t *cur;
static int vector;

static void on_fault(int sig, siginfo_t *info, void *ctx) {
  (void)sig;
  (void)info;
  ucontext_t *uc = ctx;
  const greg_t *g = uc->uc_mcontext.gregs;
  const int order[6] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSI, REG_RDI};
  for (int i = 0; i < 6; i++) memcpy(cur + 8 * i, &g[order[i]], 8);
  memcpy(cur + 64, uc->uc_mcontext.fpregs, 512);
  vector = (int)g[REG_TRAPNO];
  siglongjmp(back, 1);
}

static uint64_t hex64(const char *s, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    v = v * 16 + (uint64_t)(ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10);
  }
  return v;
}

static uint8_t state[640] __attribute__((aligned(64)));

int main(void) {
  uint8_t *win = mmap((void *)0x180000, 0x1000, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  uint8_t *code = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (win != (void *)0x180000 || code == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigaction(SIGFPE, &sa, NULL);
  sigaction(SIGSEGV, &sa, NULL);
  static char line[65536];
  while (fgets(line, sizeof line, stdin)) {
    char *hex = strtok(line, " \n");
    if (hex == NULL) continue;
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++) code[i] = (uint8_t)hex64(hex + 2 * i, 2);
    code[n] = 0xc3;
    memset(state, 0, sizeof state);
    const int gi[5] = {0, 8, 16, 32, 40};
    for (int i = 0; i < 5; i++) {
      uint64_t v = strtoull(strtok(NULL, " \n"), NULL, 16);
      memcpy(state + gi[i], &v, 8);
    }
    uint64_t rbx = 0x180000;
    memcpy(state + 24, &rbx, 8);
    uint8_t *fx = state + 64;
    uint16_t fcw = (uint16_t)strtoul(strtok(NULL, " \n"), NULL, 16);
    uint16_t fsw = (uint16_t)strtoul(strtok(NULL, " \n"), NULL, 16);
    uint8_t ftw = (uint8_t)strtoul(strtok(NULL, " \n"), NULL, 16);
    uint32_t mxcsr = (uint32_t)strtoul(strtok(NULL, " \n"), NULL, 16);
    memcpy(fx + 0, &fcw, 2);
    memcpy(fx + 2, &fsw, 2);
    fx[4] = ftw;
    memcpy(fx + 24, &mxcsr, 4);
    uint32_t mask = 0xffff;
    memcpy(fx + 28, &mask, 4);
    for (int i = 0; i < 8; i++) {
      const char *s = strtok(NULL, " \n");
      uint16_t se = (uint16_t)hex64(s, 4);
      uint64_t m = hex64(s + 4, 16);
      memcpy(fx + 32 + 16 * i, &m, 8);
      memcpy(fx + 40 + 16 * i, &se, 2);
    }
    for (int i = 0; i < 4; i++) {
      const char *s = strtok(NULL, " \n");
      uint64_t hi = hex64(s, 16), lo = hex64(s + 16, 16);
      memcpy(fx + 160 + 16 * i, &lo, 8);
      memcpy(fx + 168 + 16 * i, &hi, 8);
    }
    for (int i = 0; i < 256; i++) win[i] = (uint8_t)((i * 37 + 11) & 0xff);
    cur = state;
    vector = 0;
    if (sigsetjmp(back, 1) == 0) run_mmx(state, code);
    for (int i = 0; i < 6; i++) {
      if (i == 3) continue;
      uint64_t v;
      memcpy(&v, state + 8 * i, 8);
      printf("%llx ", (unsigned long long)v);
    }
    uint16_t ofcw, ofsw;
    uint32_t omx;
    memcpy(&ofcw, fx + 0, 2);
    memcpy(&ofsw, fx + 2, 2);
    memcpy(&omx, fx + 24, 4);
    printf("%x %x %x %x ", ofcw, ofsw, fx[4], omx);
    if (vector) printf("- ");
    else {
      uint16_t tw;
      memcpy(&tw, state + 576 + 8, 2);
      printf("%x ", tw);
    }
    for (int i = 0; i < 8; i++) {
      uint16_t se;
      uint64_t m;
      memcpy(&m, fx + 32 + 16 * i, 8);
      memcpy(&se, fx + 40 + 16 * i, 2);
      printf("%04x%016llx ", se, (unsigned long long)m);
    }
    for (int i = 0; i < 4; i++) {
      uint64_t lo, hi;
      memcpy(&lo, fx + 160 + 16 * i, 8);
      memcpy(&hi, fx + 168 + 16 * i, 8);
      printf("%016llx%016llx ", (unsigned long long)hi, (unsigned long long)lo);
    }
    for (int i = 0; i < 256; i++) printf("%x%c", win[i], i == 255 ? (vector ? ' ' : '\n') : ' ');
    if (vector) printf("fault %d\n", vector);
    fflush(stdout);
  }
  return 0;
}
