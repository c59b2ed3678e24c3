#!/usr/bin/env bash
# Builds the freestanding C corpus (guests/c/*.c with crt0.S and rt.c) into guests/build/c-<prog>-<variant>.bin
# and .json, at four variants: O0, O2, Os, and v3 (-O2 -march=x86-64-v3 -mno-avx: BMI1/BMI2/MOVBE/LZCNT
# and SSE up to 4.2, no AVX, which the embedded machine does not implement). Needs gcc and GNU binutils;
# 128-bit division links libgcc.a (gcc -print-libgcc-file-name). Called by guests/build.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../build"
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

command -v gcc >/dev/null || { echo "gcc not found: apt-get install gcc" >&2; exit 1; }
libgcc=$(gcc -print-libgcc-file-name)
common=(-ffreestanding -nostdlib -fno-pic -fno-pie -mcmodel=small -mno-red-zone -fno-stack-protector
  -fcf-protection=none -fno-asynchronous-unwind-tables -fno-unwind-tables -fno-ident
  "-ffile-prefix-map=$here=guests/c" -Wall -Wextra -Werror -std=gnu11)
declare -A variant_flags=(
  [O0]="-O0"
  [O2]="-O2"
  [Os]="-Os"
  [v3]="-O2 -march=x86-64-v3 -mno-avx"
)
variants=(O0 O2 Os v3)

# Programs: every guests/c/*.c except the runtime; a list on the command line builds only those.
if [ $# -gt 0 ]; then progs=("$@"); else
  progs=()
  for f in "$here"/*.c; do n=$(basename "$f" .c); [ "$n" = rt ] || progs+=("$n"); done
fi

for prog in "${progs[@]}"; do
  for v in "${variants[@]}"; do
    name="c-$prog-$v"
    # shellcheck disable=SC2206
    flags=(${variant_flags[$v]})
    o="$tmp/$name"
    mkdir -p "$o"
    gcc "${common[@]}" "${flags[@]}" -c -o "$o/crt0.o" "$here/crt0.S"
    gcc "${common[@]}" "${flags[@]}" -c -o "$o/rt.o" "$here/rt.c"
    gcc "${common[@]}" "${flags[@]}" -c -o "$o/$prog.o" "$here/$prog.c"
    extra=()
    [ -f "$here/$prog.S" ] && { gcc "${common[@]}" "${flags[@]}" -c -o "$o/${prog}_asm.o" "$here/$prog.S"; extra+=("$o/${prog}_asm.o"); }
    ld -m elf_x86_64 -nostdlib --build-id=none --no-warn-rwx-segments -z noexecstack -z max-page-size=4096 -T "$here/link.ld" \
      -o "$o/$name.elf" "$o/crt0.o" "$o/rt.o" "$o/$prog.o" "${extra[@]}" "$libgcc"
    objcopy -O binary "$o/$name.elf" "$out/$name.bin"
    nm "$o/$name.elf" > "$o/syms"
    # Every function symbol (for the harness's and a debugger's view), plus the boot symbols.
    pick=$(awk '$2 ~ /^[Tt]$/ && $3 !~ /^\./ {print $3}' "$o/syms" | sort -u | paste -sd, -)
    pick="$pick,__bss_start,__bss_end,crt0_stack_top,crt0_idt"
    # corpus_passes: the work count of a compute-bound program (a benchmark may write it before the run).
    grep -q ' corpus_passes$' "$o/syms" && pick="$pick,corpus_passes"
    sed "s/\${image}/$name.bin/" "$here/qemu.json" > "$o/qemu.json"
    node "$here/../make-manifest.js" \
      --name "$name" --arch x86_64 --image "$name.bin" \
      --load-gpa 0x100000 --entry 0x100000 --kernel-vma 0xffffffff80000000 \
      --boot "long mode, first 1 GiB identity-mapped with 2 MiB pages, RDI = VP index, RSI = VP count; only VP 0 runs the program (identity-mapped, GVA = GPA)" \
      --symbols "$o/syms" --qemu "$o/qemu.json" --pick "$pick" > "$out/$name.json"
    echo "built $name.bin ($(stat -c %s "$out/$name.bin") bytes) [$prog ${variant_flags[$v]}]"
  done
done
