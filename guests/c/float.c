/* float and double on SSE: matrix products, Horner polynomials, Newton square roots, a small
   Mandelbrot grid, float<->double and integer conversions, comparisons, min/max. Results are
   checksummed bit-exactly. */
#include "rt.h"

static u64 acc;
static u64 dbits(double v) {
  u64 b;
  __builtin_memcpy(&b, &v, 8);
  return b;
}
static u32 fbits(float v) {
  u32 b;
  __builtin_memcpy(&b, &v, 4);
  return b;
}
static void showd(const char *name, double v) {
  con_puts(name);
  con_puts(": ");
  con_hex64(dbits(v));
  con_newline();
  acc = mix64(acc, dbits(v));
}

#define M 12
static double ma[M][M], mb[M][M], mc[M][M];
static float fa[64], fb[64];

static double horner(const double *c, int n, double x) {
  double r = 0;
  for (int i = n - 1; i >= 0; i--) r = r * x + c[i];
  return r;
}

static double dsqrt(double x) {
  double g = x > 1 ? x / 2 : 1;
  for (int i = 0; i < 30; i++) g = 0.5 * (g + x / g);
  return g;
}

static volatile double vseed = 0.7853981633974483;
static volatile float fseed = 1.41421356f;

int main(void) {
  con_puts("float: SSE double and float arithmetic\n");
  for (int i = 0; i < M; i++)
    for (int j = 0; j < M; j++) {
      ma[i][j] = (double)(i * M + j) / 7.0 - 3.0;
      mb[i][j] = (double)((i + 1) * (j + 2)) * vseed;
    }
  for (int i = 0; i < M; i++)
    for (int j = 0; j < M; j++) {
      double s = 0;
      for (int k = 0; k < M; k++) s += ma[i][k] * mb[k][j];
      mc[i][j] = s;
    }
  double trace = 0;
  for (int i = 0; i < M; i++) trace += mc[i][i];
  showd("trace", trace);
  showd("mc[3][7]", mc[3][7]);

  static const double coeffs[] = {1, -0.5, 1.0 / 24, -1.0 / 720, 1.0 / 40320, -1.0 / 3628800};
  double x = vseed;
  showd("cos poly", horner(coeffs, 6, x * x));
  showd("sqrt(10)", dsqrt(10.0));
  showd("sqrt(vseed)", dsqrt(vseed));

  /* Mandelbrot: iteration counts over a 24x16 grid */
  u64 iters = 0;
  for (int py = 0; py < 16; py++)
    for (int px = 0; px < 24; px++) {
      double cr = -2.0 + px * (2.6 / 24), ci = -1.2 + py * (2.4 / 16);
      double zr = 0, zi = 0;
      int n = 0;
      while (n < 200 && zr * zr + zi * zi <= 4.0) {
        double t = zr * zr - zi * zi + cr;
        zi = 2 * zr * zi + ci;
        zr = t;
        n++;
      }
      iters += (u64)n;
      acc = mix64(acc, (u64)n);
    }
  con_kv("mandelbrot iterations", iters);

  /* float arrays, conversions */
  for (int i = 0; i < 64; i++) {
    fa[i] = (float)i * fseed - 20.0f;
    fb[i] = 1.0f / ((float)i + 0.5f);
  }
  float fs = 0, fmx = -1e30f, fmn = 1e30f;
  for (int i = 0; i < 64; i++) {
    fs += fa[i] * fb[i];
    fmx = fa[i] > fmx ? fa[i] : fmx;
    fmn = fb[i] < fmn ? fb[i] : fmn;
  }
  con_puts("float sum: ");
  con_hexn(fbits(fs), 8);
  con_newline();
  acc = mix64(acc, fbits(fs) ^ ((u64)fbits(fmx) << 32));
  acc = mix64(acc, fbits(fmn));
  double widened = (double)fs * 3.0;
  showd("widened", widened);
  i64 conv = (i64)(trace * 1000.0);
  int iconv = (int)(fs * 100.0f);
  double from_int = (double)conv / 3.0 + (double)(u32)iconv;
  con_kv("(i64)(trace*1000)", (u64)conv);
  showd("from_int", from_int);
  acc = mix64(acc, (u64)conv);
  acc = mix64(acc, (u64)(u32)iconv);
  int cmp = (trace > 0) + 2 * (fs < 0) + 4 * (widened == widened) + 8 * (vseed != vseed);
  con_kv("compare", (u64)cmp);
  acc = mix64(acc, (u64)cmp);
  int ok = iters > 0 && cmp >= 4;
  con_puts(ok ? "self-check ok\n" : "self-check FAILED\n");
  print_checksum(acc);
  return ok ? 0 : 1;
}
