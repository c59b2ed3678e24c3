/* Quicksort: an in-place median-of-three quicksort with insertion sort for short ranges, and a
   generic qsort with a comparator called through a function pointer; both checked sorted. */
#include "rt.h"

#define N 3000

static u32 a[N];
static i64 b[N / 2];

static u64 rng = 0x9e3779b97f4a7c15ull;
static u64 next(void) {
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 0x2545f4914f6cdd1dull;
}

static void insertion(u32 *v, int lo, int hi) {
  for (int i = lo + 1; i <= hi; i++) {
    u32 x = v[i];
    int j = i - 1;
    while (j >= lo && v[j] > x) {
      v[j + 1] = v[j];
      j--;
    }
    v[j + 1] = x;
  }
}

static void swap32(u32 *x, u32 *y) {
  u32 t = *x;
  *x = *y;
  *y = t;
}

static void quicksort(u32 *v, int lo, int hi) {
  while (hi - lo > 12) {
    int mid = lo + (hi - lo) / 2;
    if (v[mid] < v[lo]) swap32(&v[mid], &v[lo]);
    if (v[hi] < v[lo]) swap32(&v[hi], &v[lo]);
    if (v[hi] < v[mid]) swap32(&v[hi], &v[mid]);
    u32 pivot = v[mid];
    int i = lo, j = hi;
    while (i <= j) {
      while (v[i] < pivot) i++;
      while (v[j] > pivot) j--;
      if (i <= j) {
        swap32(&v[i], &v[j]);
        i++;
        j--;
      }
    }
    /* recurse into the smaller part, loop on the larger */
    if (j - lo < hi - i) {
      quicksort(v, lo, j);
      lo = i;
    } else {
      quicksort(v, i, hi);
      hi = j;
    }
  }
  insertion(v, lo, hi);
}

typedef int (*cmp_fn)(const void *, const void *);

static void swap_bytes(char *x, char *y, size_t n) {
  while (n--) {
    char t = *x;
    *x++ = *y;
    *y++ = t;
  }
}

static void gqsort(void *base, size_t n, size_t size, cmp_fn cmp) {
  char *v = base;
  if (n < 2) return;
  char *pivot = v + (n / 2) * size;
  swap_bytes(pivot, v + (n - 1) * size, size);
  pivot = v + (n - 1) * size;
  size_t store = 0;
  for (size_t i = 0; i + 1 < n; i++) {
    if (cmp(v + i * size, pivot) < 0) {
      swap_bytes(v + i * size, v + store * size, size);
      store++;
    }
  }
  swap_bytes(v + store * size, pivot, size);
  gqsort(v, store, size, cmp);
  gqsort(v + (store + 1) * size, n - store - 1, size, cmp);
}

static int cmp_i64_desc(const void *x, const void *y) {
  i64 p = *(const i64 *)x, q = *(const i64 *)y;
  return p < q ? 1 : p > q ? -1 : 0;
}

int main(void) {
  con_puts("qsort: median-of-three quicksort and a generic qsort\n");
  for (int i = 0; i < N; i++) a[i] = (u32)(next() >> 40) % 100000u;
  for (int i = 0; i < N / 2; i++) b[i] = (i64)next() >> 20;
  quicksort(a, 0, N - 1);
  gqsort(b, N / 2, sizeof b[0], cmp_i64_desc);
  int ok = 1;
  for (int i = 1; i < N; i++) ok &= a[i - 1] <= a[i];
  for (int i = 1; i < N / 2; i++) ok &= b[i - 1] >= b[i];
  u64 sum = 0;
  for (int i = 0; i < N; i++) sum = mix64(sum, (u64)a[i] * (u64)(i + 1));
  for (int i = 0; i < N / 2; i++) sum = mix64(sum, (u64)b[i]);
  con_kv("min", a[0]);
  con_kv("median", a[N / 2]);
  con_kv("max", a[N - 1]);
  con_kv("largest i64", (u64)b[0]);
  con_puts(ok ? "self-check ok\n" : "self-check FAILED\n");
  print_checksum(sum);
  return ok ? 0 : 1;
}
