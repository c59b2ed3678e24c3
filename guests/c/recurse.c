/* Recursion: Ackermann, naive Fibonacci, mutual recursion and the Towers of Hanoi. */
#include "rt.h"

static u64 calls;

static u64 ackermann(u64 m, u64 n) {
  calls++;
  if (m == 0) return n + 1;
  if (n == 0) return ackermann(m - 1, 1);
  return ackermann(m - 1, ackermann(m, n - 1));
}

static u64 fib(int n) {
  calls++;
  return n < 2 ? (u64)n : fib(n - 1) + fib(n - 2);
}

static int is_odd(unsigned n);
static int is_even(unsigned n) { return n == 0 ? 1 : is_odd(n - 1); }
static int is_odd(unsigned n) { return n == 0 ? 0 : is_even(n - 1); }

static u64 hanoi_sum;
static void hanoi(int n, int from, int to, int via) {
  if (n == 0) return;
  hanoi(n - 1, from, via, to);
  hanoi_sum = mix64(hanoi_sum, (u64)(n * 9 + from * 3 + to));
  hanoi(n - 1, via, to, from);
}

int main(void) {
  con_puts("recurse: ackermann, fib, mutual recursion, hanoi\n");
  u64 sum = 0;
  u64 a = ackermann(2, 300);
  con_kv("ackermann(2,300)", a);
  u64 a3 = ackermann(3, 5);
  con_kv("ackermann(3,5)", a3);
  u64 f = fib(22);
  con_kv("fib(22)", f);
  int e = is_even(1001) + 2 * is_odd(777);
  con_kv("even/odd", (u64)e);
  hanoi(12, 0, 2, 1);
  con_kv("hanoi(12)", hanoi_sum);
  con_kv("calls", calls);
  int ok = a == 603 && a3 == 253 && f == 17711 && e == 2;
  sum = mix64(sum, a);
  sum = mix64(sum, a3);
  sum = mix64(sum, f);
  sum = mix64(sum, calls);
  sum = mix64(sum, hanoi_sum);
  con_puts(ok ? "self-check ok\n" : "self-check FAILED\n");
  print_checksum(sum);
  return ok ? 0 : 1;
}
