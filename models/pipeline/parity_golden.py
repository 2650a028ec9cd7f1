"""Golden detections from the reference YOLOv5 implementation, for Hallmark's parity test.

For every shipped bundle (models/<brand>/manifest.json) and every sample image of that brand
(models/samples/<brand>/*.jpg|png|webp), this runs the yolov5 package's own pre- and post-processing —
`utils.augmentations.letterbox` (auto=False, as `detect.py` does for a fixed-size ONNX model),
`utils.general.non_max_suppression` and `utils.general.scale_boxes` — around the bundle's ONNX model
through onnxruntime, and writes tests/golden/<brand>.json: per confidence threshold (the manifest's and a
low one that exercises many more boxes) and per image, the boxes in original-image pixels (unrounded),
the confidences and the classes. The Rust test (tests/tests/parity.rs) requires every Hallmark box within
1 px and every confidence within 0.01 of these, with the same count and classes.

Re-run after every retraining (one command, no arguments):

    models/.venv-train/bin/python models/pipeline/parity_golden.py

Options for development: --models DIR (bundles and samples/ under it), --out DIR.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from hallmark_models import yolo_env  # noqa: E402,F401  (offline settings before yolov5 is imported)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
from yolov5.utils.augmentations import letterbox  # noqa: E402
from yolov5.utils.general import non_max_suppression, scale_boxes  # noqa: E402

LOW_CONFIDENCE = 0.05
MAX_DET = 300
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def reference(session: ort.InferenceSession, manifest: dict, image: Path, confs: list[float]) -> dict:
    spec = manifest["model"]
    size = (spec["input"]["height"], spec["input"]["width"])
    im0 = cv2.imread(str(image))  # BGR, EXIF orientation applied (IMREAD_COLOR)
    if im0 is None:
        raise SystemExit(f"cannot read {image}")
    im = letterbox(im0, size, stride=32, auto=False)[0]
    im = np.ascontiguousarray(im.transpose((2, 0, 1))[::-1])  # HWC BGR -> CHW RGB
    x = torch.from_numpy(im).float()
    x /= 255
    x = x[None]
    pred = session.run([spec["output"]["name"]], {spec["input"]["name"]: x.numpy()})[0]
    pred = torch.from_numpy(pred)
    out = {}
    for conf in confs:
        det = non_max_suppression(pred, conf, manifest["thresholds"]["iou"], max_det=MAX_DET)[0]
        det[:, :4] = scale_boxes(x.shape[2:], det[:, :4], im0.shape)
        out[f"{conf:g}"] = [
            {"class": int(d[5]), "confidence": float(d[4]), "box": [float(v) for v in d[:4]]} for d in det
        ]
    return {"width": im0.shape[1], "height": im0.shape[0], "detections": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "golden")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    bundles = sorted(p.parent for p in args.models.glob("*/manifest.json"))
    if not bundles:
        raise SystemExit(f"no bundles under {args.models}")
    for bundle in bundles:
        manifest = json.loads((bundle / "manifest.json").read_text())
        brand = manifest["brand"]
        samples = sorted(p for p in (args.models / "samples" / brand).glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not samples:
            print(f"{brand}: no sample images, skipped", file=sys.stderr)
            continue
        model = bundle / manifest["model"]["file"]
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        confs = [manifest["thresholds"]["confidence"], LOW_CONFIDENCE]
        doc = {
            "about": "written by models/pipeline/parity_golden.py from the yolov5 reference; do not edit",
            "brand": brand,
            "model_sha256": sha256(model),
            "iou": manifest["thresholds"]["iou"],
            "max_det": MAX_DET,
            "confidences": [f"{c:g}" for c in confs],
            "images": {p.name: reference(session, manifest, p, confs) for p in samples},
        }
        target = args.out / f"{brand}.json"
        target.write_text(json.dumps(doc, indent=1) + "\n")
        n = sum(len(v["detections"][doc["confidences"][-1]]) for v in doc["images"].values())
        print(f"{brand}: {len(samples)} images, {n} boxes at confidence {LOW_CONFIDENCE} -> {target}")


if __name__ == "__main__":
    main()
