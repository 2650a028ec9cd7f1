"""A bundle's shipped rules scored on a labelled set: the main model and each variant with a
detector of its own, each with the thresholds its manifest gives it, by the agent's per-item rule.
Light venv (onnxruntime, numpy); nothing is chosen or written but a detection cache in the set.

    ../../.venv/bin/python -m hallmark_models.score --bundle ../aurora --set ../work/aurora/composite \\
        [--split test] [--json]

A set is a folder in the layout `generate` and `composite` write (images/<split>, labels/<split>,
<split>.jsonl); a brand's own annotated photos laid out that way work too. `release` chooses a rule and
scores it; this answers the question after the fact: what do devices running this bundle decide on
scenes it was never scored on (another composite draw, harsher lighting, a store's own photos)?
A `u8` prologue variant is the main model's graph behind a byte input (the same scores): not scored again.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import bundle, release
from . import verdicts as V
from .brands import BRANDS


def rules(bundle_dir: Path, doc: dict) -> dict[str, tuple[Path, dict]]:
    """name -> (ONNX file, thresholds) for the main model and each variant with a detector of its own
    (`doc`: the bundle's manifest)."""
    from .prologue import is_prologue

    out = {"main": (bundle_dir / doc["model"]["file"], doc["thresholds"])}
    for v in doc.get("variants") or []:
        if not is_prologue(v):
            out[v["name"]] = (bundle_dir / v["file"], v["thresholds"])
    return out


def score(bundle_dir: Path, set_dir: Path, split: str = "test") -> dict[str, dict]:
    """Per model: its rule and the per-item figures (`verdicts.score`, without the per-pack table's
    arrays), with each draw alone when the set is a several-draw composite and the packs by their angle
    when it records them (`composite --rotation full`)."""
    from .detect import Detector

    doc = json.loads((bundle_dir / "manifest.json").read_text())
    classes = BRANDS[doc["brand"]].classes()
    entries = release.split_entries(set_dir, split)
    angles = release.pack_angles(set_dir, split)
    out = {}
    for name, (model, t) in rules(bundle_dir, doc).items():
        frames = release.detect_set(Detector(model), bundle.sha256_file(model), set_dir / "detections",
                                    f"score-{split}", entries)
        floor = max(release.CONFIDENCE, float(t["confidence"]))
        s = V.score(release.table(frames, classes, floor), t["genuine"], t["counterfeit"], t["margin"])
        out[name] = {"thresholds": t, **release.summary(s), "product_free_frames": V.product_free(s),
                     "by_draw": release.by_draw(frames, classes, t["genuine"], t["counterfeit"], t["margin"], floor),
                     "by_angle": release.by_angle(frames, angles, classes, t["genuine"], t["counterfeit"], t["margin"],
                                                  floor)}
    return out


def line(name: str, s: dict) -> str:
    pct = release.pct
    free = s["product_free_frames"]
    photos = (f"; product-free frames with a counterfeit / genuine / any item {release.product_free_text(free)}"
              if free["frames"] else "")
    return (f"{name}: {pct(s['verdict_accuracy'])} of {s['items']} packs right; genuine → counterfeit "
            f"{pct(s['genuine_called_counterfeit'])}, counterfeit → genuine {pct(s['counterfeit_called_genuine'])}; "
            f"missed {s['missed']}; counterfeit calls on no pack {s['false_alarm_items']} (frames with one on no "
            f"counterfeit pack {s['scenes_with_stray_counterfeit']} of {s['scenes_with_packs']}), items on no pack "
            f"{s['phantom_items']} ({s['genuine_phantom_items']} called genuine){photos}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Score a bundle's shipped rules on a labelled set.")
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--set", type=Path, required=True, help="a folder with images/<split>, labels/<split>, <split>.jsonl")
    ap.add_argument("--split", default="test")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if not (args.set / f"{args.split}.jsonl").is_file():
        ap.error(f"{args.set} has no {args.split}.jsonl (make one with hallmark_models.generate or .composite)")
    res = score(args.bundle, args.set, args.split)
    if args.json:
        print(json.dumps(res, indent=1))
        return
    for name, s in res.items():
        print(line(name, s))
        for d in s["by_draw"]:
            print(f"  draw {d['draw']}: {release.pct(d['verdict_accuracy'])} of {d['items']}, counterfeit → genuine "
                  f"{release.pct(d['counterfeit_called_genuine'])}")
        for key, what in (("off_axis", "degrees off the nearest quarter turn"), ("quarter_turn", "nearest quarter turn")):
            bins = (s["by_angle"] or {}).get(key) or {}
            if bins:
                print(f"  by {what}: " + "; ".join(
                    f"{b} {release.pct(x['verdict_accuracy'])} of {x['items']} ({x['missed']} missed)"
                    for b, x in bins.items() if x["items"]))


if __name__ == "__main__":
    main()
