#!/usr/bin/env bash
# Cross-builds the agent (`hallmark`) for aarch64-unknown-linux-gnu (Jetson / ARM store PCs) on an x86_64
# Debian host and checks that the result is an aarch64 executable, so an ARM break is caught before a
# device sees it. Needs: rustup target aarch64-unknown-linux-gnu, Debian's gcc/g++-aarch64-linux-gnu and
# libturbojpeg0-dev and libstdc++6 for arm64 (Debian multiarch), qemu-user to run the result; scripts/setup.sh
# installs them all (scripts/apt-packages.txt, scripts/apt-packages-cross.txt, scripts/rust-targets.txt).
# Not run here: ONNX Runtime itself. The PyPI aarch64 wheel's libonnxruntime crashes in qemu-user 7.2
# while it is being loaded (a bare dlopen from C crashes the same way), so inference on ARM is checked
# on a device, not in CI.
# Usage: scripts/cross-aarch64.sh [--release]   (default: the dev profile, quicker to build in CI)
set -euo pipefail
cd "$(dirname "$0")/.."
T=aarch64-unknown-linux-gnu
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
# bindgen (nokhwa's V4L2 bindings) parses the ARM sysroot's kernel headers, not the host's.
export BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_gnu="--target=aarch64-linux-gnu --sysroot=/usr/aarch64-linux-gnu -I/usr/include/aarch64-linux-gnu -I/usr/include"
export PKG_CONFIG_ALLOW_CROSS=1
profile=dev; dir=debug
if [ "${1:-}" = "--release" ]; then profile=release; dir=release; fi
cargo build --locked -p hallmark-agent --bin hallmark --target "$T" --profile "$profile"
bin="target/$T/$dir/hallmark"
desc=$(file -b "$bin")
echo "cross-aarch64: $bin: $desc"
case "$desc" in
  *"ELF 64-bit"*"ARM aarch64"*) ;;
  *) echo "cross-aarch64: $bin is not an aarch64 ELF executable" >&2; exit 1 ;;
esac
# Run it (emulated): the command line, the bundle signatures and digests on ARM code paths.
if command -v qemu-aarch64 >/dev/null; then
  run() { env -u HALLMARK_CONFIG HALLMARK_TRUST_PUBLIC_KEYS=models/keys/demo-publisher.pub.pem qemu-aarch64 -L / "$bin" "$@"; }
  run --version
  run models verify models/northwind models/aurora
else
  echo "cross-aarch64: qemu-aarch64 not installed; built but not run" >&2
fi
