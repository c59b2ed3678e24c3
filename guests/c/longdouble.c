/* long double (x87 extended precision): Newton square roots, series for e and pi (Machin),
   a harmonic sum, comparisons, conversions to and from 64-bit integers and the FPU control word
   (FNSTCW/FLDCW for truncating conversions). Results are printed and checksummed bit-exactly. */
#include "rt.h"

typedef long double ld;

static u64 bits_of(ld v, u16 *exp_out) {
  u8 raw[16];
  __builtin_memset(raw, 0, sizeof raw);
  __builtin_memcpy(raw, &v, 10);
  u64 mant;
  __builtin_memcpy(&mant, raw, 8);
  *exp_out = (u16)(raw[8] | raw[9] << 8);
  return mant;
}

static u64 acc;
static void show(const char *name, ld v) {
  u16 e;
  u64 m = bits_of(v, &e);
  con_puts(name);
  con_puts(": ");
  con_hexn(e, 4);
  con_putc(':');
  con_hexn(m, 16);
  con_newline();
  acc = mix64(acc, m);
  acc = mix64(acc, e);
}

static ld newton_sqrt(ld x) {
  ld g = x > 1 ? x / 2 : 1;
  for (int i = 0; i < 40; i++) g = (g + x / g) / 2;
  return g;
}

static ld arctan_inv(int n) {
  ld x = 1.0L / n, x2 = x * x, term = x, sum = 0;
  for (int k = 0; k < 40; k++) {
    ld t = term / (2 * k + 1);
    sum += (k & 1) ? -t : t;
    term *= x2;
  }
  return sum;
}

static volatile ld seed = 1234.5678L;
static volatile i64 iseed = -987654321012345ll;

int main(void) {
  con_puts("longdouble: x87 extended precision\n");
  show("sqrt(2)", newton_sqrt(2.0L));
  show("sqrt(seed)", newton_sqrt(seed));
  ld e = 1, term = 1;
  for (int k = 1; k < 25; k++) {
    term /= k;
    e += term;
  }
  show("e", e);
  ld pi = 16 * arctan_inv(5) - 4 * arctan_inv(239);
  show("pi", pi);
  ld h = 0;
  for (int k = 1; k <= 2000; k++) h += 1.0L / k;
  show("H(2000)", h);
  ld big = (ld)iseed * 3.25L;
  show("iseed*3.25", big);
  i64 back = (i64)big;
  u64 ub = (u64)(seed * 1e15L);
  con_kv("(i64)big", (u64)back);
  con_kv("(u64)(seed*1e15)", ub);
  acc = mix64(acc, (u64)back);
  acc = mix64(acc, ub);
  int cmp = (pi > e) + 2 * (pi < e) + 4 * (pi == pi) + 8 * (h >= 8.17L);
  con_kv("compare", (u64)cmp);
  acc = mix64(acc, (u64)cmp);
  ld prod = 1;
  for (int k = 1; k <= 30; k++) prod *= (ld)k / 3;
  show("prod k/3", prod);
  show("-prod/7", -prod / 7);
  int ok = cmp == 13 && back == -3209876543290121ll;
  con_puts(ok ? "self-check ok\n" : "self-check FAILED\n");
  print_checksum(acc);
  return ok ? 0 : 1;
}
