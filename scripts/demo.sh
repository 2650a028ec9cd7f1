#!/usr/bin/env bash
# Hallmark's main job on a fresh machine: set up, build, then run the agent daemon (`hallmark run`) the
# way a store and a warehouse would, on recorded input instead of a camera:
#   1. kiosk: every shipped brand's sample scenes, one verdict event per pack (JSON Lines on stdout);
#   2. conveyor: a recorded belt per brand, one verdict per pack as it leaves the view.
# Evidence pictures of counterfeit/inconclusive verdicts land in out/state/<run>/evidence/, and
# `hallmark scan --annotate` draws every sample's items into out/annotated/<brand>/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked -p hallmark-agent
hallmark=target/release/hallmark
# A release build trusts only the keys its configuration names: the shipped bundles are signed with the
# demo publisher's key.
export HALLMARK_TRUST_PUBLIC_KEYS=models/keys/demo-publisher.pub.pem
for manifest in models/*/manifest.json; do
  bundle=$(dirname "$manifest")
  brand=$(basename "$bundle")
  if [ -d "models/samples/$brand" ]; then
    echo "== kiosk, $brand: hallmark run on models/samples/$brand" >&2
    HALLMARK_AGENT_STATE_DIR="out/state/kiosk-$brand" HALLMARK_MODEL_BUNDLES="$bundle" \
      HALLMARK_SOURCE_PATH="models/samples/$brand" "$hallmark" run
    "$hallmark" scan --model "$bundle" --annotate "out/annotated/$brand" "models/samples/$brand" >/dev/null || true
  fi
  if [ -d "tests/fixtures/conveyor/$brand" ]; then
    echo "== conveyor, $brand: hallmark run on the recorded belt tests/fixtures/conveyor/$brand" >&2
    HALLMARK_AGENT_STATE_DIR="out/state/conveyor-$brand" HALLMARK_AGENT_MODE=conveyor HALLMARK_MODEL_BUNDLES="$bundle" \
      HALLMARK_SOURCE_PATH="tests/fixtures/conveyor/$brand" "$hallmark" run
  fi
done
echo "evidence pictures: out/state/*/evidence/   annotated samples: out/annotated/" >&2
