"""mAP50 of an exported detector on one split, with the reference YOLOv5 letterbox, NMS and metrics
(training venv: torch, yolov5, OpenCV), and the per-item verdicts of the agent's rule (`verdicts`) on the
same detections. The release figures (thresholds, false alarms, photos, composite set) come from
`release`, which needs only the light venv.

    python -m hallmark_models.evaluate --model model.onnx --data work/northwind/data --brand northwind \
        --split test [--thresholds GENUINE COUNTERFEIT [--margin 0.15]]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from . import yolo_env  # noqa: F401
from . import verdicts as V
from .brands import BRANDS


# The detector's score filter, as the manifest's thresholds.confidence: verdicts see only these boxes.
CONFIDENCE = 0.25


class Detector:
    """ONNX Runtime session + the yolov5 package's letterbox / non_max_suppression / scale_boxes."""

    def __init__(self, model: Path, threads: int = 2):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        shape = self.session.get_inputs()[0].shape
        self.size = (int(shape[2]), int(shape[3]))

    def infer(self, bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from yolov5.utils.augmentations import letterbox

        im = letterbox(bgr, self.size, auto=False)[0]
        x = np.ascontiguousarray(im[:, :, ::-1].transpose(2, 0, 1))[None].astype(np.float32) / 255.0
        return x, self.session.run(None, {"images": x})[0]

    def detect(self, bgr: np.ndarray, conf: float, iou: float, max_det: int = 300) -> np.ndarray:
        """(M, 6): x1, y1, x2, y2 in the original image's pixels, confidence, class."""
        import torch
        from yolov5.utils.general import non_max_suppression, scale_boxes

        _, pred = self.infer(bgr)
        det = non_max_suppression(torch.from_numpy(pred), conf, iou, max_det=max_det)[0]
        det[:, :4] = scale_boxes(self.size, det[:, :4], bgr.shape).round(decimals=3)
        return det.numpy()

    def median_ms(self, bgr: np.ndarray, runs: int = 20) -> float:
        x, _ = self.infer(bgr)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            self.session.run(None, {"images": x})
            times.append((time.perf_counter() - t) * 1000)
        return statistics.median(times)


def load_labels(path: Path, w: int, h: int) -> np.ndarray:
    rows = [list(map(float, line.split())) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    out = np.zeros((len(rows), 5))
    for i, (c, cx, cy, bw, bh) in enumerate(rows):
        out[i] = [c, (cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h]
    return out


def evaluate(model: Path, data: Path, split: str, brand_key: str, iou: float = 0.45) -> dict:
    """Runs the model over a split once; returns what mAP50 and the verdict scoring need."""
    import cv2
    import torch
    from yolov5.utils.metrics import ap_per_class
    from yolov5.val import process_batch

    brand = BRANDS[brand_key]
    classes = brand.classes()
    roles = [c["role"] for c in classes]
    names = [c["name"] for c in classes]
    det_model = Detector(model)
    rows = [json.loads(line) for line in (data / f"{split}.jsonl").read_text().splitlines()]
    index = {r["image"]: r["framing"] for r in rows}
    iouv = torch.linspace(0.5, 0.95, 10)
    stats, scenes, detections = [], [], {}
    for name, framing in sorted(index.items()):
        bgr = cv2.imread(str(data / "images" / split / name))
        h, w = bgr.shape[:2]
        gt = load_labels(data / "labels" / split / f"{Path(name).stem}.txt", w, h)
        det = det_model.detect(bgr, conf=0.001, iou=iou)
        detections[name] = det
        labels = torch.from_numpy(gt).float()
        dt = torch.from_numpy(det).float()
        correct = process_batch(dt, labels, iouv) if len(dt) else torch.zeros(0, 10, dtype=torch.bool)
        stats.append((correct, dt[:, 4], dt[:, 5], labels[:, 0]))
        kept = det[det[:, 4] >= CONFIDENCE] if len(det) else det
        scenes.append(V.scene_items(name, framing, kept.tolist(), gt, roles))
    tp, conf, pcls, tcls = (torch.cat(x, 0).numpy() for x in zip(*stats))
    *_, ap, ap_class = ap_per_class(tp, conf, pcls, tcls, names=dict(enumerate(names)))
    per_class = {names[int(c)]: round(float(a), 4) for c, a in zip(ap_class, ap[:, 0])}
    sample = cv2.imread(str(data / "images" / split / sorted(index)[0]))
    return {
        "map50": float(ap[:, 0].mean()) if len(ap) else 0.0,
        "map50_per_class": per_class,
        "scenes": scenes,
        "detections": detections,
        "framings": index,
        "inference_ms": det_model.median_ms(sample),
        "input": det_model.size,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Evaluate an ONNX detector on one split.")
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--brand", required=True, choices=sorted(BRANDS))
    ap.add_argument("--split", default="test")
    ap.add_argument("--thresholds", type=float, nargs=2, metavar=("GENUINE", "COUNTERFEIT"))
    ap.add_argument("--margin", type=float, default=V.DEFAULT_MARGIN)
    args = ap.parse_args(argv)
    result = evaluate(args.model, args.data, args.split, args.brand)
    table = V.Table(result["scenes"], BRANDS[args.brand].classes())
    if args.thresholds:
        (tg, tc), m = args.thresholds, args.margin
    else:
        c = V.choose_thresholds([table], CONFIDENCE)
        tg, tc, m = c["genuine"], c["counterfeit"], c["margin"]
    scored = V.score(table, tg, tc, m)
    print(json.dumps({"map50": round(result["map50"], 4), "thresholds": [tg, tc, m],
                      "inference_ms": round(result["inference_ms"], 2), **scored}, indent=2))


if __name__ == "__main__":
    main()
