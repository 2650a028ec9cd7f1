"""A bundle's shipped rules scored on a labelled set: the main model and each variant with a
detector of its own, each with the thresholds its manifest gives it, by the agent's per-item rule.
Light venv (onnxruntime, numpy); nothing is chosen or written but a detection cache in the set.

    ../../.venv/bin/python -m hallmark_models.score --bundle ../aurora --set ../work/aurora/composite \\
        [--split test] [--json] [--rule main=0.45,0.57,0.9,0.15] [--model NAME=FILE.onnx --rule NAME=...]

A set is a folder in the layout `generate` and `composite` write (images/<split>, labels/<split>,
<split>.jsonl); a brand's own annotated photos laid out that way work too. `release` chooses a rule and
scores it; this answers the question after the fact: what do devices running this bundle decide on
scenes it was never scored on (another composite draw, harsher lighting, a store's own photos)?
A `u8` prologue variant is the main model's graph behind a byte input (the same scores): not scored again.
Before a release: `--rule NAME=confidence,genuine,counterfeit,margin` scores a model with a rule other
than its manifest's (the one a `release --dry-run` chose, say), and `--model NAME=FILE` adds a detector
the bundle does not ship (a candidate under models/work, with a `--rule` of the same name).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import bundle, evaluation
from . import verdicts as V
from .brands import BRANDS


def rules(bundle_dir: Path, doc: dict) -> dict[str, tuple[Path, dict]]:
    """name -> (ONNX file, thresholds) for the main model and each variant with a detector of its own
    (`doc`: the bundle's manifest)."""
    from .variants import is_prologue

    out = {"main": (bundle_dir / doc["model"]["file"], doc["thresholds"])}
    for v in doc.get("variants") or []:
        if not is_prologue(v):
            out[v["name"]] = (bundle_dir / v["file"], v["thresholds"])
    return out


def parse_rule(text: str) -> tuple[str, dict]:
    """`NAME=confidence,genuine,counterfeit,margin` -> (name, thresholds)."""
    name, _, values = text.partition("=")
    parts = values.split(",")
    if not name or len(parts) != 4:
        raise ValueError(f"--rule {text!r}: NAME=confidence,genuine,counterfeit,margin")
    c, g, cf, m = map(float, parts)
    if not (0 < c < cf <= 1 and 0 < g <= 1 and m >= 0):
        raise ValueError(f"--rule {text!r}: needs 0 < confidence < counterfeit <= 1, 0 < genuine <= 1, margin >= 0")
    return name, {"confidence": c, "iou": evaluation.IOU, "genuine": g, "counterfeit": cf, "margin": m}


def score(bundle_dir: Path, set_dir: Path, split: str = "test", rule: dict[str, dict] | None = None,
          models: dict[str, Path] | None = None) -> dict[str, dict]:
    """Per model: its rule and the per-item figures (`verdicts.score`, without the per-pack table's
    arrays), with each draw alone when the set is a several-draw composite and the packs by their angle
    when it records them (`composite --rotation full`). `rule`: name -> thresholds that replace the
    manifest's for that model; `models`: name -> ONNX file of detectors the bundle does not ship, each
    scored with its `rule`."""
    from .detect import Detector

    doc = json.loads((bundle_dir / "manifest.json").read_text())
    classes = BRANDS[doc["brand"]].classes()
    entries = evaluation.split_entries(set_dir, split)
    angles = evaluation.pack_angles(set_dir, split)
    rule, models = dict(rule or {}), dict(models or {})
    shipped = rules(bundle_dir, doc)
    for name, model in models.items():
        if name in shipped:
            raise ValueError(f"--model {name}: the bundle ships a model of that name")
        if name not in rule:
            raise ValueError(f"--model {name}: give it a --rule {name}=confidence,genuine,counterfeit,margin")
        shipped[name] = (model, rule[name])
    unknown = set(rule) - set(shipped)
    if unknown:
        raise ValueError(f"--rule for no model of the bundle: {sorted(unknown)} (models: {sorted(shipped)})")
    out = {}
    for name, (model, t) in shipped.items():
        t = rule.get(name, t)
        frames = evaluation.detect_set(Detector(model), bundle.sha256_file(model), set_dir / "detections",
                                    f"score-{split}", entries)
        floor = max(evaluation.CONFIDENCE, float(t["confidence"]))
        s = V.score(evaluation.table(frames, classes, floor), t["genuine"], t["counterfeit"], t["margin"])
        out[name] = {"thresholds": t, **evaluation.summary(s), "product_free_frames": V.product_free(s),
                     "by_draw": evaluation.by_draw(frames, classes, t["genuine"], t["counterfeit"], t["margin"], floor),
                     "by_angle": evaluation.by_angle(frames, angles, classes, t["genuine"], t["counterfeit"], t["margin"],
                                                  floor)}
    return out


def line(name: str, s: dict) -> str:
    pct = evaluation.pct
    free = s["product_free_frames"]
    photos = (f"; product-free frames with a counterfeit / genuine / any item {evaluation.product_free_text(free)}"
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
    ap.add_argument("--rule", action="append", default=[], metavar="NAME=C,G,CF,M",
                    help="score model NAME (main, a variant, a --model) with this item floor (confidence), genuine "
                         "and counterfeit thresholds and margin instead of its manifest's")
    ap.add_argument("--model", action="append", default=[], metavar="NAME=FILE",
                    help="also score this ONNX detector (a candidate the bundle does not ship) with --rule NAME=...")
    args = ap.parse_args(argv)
    if not (args.set / f"{args.split}.jsonl").is_file():
        ap.error(f"{args.set} has no {args.split}.jsonl (make one with hallmark_models.generate or .composite)")
    try:
        rule = dict(parse_rule(r) for r in args.rule)
        models = {}
        for m in args.model:
            name, _, file = m.partition("=")
            if not name or not Path(file).is_file():
                raise ValueError(f"--model {m!r}: NAME=an existing ONNX file")
            models[name] = Path(file)
        res = score(args.bundle, args.set, args.split, rule, models)
    except ValueError as e:
        ap.error(str(e))
    if args.json:
        print(json.dumps(res, indent=1))
        return
    for name, s in res.items():
        print(line(name, s))
        for d in s["by_draw"]:
            print(f"  draw {d['draw']}: {evaluation.pct(d['verdict_accuracy'])} of {d['items']}, counterfeit → genuine "
                  f"{evaluation.pct(d['counterfeit_called_genuine'])}")
        for key, what in (("off_axis", "degrees off the nearest quarter turn"), ("quarter_turn", "nearest quarter turn")):
            bins = (s["by_angle"] or {}).get(key) or {}
            if bins:
                print(f"  by {what}: " + "; ".join(
                    f"{b} {evaluation.pct(x['verdict_accuracy'])} of {x['items']} ({x['missed']} missed)"
                    for b, x in bins.items() if x["items"]))


if __name__ == "__main__":
    main()
