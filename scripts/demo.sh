#!/usr/bin/env bash
# Hallmark's main job on a fresh machine: set up, build, then scan the sample scenes of every shipped
# brand with that brand's bundle. JSON verdicts (one line per image) go to stdout; annotated pictures
# go to out/annotated/<brand>/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked -p hallmark-agent
for manifest in models/*/manifest.json; do
  bundle=$(dirname "$manifest")
  brand=$(basename "$bundle")
  [ -d "models/samples/$brand" ] || continue
  echo "== $brand: scanning models/samples/$brand with $bundle" >&2
  target/release/hallmark scan --model "$bundle" --annotate "out/annotated/$brand" "models/samples/$brand"
done
echo "annotated pictures: out/annotated/" >&2
