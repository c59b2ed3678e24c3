/* The guest's own debug registers and TF: an IDT #DB handler records DR6 and the frame's RIP for
   a DR0 execute breakpoint (fault, resumed with RF), a DR1 8-byte write watchpoint (trap after the
   write; reads and writes next to it do not fire), single steps with RFLAGS.TF over a few
   instructions and the iterations of a REP MOVSB, INT3 through its own #BP handler, and
   MOV to/from DR0-DR7. Everything recorded goes into the checksum. */
#include "rt.h"

void db_entry(void);
void bp_entry(void);
u64 dr_target(u64 x);
u64 tf_region(void *dst, const void *src);
void do_int3(void);
extern char tf_region_end[], after_int3[];

#define GRO __attribute__((target("general-regs-only"), noinline))

#define LOG 64
static u64 log_dr6[LOG], log_rip[LOG];
static volatile int log_n;
static volatile int bp_hits;
static volatile u64 bp_rip;

static inline u64 get_dr6(void) { u64 v; __asm__ volatile("mov %%dr6, %0" : "=r"(v)); return v; }
static inline void set_dr6(u64 v) { __asm__ volatile("mov %0, %%dr6" : : "r"(v)); }
static inline u64 get_dr7(void) { u64 v; __asm__ volatile("mov %%dr7, %0" : "=r"(v)); return v; }
static inline void set_dr7(u64 v) { __asm__ volatile("mov %0, %%dr7" : : "r"(v)); }
static inline u64 get_dr0(void) { u64 v; __asm__ volatile("mov %%dr0, %0" : "=r"(v)); return v; }
static inline void set_dr0(u64 v) { __asm__ volatile("mov %0, %%dr0" : : "r"(v)); }
static inline u64 get_dr1(void) { u64 v; __asm__ volatile("mov %%dr1, %0" : "=r"(v)); return v; }
static inline void set_dr1(u64 v) { __asm__ volatile("mov %0, %%dr1" : : "r"(v)); }

/* frame[0] RIP, [1] CS, [2] RFLAGS, [3] RSP, [4] SS */
GRO void db_handler(u64 *frame) {
  u64 dr6 = get_dr6();
  int n = log_n;
  if (n < LOG) {
    log_dr6[n] = dr6;
    log_rip[n] = frame[0];
    log_n = n + 1;
  }
  if (dr6 & 0xf & get_dr7() & 0x1) frame[2] |= 1ull << 16; /* DR0 execute hit (a fault): resume with RF */
  set_dr6(0);
}

GRO void bp_handler(u64 *frame) {
  bp_hits++;
  bp_rip = frame[0];
}

static volatile u64 watched_area[4] __attribute__((aligned(64)));
static u8 src[16] = "abcdefghijklmno", dst[16];

int main(void) {
  con_puts("debugregs: the guest's own DR0-DR7, #DB handler and TF\n");
  crt0_set_gate(1, db_entry);
  crt0_set_gate(3, bp_entry);
  u64 sum = 0;
  set_dr6(0);
  u64 dr6_initial = get_dr6();
  con_kv("dr6 after clearing", dr6_initial);
  sum = mix64(sum, dr6_initial);

  /* DR0: execute at dr_target; DR1: 8-byte write watchpoint on watched_area[1]. */
  set_dr0((u64)dr_target);
  set_dr1((u64)&watched_area[1]);
  u64 dr7 = 0x1 | 0x4 | (1ull << 20) | (2ull << 22); /* L0, L1, RW1 = write, LEN1 = 8 bytes */
  set_dr7(dr7);
  con_kv("dr7 read back", get_dr7());
  con_kv("dr0 read back ok", get_dr0() == (u64)dr_target);
  con_kv("dr1 read back ok", get_dr1() == (u64)&watched_area[1]);
  sum = mix64(sum, get_dr7());
  sum = mix64(sum, (get_dr0() == (u64)dr_target) + 2 * (get_dr1() == (u64)&watched_area[1]));

  int before = log_n;
  u64 r = dr_target(5);              /* fault before dr_target's first instruction */
  r += dr_target(r);                 /* and again: RF covered only the first */
  con_kv("execute hits", (u64)(log_n - before));
  sum = mix64(sum, r);

  before = log_n;
  u64 v = watched_area[1];           /* a read: no hit (write-only slot) */
  watched_area[0] = 1;               /* next to it: no hit */
  watched_area[2] = 2;
  watched_area[1] = v + 7;           /* hit, reported after the write */
  ((volatile u8 *)&watched_area[1])[5] = 0x5a; /* one byte inside: hit */
  con_kv("watch hits", (u64)(log_n - before));

  set_dr7(0);                        /* nothing armed: no more hits */
  before = log_n;
  r += dr_target(1);
  watched_area[1] = 3;
  con_kv("hits with dr7 = 0", (u64)(log_n - before));

  before = log_n;
  u64 t = tf_region(dst, src);       /* single steps */
  con_kv("single-step traps", (u64)(log_n - before));
  sum = mix64(sum, t);
  sum = mix64(sum, dst[0] | dst[1] << 8 | dst[2] << 16 | (u64)dst[3] << 24);

  do_int3();
  do_int3();
  con_kv("int3 hits", (u64)bp_hits);
  con_kv("int3 rip ok", bp_rip == (u64)after_int3);
  sum = mix64(sum, (u64)bp_hits * 2 + (bp_rip == (u64)after_int3));

  /* The log, with addresses made relative so any layout gives the same checksum. */
  for (int i = 0; i < log_n; i++) {
    u64 rip = log_rip[i];
    const char *where = "other";
    u64 off = 0;
    if (rip == (u64)dr_target) where = "dr_target";
    else if (rip >= (u64)tf_region && rip <= (u64)tf_region_end) { where = "tf_region+"; off = rip - (u64)tf_region; }
    else if (rip >= (u64)main && rip < (u64)main + 0x10000) { where = "main+"; off = 0; }
    con_puts("  #DB dr6 ");
    con_hex64(log_dr6[i]);
    con_puts(" at ");
    con_puts(where);
    if (off) con_hexn(off, 2);
    con_newline();
    sum = mix64(sum, log_dr6[i]);
    sum = mix64(sum, off);
  }
  sum = mix64(sum, (u64)log_n);
  int ok = log_n == 2 + 2 + 10 && bp_hits == 2; /* 10 steps: mov, 3 REP iterations, add, nop, lea, pushfq, andq, popfq */
  con_puts(ok ? "self-check ok\n" : "self-check FAILED\n");
  print_checksum(sum);
  return ok ? 0 : 1;
}
