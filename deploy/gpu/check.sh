#!/usr/bin/env bash
# The GPU check (issue 12), one prepared script for a machine with an NVIDIA GPU: runs the shipped
# samples through `hallmark scan` on the CPU and with the CUDA provider (and TensorRT when its
# libraries are there), proves the GPU really ran the model (the process shows in nvidia-smi, and the
# agent reports the provider in use), checks the GPU's boxes against the CPU's, and prints
# `hallmark bench` for each. No fallback is allowed: a provider that does not register fails the check.
#
#   deploy/gpu/check.sh [OUT_DIR]          (default out/gpu-check)
# Needs: target/release/hallmark (or HALLMARK_BIN), the onnxruntime-gpu library (ORT_DYLIB_PATH, or the
# wheel in .venv or the system Python), CUDA/cuDNN libraries on LD_LIBRARY_PATH (site-packages/nvidia/*/lib
# are added when present), python3, nvidia-smi. Exit status 0 only when every check passed.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:-out/gpu-check}
mkdir -p "$out"
bin=${HALLMARK_BIN:-target/release/hallmark}
samples=models/samples/northwind
fail=0
say() { printf '== %s\n' "$*" >&2; }
bad() { printf 'FAIL: %s\n' "$*" >&2; fail=1; }

[ -x "$bin" ] || { echo "no $bin: cargo build --release -p hallmark-agent (or set HALLMARK_BIN)" >&2; exit 2; }
command -v nvidia-smi >/dev/null || { echo "no nvidia-smi: not a GPU machine" >&2; exit 2; }
nvidia-smi -L | tee "$out/gpus.txt" >&2

# The GPU build of ONNX Runtime, and the CUDA libraries the pip wheels carry.
if [ -z "${ORT_DYLIB_PATH:-}" ]; then
  for py in .venv/bin/python3 python3; do
    lib=$("$py" - 2>/dev/null <<'PY'
import glob, os
import onnxruntime
capi = os.path.join(os.path.dirname(onnxruntime.__file__), "capi")
print(sorted(glob.glob(os.path.join(capi, "libonnxruntime.so*")))[0])
PY
) && [ -n "$lib" ] && export ORT_DYLIB_PATH="$lib" && break
  done
fi
[ -n "${ORT_DYLIB_PATH:-}" ] || { echo "no ONNX Runtime library: set ORT_DYLIB_PATH" >&2; exit 2; }
capi=$(dirname "$ORT_DYLIB_PATH")
[ -e "$capi/libonnxruntime_providers_cuda.so" ] || bad "no CUDA provider next to $ORT_DYLIB_PATH (onnxruntime-gpu, not onnxruntime)"
site=$(dirname "$(dirname "$capi")")
for d in "$site"/nvidia/*/lib; do [ -d "$d" ] && LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"; done
export LD_LIBRARY_PATH="$capi:${LD_LIBRARY_PATH:-}"
say "ONNX Runtime: $ORT_DYLIB_PATH"

providers=(cuda)
if ldconfig -p 2>/dev/null | grep -q libnvinfer.so || ls "$site"/tensorrt*/libnvinfer.so* >/dev/null 2>&1; then
  providers+=(tensorrt)
else
  say "TensorRT libraries not found: the TensorRT check stays outstanding"
fi

# compare CPU.jsonl OTHER.jsonl LABEL: the same detections (boxes within 0.5 px, confidences within
# 0.005) and verdicts, image by image.
compare() {
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
cpu = [json.loads(l) for l in open(sys.argv[1])]
gpu = [json.loads(l) for l in open(sys.argv[2])]
worst_px, worst_conf, verdicts = 0.0, 0.0, 0
for a, b in zip(cpu, gpu):
    da, db = a["detections"], b["detections"]
    if len(da) != len(db):
        print(f"{a['image']}: {len(da)} detections on the CPU, {len(db)} on {sys.argv[3]}"); sys.exit(1)
    for x, y in zip(sorted(da, key=lambda d: d["box"]), sorted(db, key=lambda d: d["box"])):
        worst_px = max(worst_px, max(abs(p - q) for p, q in zip(x["box"], y["box"])))
        worst_conf = max(worst_conf, abs(x["confidence"] - y["confidence"]))
    verdicts += a["verdict"] == b["verdict"]
print(f"{sys.argv[3]} vs CPU: {len(cpu)} images, worst box difference {worst_px:.3f} px, "
      f"worst confidence difference {worst_conf:.5f}, same verdict on {verdicts}/{len(cpu)}")
sys.exit(0 if worst_px <= 0.5 and worst_conf <= 0.005 and verdicts == len(cpu) else 1)
PY
}

