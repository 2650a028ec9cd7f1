#!/usr/bin/env bash
# The conveyor's reject gate, end to end (issue 35): each recorded belt (tests/fixtures/conveyor/*)
# replayed at its 10 fps through `hallmark run` in conveyor mode, talking to the controller simulator
# (`hallmark-sim`) over a pseudo-terminal, which runs the belt under a simulated encoder (1 count per
# mm) with the reject gate 400 mm past the view's exit edge. The camera's calibration follows the belt
# speed (the recording's pixels per frame × fps ÷ speed): at 1.0 m/s the view spans about a metre of
# belt, at 0.2 m/s about 20 cm.
#
# Per belt and speed it prints, per pack: the verdict, what the gate did and at which count against the
# target, the decision's margin; then the totals, and draws docs/gate-timeline.png (the packs passing the
# camera and the gate, verdicts and firings) from Northwind's 0.5 m/s run.
#
# Usage: scripts/measure-gate.sh [SPEEDS in mm/s, default "200 500 1000"]
#   MEASURE_GATE_EXTRA=KEY=VALUE,... adds agent settings (e.g. CONVEYOR_ADDED_LATENCY_MS=900)
#   MEASURE_GATE_CUT=START:LENGTH cuts the link in the simulator (ms after its start)
#   MEASURE_GATE_PLOT=PATH draws the timeline there instead of docs/gate-timeline.png ("" for none)
set -euo pipefail
cd "$(dirname "$0")/.."
speeds=${1:-200 500 1000}
bin=${HALLMARK_BIN:-target/release/hallmark}
sim=$(dirname "$bin")/hallmark-sim
profile=$([[ $bin == *release* ]] && echo --release || true)
[ -x "$bin" ] || cargo build $profile --locked -p hallmark-agent
[ -x "$sim" ] || cargo build $profile --locked -p hallmark-sim
export HALLMARK_TRUST_PUBLIC_KEYS=models/keys/demo-publisher.pub.pem
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

