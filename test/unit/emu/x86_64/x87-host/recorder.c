/* x87 recorder: runs each operation of ops.txt on seeded inputs and prints the state after it.
 * Generated into recorder.c by gen.mjs. Block (rdi): a m80 @0, b m80 @16, cw @32, memory
 * operand/result @48, FSW @64, ST0 @80, ST1 @96, RFLAGS @112, RFLAGS before @120.
 * Output per case: op cw a b  sw st0 st1 mem rflags (hex). Usage: recorder [cases-per-op] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char blk[128] __attribute__((aligned(16)));

#define RUN(bytes) __asm__ volatile( \
  "pushq 120(%%rdi)\n popfq\n fninit\n fldcw 32(%%rdi)\n fldt 16(%%rdi)\n fldt (%%rdi)\n .byte " bytes "\n" \
  "fnstsw 64(%%rdi)\n fstpt 80(%%rdi)\n fstpt 96(%%rdi)\n pushfq\n popq 112(%%rdi)\n" \
  :: "D"(blk) : "memory", "cc")

static void run(int op) {
  switch (op) {
    case 0: RUN("0xd8,0xc1"); break; /* add */
    case 1: RUN("0xd8,0xe1"); break; /* sub */
    case 2: RUN("0xd8,0xe9"); break; /* subr */
    case 3: RUN("0xd8,0xc9"); break; /* mul */
    case 4: RUN("0xd8,0xf1"); break; /* div */
    case 5: RUN("0xd8,0xf9"); break; /* divr */
    case 6: RUN("0xde,0xc1"); break; /* faddp */
    case 7: RUN("0xde,0xe9"); break; /* fsubp */
    case 8: RUN("0xde,0xf1"); break; /* fdivrp */
    case 9: RUN("0xd9,0xfa"); break; /* sqrt */
    case 10: RUN("0xd9,0xfc"); break; /* rndint */
    case 11: RUN("0xd9,0xfd"); break; /* scale */
    case 12: RUN("0xd9,0xf8"); break; /* prem */
    case 13: RUN("0xd9,0xf5"); break; /* prem1 */
    case 14: RUN("0xd9,0xf4"); break; /* xtract */
    case 15: RUN("0xd9,0xe0"); break; /* chs */
    case 16: RUN("0xd9,0xe1"); break; /* abs */
    case 17: RUN("0xd8,0xd1"); break; /* com */
    case 18: RUN("0xdd,0xe1"); break; /* ucom */
    case 19: RUN("0xd9,0xe4"); break; /* tst */
    case 20: RUN("0xd9,0xe5"); break; /* xam */
    case 21: RUN("0xdb,0xf1"); break; /* comi */
    case 22: RUN("0xdb,0xe9"); break; /* ucomi */
    case 23: RUN("0xd9,0x57,0x30"); break; /* fst32 */
    case 24: RUN("0xdd,0x57,0x30"); break; /* fst64 */
    case 25: RUN("0xdf,0x57,0x30"); break; /* fist16 */
    case 26: RUN("0xdb,0x57,0x30"); break; /* fist32 */
    case 27: RUN("0xdf,0x7f,0x30"); break; /* fistp64 */
    case 28: RUN("0xdf,0x4f,0x30"); break; /* fisttp16 */
    case 29: RUN("0xdb,0x4f,0x30"); break; /* fisttp32 */
    case 30: RUN("0xdd,0x4f,0x30"); break; /* fisttp64 */
    case 31: RUN("0xd9,0x47,0x30"); break; /* fld32 */
    case 32: RUN("0xdd,0x47,0x30"); break; /* fld64 */
    case 33: RUN("0xdf,0x47,0x30"); break; /* fild16 */
    case 34: RUN("0xdb,0x47,0x30"); break; /* fild32 */
    case 35: RUN("0xdf,0x6f,0x30"); break; /* fild64 */
    case 36: RUN("0xdc,0x47,0x30"); break; /* fadd64 */
    case 37: RUN("0xd8,0x67,0x30"); break; /* fsub32 */
    case 38: RUN("0xdc,0x7f,0x30"); break; /* fdivr64 */
    case 39: RUN("0xd8,0x4f,0x30"); break; /* fmul32 */
    case 40: RUN("0xda,0x47,0x30"); break; /* fiadd32 */
    case 41: RUN("0xde,0x4f,0x30"); break; /* fimul16 */
    case 42: RUN("0xde,0x67,0x30"); break; /* fisub16 */
    case 43: RUN("0xda,0x7f,0x30"); break; /* fidivr32 */
    case 44: RUN("0xdc,0x57,0x30"); break; /* fcom64 */
    case 45: RUN("0xd8,0x5f,0x30"); break; /* fcomp32 */
    case 46: RUN("0xda,0x57,0x30"); break; /* ficom32 */
    case 47: RUN("0xda,0xe9"); break; /* fucompp */
    case 48: RUN("0xde,0xe1"); break; /* fsubrp */
    case 49: RUN("0xde,0xf9"); break; /* fdivp */
    case 50: RUN("0xde,0xc9"); break; /* fmulp */
    case 51: RUN("0xd9,0xc9"); break; /* fxch */
    case 52: RUN("0xd9,0xeb"); break; /* fldpi */
    case 53: RUN("0xd9,0xea"); break; /* fldl2e */
    case 54: RUN("0xd9,0xe9"); break; /* fldl2t */
    case 55: RUN("0xd9,0xec"); break; /* fldlg2 */
    case 56: RUN("0xd9,0xed"); break; /* fldln2 */
    case 57: RUN("0xdb,0x6f,0x30"); break; /* fld80 */
    case 58: RUN("0xdb,0x7f,0x30"); break; /* fstp80 */
    case 59: RUN("0xda,0xd1"); break; /* fcmovbe */
    case 60: RUN("0xdb,0xd9"); break; /* fcmovnu */
    case 61: RUN("0xd9,0xf6"); break; /* fdecstp */
  }
}

