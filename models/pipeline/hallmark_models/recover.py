"""A trainable YOLOv5 checkpoint recovered from a bundle's ONNX export, for fine-tuning when the .pt
checkpoints are gone (only model.onnx ships). Training venv (torch, yolov5, onnx).

    models/.venv-train/bin/python -m hallmark_models.recover --onnx models/northwind/model.onnx \
        --out models/work/northwind/recovered [--cfg yolov5n.yaml]

The export fused every Conv + BatchNorm into one convolution with a bias, and kept the fused model's
parameter names (`model.0.conv.weight`, `model.0.conv.bias`, ..., `model.24.m.0.weight`). A fresh
`Model(cfg)` takes them back unfused: conv weight = the fused weight, BatchNorm set to the identity plus
the fused bias (gamma 1, beta = bias, running mean 0, running variance 1 - eps), so the recovered model
computes exactly what the ONNX graph computes. But that identity is wrong in train mode, where
BatchNorm normalises each channel by the batch's own statistics: the fused outputs are far from mean 0,
variance 1, so the network that trains is not the one that was shipped (on Aurora's detector, train
mode moved the objectness of boxes the model finds by 0.49 on average), and a fine-tune's first
epochs undo what the model knew before BatchNorm relearns its statistics. So `--calibrate-images`
(images like the training set's) measures each convolution's per-channel mean and variance on them
and sets BatchNorm to those statistics with gamma and beta that keep the eval-mode function exactly:
BN(z) = sqrt(var + eps) (z - mean) / sqrt(var + eps) + bias + mean = z + bias. Train mode then
computes nearly what the shipped model computes (same measure: 0.05 on average, what the difference
between one batch's statistics and the 256 images' leaves). Without the option the checkpoint is still
exact for export and evaluation, but not a start for fine-tuning.
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


def calibration_images(folder: Path, limit: int) -> list[Path]:
    """Up to `limit` images of a folder, spread evenly over its sorted names (deterministic)."""
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        raise ValueError(f"{folder}: no images to calibrate BatchNorm on")
    step = max(1, len(files) // limit)
    return files[::step][:limit]


def _inputs(images: list[Path], size: int) -> np.ndarray:
    """Images as the agent feeds them to the model (`detect.letterbox`), stacked into one batch."""
    from .detect import letterbox, load_rgb

    return np.concatenate([letterbox(load_rgb(p), size, size)[0] for p in images])


def _batchnorm_train_mode_gap(model, x) -> float:
    """Mean absolute change of the objectness of the boxes the eval-mode model scores over 0.25 when
    BatchNorm uses the batch's statistics, as it does in training (statistics left untouched)."""
    import torch

    def run(bn_train: bool):
        model.eval()
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.train(bn_train)
        with torch.no_grad():
            return model(x)[0][..., 4]

    momenta = {m: m.momentum for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    for m in momenta:
        m.momentum = 0.0  # a train-mode pass must not move the running statistics
    try:
        want, got = run(False), run(True)
    finally:
        for m, v in momenta.items():
            m.momentum = v
        model.eval()
    found = want > 0.25
    return float((want - got)[found].abs().mean()) if bool(found.any()) else 0.0


def calibrate_batchnorm(model, images: list[Path], size: int, batch: int = 32) -> dict:
    """Sets every Conv's BatchNorm to the per-channel statistics of its convolution's output on `images`,
    keeping the eval-mode function (see the module doc). Returns the train-mode gap before and after."""
    import torch
    from yolov5.models.common import Conv

    convs = {name: mod for name, mod in model.named_modules() if isinstance(mod, Conv)}
    sums = {name: [0.0, 0.0, 0] for name in convs}  # per conv: sum, sum of squares (per channel), elements

    def hook(name):
        def record(_mod, _inp, out):
            o = out.detach().double()
            acc = sums[name]
            acc[0] = acc[0] + o.sum((0, 2, 3))
            acc[1] = acc[1] + (o * o).sum((0, 2, 3))
            acc[2] += o.numel() // o.shape[1]
        return record

    first = torch.from_numpy(_inputs(images[:batch], size))
    before = _batchnorm_train_mode_gap(model, first)
    handles = [mod.conv.register_forward_hook(hook(name)) for name, mod in convs.items()]
    model.eval()
    try:
        with torch.no_grad():
            for i in range(0, len(images), batch):
                model(torch.from_numpy(_inputs(images[i:i + batch], size)))
    finally:
        for h in handles:
            h.remove()
    with torch.no_grad():
        for name, mod in convs.items():
            s1, s2, n = sums[name]
            mean = s1 / n
            var = (s2 / n - mean * mean).clamp_min(0)
            bn = mod.bn
            scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)  # what BN does now:
            bias = bn.bias.double() - scale * bn.running_mean.double()  # z -> scale z + bias
            bn.running_mean.copy_(mean.float())
            bn.running_var.copy_(var.float())
            bn.weight.copy_((scale * torch.sqrt(var + bn.eps)).float())
            bn.bias.copy_((bias + scale * mean).float())
    after = _batchnorm_train_mode_gap(model, first)
    return {"images": len(images), "size": size, "train_mode_objectness_gap_before": round(before, 6),
            "train_mode_objectness_gap_after": round(after, 6)}


