/* The corpus runtime (guests/c): console output on port 0xE9 and the checksum line every program
   prints. Freestanding: no libc; crt0.S provides memcpy memmove memset memcmp strlen. */
#ifndef GUESTS_C_RT_H
#define GUESTS_C_RT_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;
typedef unsigned long size_t;

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

void con_putc(char c);
void con_puts(const char *s);
/* "0x" and 16 hex digits. */
void con_hex64(u64 v);
/* `width` hex digits, no prefix. */
void con_hexn(u64 v, int width);
void con_dec(i64 v);
void con_newline(void);
/* "name: 0x<16 hex>\n" */
void con_kv(const char *name, u64 v);
/* The line the difftest harness compares: "checksum 0x<16 hex>\n". */
void print_checksum(u64 v);

/* A 64-bit mixing step for checksums (not cryptographic). */
static inline u64 mix64(u64 acc, u64 v) {
  acc ^= v + 0x9e3779b97f4a7c15ull + (acc << 6) + (acc >> 2);
  return acc;
}

/* crt0.S */
void crt0_set_gate(int vector, void (*handler)(void));
void crt0_power_off(void) __attribute__((noreturn));

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }

#endif
