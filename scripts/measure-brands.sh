#!/usr/bin/env bash
# Cost of serving several brands on one device: a preloaded, looping, unthrottled replay mixing both
# shipped brands' samples and recorded belts (134 frames), served with 1, 2 and 4 brands (the two extra
# brands are copies of the shipped bundles under other names and GS1 prefixes, signed with a throwaway
# key), frames routed by sight (the default) and with the barcodes read on every frame
# (`source.route_every = 1`). Prints frames/s, inference runs and milliseconds per frame, the
# pre-processing thread's time per frame (the routing barcode pass runs there), how frames were routed,
# and VmRSS. Usage: scripts/measure-brands.sh [SECONDS per run, default 20] [ROUNDS, default 1]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
rounds=${2:-1}
bin=${HALLMARK_BIN:-target/release/hallmark}
[ -x "$bin" ] || cargo build --release --locked -p hallmark-agent
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The four brands and the mixed replay.
.venv/bin/python - "$work" <<'PY'
import json, shutil, sys
from pathlib import Path
sys.path.insert(0, "models/pipeline")
from hallmark_models import bundle as B
out = Path(sys.argv[1])
B.keygen(out / "k.pem", out / "k.pub.pem")
key = B.load_private(out / "k.pem")
for src, name, prefix in [("northwind", "kestrel", "5061234"), ("aurora", "osprey", "5069876")]:
    d = out / name
    shutil.copytree(f"models/{src}", d)
    doc = json.loads((d / "manifest.json").read_text())
    doc["brand"], doc["gs1_prefixes"] = name, [prefix]
    B.sign(d, doc, key)
replay = out / "replay"
replay.mkdir()
frames = {b: sorted(Path(f"models/samples/{b}").glob("*.jpg")) + sorted(Path(f"tests/fixtures/conveyor/{b}").glob("*.jpg"))
          for b in ("northwind", "aurora")}
k = 0
for a, b in zip(frames["northwind"], frames["aurora"]):
    for brand, f in (("northwind", a), ("aurora", b)):
        shutil.copy(f, replay / f"{k:04d}-{brand}-{f.name}")
        k += 1
PY

metric() { # FILE NAME
  awk -v k="$2" '$1 == k {print $2}' "$1" | head -n 1
}
run() { # NAME BUNDLES ROUTE_EVERY
  local name=$1 bundles=$2 every=$3 port=$((19000 + RANDOM % 1000)) state
  state=$(mktemp -d)
  HALLMARK_TRUST_PUBLIC_KEYS="models/keys/demo-publisher.pub.pem,$work/k.pub.pem" \
    HALLMARK_MODEL_BUNDLES="$bundles" HALLMARK_SOURCE_PATH="$work/replay" HALLMARK_SOURCE_LOOP=true \
    HALLMARK_SOURCE_PRELOAD=${PRELOAD:-false} HALLMARK_RUNTIME_SPINNING=${SPINNING:-true} HALLMARK_SOURCE_FPS=0 HALLMARK_SOURCE_ROUTE_EVERY="$every" \
    HALLMARK_AGENT_STATE_DIR="$state" HALLMARK_EVIDENCE_ENABLED=false HALLMARK_OUTPUT_STDOUT=false \
    HALLMARK_RUNTIME_INTRA_THREADS=2 HALLMARK_HTTP_LISTEN="127.0.0.1:$port" "$bin" run >/dev/null 2>&1 &
  local pid=$!
  sleep 5
  curl -s "127.0.0.1:$port/metrics" > "$work/m0"
  sleep "$secs"
  curl -s "127.0.0.1:$port/metrics" > "$work/m1"
  local rss; rss=$(awk '/VmRSS/{print int($2/1024)}' "/proc/$pid/status")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$state"
  python3 - "$name" "$secs" "$rss" "$work/m0" "$work/m1" <<'PY'
import re, sys
name, secs, rss, f0, f1 = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
def get(text, key):
    m = re.search(r"^" + re.escape(key) + r" ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0
m0, m1 = open(f0).read(), open(f1).read()
d = lambda k: get(m1, k) - get(m0, k)
frames = d("hallmark_frames_total"); n = max(frames, 1)
runs, inf = d('hallmark_stage_seconds_count{stage="inference"}'), d('hallmark_stage_seconds_sum{stage="inference"}')
prep = d('hallmark_stage_seconds_sum{stage="preprocess"}')
code, sight = d('hallmark_frames_routed_total{by="code"}'), d('hallmark_frames_routed_total{by="sight"}')
print(f"| {name} | {frames / secs:.1f} | {runs / n:.2f} | {1e3 * inf / n:.1f} | {1e3 * prep / n:.1f} | {code:.0f} / {sight:.0f} | {rss} |")
PY
}
two="models/northwind,models/aurora"
four="$two,$work/kestrel,$work/osprey"
echo "| brands served, routing | frames/s | inference runs a frame | inference ms a frame | pre-processing ms a frame | frames routed by code / sight | VmRSS MiB |"
echo "|---|---|---|---|---|---|---|"
for _ in $(seq "$rounds"); do
  run "1 (northwind)" models/northwind 0
  run "2, by sight" "$two" 0
  run "4, by sight" "$four" 0
  run "2, barcodes every frame" "$two" 1
  run "4, barcodes every frame" "$four" 1
done
