"""A fine-tune's checkpoint chosen by the agent's rule on validation, not by detection fitness.

yolov5 keeps the epoch with the best fitness (0.1 mAP50 + 0.9 mAP50-95) on one validation folder. That is
not what a store gets: Aurora's 224 fine-tunes swing from epoch to epoch on real photos, and the epoch
with the best fitness on them was not the one with the best verdicts (README, "Aurora's `fast-224`
continued"). With `--set save_period=1` a training run keeps every epoch; this scores each one as a
release would (`evaluation.validation_sets` + `choose_on_validation`: the rule chosen under the caps on the
validation sets, never a test set) and keeps the best:

    PYTHONPATH=. ../.venv-train/bin/python -m hallmark_models.pick --brand aurora --run $W/finetune17-224 \\
        --imgsz 224 --data $W/data --composite $W/composite

writes `<run>/picked/best.pt` (that epoch's EMA weights, as yolov5 ships its own best.pt) with a
training.json describing it (the run's record: `sha256` of the picked file, `picked`: which epoch, by
what, and every epoch's row), so `variant --fine-tuned` and `release` check its lineage as any stage's.
Scored epochs are kept (`<run>/picked/epochs/`), so pick can run beside the training, at `nice 19`,
scoring the epochs written so far, and again when the run ends, to score the rest and choose.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path

from . import bundle, evaluation
from .brands import BRANDS

BY = "validation accuracy of the agent's rule, chosen under the caps (evaluation.choose_on_validation)"


def epoch_checkpoints(run: Path) -> list[tuple[int, Path]]:
    """(epoch, file) of every `epoch<N>.pt` a run kept, by epoch."""
    found = [(int(m.group(1)), p) for p in (run / "run" / "weights").glob("epoch*.pt")
             if (m := re.fullmatch(r"epoch(\d+)\.pt", p.name))]
    return sorted(found)


def best_row(rows: list[dict]) -> dict:
    """The epoch to keep: among those a release would sign (no refusal), the best validation accuracy;
    then fewer items on no pack (each is a person looking at nothing); then the later epoch (more
    trained, at a lower rate). Raises ValueError when no epoch could be signed."""
    ok = [r for r in rows if not r["refusals"]]
    if not ok:
        raise ValueError(f"none of the {len(rows)} epochs could be signed: "
                         + "; ".join(sorted({x for r in rows for x in r["refusals"]})))
    return max(ok, key=lambda r: (r["verdict_accuracy"], -r["phantom_items"], r["epoch"]))


def ema_weights(ckpt: Path, out: Path) -> Path:
    """The checkpoint as yolov5 finishes best.pt: the EMA model in place of the raw one, no optimizer.
    (yolov5's own `strip_optimizer` loads with torch's weights-only default, which refuses the
    checkpoints yolov5 itself writes, outside its training loop.)"""
    import torch

    x = torch.load(ckpt, map_location="cpu", weights_only=False)
    if x.get("ema"):
        x["model"] = x["ema"]
    for k in ("optimizer", "best_fitness", "ema", "updates"):
        x[k] = None
    x["epoch"] = -1
    x["model"].half()
    for p in x["model"].parameters():
        p.requires_grad = False
    torch.save(x, out)
    return out


def score_epoch(brand_key: str, weights: Path, imgsz: int, data: Path, composite: Path | None, tmp: Path) -> dict:
    """One checkpoint exported at `imgsz` and judged on validation as a release judges a model."""
    from . import export
    from .detect import Detector

    onnx = export.export(weights, imgsz, tmp / f"{weights.stem}-{imgsz}.onnx")
    sets = evaluation.validation_sets(Detector(onnx), bundle.sha256_file(onnx), data, composite, cache=tmp / "detections")
    choice, _ = evaluation.choose_on_validation(sets, BRANDS[brand_key].classes())
    s = choice["score"]
    refusals = evaluation.refusals({"choice": choice, "val": s})
    return {"verdict_accuracy": s["verdict_accuracy"], "right": s["right"],
            "items": s["genuine_items"] + s["counterfeit_items"],
            "phantom_items": s["phantom_items"], "missed": s["missed"],
            "thresholds": [choice["confidence"], choice["genuine"], choice["counterfeit"], choice["margin"]],
            "refusals": refusals}


class RunNotFinished(Exception):
    """The run has not written its training.json yet: its epochs so far are scored, none is picked."""


# What a kept row adds to the row the pick record lists: which checkpoint, judged at which size.
CACHE_KEYS = ("checkpoint_sha256", "imgsz")


def scored_rows(brand_key: str, run: Path, imgsz: int, data: Path, composite: Path | None,
                tmp: Path) -> list[dict]:
    """Every kept epoch's row, scoring only what is not scored yet: each row is kept in
    `run/picked/epochs/epoch<N>.json` with the SHA-256 of the checkpoint and the size it was judged at,
    so pick can run beside the training (scoring the epochs written so far) and again when it ends."""
    rows = []
    cache = run / "picked" / "epochs"
    cache.mkdir(parents=True, exist_ok=True)
    for epoch, ckpt in epoch_checkpoints(run):
        sha = bundle.sha256_file(ckpt)
        kept = cache / f"epoch{epoch}.json"
        row = json.loads(kept.read_text()) if kept.exists() else None
        if not row or row.get("checkpoint_sha256") != sha or row.get("imgsz") != imgsz:
            w = ema_weights(ckpt, tmp / f"epoch{epoch}.pt")
            row = {"epoch": epoch, **score_epoch(brand_key, w, imgsz, data, composite, tmp),
                   "checkpoint_sha256": sha, "imgsz": imgsz}
            kept.write_text(json.dumps(row, indent=2))
        rows.append(row)
        print(f"epoch {epoch}: validation {evaluation.pct(row['verdict_accuracy'])} ({row['right']} of "
              f"{row['items']}), missed {row['missed']}, items on no pack {row['phantom_items']}, rule "
              f"{row['thresholds'][:3]}{' REFUSED: ' + '; '.join(row['refusals']) if row['refusals'] else ''}",
              flush=True)
    return rows


def pick(brand_key: str, run: Path, imgsz: int, data: Path, composite: Path | None) -> tuple[Path, dict]:
    """Scores every kept epoch of `run`, writes `run/picked/best.pt` and its training.json; returns both.
    Before the run has written its training.json (it is still training) only the scoring is done."""
    finished = (run / "training.json").exists()  # before listing: a finished run writes no more epochs
    epochs = dict(epoch_checkpoints(run))
    if not epochs:
        raise ValueError(f"{run}: no epoch checkpoints (train with --set save_period=1)")
    with tempfile.TemporaryDirectory(prefix="hallmark-pick-") as t:
        tmp = Path(t)
        (tmp / "detections").mkdir()
        rows = scored_rows(brand_key, run, imgsz, data, composite, tmp)
        if not finished:
            raise RunNotFinished(f"{run}: still training (no training.json yet): scored {len(rows)} epochs, "
                                 "picked nothing; run pick again when it ends")
    record = json.loads((run / "training.json").read_text())
    best = best_row(rows)
    out = run / "picked"
    picked = ema_weights(epochs[best["epoch"]], out / "best.pt")
    rows = [{k: v for k, v in r.items() if k not in CACHE_KEYS} for r in rows]
    (out / "training.json").write_text(json.dumps(picked_record(record, picked, best, rows, imgsz), indent=2))
    return picked, best


def picked_record(run_record: dict, picked: Path, best: dict, rows: list[dict], imgsz: int) -> dict:
    """The run's training.json, describing the picked file instead of yolov5's best.pt: its SHA-256, the
    epochs it saw, and `picked` (which epoch, by what, every epoch's row). The parent (`continued_from`)
    and the run's wall time stay the run's: the lineage check walks it like any stage."""
    return dict(run_record, sha256=bundle.sha256_file(picked), epochs_run=best["epoch"] + 1,
                picked={"epoch": best["epoch"], "by": BY, "imgsz": imgsz,
                        "fitness_best_sha256": run_record.get("sha256"), "epochs": rows})


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Choose a fine-tune's epoch by the agent's rule on validation.")
    ap.add_argument("--brand", required=True, choices=sorted(BRANDS))
    ap.add_argument("--run", type=Path, required=True, help="a train --model-dir trained with save_period=1")
    ap.add_argument("--imgsz", type=int, required=True, help="the input size the checkpoint will ship at")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--composite", type=Path)
    args = ap.parse_args(argv)
    try:
        picked, best = pick(args.brand, args.run, args.imgsz, args.data, args.composite)
    except RunNotFinished as e:
        print(e)
        return
    print(f"picked epoch {best['epoch']} ({evaluation.pct(best['verdict_accuracy'])} on validation): {picked}")


if __name__ == "__main__":
    main()
