"""Conveyor recordings: a fixed camera over a moving belt, packs crossing the view frame after frame.

The scene generator (`scenes`) draws one still per scene; the agent's conveyor mode needs a *recording*
to replay, where each physical pack is seen over several frames and must get exactly one verdict. This
module renders one from the same pieces as the training scenes — the brand's pack artwork
(`artwork` via `scenes.ArtCache`), its perspective warp (`scenes._quad`, `scenes._warp`), the belt
texture and the distractor packs (`textures`) — and the same camera steps as `scenes._camera` (light
falloff, white balance, motion blur, focus blur, sensor noise, JPEG), with the difference a fixed camera
makes: one belt background and one set of camera settings for the whole recording, fresh sensor noise in
each frame, and motion blur along the belt only.

    python -m hallmark_models.conveyor --brand northwind --out DIR --frames 60 --seed 4242 \
        --packs 6 --counterfeits 2 --distractors 2 [--quality 80] [--fps 10]
    python -m hallmark_models.conveyor --check DIR --model models/northwind/model.onnx [--json]

A recording folder holds `frame-0000.jpg`, ... (960x720), a YOLO label file per frame (`frame-0000.txt`,
the format of `models/samples/*/*.txt`; distractors are never labelled) and `truth.json`:

    {"brand", "fps", "frames", "width", "height", "seed",
     "belt": {"axis": "x"|"y", "direction": +1|-1, "speed_px": float},
     "packs": [{"id", "class_id", "class", "role", "first_frame", "last_frame",
                "boxes": {"<frame>": [x1, y1, x2, y2], ...}, "edge_boxes": {...}}, ...]}

`role` is `genuine` or `counterfeit` for the brand's packs, and `distractor` (with `class_id` and `class`
null) for other brands' packs, which must not become items. A pack is in view, and has a box, in the
frames where at least 40% of its face lies inside the frame; boxes are clipped to the frame.
`edge_boxes` holds the frames where less of it shows (entering or leaving): not an item there, but a
detector may fire on it, and that is not a false alarm on the belt.

`--check` runs a bundle's detector over every frame the way Hallmark does (320x320 letterbox, score =
objectness x class score, class-wise NMS at IoU 0.45, confidence 0.25) with numpy and ONNX Runtime only,
so it runs in the light `.venv`, and reports per pack in how many of its frames it was detected
(IoU >= 0.5 with its truth box) and as which class, the most confident detection of the other role
(counterfeit on a genuine pack, genuine on a counterfeit) among those overlapping it, and every
detection that matches no pack.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from . import scenes, textures
from .brands import BRANDS, Brand

SIZE = (960, 720)  # the models' training size
IN_VIEW = 0.4  # share of a pack's face inside the frame for it to count as in view
RAIL = 18  # px of the belt's side rails (textures.background "conveyor")
SIDE_PX = (170.0, 260.0)  # longest side of a pack in the frame: what a conveyor camera gives
VIEW_FRAMES = (10.0, 14.0)  # target frames in view per pack, when the recording is long enough
MIN_VIEW_FRAMES = 6.0  # fastest belt allowed: a pack must still be seen this many times
SERIAL_BASE = 900_000  # pack serials apart from the training splits' (100000 .. 300000 + ...)


@dataclass(frozen=True)
class Belt:
    axis: int  # 0: packs move along x, 1: along y
    direction: int  # +1: towards larger coordinates, -1: towards smaller
    speed: float  # px per frame
    cross: tuple[float, float]  # usable range across the belt, between the rails


@dataclass(frozen=True)
class Pack:
    id: int
    class_id: int | None  # None for a distractor
    role: str  # genuine | counterfeit | distractor
    art: Image.Image  # RGBA front face
    size: tuple[float, float]  # w, h of the face in frame pixels before rotation
    angle: float  # radians, constant while it travels
    wobble: tuple[float, float, float]  # amplitude (radians), period (frames), phase
    shape_seed: int  # the face's slight perspective (scenes._quad's jitter), fixed for the pack
    cross: float  # centre across the belt
    offset: float  # belt travel (px) at which its centre reaches the entry edge
    exposure: float  # light on the pack


@dataclass(frozen=True)
class Camera:
    field: np.ndarray  # (H, W, 3) gain per pixel: falloff x exposure x white balance
    motion_px: int  # box blur length along the belt
    focus_sigma: float  # 0 = sharp
    noise_sigma: float
    quality: int  # JPEG


# --- geometry (pure) ---------------------------------------------------------------------------------


def belt_axis(background: Image.Image) -> int:
    """The belt's direction of travel from its texture: the rails run along it (0 = x, 1 = y)."""
    a = np.asarray(background, dtype=np.float32)
    top, left = a[:RAIL].std(axis=(0, 1)).sum(), a[:, :RAIL].std(axis=(0, 1)).sum()
    return 0 if top < left else 1


