/* 64- and 128-bit multiply and divide: unsigned __int128 products, / and % through libgcc
   (__udivti3, __umodti3, __divti3, __modti3 -> __udivmodti4), signed 64-bit division with
   negative operands, and a Miller-Rabin primality test with 128-bit modular multiplication. */
#include "rt.h"

typedef unsigned __int128 u128;
typedef __int128 i128;

static u64 mulmod(u64 a, u64 b, u64 m) { return (u64)((u128)a * b % m); }

static u64 powmod(u64 b, u64 e, u64 m) {
  u64 r = 1 % m;
  b %= m;
  while (e) {
    if (e & 1) r = mulmod(r, b, m);
    b = mulmod(b, b, m);
    e >>= 1;
  }
  return r;
}

static int is_prime(u64 n) {
  if (n < 2) return 0;
  static const u64 small[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37};
  for (unsigned i = 0; i < sizeof small / sizeof small[0]; i++) {
    if (n % small[i] == 0) return n == small[i];
  }
  u64 d = n - 1;
  int s = 0;
  while ((d & 1) == 0) {
    d >>= 1;
    s++;
  }
  for (unsigned i = 0; i < sizeof small / sizeof small[0]; i++) {
    u64 x = powmod(small[i], d, n);
    if (x == 1 || x == n - 1) continue;
    int composite = 1;
    for (int r = 1; r < s; r++) {
      x = mulmod(x, x, n);
      if (x == n - 1) {
        composite = 0;
        break;
      }
    }
    if (composite) return 0;
  }
  return 1;
}

static void print_u128(const char *name, u128 v) {
  con_puts(name);
  con_puts(": 0x");
  con_hexn((u64)(v >> 64), 16);
  con_hexn((u64)v, 16);
  con_newline();
}

/* volatile: the operands are not constants the compiler folds */
static volatile u64 seed_a = 0xfedcba9876543210ull, seed_b = 0x0123456789abcdefull;
static volatile i64 neg = -1234567890123ll;

int main(void) {
  con_puts("muldiv: 64/128-bit multiply and divide, Miller-Rabin\n");
  u64 sum = 0;
  u128 x = (u128)seed_a * seed_b;
  print_u128("a*b", x);
  u128 q = x / 0x1000000007ull, r = x % 0x1000000007ull;
  print_u128("a*b / 0x1000000007", q);
  print_u128("a*b % 0x1000000007", r);
  int ok = q * 0x1000000007ull + r == x;
  u128 big = ((u128)seed_a << 64) | seed_b;
  u128 div = ((u128)0x12345 << 64) | 0x6789abcdef012345ull;
  print_u128("big / div", big / div);
  print_u128("big % div", big % div);
  ok = ok && (big / div) * div + big % div == big;
  i128 sb = -(i128)big / 3;
  print_u128("-big / 3", (u128)sb);
  print_u128("-big % 7", (u128)(-(i128)big % 7));
  sum = mix64(sum, (u64)x);
  sum = mix64(sum, (u64)(x >> 64));
  sum = mix64(sum, (u64)q ^ (u64)r);
  sum = mix64(sum, (u64)(big / div) ^ (u64)(big % div) ^ (u64)sb);

  /* signed and unsigned 64-bit division over a range of operands */
  i64 n = neg;
  for (int i = 1; i < 2000; i++) {
    i64 d = (i & 1) ? -(i64)i * 7919 : (i64)i * 104729;
    sum = mix64(sum, (u64)(n / d));
    sum = mix64(sum, (u64)(n % d));
    u64 u = seed_a ^ ((u64)i << 17);
    sum = mix64(sum, u / (u64)(i * 2654435761u));
    sum = mix64(sum, u % (u64)(i + 3));
    u128 p = (u128)u * (u64)(i * 0x9e3779b9u);
    sum = mix64(sum, (u64)(p >> 64) + (u64)p);
    n = n * 6364136223846793005ll + 1442695040888963407ll;
  }
  con_kv("after 64-bit loop", sum);

  /* primes near 2^62 (128-bit mulmod) */
  int count = 0;
  u64 last = 0;
  for (u64 c = (1ull << 62) + 1; count < 12; c += 2) {
    if (is_prime(c)) {
      count++;
      last = c;
      sum = mix64(sum, c);
    }
  }
  con_kv("12th prime above 2^62", last);
  ok = ok && is_prime(1000000007ull) && !is_prime(1000000007ull * 998244353ull);
  con_puts(ok ? "self-check ok\n" : "self-check FAILED\n");
  print_checksum(sum);
  return ok ? 0 : 1;
}
