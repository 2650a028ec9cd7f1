#!/usr/bin/env bash
# The whole test suite, on a fresh machine: set-up first (idempotent), then every test.
# This is the README's test command and what CI (.ci/run) runs.
set -euo pipefail
cd "$(dirname "$0")/.."
HALLMARK_SETUP_CROSS=1 scripts/setup.sh

echo "== host workspace: formatting and lints (rustfmt, clippy with warnings as errors)"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== host workspace: cargo test (agent, end-to-end tests, firmware libraries)"
cargo test --workspace --locked --no-fail-fast

if [ -x firmware/board/build.sh ]; then
  echo "== firmware: board image for thumbv7em-none-eabihf"
  firmware/board/build.sh
fi

echo "== aarch64: cross-build of the agent (Jetson / ARM), run emulated"
scripts/cross-aarch64.sh

if [ -d models/pipeline/tests ]; then
  echo "== model pipeline: smoke tests (data generator, bundle tooling)"
  .venv/bin/python -m pytest -q models/pipeline/tests
fi
