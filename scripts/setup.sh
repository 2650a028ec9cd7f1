#!/usr/bin/env bash
# One-time (idempotent) set-up of a fresh machine: Debian packages, Rust targets, and the project's
# local Python environment (.venv) that also carries the ONNX Runtime shared library.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
# Installed for this machine's architecture unless the name says another ("pkg:arm64"). (A plain
# `dpkg -s pkg` fails once a package is installed for two architectures.)
host_arch=$(dpkg --print-architecture)
installed() {
  local p=$1
  [[ $p == *:* ]] || p="$p:$host_arch"
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed'
}

mapfile -t pkgs < <(grep -v '^\s*#' scripts/apt-packages.txt | sed '/^\s*$/d')
missing=()
for p in "${pkgs[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  sudo_if_needed apt-get update -qq
  DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The aarch64 cross-build (scripts/cross-aarch64.sh; the test command asks for it with
# HALLMARK_SETUP_CROSS=1): cross compilers and qemu-user from the host's archive, the ARM libraries the
# agent links from Debian's arm64 archive (multiarch), and the Rust target.
if [ "${HALLMARK_SETUP_CROSS:-0}" = 1 ]; then
  mapfile -t cross < <(grep -v '^\s*#' scripts/apt-packages-cross.txt | sed '/^\s*$/d')
  missing=()
  for p in "${cross[@]}"; do installed "$p" || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing the aarch64 cross-build's packages: ${missing[*]}" >&2
    dpkg --print-foreign-architectures | grep -qx arm64 || sudo_if_needed dpkg --add-architecture arm64
    sudo_if_needed apt-get update -qq
    DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
fi

# rustfmt and clippy: the test command checks formatting and lints.
components=$(rustup component list --installed)
for c in rustfmt clippy; do
  grep -q "^$c" <<<"$components" || rustup component add "$c"
done

if [ -f scripts/rust-targets.txt ]; then
  mapfile -t targets < <(grep -v '^\s*#' scripts/rust-targets.txt | sed '/^\s*$/d')
  installed=$(rustup target list --installed)
  for t in "${targets[@]}"; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
  done
fi

stamp=.venv/.requirements.sha256
want=$(sha256sum scripts/requirements.txt | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: creating .venv from scripts/requirements.txt" >&2
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements.txt
  echo "$want" > "$stamp"
fi