state=$(mktemp -d)
export HALLMARK_AGENT_STATE_DIR="$state" HALLMARK_RUNTIME_FALLBACK=false
say "CPU scan"
HALLMARK_RUNTIME_PROVIDERS=cpu "$bin" scan "$samples" > "$out/cpu.jsonl" || bad "CPU scan"

for p in "${providers[@]}"; do
  say "$p scan (watching nvidia-smi)"
  HALLMARK_RUNTIME_PROVIDERS="$p" "$bin" scan "$samples" "$samples" "$samples" > "$out/$p.raw.jsonl" 2> "$out/$p.err" &
  pid=$!
  seen=no
  for _ in $(seq 1 300); do
    if nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader 2>/dev/null | grep -q "^$pid,"; then
      nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv,noheader | grep "^$pid," > "$out/$p.nvidia-smi.txt"
      seen=yes; break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  wait "$pid" || bad "$p scan failed: $(tail -1 "$out/$p.err")"
  [ "$seen" = yes ] && say "$p: the scan ran on the GPU: $(cat "$out/$p.nvidia-smi.txt")" || bad "$p: the process never appeared in nvidia-smi"
  # One pass of the samples, for the comparison.
  head -n "$(wc -l < "$out/cpu.jsonl")" "$out/$p.raw.jsonl" > "$out/$p.jsonl"
  # The provider the agent reports in use (a short replay through `hallmark run`).
  HALLMARK_RUNTIME_PROVIDERS="$p" HALLMARK_LOG=info HALLMARK_HTTP_LISTEN=off HALLMARK_OUTPUT_STDOUT=false \
    "$bin" run 2> "$out/$p.run.err" >/dev/null || bad "$p run"
  grep -o "provider=[a-z]*" "$out/$p.run.err" | head -1 | grep -q "provider=$p" \
    && say "$p: agent reports provider=$p" || bad "$p: agent did not report provider=$p"
  compare "$out/cpu.jsonl" "$out/$p.jsonl" "$p" || bad "$p boxes differ from the CPU's"
  # The uint8 variant (normalisation inside the graph) on the same provider: the same boxes.
  HALLMARK_RUNTIME_PROVIDERS="$p" "$bin" --variant u8 scan "$samples" > "$out/$p-u8.jsonl" 2> "$out/$p-u8.err" || bad "$p u8 scan: $(tail -1 "$out/$p-u8.err")"
  compare "$out/cpu.jsonl" "$out/$p-u8.jsonl" "$p u8" || bad "$p u8 boxes differ from the CPU's"
done

say "bench (whole pipeline next to a bare ONNX Runtime run, side by side)"
HALLMARK_RUNTIME_PROVIDERS=cpu "$bin" bench --threads 2 | tee "$out/bench-cpu-2.txt"
HALLMARK_RUNTIME_PROVIDERS=cpu "$bin" bench | tee "$out/bench-cpu-all.txt"
HALLMARK_RUNTIME_PROVIDERS=cpu "$bin" --variant u8 bench --threads 2 | tee "$out/bench-cpu-2-u8.txt"
for p in "${providers[@]}"; do
  # Before and after: the float32 main model, then the uint8 variant (a quarter of the bytes in, no
  # normalisation on the CPU).
  HALLMARK_RUNTIME_PROVIDERS="$p" "$bin" bench | tee "$out/bench-$p.txt" || bad "$p bench"
  HALLMARK_RUNTIME_PROVIDERS="$p" "$bin" --variant u8 bench | tee "$out/bench-$p-u8.txt" || bad "$p u8 bench"
done
rm -rf "$state"
[ "$fail" = 0 ] && say "GPU check passed (outputs in $out)" || say "GPU check FAILED (outputs in $out)"
exit "$fail"
