"""One brand end to end: data -> training -> ONNX -> evaluation -> signed bundle, samples and report.

    python -m hallmark_models.pipeline --brand northwind [--epochs 100] [--imgsz 320] [--reuse]

Thresholds are chosen on the validation split and the validation third of the real photos, under the
false-alarm caps (`release`); the figures in the manifest and the report come from the agent's verdict rule
on the held-out test split, the test photos and the independent composite set, which training never sees.
`--reuse` keeps an existing dataset and checkpoint.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from . import generate, train
from .train import training_summary
from .brands import BRANDS

ROOT = Path(__file__).resolve().parents[3]  # the repository
MODELS = ROOT / "models"
WORK = MODELS / "work"


def run(brand_key: str, epochs: int, imgsz: int, compare: list[int], reuse: bool, key: Path,
        counts: tuple[int, int, int], weights: Path | None = None,
        compare_weights: dict[int, Path] | None = None, budget_min: float = 0.0) -> dict:
    from . import composite as C
    from . import evaluate as E
    from . import export as X
    from . import photos
    from . import release as R

    brand = BRANDS[brand_key]
    work = WORK / brand_key
    data, model_dir = work / "data", work / "model"
    out = MODELS / brand_key
    if not (reuse and (data / "data.yaml").exists()):
        shutil.rmtree(data, ignore_errors=True)
        # Training scenes on the train third of the real photos, with product-free photo negatives, a
        # stronger camera and packs lit apart from their background (validation and test splits are drawn
        # as before); turned copies of every framing with packs, since a hand turns a pack as a belt does.
        world = ["--photo-backgrounds", "--strong-camera", "--mixed-lighting"] if photos.photos("train") else []
        generate.main(["--brand", brand_key, "--out", str(data), "--train", str(counts[0]),
                       "--val", str(counts[1]), "--test", str(counts[2]), "--quarter-turns",
                       "--turn-framings", "conveyor,kiosk,shelf", *world])
    if weights is None and not (reuse and (model_dir / "best.pt").exists()):
        params = train.brand_hyperparameters(brand_key)
        params.update(epochs=max(epochs, 2000) if budget_min else epochs, imgsz=imgsz, time_budget_min=budget_min)
        train.train(data, model_dir, params)

    weights = weights or model_dir / "best.pt"
    onnx = X.export(weights, imgsz, work / f"model-{imgsz}.onnx")
    generate.write_reference(brand, out / "reference")
    # The independent composite test set: reference artwork on the test third of the real photos.
    comp = work / "composite"
    if photos.photos("test") and not (reuse and (comp / "test.jsonl").exists()):
        shutil.rmtree(comp, ignore_errors=True)
        C.write(brand_key, comp, photos.photos("test"), draws=C.TEST_DRAWS)
    # Thresholds on validation (scenes + validation photos) under the caps; figures by the agent's rule.
    res = R.evaluate_brand(brand_key, data, comp, bundle_dir=out, model=onnx)
    test = E.evaluate(onnx, data, "test", brand_key)  # mAP50, with yolov5's own metrics
    sizes = {imgsz: {"map50": round(test["map50"], 4), "verdict_accuracy": round(res["test"]["verdict_accuracy"], 4),
                     "inference_ms": round(res["inference_ms"], 2), "trained_at": imgsz}}
    # Other input sizes: a model trained at that size when one is given, else the same weights exported
    # at that size; each with its own thresholds, chosen on validation like the shipped one's.
    compare_weights = compare_weights or {}
    for other in sorted(set(compare) | set(compare_weights)):
        o_onnx = X.export(compare_weights.get(other, weights), other, work / f"model-{other}.onnx")
        o_res = R.evaluate_brand(brand_key, data, None, bundle_dir=out, model=o_onnx)
        sizes[other] = {"map50": round(E.evaluate(o_onnx, data, "test", brand_key)["map50"], 4),
                        "verdict_accuracy": round(o_res["test"]["verdict_accuracy"], 4),
                        "inference_ms": round(o_res["inference_ms"], 2),
                        "trained_at": other if other in compare_weights else imgsz}
    extra = {"map50": round(test["map50"], 4), "map50_per_class": test["map50_per_class"],
             "training": training_summary(weights, epochs), "input_sizes": sizes}
    doc = R.release(brand_key, res, key, extra=extra, imgsz=imgsz)
    samples = MODELS / "samples" / brand_key
    shutil.rmtree(samples, ignore_errors=True)
    generate.copy_samples(data, samples, 6)
    print(json.dumps(doc["metrics"], indent=2))
    return doc["metrics"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Data, training, evaluation and bundle for one brand.")
    ap.add_argument("--brand", required=True, choices=sorted(BRANDS))
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--budget-min", type=float, default=0.0, help="train to this wall-clock budget instead")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--compare", type=int, nargs="*", default=[640], help="other input sizes to measure")
    ap.add_argument("--counts", type=int, nargs=3, default=(300, 80, 120), metavar=("TRAIN", "VAL", "TEST"))
    ap.add_argument("--reuse", action="store_true", help="keep an existing dataset and checkpoint")
    ap.add_argument("--weights", type=Path, help="bundle this checkpoint instead of training")
    ap.add_argument("--compare-weights", nargs="*", default=[], metavar="SIZE=CHECKPOINT",
                    help="a model trained at another input size, to compare against")
    ap.add_argument("--key", type=Path, default=MODELS / "keys" / "demo-publisher.key.pem")
    args = ap.parse_args(argv)
    compare_weights = {int(k): Path(v) for k, _, v in (item.partition("=") for item in args.compare_weights)}
    run(args.brand, args.epochs, args.imgsz, args.compare, args.reuse, args.key, tuple(args.counts), args.weights,
        compare_weights, args.budget_min)


if __name__ == "__main__":
    main()
