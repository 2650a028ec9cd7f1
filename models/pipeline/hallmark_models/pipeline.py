"""One brand end to end: data -> training -> ONNX -> evaluation -> signed bundle, samples and report.

    python -m hallmark_models.pipeline --brand northwind [--epochs 100] [--imgsz 320] [--reuse]

Thresholds are chosen on the validation split; the figures in the manifest and the report come from the
held-out test split, which training never sees. `--reuse` keeps an existing dataset and checkpoint.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from . import bundle, generate, train
from .brands import BRANDS

ROOT = Path(__file__).resolve().parents[3]  # the repository
MODELS = ROOT / "models"
WORK = MODELS / "work"
FRESH_SEED = 7  # the data's seed is 2026 (generate's default); 7 draws a wholly different test set


def run(brand_key: str, epochs: int, imgsz: int, compare: list[int], reuse: bool, key: Path,
        counts: tuple[int, int, int], weights: Path | None = None,
        compare_weights: dict[int, Path] | None = None, budget_min: float = 0.0) -> dict:
    from . import evaluate as E
    from . import export as X
    from . import verdicts as V

    brand = BRANDS[brand_key]
    work = WORK / brand_key
    data, model_dir = work / "data", work / "model"
    out = MODELS / brand_key
    if not (reuse and (data / "data.yaml").exists()):
        shutil.rmtree(data, ignore_errors=True)
        generate.main(["--brand", brand_key, "--out", str(data), "--train", str(counts[0]),
                       "--val", str(counts[1]), "--test", str(counts[2]), "--quarter-turns"])
    if weights is None and not (reuse and (model_dir / "best.pt").exists()):
        params = train.brand_hyperparameters(brand_key)
        params.update(epochs=max(epochs, 2000) if budget_min else epochs, imgsz=imgsz, time_budget_min=budget_min)
        train.train(data, model_dir, params)

    roles = [c["role"] for c in brand.classes()]
    products = [c["product"] for c in brand.classes()]
    weights = weights or model_dir / "best.pt"
    onnx = X.export(weights, imgsz, work / f"model-{imgsz}.onnx")
    val = E.evaluate(onnx, data, "val", brand_key)
    tg, tc, val_scored = V.choose_thresholds(val["matches"], roles, products)
    test = E.evaluate(onnx, data, "test", brand_key)
    scored = V.score(test["matches"], roles, products, tg, tc)
    # A second held-out set from another seed: scenes (placement, lighting, background) no split has drawn, scored
    # with the thresholds already fixed. A check that the figures are not one split's luck.
    fresh_data = work / "fresh"
    if not (reuse and (fresh_data / "test.jsonl").exists()):
        shutil.rmtree(fresh_data, ignore_errors=True)
        generate.main(["--brand", brand_key, "--out", str(fresh_data), "--train", "0", "--val", "0",
                       "--test", str(counts[2]), "--seed", str(FRESH_SEED)])
    fresh = V.score(E.evaluate(onnx, fresh_data, "test", brand_key)["matches"], roles, products, tg, tc)
    per_framing = {}
    for framing in ("kiosk", "conveyor", "shelf"):
        ms = [m for m in test["matches"] if m.framing == framing]
        if ms:
            per_framing[framing] = round(V.score(ms, roles, products, tg, tc)["verdict_accuracy"], 4)
    sizes = {imgsz: {"map50": test["map50"], "verdict_accuracy": scored["verdict_accuracy"],
                     "counterfeit_called_genuine": scored["counterfeit_called_genuine"],
                     "inference_ms": test["inference_ms"], "trained_at": imgsz}}
    # Other input sizes: a model trained at that size when one is given (its own thresholds, chosen on
    # validation like the shipped one's), else the same weights exported at that size.
    compare_weights = compare_weights or {}
    for other in sorted(set(compare) | set(compare_weights)):
        trained_at = other if other in compare_weights else imgsz
        o_onnx = X.export(compare_weights.get(other, weights), other, work / f"model-{other}.onnx")
        o_tg, o_tc = tg, tc
        if other in compare_weights:
            o_tg, o_tc, _ = V.choose_thresholds(E.evaluate(o_onnx, data, "val", brand_key)["matches"], roles, products)
        o_test = E.evaluate(o_onnx, data, "test", brand_key)
        o_scored = V.score(o_test["matches"], roles, products, o_tg, o_tc)
        sizes[other] = {"map50": o_test["map50"], "verdict_accuracy": o_scored["verdict_accuracy"],
                        "counterfeit_called_genuine": o_scored["counterfeit_called_genuine"],
                        "inference_ms": o_test["inference_ms"], "trained_at": trained_at}

    metrics = {
        "split": "test",
        "test_images": len(test["framings"]),
        "test_items": scored["items"],
        "map50": round(test["map50"], 4),
        "map50_per_class": test["map50_per_class"],
        "verdict_accuracy": round(scored["verdict_accuracy"], 4),
        "genuine_called_genuine": round(scored["genuine_called_genuine"], 4),
        "counterfeit_called_genuine": round(scored["counterfeit_called_genuine"], 4),
        "verdict_accuracy_by_framing": per_framing,
        "empty_scenes_with_false_verdict": E.false_alarms(test, min(tg, tc)),
        "val_verdict_accuracy": round(val_scored["verdict_accuracy"], 4),
        "fresh_seed_test": {"seed": FRESH_SEED, "items": fresh["items"],
                            "verdict_accuracy": round(fresh["verdict_accuracy"], 4),
                            "counterfeit_called_genuine": round(fresh["counterfeit_called_genuine"], 4)},
        "inference_ms_median_ort_2_threads": round(test["inference_ms"], 2),
        "training": training_summary(weights, epochs),
    }
    thresholds = {"confidence": E.CONFIDENCE, "iou": 0.45, "genuine": tg, "counterfeit": tc}
    doc = bundle.write(out, brand, onnx, imgsz, thresholds, metrics, bundle.load_private(key))
    generate.write_reference(brand, out / "reference")
    samples = MODELS / "samples" / brand_key
    shutil.rmtree(samples, ignore_errors=True)
    generate.copy_samples(data, samples, 6)
    E.plot_confusion(test, brand_key, scored, out / "confusion.png")
    (out / "report.md").write_text(report(brand_key, doc, scored, sizes, imgsz))
    print(json.dumps(metrics, indent=2))
    return metrics


def training_summary(weights: Path, epochs: int) -> dict:
    """What trained the checkpoint: from `train`'s training.json beside it, when there is one."""
    path = Path(weights).parent / "training.json"
    if not path.exists():
        return {"epochs": epochs}
    t = json.loads(path.read_text())
    out = {"cfg": Path(t["params"]["cfg"]).stem, "epochs": t.get("epochs_run", t["params"]["epochs"]),
           "optimizer": t["params"].get("optimizer", "SGD"),
           "device": "cpu" if t.get("device", "cpu") == "cpu" else "cuda", "minutes": round(t["seconds"] / 60, 1)}
    if t["params"].get("weights"):  # a fine-tuning stage: say so rather than pass it off as the whole run
        out["continued_from"] = Path(t["params"]["weights"]).name
    return out


