"""Thresholds under a false-alarm cap, figures by the agent's rule, and a re-signed release of a bundle
whose model does not change. Light venv only (onnxruntime, numpy, Pillow, cryptography).

    nice -n 19 python -m hallmark_models.release --brand northwind --data ../work/northwind/data \
        [--composite ../work/northwind/composite] [--key ../keys/demo-publisher.key.pem] [--dry-run]

1. Runs the bundle's model.onnx (`detect`, as the agent runs it) on the generator's validation and test
   splits and on the validation and test thirds of the real photos (`photos`), product-free.
2. Chooses (genuine, counterfeit, margin) on validation scenes + validation photos + (when given) the
   composite validation set (`verdicts.choose_thresholds`: best per-item accuracy over all of them, with
   <= 1% counterfeit -> genuine, <= 1% genuine -> counterfeit, a counterfeit call on <= 1% of empty
   scenes and of product-free photos, a genuine call on <= 1% of them, and a counterfeit call on no
   counterfeit pack in <= 1% of the scenes with packs, on each set alone; counterfeit above the score
   filter), at each
   item floor of `verdicts.FLOOR_GRID`, and keeps the floor (the manifest's `confidence`) whose choice
   has the most right packs less phantom items (`verdicts.choose_rule`).
3. Scores the test split, the test photos and (when given) the composite test set with them; draws
   tradeoff.png; writes manifest.json (revision + 1, thresholds with margin, metrics), report.md, and signs.
The evaluation itself (detections, the rule, figures, report.md) is `evaluation`'s; this module is the
command and the signing.
"""


from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from . import agent_check, bundle
from .brands import BRANDS
from .evaluation import (MODELS, Refused, brief, check_releasable, draw_rule, evaluate_brand, metrics_of, refusals,
                         report, thresholds_of)


def kept_variants(prev: dict | None, model_sha: str, thresholds: dict, metrics: dict,
                  variant_res: dict | None = None) -> list | None:
    """The previous release's `variants` when the model is the same; none when the model changes (they
    would encode the old one: re-run `hallmark_models.variant`). A variant that is the main model behind a
    prologue (`variant_of.prologue`: the same detector giving the same scores) takes this release's
    thresholds and figures, as `prologue` gave it the main model's; any other takes the rule chosen for its
    own detector in `variant_res` (name -> `evaluate_brand` of its file), or keeps its own."""
    if not (prev and prev["model"]["sha256"] == model_sha and prev.get("variants")):
        return None
    from .variants import carried, is_prologue

    def rechosen(v: dict, res: dict) -> dict:
        old = v["metrics"]
        m = metrics_of(res, {"map50": old.get("map50"), "map50_per_class": old.get("map50_per_class"),
                             "training": old.get("training")})
        m["variant_of"] = old["variant_of"]
        return dict(v, thresholds=thresholds_of(res), metrics=m)

    return [dict(v, thresholds=dict(thresholds), metrics=carried(metrics, v["metrics"]["variant_of"]))
            if is_prologue(v) else rechosen(v, variant_res[v["name"]]) if v["name"] in (variant_res or {})
            else dict(v) for v in prev["variants"]]


def evaluate_variants(brand_key: str, data: Path, composite: Path | None, doc: dict | None,
                      bundle_dir: Path | None = None) -> dict:
    """`evaluate_brand` of each variant file in the bundle (`doc`: its manifest) that is a detector of its
    own (not a prologue of the main model): a release re-chooses its rule too, by the same procedure."""
    from .variants import is_prologue

    out = bundle_dir or MODELS / brand_key
    return {v["name"]: evaluate_brand(brand_key, data, composite, bundle_dir=out, model=out / v["file"])
            for v in (doc or {}).get("variants") or [] if not is_prologue(v)}


def _section(text: str, name: str) -> str:
    """The report.md section of the variant `name` ("" when there is none)."""
    start = text.find(f"\n## Variant `{name}` ")
    if start < 0:
        return ""
    end = text.find("\n## ", start + 1)
    return text[start + 1:end + 1 if end >= 0 else len(text)]


def variant_sections(brand_key: str, doc: dict, old_report: str, rechosen: frozenset = frozenset()) -> str:
    """report.md's sections for the kept variants: a prologue variant's anew (its figures are this
    release's), one whose rule this release re-chose (`rechosen`) anew with the command that made it, any
    other's as it was."""
    import re

    from .variants import is_prologue, is_turns, report_section, turns_about
    from .variants import prologue_about as about

    def remade(v: dict) -> str:
        made = re.search(r"Made by `([^`]*)`", _section(old_report, v["name"]))
        return report_section(doc, v, (made.group(1) + "`; rule re-chosen by `" if made else "")
                              + f"python -m hallmark_models.release --brand {brand_key}",
                              turns_about(doc["model"], v) if is_turns(v) else None)

    parts = [report_section(doc, v, f"python -m hallmark_models.prologue --bundle ../{brand_key} --name {v['name']}",
                            about(doc["model"], v, picture=True))
             if is_prologue(v) else remade(v) if v["name"] in rechosen else _section(old_report, v["name"])
             for v in doc.get("variants") or []]
    return "".join("\n" + p.strip("\n") + "\n" for p in parts if p)


