"""A trainable YOLOv5 checkpoint recovered from a bundle's ONNX export, for fine-tuning when the .pt
checkpoints are gone (only model.onnx ships). Training venv (torch, yolov5, onnx).

    models/.venv-train/bin/python -m hallmark_models.recover --onnx models/northwind/model.onnx \
        --out models/work/northwind/recovered [--cfg yolov5n.yaml]

The export fused every Conv + BatchNorm into one convolution with a bias, and kept the fused model's
parameter names (`model.0.conv.weight`, `model.0.conv.bias`, ..., `model.24.m.0.weight`). A fresh
`Model(cfg)` takes them back unfused: conv weight = the fused weight, BatchNorm set to the identity plus
the fused bias (gamma 1, beta = bias, running mean 0, running variance 1 - eps), so the recovered model
computes exactly what the ONNX graph computes and can train again (BatchNorm relearns its statistics).
The Detect layer's anchors come from the graph's anchor grids and are written into the cfg, since
yolov5's train.py takes anchors from the cfg rather than from the checkpoint.

Writes <out>/recovered.pt (a yolov5 checkpoint), <out>/model.yaml (the cfg with the recovered anchors
and class count), <out>/recovered.json (what was loaded, the check against the ONNX model) and
<out>/training.json (a stage record naming the ONNX model's SHA-256, for the chain of stages).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from . import yolo_env  # noqa: F401  (must precede yolov5 imports)


def onnx_arrays(path: Path) -> dict[str, np.ndarray]:
    """Initializers and Constant-node tensors of an ONNX model, by name."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    out = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    for node in m.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    out[node.output[0]] = numpy_helper.to_array(a.t)
    return out


def anchors_from(arrays: dict[str, np.ndarray]) -> list[list[float]]:
    """The anchors (pixels, per level, finest first) from the export's anchor grids (1, 3, ny, nx, 2)."""
    grids = [a for a in arrays.values() if a.ndim == 5 and a.shape[0] == 1 and a.shape[1] == 3 and a.shape[4] == 2]
    grids = [g for g in grids if np.allclose(g, g[:, :, :1, :1, :])]  # constant across the grid: anchors
    by_size = {}
    for g in grids:
        by_size.setdefault(g.shape[2] * g.shape[3], g)
    levels = [by_size[k] for k in sorted(by_size, reverse=True)]  # most cells first: stride 8
    return [[round(float(v), 4) for v in lv[0, :, 0, 0, :].reshape(-1)] for lv in levels]


def recover(onnx_path: Path, out: Path, cfg: str = "yolov5n.yaml") -> dict:
    import torch
    import yaml
    from yolov5 import train as yolo_train
    from yolov5.models.common import Conv
    from yolov5.models.yolo import Detect, Model

    arrays = onnx_arrays(onnx_path)
    pkg = Path(yolo_train.__file__).parent
    cfg_doc = yaml.safe_load((pkg / "models" / cfg).read_text() if "/" not in cfg else Path(cfg).read_text())
    nc = int(next(a for k, a in arrays.items() if k.endswith("model.24.m.0.bias")).shape[0] // 3 - 5)
    cfg_doc["nc"] = nc
    anchors = anchors_from(arrays)
    if len(anchors) == 3:
        cfg_doc["anchors"] = anchors
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.yaml").write_text(yaml.safe_dump(cfg_doc, sort_keys=False))
    model = Model(str(out / "model.yaml"), ch=3, nc=nc)
    model.eval()
    loaded, missing = [], []
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, Conv):
                w, b = arrays.get(f"{name}.conv.weight"), arrays.get(f"{name}.conv.bias")
                if w is None or b is None or tuple(w.shape) != tuple(mod.conv.weight.shape):
                    missing.append(name)
                    continue
                mod.conv.weight.copy_(torch.from_numpy(w))
                bn = mod.bn
                bn.weight.fill_(1.0)
                bn.bias.copy_(torch.from_numpy(b))
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                loaded.append(name)
            elif isinstance(mod, Detect):
                for i, conv in enumerate(mod.m):
                    w, b = arrays.get(f"{name}.m.{i}.weight"), arrays.get(f"{name}.m.{i}.bias")
                    if w is None or tuple(w.shape) != tuple(conv.weight.shape):
                        missing.append(f"{name}.m.{i}")
                        continue
                    conv.weight.copy_(torch.from_numpy(w))
                    conv.bias.copy_(torch.from_numpy(b))
                    loaded.append(f"{name}.m.{i}")
    if missing:
        raise ValueError(f"{onnx_path}: no fused parameters for {missing}")
    model.names = [f"class{i}" for i in range(nc)]
    diff = check(model, onnx_path)  # before anything else touches the weights
    # float32 in the checkpoint: a half-precision copy (what yolov5 saves) would round the recovered weights
    ckpt = {"epoch": -1, "best_fitness": None, "model": model, "ema": None, "updates": None,
            "optimizer": None, "opt": None, "git": None, "date": None}
    torch.save(ckpt, out / "recovered.pt")
    report = {"onnx": str(onnx_path), "cfg": cfg, "nc": nc, "anchors": anchors, "modules_loaded": len(loaded),
              "max_abs_diff_vs_onnx": diff}
    (out / "recovered.json").write_text(json.dumps(report, indent=2))
    # A stage record like train's, so a fine-tune that continues from recovered.pt carries its origin.
    from .train import sha256_file

    record = {"params": {"cfg": cfg, "epochs": 0, "weights": "", "optimizer": "none"}, "device": "cpu",
              "epochs_run": 0, "seconds": 0.0, "sha256": sha256_file(out / "recovered.pt"),
              "recovered_from_onnx": {"file": Path(onnx_path).name, "sha256": sha256_file(Path(onnx_path))}}
    (out / "training.json").write_text(json.dumps(record, indent=2))
    return report


def check(model, onnx_path: Path) -> dict:
    """Largest absolute difference between the recovered model and the ONNX model on one random input,
    per part of the raw output rows: boxes in pixels, objectness and class scores."""
    import onnxruntime as ort
    import torch

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    shape = sess.get_inputs()[0].shape
    x = np.random.default_rng(0).random((1, 3, int(shape[2]), int(shape[3])), dtype=np.float32)
    want = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    model.eval()
    with torch.no_grad():
        got = model(torch.from_numpy(x))[0].numpy()
    d = np.abs(got - want)
    return {"boxes_px": float(d[..., :4].max()), "scores": float(d[..., 4:].max())}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Recover a trainable yolov5 checkpoint from an ONNX export.")
    ap.add_argument("--onnx", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cfg", default="yolov5n.yaml")
    args = ap.parse_args(argv)
    print(json.dumps(recover(args.onnx, args.out, args.cfg), indent=2))


if __name__ == "__main__":
    main()
