"""A bundle variant: the bundle's own detector exported at another input size (or fine-tuned at that size
from the main model's weights, `--fine-tuned`), evaluated and thresholded like the main model, added to a
copy of the bundle (`variants` in models/BUNDLE.md) and re-signed. Training venv (torch, yolov5, onnx): it
exports.

    models/.venv-train/bin/python -m hallmark_models.variant --bundle ../aurora --imgsz 224 --name fast-224 \\
        --data ../work/aurora/data --composite ../work/aurora/composite \\
        --key ../keys/demo-publisher.key.pem --out /tmp/aurora-variant [--weights best.pt [--fine-tuned]]

1. Weights: `--weights`, or (default) recovered from the bundle's model.onnx (`recover`). Either way they
   are first re-exported at the main model's size and must reproduce model.onnx (a variant is the same
   detector, not another one). With `--fine-tuned` (weights fine-tuned from the main model's checkpoint,
   e.g. at the variant's own size) that check is replaced by a lineage check (`check_lineage`): the
   checkpoint's training.json, next to it, must describe that file (`sha256`) and name as its parent
   (`continued_from.sha256`) the main model's training checkpoint (the manifest's
   `metrics.training.sha256`), or start from weights recovered from the bundle's own model.onnx or from
   its own fine-tuned variant at that size (a shipped variant continued). The
   parent sha256 and the fine-tune's params and seconds go into the variant's `metrics.variant_of`.
2. Exports them at `--imgsz` (`export`, opset 12 like the main export) to `model-<imgsz>.onnx`.
3. Evaluates that file as a release does (`evaluation.evaluate_brand`: the agent's verdict rule, thresholds
   chosen on validation under the same caps), and its mAP50 on the test split (`evaluate`).
4. Writes to `--out` (new or empty) a copy of the bundle with the variant file, a `variants` entry (its
   own thresholds and metrics), `tradeoff-<name>.png`, a section in report.md, `revision` + 1, signed
   with `--key`; the main model, thresholds and metrics are unchanged. A variant of the same name is
   replaced. The result must pass `bundle.verify`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from . import bundle, evaluation
from .variants import (  # noqa: F401 (the library part, re-exported for its callers)
    MODELS, DTYPES, SAME_DETECTOR_TOL, main_checkpoint_sha256, shipped_variant_roots, check_lineage,
    lineage_root_text, graph_io, max_diff, check_entry_io, entry, report_section,
    _without_section, add_variant, open_source, parse_copy_args)


def build(bundle_dir: Path, imgsz: int, name: str, data: Path, key_path: Path, out: Path,
          composite: Path | None = None, weights: Path | None = None, public: Path | None = None,
          command: str = "", fine_tuned: bool = False) -> tuple[dict, dict]:
    """The whole command; returns (the new manifest, evaluate_brand's result for the variant). `fine_tuned`:
    `weights` were fine-tuned from the main model's checkpoint, so the lineage check (`check_lineage`)
    replaces the same-detector check."""
    from . import evaluate, export, recover

    key, pub, src = open_source(bundle_dir, key_path, public, name)
    if not bundle.input_size_ok(imgsz):
        raise ValueError(f"--imgsz {imgsz}: a positive multiple of 32")
    main_model = bundle_dir / src["model"]["file"]
    main_size = int(src["model"]["input"]["width"])
    file = f"model-{imgsz}.onnx"
    if fine_tuned:
        if weights is None:
            raise ValueError("--fine-tuned needs --weights (the fine-tuned checkpoint)")
        parent = main_checkpoint_sha256(src)
        lineage = check_lineage(weights, parent, src["model"]["sha256"], imgsz,
                                variant_roots=shipped_variant_roots(src, imgsz))
    with tempfile.TemporaryDirectory(prefix="hallmark-variant-") as t:
        tmp = Path(t)
        if weights is None:
            recover.recover(main_model, tmp / "recovered")
            weights = tmp / "recovered" / "recovered.pt"
            origin = f"recovered from {src['model']['file']} (hallmark_models.recover)"
        else:
            origin = str(weights)
        if fine_tuned:
            same = None  # another detector by design; its lineage was checked above
        else:
            # The same detector: the weights at the main size must give model.onnx's outputs.
            same = max_diff(export.export(weights, main_size, tmp / f"check-{main_size}.onnx"), main_model)
            if any(same[k] > tol for k, tol in SAME_DETECTOR_TOL.items()):
                raise ValueError(f"{weights} exported at {main_size} differs from {main_model} by {same}: "
                                 "not the bundle's detector")
        exported = export.export(weights, imgsz, tmp / file)
        io = graph_io(exported)
        check_entry_io(io, src, imgsz)
        res = evaluation.evaluate_brand(src["brand"], data, composite, bundle_dir=bundle_dir, model=exported)
        evaluation.check_releasable(res, f"{src['brand']} variant {name}", show_figures=True)
        ev = evaluate.evaluate(exported, data, "test", src["brand"])
        metrics = evaluation.metrics_of(res, {"map50": round(ev["map50"], 4), "map50_per_class": ev["map50_per_class"],
                                           "training": src["metrics"].get("training")})
        if fine_tuned:
            metrics["variant_of"] = {
                "model_sha256": src["model"]["sha256"], "weights": origin, "fine_tuned": True,
                "parent_checkpoint_sha256": parent, "checkpoint_sha256": lineage["sha256"],
                "lineage_root": lineage_root_text(lineage, src),
                "fine_tune": {"params": lineage.get("params"), "seconds": lineage.get("seconds"),
                              "epochs_run": lineage.get("epochs_run"), "stages": lineage["stages"],
                              "seconds_total": lineage["seconds_total"],
                              "epochs_total": lineage["epochs_total"]}}
        else:
            metrics["variant_of"] = {"model_sha256": src["model"]["sha256"], "weights": origin,
                                     "max_abs_diff_vs_model_at_its_size": {k: float(f"{x:.3g}")
                                                                           for k, x in same.items()}}
        v = entry(name, file, bundle.sha256_file(exported), io, evaluation.thresholds_of(res), metrics)
        picture = tmp / f"tradeoff-{name}.png"
        evaluation.draw_rule(picture, f"{src['brand']} revision {int(src['revision']) + 1}, variant {name} ({imgsz}x{imgsz})", res)
        doc = add_variant(bundle_dir, out, exported, v, key, {picture.name: picture}, command)
    bundle.verify(out, pub)
    return doc, res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Add a variant (the bundle's detector at another input size, or "
                                             "fine-tuned from it) to a copy of a signed bundle.")
    ap.add_argument("--bundle", type=Path, required=True, help="a signed bundle folder")
    ap.add_argument("--weights", type=Path, help="the detector's checkpoint (default: recovered from model.onnx)")
    ap.add_argument("--fine-tuned", action="store_true",
                    help="--weights were fine-tuned from the main model's checkpoint (their training.json names "
                         "it as parent): check that lineage instead of reproducing model.onnx at the main size")
    ap.add_argument("--imgsz", type=int, required=True)
    ap.add_argument("--name", required=True, help="the variant's name, [a-z0-9-]")
    ap.add_argument("--data", type=Path, required=True, help="generated data with val and test splits")
    ap.add_argument("--composite", type=Path, help="composite test set (hallmark_models.composite)")
    args = parse_copy_args(ap, argv)
    command = ("python -m hallmark_models.variant " + " ".join(
        f"--{k} {v}" for k, v in (("bundle", args.bundle), ("imgsz", args.imgsz), ("name", args.name),
                                   ("data", args.data), ("composite", args.composite), ("weights", args.weights))
        if v is not None)) + (" --fine-tuned" if args.fine_tuned else "")
    if args.fine_tuned and args.weights is None:
        ap.error("--fine-tuned needs --weights")
    doc, res = build(args.bundle, args.imgsz, args.name, args.data, args.key, args.out, args.composite,
                     args.weights, args.public, command, fine_tuned=args.fine_tuned)
    v = next(x for x in doc["variants"] if x["name"] == args.name)
    print(json.dumps(evaluation.brief(res), indent=1))
    print(f"wrote {args.out}: {doc['brand']} revision {doc['revision']}, variant {v['name']} ({v['file']}), "
          f"thresholds {v['thresholds']}")


if __name__ == "__main__":
    main()
