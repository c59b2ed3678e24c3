/* Console helpers of the corpus runtime (see rt.h). */
#include "rt.h"

void con_putc(char c) { outb(0xe9, (u8)c); }

void con_puts(const char *s) {
  while (*s) con_putc(*s++);
}

void con_hexn(u64 v, int width) {
  for (int i = width - 1; i >= 0; i--) {
    unsigned d = (unsigned)(v >> (4 * i)) & 0xf;
    con_putc((char)(d < 10 ? '0' + d : 'a' + d - 10));
  }
}

void con_hex64(u64 v) {
  con_puts("0x");
  con_hexn(v, 16);
}

void con_dec(i64 v) {
  char buf[24];
  int n = 0;
  u64 u = v < 0 ? (u64)0 - (u64)v : (u64)v;
  if (v < 0) con_putc('-');
  do {
    buf[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  while (n) con_putc(buf[--n]);
}

void con_newline(void) { con_putc('\n'); }

void con_kv(const char *name, u64 v) {
  con_puts(name);
  con_puts(": ");
  con_hex64(v);
  con_newline();
}

void print_checksum(u64 v) {
  con_puts("checksum ");
  con_hex64(v);
  con_newline();
}
