"""The detector as the agent runs it, with no torch and no OpenCV (the light venv: onnxruntime, numpy,
Pillow): letterbox with OpenCV-style bilinear resize (no antialiasing, like INTER_LINEAR and the agent's
fixed-kernel resize), pad 114, RGB /255; YOLOv5 decode (objectness above the score filter, score =
objectness x best class score, kept when above the filter); class-aware NMS (IoU above the threshold
suppresses; at most 300 kept); boxes mapped back to the original pixels and clipped.

    det = Detector(Path("models/northwind/model.onnx")).detect(rgb, conf=0.25, iou=0.45)
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

MAX_WH = 7680.0  # yolov5's class offset for class-aware NMS
MAX_NMS = 30000


def letterbox_geometry(w: int, h: int, dw: int, dh: int) -> tuple[float, int, int, int, int]:
    """(gain, resized width, resized height, left, top), as yolov5's letterbox(auto=False)."""
    gain = min(dh / h, dw / w)
    rw = min(max(int(round(w * gain)), 1), dw)
    rh = min(max(int(round(h * gain)), 1), dh)
    left = int(round((dw - rw) / 2 - 0.1))
    top = int(round((dh - rh) / 2 - 0.1))
    return gain, rw, rh, left, top


def resize_bilinear(img: np.ndarray, rw: int, rh: int) -> np.ndarray:
    """OpenCV INTER_LINEAR (half-pixel centres, edge clamp, no antialiasing) on an (H, W, 3) uint8 image."""
    h, w = img.shape[:2]
    if (w, h) == (rw, rh):
        return img

    def axis(n_src, n_dst):
        x = (np.arange(n_dst) + 0.5) * (n_src / n_dst) - 0.5
        x0 = np.floor(x)
        f = x - x0
        x0 = x0.astype(int)
        lo = np.clip(x0, 0, n_src - 1)
        hi = np.clip(x0 + 1, 0, n_src - 1)
        f = np.where(x0 < 0, 0.0, np.where(x0 >= n_src - 1, 0.0, f))
        return lo, hi, f.astype(np.float32)

    y0, y1, fy = axis(h, rh)
    x0, x1, fx = axis(w, rw)
    im = img.astype(np.float32)
    top = im[y0][:, x0] * (1 - fx)[None, :, None] + im[y0][:, x1] * fx[None, :, None]
    bot = im[y1][:, x0] * (1 - fx)[None, :, None] + im[y1][:, x1] * fx[None, :, None]
    out = top * (1 - fy)[:, None, None] + bot * fy[:, None, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def letterbox(rgb: np.ndarray, dw: int, dh: int) -> tuple[np.ndarray, float]:
    """An (H, W, 3) uint8 RGB image as the model's input, (1, 3, dh, dw) float32 in 0..1, and its gain."""
    h, w = rgb.shape[:2]
    gain, rw, rh, left, top = letterbox_geometry(w, h, dw, dh)
    canvas = np.full((dh, dw, 3), 114, dtype=np.uint8)
    canvas[top:top + rh, left:left + rw] = resize_bilinear(rgb, rw, rh)
    return np.ascontiguousarray(canvas.transpose(2, 0, 1))[None].astype(np.float32) / 255.0, gain


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thr: float) -> np.ndarray:
    """Indices kept by greedy NMS (best first; a box whose IoU with a kept one is above iou_thr goes)."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1) * (y2 - y1)
    keep = []
    while len(order):
        i = order[0]
        keep.append(i)
        rest = order[1:]
        iw = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        ih = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = iw * ih
        union = area[i] + area[rest] - inter
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0)
        order = rest[iou <= iou_thr]
    return np.array(keep, dtype=int)


def postprocess(pred: np.ndarray, conf: float, iou: float, max_det: int = 300) -> np.ndarray:
    """(N, 5 + C) raw rows -> (M, 6) x1, y1, x2, y2 (input pixels), score, class; best score first."""
    pred = pred[pred[:, 4] > conf]
    if not len(pred):
        return np.zeros((0, 6), dtype=np.float32)
    cls_scores = pred[:, 5:] * pred[:, 4:5]
    j = cls_scores.argmax(1)
    s = cls_scores[np.arange(len(pred)), j]
    cx, cy, w, h = pred[:, 0], pred[:, 1], pred[:, 2], pred[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
    keep = s > conf
    boxes, s, j = boxes[keep], s[keep], j[keep]
    if not len(s):
        return np.zeros((0, 6), dtype=np.float32)
    top = np.argsort(-s, kind="stable")[:MAX_NMS]
    boxes, s, j = boxes[top], s[top], j[top]
    k = nms(boxes + (j[:, None] * MAX_WH).astype(np.float32), s, iou)[:max_det]
    return np.concatenate([boxes[k], s[k, None], j[k, None].astype(np.float32)], 1).astype(np.float32)


class Detector:
    """ONNX Runtime session over a bundle's model.onnx."""

    def __init__(self, model: Path, threads: int = 2):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.size = (int(inp.shape[3]), int(inp.shape[2]))  # width, height

    def tensor(self, rgb: np.ndarray) -> tuple[np.ndarray, tuple]:
        h, w = rgb.shape[:2]
        x, gain = letterbox(rgb, *self.size)
        return x, (w, h, gain)

    def detect(self, rgb: np.ndarray, conf: float = 0.25, iou: float = 0.45, max_det: int = 300) -> np.ndarray:
        """(M, 6): x1, y1, x2, y2 in the original image's pixels, score, class."""
        x, (w, h, gain) = self.tensor(rgb)
        pred = self.session.run(None, {self.input_name: x})[0][0]
        det = postprocess(pred, conf, iou, max_det)
        dw, dh = self.size
        pad_x, pad_y = (dw - w * gain) / 2, (dh - h * gain) / 2
        det[:, [0, 2]] = np.clip((det[:, [0, 2]] - pad_x) / gain, 0, w)
        det[:, [1, 3]] = np.clip((det[:, [1, 3]] - pad_y) / gain, 0, h)
        return det

    def median_ms(self, rgb: np.ndarray, runs: int = 20) -> float:
        x, _ = self.tensor(rgb)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            self.session.run(None, {self.input_name: x})
            times.append((time.perf_counter() - t) * 1000)
        return statistics.median(times)


def load_rgb(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB (grey, palette and alpha images converted)."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))
