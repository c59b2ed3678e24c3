// Reads lines "hexcode r0 … r15 rflags mxcsr x0 … x15" (hex; x as 32 hex digits, most significant
// first; r4 ignored), runs each instruction on this host with a 256-byte window at 0x180000 filled
// with (i * 37 + 11) & 0xff, and prints "r0 … r15 rflags mxcsr x0 … x15 w0 … w255" (hex). An
// instruction that raises an unmasked SIMD exception (#XM, SIGFPE) prints the state the signal
// frame holds, followed by " fault".
// Build: gcc -O1 -o runner runner.c run.S
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <ucontext.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

void run_sse(uint64_t *state, void *code);

static sigjmp_buf back;
static uint64_t *cur;

static void on_fpe(int sig, siginfo_t *info, void *ctx) {
  (void)sig;
  (void)info;
  ucontext_t *uc = ctx;
  const greg_t *g = uc->uc_mcontext.gregs;
  const int order[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
                         REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15};
  for (int i = 0; i < 16; i++) cur[i] = (uint64_t)g[order[i]];
  cur[16] = (uint64_t)g[REG_EFL];
  cur[17] = uc->uc_mcontext.fpregs->mxcsr;
  for (int i = 0; i < 16; i++) {
    const uint32_t *x = uc->uc_mcontext.fpregs->_xmm[i].element;
    cur[18 + 2 * i] = x[0] | (uint64_t)x[1] << 32;
    cur[18 + 2 * i + 1] = x[2] | (uint64_t)x[3] << 32;
  }
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

int main(void) {
  uint8_t *win = mmap((void *)0x180000, 0x1000, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  uint8_t *code = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (win != (void *)0x180000 || code == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fpe;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigaction(SIGFPE, &sa, NULL);
  static char line[65536];
  while (fgets(line, sizeof line, stdin)) {
    char *hex = strtok(line, " \n");
    if (hex == NULL) continue;
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++) code[i] = (uint8_t)hex64(hex + 2 * i, 2);
    code[n] = 0xc3;
    uint64_t state[18 + 32];
    for (int i = 0; i < 18; i++) state[i] = strtoull(strtok(NULL, " \n"), NULL, 16);
    for (int i = 0; i < 16; i++) {
      const char *x = strtok(NULL, " \n");
      state[18 + 2 * i + 1] = hex64(x, 16);
      state[18 + 2 * i] = hex64(x + 16, 16);
    }
    for (int i = 0; i < 256; i++) win[i] = (uint8_t)((i * 37 + 11) & 0xff);
    cur = state;
    int faulted = 0;
    if (sigsetjmp(back, 1) == 0) run_sse(state, code);
    else {
      faulted = 1;
      unsigned def = 0x1f80;
      __asm__ volatile("ldmxcsr %0" : : "m"(def));
    }
    for (int i = 0; i < 18; i++) printf("%llx ", (unsigned long long)state[i]);
    for (int i = 0; i < 16; i++) printf("%016llx%016llx ", (unsigned long long)state[18 + 2 * i + 1], (unsigned long long)state[18 + 2 * i]);
    for (int i = 0; i < 256; i++) printf("%x%c", win[i], i == 255 ? (faulted ? ' ' : '\n') : ' ');
    if (faulted) printf("fault\n");
    fflush(stdout);
  }
  return 0;
}