def recover(onnx_path: Path, out: Path, cfg: str = "yolov5n.yaml", calibrate_on: Path | None = None,
            calibrate_limit: int = 256) -> dict:
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
    calibration = None
    if calibrate_on is not None:
        size = int(onnx_input_size(onnx_path))
        calibration = calibrate_batchnorm(model, calibration_images(calibrate_on, calibrate_limit), size)
        calibration["max_abs_diff_vs_onnx"] = check(model, onnx_path)  # the eval-mode function is kept
    # float32 in the checkpoint: a half-precision copy (what yolov5 saves) would round the recovered weights
    ckpt = {"epoch": -1, "best_fitness": None, "model": model, "ema": None, "updates": None,
            "optimizer": None, "opt": None, "git": None, "date": None}
    torch.save(ckpt, out / "recovered.pt")
    report = {"onnx": str(onnx_path), "cfg": cfg, "nc": nc, "anchors": anchors, "modules_loaded": len(loaded),
              "max_abs_diff_vs_onnx": diff}
    if calibration is not None:
        report["batchnorm_calibration"] = {"images_from": str(calibrate_on), **calibration}
    (out / "recovered.json").write_text(json.dumps(report, indent=2))
    # A stage record like train's, so a fine-tune that continues from recovered.pt carries its origin.
    from .train import sha256_file

    record = {"params": {"cfg": cfg, "epochs": 0, "weights": "", "optimizer": "none"}, "device": "cpu",
              "epochs_run": 0, "seconds": 0.0, "sha256": sha256_file(out / "recovered.pt"),
              "recovered_from_onnx": {"file": Path(onnx_path).name, "sha256": sha256_file(Path(onnx_path))}}
    if calibration is not None:
        record["batchnorm_calibration"] = report["batchnorm_calibration"]
    (out / "training.json").write_text(json.dumps(record, indent=2))
    return report


def onnx_input_size(onnx_path: Path) -> int:
    """The square input size the ONNX model was exported at (its input's last dimension)."""
    import onnx

    size = int(onnx.load(str(onnx_path)).graph.input[0].type.tensor_type.shape.dim[3].dim_value)
    if size <= 0:
        raise ValueError(f"{onnx_path}: the input has no fixed size to calibrate BatchNorm at")
    return size


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
    ap.add_argument("--calibrate-images", type=Path, default=None,
                    help="a folder of images like the training set's (e.g. <dataset>/images/train): set "
                         "BatchNorm's statistics from them, so that a fine-tune starts from the shipped model")
    ap.add_argument("--calibrate-limit", type=int, default=256, help="how many of them (spread evenly)")
    args = ap.parse_args(argv)
    print(json.dumps(recover(args.onnx, args.out, args.cfg, args.calibrate_images, args.calibrate_limit), indent=2))
    if args.calibrate_images is None:
        print("note: BatchNorm left as the identity (no --calibrate-images): exact for export and evaluation, "
              "but a fine-tune from it trains another network at first")


if __name__ == "__main__":
    main()