static uint64_t s = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
  s ^= s << 13; s ^= s >> 7; s ^= s << 17;
  return s;
}

static void gen80(unsigned char *p) {
  uint64_t r = rnd();
  uint64_t m = rnd();
  int e;
  switch (r & 15) {
    case 0: e = 0; break;
    case 1: e = 0x7fff; break;
    case 2: e = 1 + (int)((r >> 8) & 3); break;
    case 3: e = 0x7ffe - (int)((r >> 8) & 3); break;
    case 4: e = 0x3fff + 62 - (int)((r >> 8) & 7); break;
    case 5: e = 0x3fff - 16382 + (int)((r >> 8) & 127) - 64; if (e < 0) e = 0; break;
    default: e = 0x3fff + (int)((r >> 8) & 127) - 64; break;
  }
  switch ((r >> 20) & 15) {
    case 0: m = 0x8000000000000000ull; break;
    case 1: m = 0xffffffffffffffffull; break;
    case 2: m &= 0x7fffffffffffffffull; break; /* unnormal / denormal / pseudo-NaN */
    case 3: m = 0xc000000000000000ull; break;
    case 4: m |= 0x8000000000000000ull; m &= ~0xffffffull; break; /* short significand */
    case 5: m = 0; break;
    default: m |= 0x8000000000000000ull; break;
  }
  if (e == 0 && ((r >> 30) & 3) == 0) m &= 0x7fffffffffffffffull;
  uint16_t se = (uint16_t)(e | (((r >> 40) & 1) << 15));
  memcpy(p, &m, 8);
  memcpy(p + 8, &se, 2);
}

static void hex(const unsigned char *p, int n) {
  for (int i = n - 1; i >= 0; i--) printf("%02x", p[i]);
}

int main(int argc, char **argv) {
  int per = argc > 1 ? atoi(argv[1]) : 200;
  for (int op = 0; op < 62; op++) {
    for (int k = 0; k < per; k++) {
      memset(blk, 0, sizeof blk);
      gen80(blk);
      gen80(blk + 16);
      uint64_t r = rnd();
      static const int pcs[3] = {0, 2, 3};
      uint16_t cw = (uint16_t)(0x7f | (pcs[r % 3] << 8) | (((r >> 8) & 3) << 10));
      memcpy(blk + 32, &cw, 2);
      uint64_t mv = rnd();
      if ((r >> 16) & 1) mv = (int64_t)(int32_t)mv >> ((r >> 20) & 31);
      memcpy(blk + 48, &mv, 8);
      uint64_t fl = 0x202 | (mv & 0x45); /* CF, PF, ZF for FCMOVcc from the memory operand's low byte */
      memcpy(blk + 120, &fl, 8);
      printf("%d %04x ", op, cw);
      hex(blk, 10); printf(" "); hex(blk + 16, 10); printf(" "); hex(blk + 48, 8); printf(" ");
      run(op);
      hex(blk + 64, 2); printf(" "); hex(blk + 80, 10); printf(" "); hex(blk + 96, 10); printf(" ");
      hex(blk + 48, 8); printf(" "); hex(blk + 112, 4); printf("\n");
    }
  }
  return 0;
}
