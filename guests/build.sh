#!/usr/bin/env bash
# Builds the guest images in guests/build/ from their sources (needs GNU binutils for x86-64 and
# binutils-aarch64-linux-gnu). The images and manifests are committed, so tests and `npm start`
# never need these toolchains. Rebuilding gives the same bytes.
set -euo pipefail
cd "$(dirname "$0")"
out=build
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

as --64 -o "$tmp/demo.o" x86_64/demo.S
ld -m elf_x86_64 -nostdlib -T x86_64/demo.ld -o "$tmp/demo.elf" "$tmp/demo.o"
objcopy -O binary "$tmp/demo.elf" "$out/demo-x86_64.bin"
nm "$tmp/demo.elf" > "$tmp/demo.syms"
node make-manifest.js \
  --name demo-x86_64 --arch x86_64 --image demo-x86_64.bin \
  --load-gpa 0x100000 --entry 0x100000 --kernel-vma 0xffffffff80000000 \
  --symbols "$tmp/demo.syms" --qemu x86_64/qemu.json \
  --pick _start,kernel_main,main_loop,tick,counter,counter_vp1,vp_count,exception_stubs,stacks,text_start,text_end,entry32,multiboot_header \
  > "$out/demo-x86_64.json"
echo "built $out/demo-x86_64.bin ($(stat -c %s "$out/demo-x86_64.bin") bytes) and $out/demo-x86_64.json"

cross=aarch64-linux-gnu-
for tool in as ld objcopy nm; do
  command -v "$cross$tool" >/dev/null || { echo "$cross$tool not found: apt-get install binutils-aarch64-linux-gnu" >&2; exit 1; }
done
"${cross}as" -o "$tmp/demo-a64.o" aarch64/demo.S
"${cross}ld" -nostdlib --build-id=none -z max-page-size=4096 -z noexecstack -T aarch64/demo.ld -o "$tmp/demo-a64.elf" "$tmp/demo-a64.o"
"${cross}objcopy" -O binary "$tmp/demo-a64.elf" "$out/demo-aarch64.bin"
"${cross}nm" "$tmp/demo-a64.elf" > "$tmp/demo-a64.syms"
node make-manifest.js \
  --name demo-aarch64 --arch aarch64 --image demo-aarch64.bin \
  --load-gpa 0x40080000 --entry 0x40080000 --kernel-vma 0xffff000000000000 \
  --boot "EL1 with the MMU off at entry (identity: GVA = GPA); x0 ignored; VP index = MPIDR_EL1.Aff0 (at most 8); VP 0 starts the others with PSCI CPU_ON (HVC, function 0xc4000003, entry = _start) until one is refused; VPs that start at entry by themselves also work. The kernel runs at GVA 0xffff000000000000 + GPA through TTBR1; TTBR0 is dropped (TTBR0_EL1 = 0, TCR_EL1.EPD0 = 1) once each VP runs there." \
  --console-mmio 0x9000000 \
  --symbols "$tmp/demo-a64.syms" --qemu aarch64/qemu.json \
  --pick _start,kernel_main,main_loop,tick,counter,counter_vp1,vp_count,vectors,stacks,text_start,text_end,page_tables,l0_hi \
  > "$out/demo-aarch64.json"
echo "built $out/demo-aarch64.bin ($(stat -c %s "$out/demo-aarch64.bin") bytes) and $out/demo-aarch64.json"

bash c/build.sh