def quad_at(pack: Pack, belt: Belt, frame: int, size=SIZE) -> np.ndarray:
    """The pack's four corners (4, 2) in frame pixels at `frame`."""
    length = size[belt.axis]
    u = belt.speed * frame - pack.offset  # how far the centre has travelled past the entry edge
    along = u if belt.direction > 0 else length - u
    centre = (along, pack.cross) if belt.axis == 0 else (pack.cross, along)
    amp, period, phase = pack.wobble
    angle = pack.angle + amp * math.sin(2 * math.pi * frame / period + phase)
    return scenes._quad(np.random.default_rng(pack.shape_seed), centre, pack.size, angle, 0.03)


def clip_polygon(poly: np.ndarray, w: float, h: float) -> np.ndarray:
    """Sutherland-Hodgman clip of a convex polygon (N, 2) to the rectangle [0, w] x [0, h]."""
    pts = [tuple(p) for p in poly]
    for axis, bound, keep_below in ((0, 0.0, False), (0, w, True), (1, 0.0, False), (1, h, True)):
        inside = (lambda p: p[axis] <= bound) if keep_below else (lambda p: p[axis] >= bound)
        out = []
        for i, cur in enumerate(pts):
            prev = pts[i - 1]
            if inside(cur):
                if not inside(prev):
                    out.append(_cross_at(prev, cur, axis, bound))
                out.append(cur)
            elif inside(prev):
                out.append(_cross_at(prev, cur, axis, bound))
        pts = out
        if not pts:
            break
    return np.asarray(pts, dtype=np.float64).reshape(-1, 2)


def _cross_at(a, b, axis, bound):
    t = (bound - a[axis]) / (b[axis] - a[axis])
    return (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))


def visible_share(quad: np.ndarray, size=SIZE) -> float:
    """Share of the pack's face inside the frame."""
    area = abs(scenes._shoelace(quad))
    clipped = clip_polygon(quad, *size)
    return abs(scenes._shoelace(clipped)) / area if len(clipped) >= 3 and area > 0 else 0.0


def box_of(quad: np.ndarray, size=SIZE) -> list[float]:
    """The quad's bounding box clipped to the frame, x1, y1, x2, y2."""
    w, h = size
    x1, y1 = quad.min(axis=0).clip([0, 0], [w, h])
    x2, y2 = quad.max(axis=0).clip([0, 0], [w, h])
    return [round(float(v), 1) for v in (x1, y1, x2, y2)]


def _extent(size_wh, angle: float) -> tuple[float, float]:
    """Bounding-box width and height of a w x h face turned by `angle` (plus the quad jitter and wobble)."""
    w, h = size_wh
    c, s = abs(math.cos(angle)), abs(math.sin(angle))
    pad = 1.1
    return (w * c + h * s) * pad, (w * s + h * c) * pad


# --- planning --------------------------------------------------------------------------------------


def _classes(rng, brand: Brand, packs: int, counterfeits: int) -> list[int]:
    """Class ids: the genuine packs cycle through the products (so three packs are three products), the
    counterfeits are of products drawn at random, all in random order."""
    n_products = len(brand.products)
    order = rng.permutation(n_products)
    genuine = [2 * int(order[k % n_products]) for k in range(packs - counterfeits)]
    faked = rng.permutation(n_products)
    fakes = [2 * int(faked[k % n_products]) + 1 for k in range(counterfeits)]
    ids = genuine + fakes
    return [ids[i] for i in rng.permutation(len(ids))]


