#!/usr/bin/env bash
# Builds the guest images in guests/build/ from their sources (needs GNU binutils for x86-64).
# The images and manifests are committed, so tests and `npm start` never need this toolchain.
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
