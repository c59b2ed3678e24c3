/* setjmp/longjmp (own assembly, setjmp.S): non-local exits out of deep recursion, nested jump
   buffers, and a small exception-style error handler around a parser. */
#include "rt.h"

typedef u64 jmp_buf[8];
int my_setjmp(jmp_buf buf) __attribute__((returns_twice));
void my_longjmp(jmp_buf buf, int value) __attribute__((noreturn));

static jmp_buf outer, inner;
static u64 trace;

/* Ends only through my_longjmp, which gcc cannot see. */
#pragma GCC diagnostic ignored "-Winfinite-recursion"
static void dive(int depth, int limit) {
  trace = mix64(trace, (u64)depth);
  if (depth == limit) my_longjmp((depth & 1) ? inner : outer, depth);
  dive(depth + 1, limit);
  trace = 0; /* never reached */
}

/* Parses "<digits>(+<digits>)*"; errors longjmp out with the offending position + 1. */
static jmp_buf parse_error;
static u64 parse(const char *s) {
  u64 total = 0;
  int i = 0;
  for (;;) {
    if (s[i] < '0' || s[i] > '9') my_longjmp(parse_error, i + 1);
    u64 v = 0;
    while (s[i] >= '0' && s[i] <= '9') v = v * 10 + (u64)(s[i++] - '0');
    total += v;
    if (s[i] == 0) return total;
    if (s[i] != '+') my_longjmp(parse_error, i + 1);
    i++;
  }
}

int main(void) {
  con_puts("setjmp: longjmp out of recursion, nested buffers, parser errors\n");
  static u64 sum; /* static: kept across longjmp */
  volatile int rounds = 0;
  for (volatile int limit = 3; limit < 60; limit += 7) {
    volatile int caught_outer = 0, caught_inner = 0;
    int r = my_setjmp(outer);
    if (r == 0) {
      int r2 = my_setjmp(inner);
      if (r2 == 0) {
        dive(0, limit);
      } else {
        caught_inner = r2;
      }
    } else {
      caught_outer = r;
    }
    rounds++;
    sum = mix64(sum, (u64)caught_outer * 1000 + (u64)caught_inner);
  }
  con_kv("rounds", (u64)rounds);
  con_kv("trace", trace);
  sum = mix64(sum, trace);

  static const char *inputs[] = {"1+2+3", "12+x", "400+500+600", "+7", "99999999+1", "5++5"};
  int ok = rounds == 9;
  for (volatile unsigned k = 0; k < sizeof inputs / sizeof inputs[0]; k++) {
    volatile u64 value = 0;
    int err = my_setjmp(parse_error);
    if (err == 0) value = parse(inputs[k]);
    con_puts(inputs[k]);
    con_puts(" -> ");
    if (err) {
      con_puts("error at ");
      con_dec(err - 1);
    } else {
      con_dec((i64)value);
    }
    con_newline();
    sum = mix64(sum, value * 31 + (u64)err);
  }
  con_puts(ok ? "self-check ok\n" : "self-check FAILED\n");
  print_checksum(sum);
  return ok ? 0 : 1;
}
