"""SageMaker-style training entry point: YOLOv5 from scratch on one brand's dataset.

Reads the dataset from /opt/ml/input/data/training (a folder with `data.yaml`, `images/`, `labels/` as
`generate` writes it), hyperparameters from /opt/ml/input/config/hyperparameters.json (SageMaker passes
every value as a string), and writes `best.pt`, `results.csv` and `training.json` to /opt/ml/model.
The SageMaker variables SM_CHANNEL_TRAINING / SM_MODEL_DIR and the flags below override the paths, so
the same command runs locally:

    python -m hallmark_models.train --data-dir work/northwind/data --model-dir work/northwind/model \
        --hyperparameters models/pipeline/hyperparameters.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from . import yolo_env  # noqa: F401  (must precede yolov5 imports)

DEFAULTS = {
    "cfg": "yolov5n.yaml",
    "weights": "",  # a checkpoint to continue from (fine-tuning); empty = from scratch
    "imgsz": 320,
    "epochs": 100,
    "batch_size": 16,
    "workers": 2,
    "device": "auto",  # "auto": the first CUDA GPU when there is one, else the CPU; or "cpu", "0", "0,1"
    "seed": 0,
    "patience": 100,
    # Keep every n-th epoch's checkpoint (0: only best.pt and last.pt). yolov5 keeps the epoch with the
    # best detection fitness; `pick` chooses among the kept ones by the agent's rule on validation.
    "save_period": 0,
    # yolov5's SGD recipe by default; the pipeline's hyperparameters.json picks AdamW, because Aurora's
    # classes never left their prior under SGD (class loss flat for 220 epochs, any seed, nano or small)
    # though they are learnable, and AdamW with a louder class loss learns them.
    "optimizer": "SGD",
    "lr0": 0.0,  # 0: the yolov5 recipe's (0.01, meant for SGD); AdamW wants about 0.001
    # A wall-clock budget in minutes (0: none). With one, `epochs` is only a cap: the learning rate
    # decays linearly with the share of the budget spent, and training stops when it is spent. For a
    # rented GPU paid by the minute, where the epochs that fit are not known in advance.
    "time_budget_min": 0.0,
    # Augmentations that would erase what tells a counterfeit apart are off: hue (an off-colour logo)
    # and left-right flips (mirrored layout and text); saturation/value are gentler than the default.
    "hsv_h": 0.0,
    "hsv_s": 0.4,
    "hsv_v": 0.3,
    "fliplr": 0.0,
    "scale": 0.5,
    "translate": 0.1,
    "mosaic": 1.0,
    "cls": 0.5,  # the class loss's gain (the recipe's 0.5); Aurora's subtle classes want it louder
    # Another dataset folder whose images/val to validate on (e.g. training scenes drawn with
    # generate --photo-backgrounds into their own folder, validated on the usual split); empty = own.
    "val_data": "",
}


def _coerce(value, like):
    if isinstance(like, bool):
        return str(value).lower() in ("1", "true", "yes")
    if isinstance(like, int):
        return int(float(value))
    if isinstance(like, float):
        return float(value)
    return str(value)


def read_overrides(path: Path | None) -> dict:
    """Only the keys a hyperparameters file sets, coerced to the defaults' types (SageMaker passes
    strings)."""
    out = {}
    if path and path.exists():
        for key, value in json.loads(path.read_text()).items():
            key = key.replace("-", "_")
            out[key] = _coerce(value, DEFAULTS[key]) if key in DEFAULTS else value
    return out


def load_hyperparameters(path: Path | None) -> dict:
    return {**DEFAULTS, **read_overrides(path)}


def brand_hyperparameters(brand_key: str, folder: Path | None = None) -> dict:
    """The pipeline's hyperparameters.json, then hyperparameters.<brand>.json over it where a brand
    needs its own. Every key the brand file names wins, a value equal to the built-in default included
    (a brand asking for SGD gets SGD, though the pipeline's file picks AdamW)."""
    here = folder or Path(__file__).resolve().parents[1]
    params = load_hyperparameters(here / "hyperparameters.json")
    params.update(read_overrides(here / f"hyperparameters.{brand_key}.json"))
    return params


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def stage_record(params: dict, best: Path, device: str, epochs_run: int, seconds: float, classes) -> dict:
    """training.json of one stage: its parameters, the SHA-256 of what it produced and, for a stage that
    continued from a checkpoint, that checkpoint's SHA-256 and (when it lies beside it) its own record,
    so the whole chain of stages travels with the last one."""
    out = {"params": params, "device": device, "epochs_run": epochs_run, "seconds": round(seconds, 1),
           "classes": classes, "sha256": sha256_file(best)}
    if params.get("weights"):
        parent = Path(params["weights"])
        out["continued_from"] = {"file": parent.name, "sha256": sha256_file(parent)}
        record = parent.parent / "training.json"
        if record.exists():
            prev = json.loads(record.read_text())
            if prev.get("sha256") in (None, out["continued_from"]["sha256"]):
                out["continued_from"]["training"] = prev
    return out


class _Budget:
    """The clock of a budget-bound run, shared by its learning-rate schedule and its stopper."""

    def __init__(self, minutes: float, lrf: float):
        self.seconds, self.lrf, self.start = minutes * 60.0, lrf, None

    def share_spent(self) -> float:
        if self.start is None:  # the clock starts with the schedule, after data caching and anchors
            self.start = time.monotonic()
        return min(1.0, (time.monotonic() - self.start) / self.seconds)

    def lr_factor(self, _epoch: int) -> float:
        return (1.0 - self.share_spent()) * (1.0 - self.lrf) + self.lrf


def _bind_budget(yolo_train, budget: _Budget) -> None:
    """Points yolov5's schedule and early stopping at the budget's clock (module globals it looks up)."""
    import types

    from torch.optim import lr_scheduler

    class BudgetLR(lr_scheduler.LambdaLR):
        def __init__(self, optimizer, lr_lambda=None):
            super().__init__(optimizer, lr_lambda=budget.lr_factor)

    class BudgetStopping(yolo_train.EarlyStopping):
        def __call__(self, epoch, fitness):
            stop = super().__call__(epoch, fitness) or budget.share_spent() >= 1.0
            spent = budget.share_spent() * budget.seconds / 60
            per_epoch = spent / (epoch + 1)
            left = max(0.0, budget.seconds / 60 - spent)
            print(f"[train] epoch {epoch + 1}: fitness {float(fitness):.3f}; {spent:.1f} of {budget.seconds / 60:.1f} min "
                  f"spent, {per_epoch:.2f} min an epoch, about {0.0 if stop else left:.1f} min left", flush=True)
            return stop

    yolo_train.lr_scheduler = types.SimpleNamespace(LambdaLR=BudgetLR)
    yolo_train.EarlyStopping = BudgetStopping


def train(data_dir: Path, model_dir: Path, params: dict) -> Path:
    import yaml
    from yolov5 import train as yolo_train

    pkg = Path(yolo_train.__file__).parent
    hyp = yaml.safe_load((pkg / "data" / "hyps" / "hyp.scratch-low.yaml").read_text())
    for key in ("hsv_h", "hsv_s", "hsv_v", "fliplr", "scale", "translate", "mosaic", "cls"):
        hyp[key] = params[key]
    if params["lr0"] > 0:
        hyp["lr0"] = params["lr0"]
    if params["optimizer"] != "SGD":  # the recipe warms biases up from lr 0.1: fine for SGD, wild for Adam
        hyp["warmup_bias_lr"] = min(hyp["warmup_bias_lr"], hyp["lr0"])
    model_dir.mkdir(parents=True, exist_ok=True)
    work = model_dir / "run"
    hyp_path = model_dir / "hyp.yaml"
    hyp_path.write_text(yaml.safe_dump(hyp))
    # data.yaml names the dataset by absolute path; point it at wherever the channel is mounted.
    data = yaml.safe_load((data_dir / "data.yaml").read_text())
    data["path"] = str(data_dir.resolve())
    if params.get("val_data"):
        data["val"] = str((Path(params["val_data"]) / "images" / "val").resolve())
    data_path = model_dir / "data.yaml"
    data_path.write_text(yaml.safe_dump(data))
    cfg = params["cfg"] if "/" in params["cfg"] else str(pkg / "models" / params["cfg"])
    device = params["device"]
    if device == "auto":
        import torch

        device = "0" if torch.cuda.is_available() else "cpu"
    # yolov5's AMP self-check downloads yolov5n.pt when a fresh model's fp16 output strays; offline that
    # stalls. Full precision costs these small, data-loading-bound models nothing that matters.
    yolo_train.check_amp = lambda model: False
    if params["time_budget_min"] > 0:
        _bind_budget(yolo_train, _Budget(params["time_budget_min"], hyp["lrf"]))
    started = time.time()
    yolo_train.run(
        data=str(data_path), cfg=cfg, weights=params["weights"], hyp=str(hyp_path), imgsz=params["imgsz"],
        epochs=params["epochs"], batch_size=params["batch_size"], workers=params["workers"],
        seed=params["seed"], patience=params["patience"], optimizer=params["optimizer"], device=device, cache="ram", noplots=True,
        save_period=params["save_period"] if params["save_period"] > 0 else -1,
        project=str(work.parent), name=work.name, exist_ok=True,
    )
    best = work / "weights" / "best.pt"
    shutil.copy(best, model_dir / "best.pt")
    shutil.copy(work / "results.csv", model_dir / "results.csv")
    epochs_run = max(0, len((work / "results.csv").read_text().splitlines()) - 1)
    summary = stage_record(params, model_dir / "best.pt", device, epochs_run, time.time() - started, data["names"])
    (model_dir / "training.json").write_text(json.dumps(summary, indent=2))
    return model_dir / "best.pt"


def _stage(t: dict) -> dict:
    out = {"cfg": Path(t["params"]["cfg"]).stem, "epochs": t.get("epochs_run", t["params"]["epochs"]),
           "optimizer": t["params"].get("optimizer", "SGD"),
           "device": "cpu" if t.get("device", "cpu") == "cpu" else "cuda", "minutes": round(t["seconds"] / 60, 1)}
    if t.get("sha256"):
        out["sha256"] = t["sha256"]
    if t.get("recovered_from_onnx"):
        out["recovered_from_onnx_sha256"] = t["recovered_from_onnx"]["sha256"]
    if t.get("batchnorm_calibration"):  # recovered with BatchNorm set to the data's statistics
        out["batchnorm_calibrated_on_images"] = t["batchnorm_calibration"]["images"]
    if t.get("picked"):  # an epoch chosen by `pick`, not the run's last or fittest
        out["picked_epoch"] = t["picked"]["epoch"]
        out["epochs_trained"] = len(t["picked"]["epochs"])
    return out


def training_summary(weights: Path, epochs: int) -> dict:
    """What trained the checkpoint, from `train`'s training.json beside it: the last stage, the SHA-256
    of the checkpoint it continued from, and the earlier stages as far as their records reach."""
    path = Path(weights).parent / "training.json"
    if not path.exists():
        return {"epochs": epochs}
    t = json.loads(path.read_text())
    out = _stage(t)
    parent = t.get("continued_from")
    if isinstance(parent, dict):  # a fine-tuning stage: say so rather than pass it off as the whole run
        out["continued_from"] = parent["file"]
        out["continued_from_sha256"] = parent["sha256"]
        earlier = []
        while isinstance(parent, dict) and "training" in parent:
            rec = parent["training"]
            stage = _stage(rec)
            nxt = rec.get("continued_from")
            if isinstance(nxt, dict):
                stage["continued_from"], stage["continued_from_sha256"] = nxt["file"], nxt["sha256"]
            earlier.append(stage)
            parent = nxt
        if earlier:
            out["earlier_stages"] = earlier
    elif t["params"].get("weights"):  # a record written before checkpoints were hashed
        out["continued_from"] = Path(t["params"]["weights"]).name
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Train one brand's YOLOv5 detector (SageMaker-style).")
    ap.add_argument("--data-dir", type=Path,
                    default=Path(os.environ.get("SM_CHANNEL_TRAINING", "/opt/ml/input/data/training")))
    ap.add_argument("--model-dir", type=Path, default=Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model")))
    ap.add_argument("--hyperparameters", type=Path,
                    default=Path(os.environ.get("SM_HPS_PATH", "/opt/ml/input/config/hyperparameters.json")))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one hyperparameter")
    args = ap.parse_args(argv)
    params = load_hyperparameters(args.hyperparameters)
    for item in args.set:
        key, _, value = item.partition("=")
        key = key.replace("-", "_")
        params[key] = _coerce(value, DEFAULTS.get(key, value))
    best = train(args.data_dir, args.model_dir, params)
    print(f"trained: {best}")


if __name__ == "__main__":
    main()