for brand_dir in tests/fixtures/conveyor/*/; do
  brand=$(basename "$brand_dir")
  read -r direction px_per_s < <(.venv/bin/python -c "
import json,sys
t=json.load(open('$brand_dir/truth.json'))
b=t['belt']
d={('x',1):'left_to_right',('x',-1):'right_to_left',('y',1):'top_to_bottom',('y',-1):'bottom_to_top'}[(b['axis'],b['direction'])]
print(d, b['speed_px']*t['fps'])")
  for speed in $speeds; do
    run="$work/$brand-$speed"
    mkdir -p "$run"
    px_per_mm=$(.venv/bin/python -c "print($px_per_s / $speed)")
    cut=()
    [ -n "${MEASURE_GATE_CUT:-}" ] && cut=(--cut-link "$MEASURE_GATE_CUT")
    # The simulator runs until its stdin closes: long enough for the last pack to reach the gate.
    (sleep 20; echo quit) | "$sim" --out "$run" --belt-speed-mm-s "$speed" --counts-per-mm 1 \
      --heartbeat-ms 300 "${cut[@]}" >/dev/null 2>"$run/sim.err" &
    for _ in $(seq 50); do grep -q '^link ' "$run/sim.err" 2>/dev/null && break; sleep 0.1; done
    port=$(sed -n 's/^link //p' "$run/sim.err" | head -1)
    extra=()
    IFS=',' read -ra kv <<<"${MEASURE_GATE_EXTRA:-}"
    for x in "${kv[@]}"; do [ -n "$x" ] && extra+=("HALLMARK_$x"); done
    env HALLMARK_AGENT_STATE_DIR="$run/state" HALLMARK_AGENT_MODE=conveyor \
      HALLMARK_MODEL_BUNDLES="models/$brand" HALLMARK_SOURCE_PATH="$brand_dir" HALLMARK_SOURCE_FPS=10 \
      HALLMARK_LINK_PORT="$port" HALLMARK_CONVEYOR_GATE_DISTANCE_MM=400 \
      HALLMARK_CONVEYOR_PX_PER_MM="$px_per_mm" HALLMARK_CONVEYOR_DIRECTION="$direction" \
      HALLMARK_EVIDENCE_ENABLED=false "${extra[@]}" \
      "$bin" run >"$run/events.jsonl" 2>"$run/agent.err" || { tail -5 "$run/agent.err" >&2; exit 1; }
    wait
  done
done

MEASURE_GATE_PLOT=${MEASURE_GATE_PLOT-docs/gate-timeline.png} .venv/bin/python - "$work" "$speeds" <<'PY'
import json, os, statistics, sys
from pathlib import Path

work, speeds = Path(sys.argv[1]), [int(s) for s in sys.argv[2].split()]
def uninspected_of(run):
    out = []
    for g in lines(run / "gate.jsonl"):
        if "uninspected_from" in g:
            out.append([g["uninspected_from"], None])
        elif "inspected_again" in g and out:
            out[-1][1] = g["inspected_again"]
    return out

def lines(p):
    return [json.loads(l) for l in p.read_text().splitlines() if l.strip()] if p.exists() else []

totals = {}
for run in sorted(work.iterdir(), key=lambda p: (p.name.rsplit("-", 1)[0], int(p.name.rsplit("-", 1)[1]))):
    brand, speed = run.name.rsplit("-", 1)
    events = {e["item"]["id"]: e for e in lines(run / "events.jsonl")}
    # A decision for a pack the gate already handled is reported "Unknown": not what happened to it.
    gate, uninspected = {}, []
    for g in lines(run / "gate.jsonl"):
        if "uninspected_from" in g:
            uninspected.append([g["uninspected_from"], None])
        elif "inspected_again" in g and uninspected:
            uninspected[-1][1] = g["inspected_again"]
        elif g.get("outcome") != "Unknown":
            gate.setdefault(g["item"], g)
    print(f"== {brand} at {int(speed)/1000:.1f} m/s")
    for a, b in uninspected_of(run):
        print(f"  belt the agent never inspected, diverted: counts {a} to {b if b is not None else 'the end (the agent stopped or the line stayed cut)'}")
    t = totals.setdefault(int(speed), dict(packs=0, must_reject=0, rejected_ok=0, genuine=0, genuine_rejected=0,
                                            late=0, unchecked_passed=0, off_target=0, margins=[]))
    for item in sorted(set(events) | set(gate)):
        e, g = events.get(item), gate.get(item, {})
        verdict = e["verdict"] if e else "(no verdict)"
        outcome = g.get("outcome", "(no report)")
        margin = (e or {}).get("gate", {}) or {}
        must = verdict in ("counterfeit", "inconclusive")
        fired = outcome in ("Rejected", "LateRejected", "Refused")
        t["packs"] += 1
        t["must_reject"] += must
        t["rejected_ok"] += must and fired
        t["genuine"] += verdict == "genuine"
        t["genuine_rejected"] += verdict == "genuine" and fired
        t["late"] += outcome.startswith("Late")
        t["unchecked_passed"] += outcome == "LatePassed"
        off = abs(g["count"] - g["target"]) if "count" in g and "target" in g else None
        t["off_target"] += off is not None and off > 1
        if "margin_mm" in margin:
            t["margins"].append(margin["margin_mm"])
        if not g and (margin.get("arrives_at") or 0) and any(
                a < margin["arrives_at"] and (b is None or margin["arrives_at"] <= b) for a, b in uninspected):
            outcome = "(diverted: uninspected belt)"
            t["rejected_ok"] += must
            t["genuine_rejected"] += verdict == "genuine"
        print(f"  item {item}: {verdict:<12} {(e or {}).get('item', {}).get('product', ''):<40} gate {outcome:<13}"
              f" fired at {g.get('count')} target {g.get('target')} margin {margin.get('margin_mm')} mm")
print()
print("| belt speed | packs | counterfeit/inconclusive rejected | genuine rejected | late | off target > 1 count | margin min / median (mm) |")
print("|---|---|---|---|---|---|---|")
for speed in sorted(totals):
    t = totals[speed]
    m = t["margins"]
    mm = f"{min(m):.0f} / {statistics.median(m):.0f}" if m else "-"
    print(f"| {speed/1000:.1f} m/s | {t['packs']} | {t['rejected_ok']} of {t['must_reject']} | {t['genuine_rejected']} of {t['genuine']} "
          f"| {t['late']} | {t['off_target']} | {mm} |")

plot = os.environ.get("MEASURE_GATE_PLOT")
mid = sorted(work.glob("northwind-500")) or sorted(work.iterdir())[:1]
if plot and mid:
    from PIL import Image, ImageDraw
    rows = []
    for run in mid:
        events = {e["item"]["id"]: e for e in lines(run / "events.jsonl")}
        for g in lines(run / "gate.jsonl"):
            if "item" in g and g.get("outcome") != "Unknown":
                rows.append((run.name, g, events.get(g["item"])))
    if rows:
        lo = min(g.get("entered_at") or g["count"] for _, g, _ in rows)
        hi = max(g["count"] for _, g, _ in rows)
        W, row_h, left = 1100, 26, 260
        H = 60 + row_h * len(rows)
        img = Image.new("RGB", (W, H), "white")
        d = ImageDraw.Draw(img)
        x = lambda c: left + (c - lo) / max(1, hi - lo) * (W - left - 30)
        d.text((10, 10), f"reject gate timeline, {mid[0].name}: gate 400 mm past the view (belt counts, 1 per mm)", fill="black")
        d.text((10, 28), "grey: announced -> target; dot: decision (green pass, red reject); bar at target: gate fired", fill="black")
        for i, (name, g, e) in enumerate(rows):
            y = 55 + i * row_h
            label = f"{name.rsplit('-',1)[0]} #{g['item']} {(e or {}).get('verdict', '?')}"
            d.text((10, y), label, fill="black")
            a, b = g.get("entered_at") or g["target"], g["target"]
            d.line([(x(a), y + 8), (x(b), y + 8)], fill=(170, 170, 170), width=4)
            if g.get("decided_at") is not None:
                col = (200, 30, 30) if g.get("reject") else (30, 150, 30)
                cx = x(g["decided_at"])
                d.ellipse([cx - 5, y + 3, cx + 5, y + 13], fill=col)
            if g["outcome"] in ("Rejected", "LateRejected", "Refused"):
                d.rectangle([x(g["count"]) - 2, y, x(g["count"]) + 2, y + 16], fill=(200, 30, 30))
            else:
                d.rectangle([x(g["count"]) - 1, y + 4, x(g["count"]) + 1, y + 12], fill=(30, 150, 30))
        Path(plot).parent.mkdir(parents=True, exist_ok=True)
        img.save(plot)
        print(f"\ntimeline: {plot}")
PY
