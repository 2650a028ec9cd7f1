#!/usr/bin/env bash
# Builds the kiosk firmware for the STM32F411 (thumbv7em-none-eabihf) and prints its flash and static
# RAM use against the budget (flash <= 128 KiB, static RAM <= 48 KiB). Exits non-zero if either is over.
# Called by scripts/test.sh (CI). Idempotent: installs the Rust target and llvm-tools if missing.
set -euo pipefail
cd "$(dirname "$0")"

target=thumbv7em-none-eabihf
rustup target list --installed | grep -qx "$target" || rustup target add "$target"
host=$(rustc -vV | sed -n 's/^host: //p')
size_tool="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-size"
if [ ! -x "$size_tool" ]; then
  rustup component add llvm-tools >/dev/null 2>&1 || true
fi
if [ ! -x "$size_tool" ]; then
  size_tool=$(command -v llvm-size || command -v arm-none-eabi-size || true)
fi
[ -n "$size_tool" ] || { echo "build.sh: no llvm-size (rustup component add llvm-tools)" >&2; exit 1; }

cargo build --release --locked --target "$target"

elf="target/$target/release/kiosk"
flash_budget=$((128 * 1024))
ram_budget=$((48 * 1024))
# Flash: vector table, code, constants, and the initial values of .data. RAM: .data, .bss, .uninit
# (the stack takes what is left of the 128 KiB).
read -r flash ram < <("$size_tool" -A "$elf" | awk '
  $1 == ".vector_table" || $1 == ".text" || $1 == ".rodata" { flash += $2 }
  $1 == ".data" { flash += $2; ram += $2 }
  $1 == ".bss" || $1 == ".uninit" { ram += $2 }
  END { print flash + 0, ram + 0 }')
printf 'firmware %s\n' "$elf"
awk -v f="$flash" -v r="$ram" -v fb="$flash_budget" -v rb="$ram_budget" 'BEGIN {
  printf "  flash      %7d bytes (%5.1f KiB) of %d KiB budget\n", f, f / 1024, fb / 1024
  printf "  static RAM %7d bytes (%5.1f KiB) of %d KiB budget\n", r, r / 1024, rb / 1024 }'
[ "$flash" -le "$flash_budget" ] || { echo "build.sh: flash over budget" >&2; exit 1; }
[ "$ram" -le "$ram_budget" ] || { echo "build.sh: static RAM over budget" >&2; exit 1; }
