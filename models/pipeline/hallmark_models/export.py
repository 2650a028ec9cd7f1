"""ONNX export of a trained checkpoint: static 1x3xHxW input `images`, output `output0` [1, N, 5 + C].

Uses the yolov5 package's own exporter, with the TorchScript-based ONNX exporter (`dynamo=False`):
torch >= 2.9 defaults to the dynamo exporter, which needs onnxscript and ignores the opset asked for.

    python -m hallmark_models.export --weights work/northwind/model/best.pt --imgsz 320 --out model.onnx
"""

from __future__ import annotations

import argparse
import functools
import shutil
from pathlib import Path

from . import yolo_env  # noqa: F401


def export(weights: Path, imgsz: int, out: Path, opset: int = 12) -> Path:
    import onnx
    import torch
    from yolov5 import export as yolo_export

    original = torch.onnx.export
    torch.onnx.export = functools.partial(original, dynamo=False)
    try:
        # Export from a copy so checkpoints of several sizes do not overwrite each other.
        tmp = out.with_suffix(".pt")
        shutil.copy(weights, tmp)
        yolo_export.run(weights=str(tmp), include=("onnx",), imgsz=(imgsz, imgsz), opset=opset, device="cpu")
        produced = tmp.with_suffix(".onnx")
        tmp.unlink()
    finally:
        torch.onnx.export = original
    if not produced.exists():
        raise RuntimeError(f"ONNX export produced no file for {weights}")
    if produced != out:
        shutil.move(produced, out)
    model = onnx.load(str(out))
    inp = model.graph.input[0]
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    if inp.name != "images" or dims != [1, 3, imgsz, imgsz]:
        raise RuntimeError(f"unexpected ONNX input {inp.name} {dims}")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Export a YOLOv5 checkpoint to ONNX (static shape).")
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    print(export(args.weights, args.imgsz, args.out))


if __name__ == "__main__":
    main()
