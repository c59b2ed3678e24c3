/* CRC-32 (IEEE 802.3, reflected 0xEDB88320): a table-driven and a bitwise implementation over a
   pseudo-random buffer, checked against each other and against the standard check value. */
#include "rt.h"

#define BUF_SIZE 16384
/* Passes over the buffer; a benchmark may write another count before the guest runs. */
volatile int corpus_passes = 24;

static u32 table[256];
static u8 buf[BUF_SIZE];

static void make_table(void) {
  for (u32 i = 0; i < 256; i++) {
    u32 c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
}

static u32 crc32_table(u32 crc, const u8 *p, size_t n) {
  crc = ~crc;
  while (n--) crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

static u32 crc32_bitwise(u32 crc, const u8 *p, size_t n) {
  crc = ~crc;
  while (n--) {
    crc ^= *p++;
    for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
  }
  return ~crc;
}

static u64 xorshift_state = 0x243f6a8885a308d3ull;
static u64 xorshift64(void) {
  u64 x = xorshift_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return xorshift_state = x;
}

int main(void) {
  con_puts("crc32: table-driven and bitwise CRC-32\n");
  make_table();
  const char *check = "123456789";
  u32 c1 = crc32_table(0, (const u8 *)check, strlen(check));
  u32 c2 = crc32_bitwise(0, (const u8 *)check, strlen(check));
  con_kv("check table", c1);
  con_kv("check bitwise", c2);
  int ok = c1 == 0xcbf43926u && c2 == 0xcbf43926u;

  for (size_t i = 0; i < BUF_SIZE; i += 8) {
    u64 v = xorshift64();
    memcpy(buf + i, &v, 8);
  }
  u64 sum = 0;
  u32 crc = 0;
  for (int pass = 0; pass < corpus_passes; pass++) {
    crc = crc32_table(crc, buf, BUF_SIZE);
    sum = mix64(sum, crc);
    buf[(crc >> 3) % BUF_SIZE] ^= (u8)crc; /* every pass hashes different bytes */
  }
  con_kv("crc after passes", crc);
  u32 b = crc32_bitwise(0, buf, 2048);
  u32 t = crc32_table(0, buf, 2048);
  con_kv("2 KiB bitwise", b);
  ok = ok && b == t;
  sum = mix64(sum, ((u64)b << 32) | t);
  con_puts(ok ? "self-check ok\n" : "self-check FAILED\n");
  print_checksum(sum);
  return ok ? 0 : 1;
}