def release(brand_key: str, res: dict, key_path: Path, bundle_dir: Path | None = None, extra: dict | None = None,
            imgsz: int | None = None, variant_res: dict | None = None) -> dict:
    """Writes and signs the bundle. Revisions grow with every release, a threshold-only one included
    (a changed manifest is a new release: the agent's anti-rollback compares revisions)."""
    check_releasable(res, brand_key)
    for name, vr in (variant_res or {}).items():
        check_releasable(vr, f"{brand_key} variant {name}")
    out = bundle_dir or MODELS / brand_key
    prev = res["doc"]
    c = res["choice"]
    thresholds = thresholds_of(res)
    metrics = metrics_of(res, extra)
    imgsz = imgsz or int(prev["model"]["input"]["width"])
    revision = int(prev["revision"]) + 1 if prev else 1
    variants = kept_variants(prev, bundle.sha256_file(res["model"]), thresholds, metrics, variant_res)
    old_report = (out / "report.md").read_text() if (out / "report.md").is_file() else ""
    doc = bundle.write(out, BRANDS[brand_key], res["model"], imgsz, thresholds, metrics, bundle.load_private(key_path),
                       revision=revision, variants=variants)
    draw_rule(out / "tradeoff.png", f"{brand_key} revision {doc['revision']}", res)
    from .variants import is_prologue

    for v in doc.get("variants") or []:
        if is_prologue(v):  # the same scores: the same picture
            shutil.copy(out / "tradeoff.png", out / f"tradeoff-{v['name']}.png")
        elif v["name"] in (variant_res or {}):
            draw_rule(out / f"tradeoff-{v['name']}.png", f"{brand_key} revision {doc['revision']}, variant "
                      f"{v['name']} ({v['input']['width']}x{v['input']['height']})", variant_res[v["name"]])
    (out / "report.md").write_text(report(brand_key, doc, res)
                                   + variant_sections(brand_key, doc, old_report, frozenset(variant_res or {})))
    # Signed again now that the report and the pictures are written: the manifest's `files` names them too.
    doc = bundle.sign(out, doc, bundle.load_private(key_path))
    print(agent_check.verify(out, bundle.load_private(key_path)))
    return doc


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Choose thresholds, score by the agent's rule, re-sign a bundle.")
    ap.add_argument("--brand", required=True, choices=sorted(BRANDS))
    ap.add_argument("--data", type=Path, required=True, help="generated data with val and test splits")
    ap.add_argument("--composite", type=Path, help="composite test set (hallmark_models.composite)")
    ap.add_argument("--key", type=Path, default=MODELS / "keys" / "demo-publisher.key.pem")
    ap.add_argument("--weights", type=Path,
                    help="a new checkpoint (training env): exported at the bundle's input size (or --imgsz), evaluated, and "
                         "released with its mAP50 and training record (train.py's training.json beside it)")
    ap.add_argument("--imgsz", type=int,
                    help="with --weights: export and release the new checkpoint at this input size (a multiple "
                         "of 32; default: the bundle's), e.g. a detector fine-tuned at a larger size")
    ap.add_argument("--dry-run", action="store_true", help="print the figures, write nothing")
    args = ap.parse_args(argv)
    if args.imgsz is not None and (args.weights is None or not bundle.input_size_ok(args.imgsz)):
        ap.error("--imgsz needs --weights (the bundle's own model has its size) and a positive multiple of 32")
    model, extra = None, None
    if args.weights:
        model, extra = candidate(args.brand, args.weights, args.data, args.imgsz)
    res = evaluate_brand(args.brand, args.data, args.composite, model=model)
    print(json.dumps(brief(res), indent=1))
    # The same model: its own variants keep their files, and their rules are re-chosen the same way.
    variant_res = evaluate_variants(args.brand, args.data, args.composite, res["doc"]) if model is None else {}
    for name, vr in variant_res.items():
        print(json.dumps({f"variant {name}": brief(vr)}, indent=1))
    if args.dry_run:
        for p in refusals(res) + [f"variant {n}: {p}" for n, vr in variant_res.items() for p in refusals(vr)]:
            print(f"a release would refuse this: {p}")
        return
    try:
        doc = release(args.brand, res, args.key, extra=extra, imgsz=args.imgsz, variant_res=variant_res)
    except Refused as e:
        raise SystemExit(f"release: {e}") from None
    print(f"signed {args.brand} revision {doc['revision']}")


def candidate(brand_key: str, weights: Path, data: Path, size: int | None = None) -> tuple[Path, dict]:
    """A fine-tuned checkpoint as a release candidate: its ONNX export at `size` (default: the shipped
    bundle's input size; beside the weights) and the metrics a release records for a new model (mAP50 on the test split,
    the training stages with their checkpoints' SHA-256). Needs the training env (torch, yolov5)."""
    from . import evaluate as E
    from . import export as X
    from .train import training_summary

    size = size or int(json.loads((MODELS / brand_key / "manifest.json").read_text())["model"]["input"]["width"])
    onnx = weights.with_name(f"{weights.stem}-{size}.onnx")
    if not onnx.exists():
        X.export(weights, size, onnx)
    test = E.evaluate(onnx, data, "test", brand_key)
    record = weights.parent / "training.json"
    epochs = json.loads(record.read_text()).get("epochs_run", 0) if record.exists() else 0
    return onnx, {"map50": round(test["map50"], 4), "map50_per_class": test["map50_per_class"],
                  "training": training_summary(weights, epochs)}


if __name__ == "__main__":
    main()
