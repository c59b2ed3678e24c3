/* SHA-256 (FIPS 180-4): the "abc" and two-block test vectors, then a chain of hashes over a
   pseudo-random buffer. */
#include "rt.h"

#define BUF_SIZE 8192
/* Hash rounds over the buffer; a benchmark may write another count before the guest runs. */
volatile int corpus_passes = 12;

static const u32 K[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

typedef struct {
  u32 h[8];
  u8 block[64];
  u64 length;
  size_t fill;
} sha256_ctx;

static inline u32 ror(u32 x, int n) { return (x >> n) | (x << (32 - n)); }

static void compress(u32 h[8], const u8 *p) {
  u32 w[64];
  for (int i = 0; i < 16; i++) w[i] = (u32)p[4 * i] << 24 | (u32)p[4 * i + 1] << 16 | (u32)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    u32 s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
    u32 s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  u32 a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (int i = 0; i < 64; i++) {
    u32 t1 = hh + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
    u32 t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
  }
  h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

static void sha256_init(sha256_ctx *c) {
  static const u32 iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(c->h, iv, sizeof iv);
  c->length = 0;
  c->fill = 0;
}

static void sha256_update(sha256_ctx *c, const u8 *p, size_t n) {
  c->length += n;
  while (n) {
    size_t take = 64 - c->fill < n ? 64 - c->fill : n;
    memcpy(c->block + c->fill, p, take);
    c->fill += take;
    p += take;
    n -= take;
    if (c->fill == 64) {
      compress(c->h, c->block);
      c->fill = 0;
    }
  }
}

static void sha256_final(sha256_ctx *c, u8 out[32]) {
  u64 bits = c->length * 8;
  u8 pad = 0x80;
  sha256_update(c, &pad, 1);
  u8 zero = 0;
  while (c->fill != 56) sha256_update(c, &zero, 1);
  u8 len[8];
  for (int i = 0; i < 8; i++) len[i] = (u8)(bits >> (56 - 8 * i));
  sha256_update(c, len, 8);
  for (int i = 0; i < 8; i++) {
    out[4 * i] = (u8)(c->h[i] >> 24);
    out[4 * i + 1] = (u8)(c->h[i] >> 16);
    out[4 * i + 2] = (u8)(c->h[i] >> 8);
    out[4 * i + 3] = (u8)c->h[i];
  }
}

static void sha256(const u8 *p, size_t n, u8 out[32]) {
  sha256_ctx c;
  sha256_init(&c);
  sha256_update(&c, p, n);
  sha256_final(&c, out);
}

static void print_digest(const char *name, const u8 d[32]) {
  con_puts(name);
  con_puts(": ");
  for (int i = 0; i < 32; i++) con_hexn(d[i], 2);
  con_newline();
}

static u8 buf[BUF_SIZE];

int main(void) {
  con_puts("sha256: FIPS 180-4 vectors and a hash chain\n");
  static const u8 abc_digest[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
  static const u8 two_digest[32] = {0x24, 0x8d, 0x6a, 0x61, 0xd2, 0x06, 0x38, 0xb8, 0xe5, 0xc0, 0x26, 0x93, 0x0c, 0x3e, 0x60, 0x39,
                                    0xa3, 0x3c, 0xe4, 0x59, 0x64, 0xff, 0x21, 0x67, 0xf6, 0xec, 0xed, 0xd4, 0x19, 0xdb, 0x06, 0xc1};
  u8 d[32];
  sha256((const u8 *)"abc", 3, d);
  print_digest("abc", d);
  int ok = memcmp(d, abc_digest, 32) == 0;
  const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  sha256((const u8 *)two, strlen(two), d);
  print_digest("two blocks", d);
  ok = ok && memcmp(d, two_digest, 32) == 0;

  u32 x = 0x12345678;
  for (size_t i = 0; i < BUF_SIZE; i++) {
    x = x * 1103515245u + 12345u;
    buf[i] = (u8)(x >> 16);
  }
  u64 sum = 0;
  for (int r = 0; r < corpus_passes; r++) {
    sha256(buf, BUF_SIZE, d);
    memcpy(buf + (r * 32) % BUF_SIZE, d, 32); /* the next round hashes this digest too */
    for (int i = 0; i < 32; i += 8) {
      u64 v;
      memcpy(&v, d + i, 8);
      sum = mix64(sum, v);
    }
  }
  print_digest("chain", d);
  con_puts(ok ? "self-check ok\n" : "self-check FAILED\n");
  print_checksum(sum);
  return ok ? 0 : 1;
}
