// Reads lines "hexcode r0 … r15 rflags" (hex; r4 ignored), runs each instruction on this host with
// a 256-byte window at 0x180000 filled with (i * 37 + 11) & 0xff, and prints
// "r0 … r15 rflags w0 … w255" (hex). Build: gcc -O1 -o runner runner.c run.S
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

void run_insn(uint64_t *state, void *code);

int main(void) {
  uint8_t *win = mmap((void *)0x180000, 0x1000, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  uint8_t *code = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (win != (void *)0x180000 || code == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  char line[8192];
  while (fgets(line, sizeof line, stdin)) {
    char *p = line;
    char *hex = strtok(p, " \n");
    if (hex == NULL) continue;
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++) {
      unsigned b;
      sscanf(hex + 2 * i, "%2x", &b);
      code[i] = (uint8_t)b;
    }
    code[n] = 0xc3;
    uint64_t state[17];
    for (int i = 0; i < 17; i++) state[i] = strtoull(strtok(NULL, " \n"), NULL, 16);
    for (int i = 0; i < 256; i++) win[i] = (uint8_t)((i * 37 + 11) & 0xff);
    run_insn(state, code);
    for (int i = 0; i < 17; i++) printf("%llx ", (unsigned long long)state[i]);
    for (int i = 0; i < 256; i++) printf("%x%c", win[i], i == 255 ? '\n' : ' ');
  }
  return 0;
}
