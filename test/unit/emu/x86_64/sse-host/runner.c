// Reads lines "hexcode r0 … r15 rflags mxcsr x0 … x15" (hex; x as 32 hex digits, most significant
// first; r4 ignored), runs each instruction on this host with a 256-byte window at 0x180000 filled
// with (i * 37 + 11) & 0xff, and prints "r0 … r15 rflags mxcsr x0 … x15 w0 … w255" (hex).
// Build: gcc -O1 -o runner runner.c run.S
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

void run_sse(uint64_t *state, void *code);

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
    run_sse(state, code);
    for (int i = 0; i < 18; i++) printf("%llx ", (unsigned long long)state[i]);
    for (int i = 0; i < 16; i++) printf("%016llx%016llx ", (unsigned long long)state[18 + 2 * i + 1], (unsigned long long)state[18 + 2 * i]);
    for (int i = 0; i < 256; i++) printf("%x%c", win[i], i == 255 ? '\n' : ' ');
    fflush(stdout);
  }
  return 0;
}