def plan(rng, brand: Brand, frames: int, packs: int, counterfeits: int, distractors: int,
         size=SIZE, speed: float | None = None, serial_base: int = SERIAL_BASE):
    """The belt background, the belt and the packs' schedule for a recording of `frames` frames.

    Packs follow each other along the belt without overlapping; between two packs the spacing is either
    close (both in view at once) or wide (a few empty frames between them). Every pack enters after
    frame 0 and is gone by the last frame. Raises ValueError when they cannot fit in `frames`."""
    if not 0 <= counterfeits <= packs:
        raise ValueError("counterfeits must be between 0 and packs")
    background = textures.background(rng, "conveyor", size)
    axis = belt_axis(background)
    direction = 1 if rng.random() < 0.5 else -1
    length, across = size[axis], size[1 - axis]
    arts = scenes.ArtCache(brand, variants=1 << 20, serial_base=serial_base)
    palette = [p.colour for p in brand.products] + [p.off_shade for p in brand.products if any(p.off_shade)]

    kinds = _classes(rng, brand, packs, counterfeits) + [None] * distractors
    order = list(rng.permutation(len(kinds)))
    drafts = []  # (class_id, art, size, angle, extent along, extent across)
    for idx in order:
        class_id = kinds[idx]
        side = float(rng.uniform(*SIDE_PX))
        if class_id is None:
            dw, dh = int(side * rng.uniform(0.5, 0.9)), int(side)
            art = textures.distractor(rng, (dw, dh), palette).convert("RGBA")
        else:
            art = arts.get(class_id, len(drafts))  # its own variant: a serial no other pack carries
        aspect = art.width / art.height
        face = (side * aspect, side) if aspect <= 1 else (side, side / aspect)
        angle = math.radians(rng.uniform(-180, 180) if rng.random() < 0.5 else rng.uniform(-30, 30))
        ext = _extent(face, angle)
        drafts.append((class_id, art, face, angle, ext[axis], ext[1 - axis]))

    # Spacing between consecutive centres, along the belt.
    spacing, closest = [], []
    for a, b in zip(drafts, drafts[1:]):
        least = (a[4] + b[4]) / 2 + 12
        closest.append(least)
        if rng.random() < 0.65:
            spacing.append(least + rng.uniform(0, 0.35) * length)  # close: two packs in view
        else:
            spacing.append(length + (a[4] + b[4]) / 2 + rng.uniform(0.5, 3.0) * length / 12)  # a gap
    ext_first, ext_last = drafts[0][4], drafts[-1][4]
    mean_ext = float(np.mean([d[4] for d in drafts]))
    fastest = (length + 0.2 * mean_ext) / MIN_VIEW_FRAMES
    travel = lambda: ext_first / 2 + sum(spacing) + length + ext_last / 2  # noqa: E731  first entry to last exit
    while travel() > fastest * (frames - 2) and spacing != closest:  # a short recording: close the widest gaps
        i = int(np.argmax(np.subtract(spacing, closest)))
        spacing[i] = closest[i]
    path = travel()
    if speed is None:
        speed = (length + 0.2 * mean_ext) / rng.uniform(*VIEW_FRAMES)
        speed = max(speed, path / (frames - 2))  # the whole procession must pass in time
    if speed > fastest or speed * (frames - 2) < path:
        raise ValueError(f"{len(drafts)} packs do not fit in {frames} frames; use more frames or fewer packs")
    # Spare travel widens the wide gaps (or all of them when every pair is close), and a lead-in.
    spare = speed * (frames - 2) - path
    wide = [i for i, s in enumerate(spacing) if s > length] or list(range(len(spacing)))
    lead = spare / (len(wide) + 1) if spacing else spare / 2
    for i in wide:
        spacing[i] += (spare - lead) / len(wide)

    out, offset = [], ext_first / 2 + speed * 0.5 + lead
    for k, (class_id, art, face, angle, ext_along, ext_across) in enumerate(drafts):
        if k:
            offset += spacing[k - 1]
        lo, hi = RAIL + ext_across / 2 + 6, across - RAIL - ext_across / 2 - 6
        cross = float(rng.uniform(lo, hi)) if hi > lo else across / 2
        role = "distractor" if class_id is None else brand.classes()[class_id]["role"]
        wobble = (math.radians(rng.uniform(0, 1.5)), float(rng.uniform(6, 14)), float(rng.uniform(0, 2 * math.pi)))
        out.append(Pack(k, class_id, role, art, face, angle, wobble, int(rng.integers(1 << 31)), cross, offset,
                        float(rng.uniform(0.85, 1.15))))
    belt = Belt(axis, direction, float(speed), (RAIL, across - RAIL))
    return background, belt, out


