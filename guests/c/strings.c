/* String routines through gcc's builtins: memcpy/memset of constant sizes (inline moves, REP
   MOVS/STOS at -Os), memmove over overlapping ranges (backwards REP MOVSB, DF = 1), strlen
   (REPNE SCASB), memcmp, and hand-written strchr/strstr/reverse/itoa loops. */
#include "rt.h"

struct record {
  char name[40];
  u32 id;
  u64 values[12];
};

static struct record recs[16];
static char text[4096];
static char scratch[4096];

static const char *my_strchr(const char *s, int c) {
  for (; *s; s++)
    if (*s == (char)c) return s;
  return c == 0 ? s : 0;
}

static const char *my_strstr(const char *h, const char *n) {
  size_t ln = __builtin_strlen(n);
  for (; *h; h++)
    if (__builtin_memcmp(h, n, ln) == 0) return h;
  return 0;
}

static void reverse(char *s, size_t n) {
  for (size_t i = 0, j = n ? n - 1 : 0; i < j; i++, j--) {
    char t = s[i];
    s[i] = s[j];
    s[j] = t;
  }
}

static size_t utoa(u64 v, char *out) {
  size_t n = 0;
  do {
    out[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  reverse(out, n);
  out[n] = 0;
  return n;
}

static u64 hash_bytes(const void *p, size_t n) {
  const u8 *b = p;
  u64 h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

int main(void) {
  con_puts("strings: builtins, REP string instructions, hand-written loops\n");
  u64 sum = 0;
  /* build a text of words */
  static const char *words[] = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"};
  size_t len = 0;
  for (int i = 0; len < sizeof text - 64; i++) {
    const char *w = words[(i * 7 + i / 3) % 9];
    size_t wl = __builtin_strlen(w);
    __builtin_memcpy(text + len, w, wl);
    len += wl;
    len += utoa((u64)i * 37, text + len);
    text[len++] = ' ';
  }
  text[len] = 0;
  size_t sl = strlen(text);
  con_kv("text length", sl);
  int ok = sl == len;
  sum = mix64(sum, hash_bytes(text, sl));

  /* records: constant-size memset/memcpy (struct copies) */
  for (int i = 0; i < 16; i++) {
    struct record r;
    __builtin_memset(&r, 0, sizeof r);
    __builtin_memcpy(r.name, text + i * 13, 30);
    r.id = (u32)i * 2654435761u;
    for (int k = 0; k < 12; k++) r.values[k] = (u64)(i + 1) * (u64)(k + 3) * 0x10001ull;
    recs[i] = r;
  }
  struct record copy = recs[7];
  ok = ok && __builtin_memcmp(&copy, &recs[7], sizeof copy) == 0;
  sum = mix64(sum, hash_bytes(recs, sizeof recs));

  /* overlapping moves both ways */
  __builtin_memcpy(scratch, text, 2048);
  memmove(scratch + 3, scratch, 1500);
  sum = mix64(sum, hash_bytes(scratch, 2048));
  memmove(scratch, scratch + 5, 1500);
  sum = mix64(sum, hash_bytes(scratch, 2048));
  memset(scratch + 100, 'z', 777);
  sum = mix64(sum, hash_bytes(scratch, 2048));

  /* searching */
  const char *p = my_strstr(text, "hotel");
  u64 pos = p ? (u64)(p - text) : ~0ull;
  con_kv("first hotel", pos);
  u64 count = 0;
  for (const char *s = text; (s = my_strchr(s, 'e')) != 0 && *s; s++) count++;
  con_kv("count of e", count);
  sum = mix64(sum, pos);
  sum = mix64(sum, count);
  reverse(text, sl);
  sum = mix64(sum, hash_bytes(text, sl));
  int cmp = memcmp(text, scratch, 64);
  sum = mix64(sum, (u64)(cmp > 0) + 2 * (u64)(cmp < 0));
  con_puts(ok ? "self-check ok\n" : "self-check FAILED\n");
  print_checksum(sum);
  return ok ? 0 : 1;
}
