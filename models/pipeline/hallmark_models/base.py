"""The detector an onboarding starts from: one that already knows what a pack on a counter, a shelf or a
belt looks like, never a network from scratch (a brand's 40 photos a class and a CPU hour would not
teach a fresh yolov5n to find a box at all).

It is made reproducibly from a shipped bundle (by default `models/northwind`, the generator-trained
detector: hundreds of CPU and GPU epochs on packs of every framing over real photos) or, for a brand's
next revision, from its previous bundle:
1. `recover` rebuilds the trainable network from the bundle's `model.onnx` (exact to 1e-6) and calibrates
   its BatchNorm on the onboarding's own training images (`--calibrate-images`), so training starts
   from the shipped network and not from another one;
2. `adapt` gives it the brand's class table: the backbone, the neck and, per anchor, the box and
   objectness outputs are kept (where packs are, and that they are packs); a class output keeps its
   weights when the base has a class of the same name (a next revision), else it starts as yolov5
   starts a class (prior bias, small random weights).
Training venv (torch, yolov5).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from . import yolo_env  # noqa: F401  (must precede yolov5 imports)


def adapt(recovered: Path, cfg_yaml: Path, old_names: list[str], names: list[str], out: Path) -> dict:
    """Writes out/base.pt and out/model.yaml: the recovered network with `names` as its classes."""
    import torch
    import yaml
    from yolov5.models.yolo import Model

    ckpt = torch.load(recovered, map_location="cpu", weights_only=False)
    old = ckpt["model"].float()
    cfg = yaml.safe_load(cfg_yaml.read_text())
    cfg["nc"] = len(names)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    model = Model(str(out / "model.yaml"), ch=3, nc=len(names))
    new_sd, old_sd = model.state_dict(), old.state_dict()
    kept, fresh = 0, []
    no, nn = 5 + len(old_names), 5 + len(names)
    with torch.no_grad():
        for k, v in new_sd.items():
            o = old_sd.get(k)
            if o is None:
                continue
            if k.startswith("model.24.m.") and o.shape[0] == 3 * no and v.shape[0] == 3 * nn:
                for a in range(3):
                    v[a * nn:a * nn + 5] = o[a * no:a * no + 5]  # box and objectness
                    for c, name in enumerate(names):
                        if name in old_names:
                            v[a * nn + 5 + c] = o[a * no + 5 + old_names.index(name)]
            elif o.shape == v.shape:
                v.copy_(o)
            else:
                continue
            kept += 1
        fresh = [n for n in names if n not in old_names]
    model.names = list(names)
    torch.save({"epoch": -1, "best_fitness": None, "model": model, "ema": None, "updates": None,
                "optimizer": None, "opt": None, "git": None, "date": None}, out / "base.pt")
    record = {"tensors_kept": kept, "classes": names, "classes_from_base": [n for n in names if n in old_names],
              "classes_new": fresh}
    (out / "adapt.json").write_text(json.dumps(record, indent=2))
    return record


def make(bundle_dir: Path, out: Path, names: list[str], calibrate_on: Path) -> tuple[Path, Path, dict]:
    """The base for `names`: (checkpoint, its cfg, a record naming the bundle, its model's SHA-256, the
    BatchNorm calibration and what `adapt` kept). A stage record (training.json) beside the checkpoint
    names the bundle's model, so the trained model's lineage goes back to it."""
    from . import recover
    from .train import sha256_file

    doc = json.loads((bundle_dir / "manifest.json").read_text())
    onnx = bundle_dir / doc["model"]["file"]
    images = sorted(p.name for p in calibrate_on.iterdir())
    key = hashlib.sha256(json.dumps([doc["model"]["sha256"], names, images]).encode()).hexdigest()
    done = out / "training.json"
    if done.is_file() and json.loads(done.read_text()).get("base", {}).get("key") == key:
        print(f"[onboard] base: reusing {out} (the same base model, classes and calibration images)", flush=True)
        return out / "base.pt", out / "model.yaml", json.loads(done.read_text())["base"]
    rec = recover.recover(onnx, out / "recovered", calibrate_on=calibrate_on)
    old_names = [c["name"] for c in doc["classes"]]
    adapted = adapt(out / "recovered" / "recovered.pt", out / "recovered" / "model.yaml", old_names, names, out)
    record = {"key": key, "bundle": str(bundle_dir), "brand": doc["brand"], "revision": doc["revision"],
              "model_sha256": doc["model"]["sha256"],
              "batchnorm_calibration": rec.get("batchnorm_calibration"), **adapted}
    (out / "training.json").write_text(json.dumps(
        {"params": {"cfg": "yolov5n.yaml", "epochs": 0, "weights": "", "optimizer": "none"}, "device": "cpu",
         "epochs_run": 0, "seconds": 0.0, "sha256": sha256_file(out / "base.pt"),
         "recovered_from_onnx": {"file": f"{doc['brand']}/{onnx.name}", "sha256": doc["model"]["sha256"]},
         "base": record}, indent=2))
    return out / "base.pt", out / "model.yaml", record
