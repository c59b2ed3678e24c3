/* Atomics through gcc's __atomic builtins: LOCK XADD (fetch_add), LOCK CMPXCHG (compare_exchange
   and read-modify-write loops), XCHG (exchange), LOCK BTS/OR/AND, the seq_cst fence, a spin lock
   with test_and_set, and a lock-free stack updated with compare-and-swap. Single VP: the values
   are deterministic; the point is the instructions. */
#include "rt.h"

static u64 counter64;
static u32 counter32;
static u16 counter16;
static u8 counter8;
static u64 bits[4];
static volatile char lock_flag;
static u64 guarded;

struct node {
  struct node *next;
  u64 value;
};
static struct node nodes[64];
static struct node *top;

static void push(struct node *n) {
  struct node *old = __atomic_load_n(&top, __ATOMIC_RELAXED);
  do {
    n->next = old;
  } while (!__atomic_compare_exchange_n(&top, &old, n, 1, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

static struct node *pop(void) {
  struct node *old = __atomic_load_n(&top, __ATOMIC_ACQUIRE);
  while (old && !__atomic_compare_exchange_n(&top, &old, old->next, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
  }
  return old;
}

static void spin_lock(void) {
  while (__atomic_test_and_set(&lock_flag, __ATOMIC_ACQUIRE)) {
  }
}
static void spin_unlock(void) { __atomic_clear(&lock_flag, __ATOMIC_RELEASE); }

int main(void) {
  con_puts("atomics: xadd, cmpxchg, xchg, lock bts/or/and, fences, a lock-free stack\n");
  u64 sum = 0;
  for (u64 i = 1; i <= 500; i++) {
    u64 before = __atomic_fetch_add(&counter64, i * 3, __ATOMIC_SEQ_CST);
    u32 b32 = __atomic_fetch_sub(&counter32, (u32)i, __ATOMIC_ACQ_REL);
    u16 b16 = __atomic_add_fetch(&counter16, (u16)(i * 7), __ATOMIC_RELAXED);
    u8 b8 = __atomic_fetch_xor(&counter8, (u8)i, __ATOMIC_SEQ_CST);
    sum = mix64(sum, before ^ ((u64)b32 << 20) ^ ((u64)b16 << 40) ^ ((u64)b8 << 56));
    /* bit set/test: lock bts when only the old bit is used */
    unsigned bit = (unsigned)(i * 37) % 256;
    int was = (__atomic_fetch_or(&bits[bit / 64], 1ull << (bit % 64), __ATOMIC_SEQ_CST) >> (bit % 64)) & 1;
    int clear = (__atomic_fetch_and(&bits[(bit + 5) / 64 % 4], ~(1ull << ((bit + 5) % 64)), __ATOMIC_SEQ_CST) >> ((bit + 5) % 64)) & 1;
    sum = mix64(sum, (u64)was * 2 + (u64)clear);
    u64 old = __atomic_exchange_n(&guarded, i, __ATOMIC_SEQ_CST);
    sum = mix64(sum, old);
    u64 expected = i;
    int swapped = __atomic_compare_exchange_n(&guarded, &expected, i * i, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    u64 expected2 = 12345;
    int swapped2 = __atomic_compare_exchange_n(&guarded, &expected2, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    sum = mix64(sum, (u64)swapped + 2 * (u64)swapped2 + expected2);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
  }
  con_kv("counter64", counter64);
  con_kv("counter32", counter32);
  con_kv("counter16", counter16);
  con_kv("counter8", counter8);
  int ok = counter64 == 3ull * 500 * 501 / 2 && counter32 == (u32)0 - 500u * 501u / 2;

  for (int i = 0; i < 64; i++) {
    nodes[i].value = (u64)i * 0x1111;
    push(&nodes[i]);
  }
  u64 order = 0;
  for (int k = 0; k < 32; k++) {
    struct node *n = pop();
    order = mix64(order, n->value);
    if (k % 3 == 0) push(n);
  }
  int depth = 0;
  for (struct node *n = top; n; n = n->next) depth++;
  con_kv("stack depth", (u64)depth);
  ok = ok && depth == 43;
  sum = mix64(sum, order);

  for (int i = 0; i < 200; i++) {
    spin_lock();
    guarded += (u64)i;
    spin_unlock();
  }
  sum = mix64(sum, guarded);
  for (int k = 0; k < 4; k++) sum = mix64(sum, bits[k]);
  con_puts(ok ? "self-check ok\n" : "self-check FAILED\n");
  print_checksum(sum);
  return ok ? 0 : 1;
}