def camera(rng, belt: Belt, size=SIZE, quality: int | None = None) -> Camera:
    """One camera's settings for the whole recording, drawn as `scenes._camera` draws a still's."""
    w, h = size
    gx, gy = rng.uniform(-1, 1, 2)
    ramp = 1 + rng.uniform(0.1, 0.35) * (gx * np.linspace(-1, 1, w)[None, :] + gy * np.linspace(-1, 1, h)[:, None]) / 1.4
    t = rng.uniform(-0.06, 0.06)
    field = (ramp * rng.uniform(0.8, 1.2))[..., None] * np.array([1 + t, 1.0, 1 - t])
    motion = int(np.clip(round(belt.speed * rng.uniform(0.04, 0.08)), 3, 9))
    focus = float(rng.uniform(0.4, 1.0)) if rng.random() < 0.4 else 0.0
    q = int(rng.integers(70, 91)) if quality is None else int(quality)
    return Camera(field.astype(np.float32), motion, focus, float(rng.uniform(1.0, 3.0)), q)


# --- rendering -------------------------------------------------------------------------------------


def _motion_blur(arr: np.ndarray, k: int, axis: int) -> np.ndarray:
    """Box blur of length k along an image axis (0 = x, 1 = y), edges repeated."""
    if k <= 1:
        return arr
    ax = 1 if axis == 0 else 0  # x runs along array axis 1
    before, after = (k - 1) // 2, k // 2
    pad = [(0, 0)] * arr.ndim
    pad[ax] = (before + 1, after)
    c = np.cumsum(np.pad(arr, pad, mode="edge"), axis=ax, dtype=np.float32)
    n = arr.shape[ax]
    hi = np.take(c, np.arange(k, k + n), axis=ax)
    lo = np.take(c, np.arange(0, n), axis=ax)
    return (hi - lo) / k


def render_frame(background: Image.Image, belt: Belt, packs: list[Pack], cam: Camera, frame: int,
                 noise_rng: np.random.Generator, size=SIZE) -> tuple[Image.Image, dict[int, tuple[float, list[float]]]]:
    """One frame, and the share of its face inside the frame and the clipped box of every pack drawn."""
    canvas = background.copy()
    boxes = {}
    for p in packs:
        quad = quad_at(p, belt, frame, size)
        share = visible_share(quad, size)
        if share <= 0:
            continue
        patch, x0, y0 = scenes._warp(p.art, quad)
        rgba = np.asarray(patch, dtype=np.float32).copy()
        rgba[..., :3] *= p.exposure
        patch = Image.fromarray(rgba.clip(0, 255).astype(np.uint8), "RGBA")
        alpha = patch.getchannel("A")
        shadow = Image.new("RGBA", patch.size, (0, 0, 0, 0))
        shadow.putalpha(alpha.point(lambda a: a * 0.45).filter(ImageFilter.GaussianBlur(6)))
        off = int(max(p.size) * 0.03)
        canvas.paste(shadow, (x0 + off, y0 + off), shadow)
        canvas.paste(patch, (x0, y0), patch)
        boxes[p.id] = (share, box_of(quad, size))
    arr = _motion_blur(np.asarray(canvas, dtype=np.float32), cam.motion_px, belt.axis) * cam.field
    img = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
    if cam.focus_sigma:
        img = img.filter(ImageFilter.GaussianBlur(cam.focus_sigma))
    arr = np.asarray(img, dtype=np.float32) + noise_rng.normal(0, cam.noise_sigma, (size[1], size[0], 3)).astype(np.float32)
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8)), boxes