def report(brand_key: str, doc: dict, scored: dict, sizes: dict, imgsz: int) -> str:
    m, t = doc["metrics"], doc["thresholds"]
    tr = m["training"]
    table = scored["table"]
    lines = [
        f"# {brand_key} — model revision {doc['revision']}",
        "",
        f"Produced by `models/pipeline/run.sh`: {tr.get('cfg', 'yolov5n')}, "
        + (f"last stage {tr['epochs']} epochs continued from `{tr['continued_from']}`" if "continued_from" in tr
           else f"{tr['epochs']} epochs from scratch")
        + f"{' on ' + tr['device'].upper() if 'device' in tr else ''} (see models/README.md). Figures are on the held-out",
        f"test split ({m['test_images']} scenes, {m['test_items']} packs) that training never saw;",
        "thresholds were chosen on the validation split.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| mAP50 | {m['map50']:.3f} |",
        f"| verdict accuracy (genuine → genuine with the right product; counterfeit → counterfeit or inconclusive) | {m['verdict_accuracy']:.1%} |",
        f"| counterfeit packs called genuine | {m['counterfeit_called_genuine']:.1%} |",
        f"| genuine packs called genuine | {m['genuine_called_genuine']:.1%} |",
        f"| verdict accuracy by framing | {', '.join(f'{k} {v:.1%}' for k, v in m['verdict_accuracy_by_framing'].items())} |",
        f"| empty scenes that would get a verdict | {m['empty_scenes_with_false_verdict']} |",
        f"| a second test set from another seed ({m['fresh_seed_test']['items']} packs): verdict accuracy, counterfeits called genuine "
        f"| {m['fresh_seed_test']['verdict_accuracy']:.1%}, {m['fresh_seed_test']['counterfeit_called_genuine']:.1%} |",
        f"| thresholds | confidence {t['confidence']}, IoU {t['iou']}, genuine {t['genuine']}, counterfeit {t['counterfeit']} |",
        "",
        "Verdicts per pack (rows: what the pack is):",
        "",
        "| | genuine | counterfeit | inconclusive | missed |",
        "|---|---|---|---|---|",
        f"| genuine pack | {' | '.join(map(str, table[0]))} |",
        f"| counterfeit pack | {' | '.join(map(str, table[1]))} |",
        "",
        "mAP50 per class: " + ", ".join(f"{k} {v:.3f}" for k, v in m["map50_per_class"].items()),
        "",
        "## Input size",
        "",
        "| input | trained at | mAP50 | verdict accuracy | counterfeits called genuine | ORT inference, median of 20, 2 threads |",
        "|---|---|---|---|---|---|",
    ]
    for size, s in sorted(sizes.items()):
        lines.append(f"| {size}×{size} | {s['trained_at']} | {s['map50']:.3f} | {s['verdict_accuracy']:.1%} "
                     f"| {s['counterfeit_called_genuine']:.1%} | {s['inference_ms']:.1f} ms |")
    lines += ["", f"Shipped: {imgsz}×{imgsz}.", "", "![confusion](confusion.png)", ""]
    return "\n".join(lines)


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