def yolo_labels(boxes: list[tuple[int, list[float]]], size=SIZE) -> str:
    """YOLO rows (class cx cy w h, normalised) for (class_id, box) pairs."""
    w, h = size
    return "".join(f"{c} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}\n"
                   for c, (x1, y1, x2, y2) in boxes)


def write_recording(out: Path, brand: Brand, frames: int = 60, seed: int = 4242, packs: int = 5,
                    counterfeits: int = 1, distractors: int = 1, fps: float = 10.0, quality: int | None = None,
                    speed: float | None = None, size=SIZE) -> dict:
    """Renders the recording into `out` (frames, labels, truth.json); returns the truth."""
    rng = np.random.default_rng([seed, 11, zlib.crc32(brand.key.encode())])  # brands differ at one seed
    background, belt, schedule = plan(rng, brand, frames, packs, counterfeits, distractors, size, speed)
    cam = camera(rng, belt, size, quality)
    noise_rng = np.random.default_rng([seed, 12])
    out.mkdir(parents=True, exist_ok=True)
    for old in list(out.glob("frame-*.jpg")) + list(out.glob("frame-*.txt")):
        old.unlink()
    classes = brand.classes()
    tracks: dict[int, dict[str, list[float]]] = {p.id: {} for p in schedule}
    edges: dict[int, dict[str, list[float]]] = {p.id: {} for p in schedule}
    for f in range(frames):
        img, drawn = render_frame(background, belt, schedule, cam, f, noise_rng, size)
        boxes = {pid: box for pid, (share, box) in drawn.items() if share >= IN_VIEW}
        img.save(out / f"frame-{f:04d}.jpg", quality=cam.quality, optimize=True)
        labelled = [(p.class_id, boxes[p.id]) for p in schedule if p.id in boxes and p.class_id is not None]
        (out / f"frame-{f:04d}.txt").write_text(yolo_labels(labelled, size))
        for pid, (share, box) in drawn.items():
            (tracks if share >= IN_VIEW else edges)[pid][str(f)] = box
    truth = {
        "brand": brand.key, "fps": fps, "frames": frames, "width": size[0], "height": size[1], "seed": seed,
        "belt": {"axis": "xy"[belt.axis], "direction": belt.direction, "speed_px": round(belt.speed, 2)},
        "packs": [],
    }
    for p in schedule:
        seen = sorted(int(f) for f in tracks[p.id])
        truth["packs"].append({
            "id": p.id,
            "class_id": p.class_id,
            "class": None if p.class_id is None else classes[p.class_id]["name"],
            "role": p.role,
            "first_frame": seen[0] if seen else None,
            "last_frame": seen[-1] if seen else None,
            "boxes": tracks[p.id],
            "edge_boxes": edges[p.id],
        })
    (out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return truth


# --- checking against a bundle's detector --------------------------------------------------------------


def letterbox(rgb: np.ndarray, size=(320, 320)) -> tuple[np.ndarray, float, tuple[float, float]]:
    """yolov5's letterbox (auto=False): bilinear resize as cv2.INTER_LINEAR, grey 114 padding.
    Returns the (1, 3, H, W) float32 input, the scale and the (left, top) padding."""
    h0, w0 = rgb.shape[:2]
    r = min(size[0] / h0, size[1] / w0)
    nw, nh = int(round(w0 * r)), int(round(h0 * r))
    if (nw, nh) != (w0, h0):
        ys = np.clip((np.arange(nh) + 0.5) * (h0 / nh) - 0.5, 0, h0 - 1)
        xs = np.clip((np.arange(nw) + 0.5) * (w0 / nw) - 0.5, 0, w0 - 1)
        y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
        y1, x1 = np.minimum(y0 + 1, h0 - 1), np.minimum(x0 + 1, w0 - 1)
        fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
        a = rgb.astype(np.float32)
        top = a[y0][:, x0] * (1 - fx) + a[y0][:, x1] * fx
        bot = a[y1][:, x0] * (1 - fx) + a[y1][:, x1] * fx
        rgb = np.round(top * (1 - fy) + bot * fy).clip(0, 255).astype(np.uint8)
    dw, dh = (size[1] - nw) / 2, (size[0] - nh) / 2
    top, left = int(round(dh - 0.1)), int(round(dw - 0.1))
    canvas = np.full((size[0], size[1], 3), 114, dtype=np.uint8)
    canvas[top:top + nh, left:left + nw] = rgb
    return canvas.transpose(2, 0, 1)[None].astype(np.float32) / 255.0, r, (dw, dh)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Greedy NMS (torchvision's rule: drop boxes with IoU > iou against a kept one)."""
    order, keep = list(np.argsort(-scores, kind="stable")), []
    while order:
        i = order.pop(0)
        keep.append(i)
        if not order:
            break
        rest = np.asarray(order)
        lt = np.maximum(boxes[i, :2], boxes[rest, :2])
        rb = np.minimum(boxes[i, 2:], boxes[rest, 2:])
        inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
        area = lambda b: np.prod(b[..., 2:] - b[..., :2], axis=-1)  # noqa: E731
        ious = inter / (area(boxes[i]) + area(boxes[rest]) - inter + 1e-9)
        order = [j for j, o in zip(rest, ious) if o <= iou]
    return keep


def detect(session, rgb: np.ndarray, conf: float = 0.25, iou: float = 0.45, max_det: int = 300) -> np.ndarray:
    """(M, 6) x1, y1, x2, y2, confidence, class in the image's pixels, as yolov5's non_max_suppression
    (one class per box: the best of objectness x class score) and scale_boxes give them."""
    inp = session.get_inputs()[0]
    x, r, (dw, dh) = letterbox(rgb, (int(inp.shape[2]), int(inp.shape[3])))
    pred = session.run(None, {inp.name: x})[0][0]
    pred = pred[pred[:, 4] > conf]
    scores = pred[:, 5:] * pred[:, 4:5]
    cls, score = scores.argmax(1), scores.max(1)
    keep = score > conf
    pred, cls, score = pred[keep], cls[keep], score[keep]
    boxes = np.stack([pred[:, 0] - pred[:, 2] / 2, pred[:, 1] - pred[:, 3] / 2,
                      pred[:, 0] + pred[:, 2] / 2, pred[:, 1] + pred[:, 3] / 2], 1) if len(pred) else np.zeros((0, 4))
    kept = nms(boxes + cls[:, None] * 7680.0, score, iou)[:max_det] if len(pred) else []
    h0, w0 = rgb.shape[:2]
    out = np.zeros((len(kept), 6), dtype=np.float64)
    for n, i in enumerate(kept):
        b = (boxes[i] - np.array([dw, dh, dw, dh])) / r
        out[n, :4] = np.clip(b, 0, [w0, h0, w0, h0])
        out[n, 4], out[n, 5] = score[i], cls[i]
    return out


def _iou(a, b) -> float:
    lt, rb = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = float(np.prod(np.clip(rb - lt, 0, None)))
    union = float(np.prod(np.subtract(a[2:], a[:2])) + np.prod(np.subtract(b[2:], b[:2]))) - inter
    return inter / union if union > 0 else 0.0


def check(recording: Path, model: Path, conf: float = 0.25, iou: float = 0.45) -> dict:
    """Runs the detector on every frame; per pack, the frames it was detected in (IoU >= 0.5 with its
    truth box, the most confident such detection) and as which classes; detections matching no pack
    (with the distractor they fall on, if any)."""
    import onnxruntime as ort

    truth = json.loads((recording / "truth.json").read_text())
    names = [c["name"] for c in BRANDS[truth["brand"]].classes()]
    roles = [c["role"] for c in BRANDS[truth["brand"]].classes()]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    per_pack = {p["id"]: {"id": p["id"], "class": p["class"] or "(distractor)", "role": p["role"],
                          "in_view": len(p["boxes"]), "detected": 0, "as": Counter(), "conf": [],
                          "other_role": 0.0}
                for p in truth["packs"]}
    stray = []
    for f in range(truth["frames"]):
        with Image.open(recording / f"frame-{f:04d}.jpg") as im:
            det = detect(session, np.asarray(im.convert("RGB")), conf, iou)
        used = set()
        for p in truth["packs"]:
            box = p["boxes"].get(str(f))
            if box is None or p["class_id"] is None:
                continue
            hits = [j for j in range(len(det)) if _iou(det[j, :4], box) >= 0.5]
            used.update(hits)
            if hits:
                best = max(hits, key=lambda j: det[j, 4])
                r = per_pack[p["id"]]
                r["detected"] += 1
                r["as"][names[int(det[best, 5])]] += 1
                r["conf"].append(float(det[best, 4]))
                other = [det[j, 4] for j in hits if roles[int(det[j, 5])] != p["role"]]
                r["other_role"] = round(max([r["other_role"], *map(float, other)]), 3)
        for j in range(len(det)):
            if j in used:
                continue
            on = [(p["id"], kind) for p in truth["packs"] for kind in ("boxes", "edge_boxes")
                  if str(f) in p.get(kind, {}) and _iou(det[j, :4], p[kind][str(f)]) >= 0.3]
            stray.append({"frame": f, "class": names[int(det[j, 5])], "confidence": round(float(det[j, 4]), 3),
                          "box": [round(float(v)) for v in det[j, :4]], "on_pack": on[0][0] if on else None,
                          "at_edge": bool(on) and on[0][1] == "edge_boxes"})
    packs = []
    for r in per_pack.values():
        r["as"] = dict(r["as"].most_common())
        r["mean_conf"] = round(float(np.mean(r.pop("conf"))), 3) if r["detected"] else None
        packs.append(r)
    return {"recording": str(recording), "model": str(model), "packs": packs, "unmatched": stray}


def format_check(result: dict) -> str:
    lines = [f"{result['recording']} with {result['model']}",
             "| pack | truth | role | in view | detected | as (frames) | mean conf | best other-role conf |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["packs"]:
        seen = ", ".join(f"{k} {v}" for k, v in r["as"].items()) or "-"
        det = "-" if r["role"] == "distractor" else r["detected"]
        lines.append(f"| {r['id']} | {r['class']} | {r['role']} | {r['in_view']} | {det} | {seen} | {r['mean_conf'] or '-'} | {r['other_role'] or '-'} |")
    lines.append(f"unmatched detections: {len(result['unmatched'])}")
    for s in result["unmatched"]:
        where = "on the belt" if s["on_pack"] is None else f"on pack {s['on_pack']}" + (", under 40% in view" if s["at_edge"] else "")
        lines.append(f"  frame {s['frame']}: {s['class']} {s['confidence']} {s['box']} ({where})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--brand", choices=sorted(BRANDS))
    ap.add_argument("--out", type=Path)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--packs", type=int, default=5, help="packs of the brand")
    ap.add_argument("--counterfeits", type=int, default=1, help="how many of them are counterfeit")
    ap.add_argument("--distractors", type=int, default=1, help="other brands' packs (never items)")
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("--quality", type=int, help="JPEG quality (default: drawn from 70..90)")
    ap.add_argument("--speed", type=float, help="belt speed in px per frame (default: from the frames in view)")
    ap.add_argument("--check", type=Path, metavar="DIR", help="check a recording against --model instead")
    ap.add_argument("--model", type=Path)
    ap.add_argument("--json", action="store_true", help="--check: print JSON")
    args = ap.parse_args(argv)
    if args.check:
        if not args.model:
            ap.error("--check needs --model")
        result = check(args.check, args.model)
        print(json.dumps(result, indent=1) if args.json else format_check(result))
        return
    if not (args.brand and args.out):
        ap.error("--brand and --out are required to render")
    try:
        truth = write_recording(args.out, BRANDS[args.brand], args.frames, args.seed, args.packs, args.counterfeits,
                                args.distractors, args.fps, args.quality, args.speed)
    except ValueError as e:
        print(f"conveyor: {e}", file=sys.stderr)
        sys.exit(2)
    for p in truth["packs"]:
        print(f"pack {p['id']}: {p['class'] or 'distractor'} ({p['role']}) frames {p['first_frame']}..{p['last_frame']}")
    print(f"belt {truth['belt']}, {truth['frames']} frames -> {args.out}")


if __name__ == "__main__":
    main()
