"""Copy-paste synthesis: a brand's few photos multiplied into a training set. Its own annotated packs
(crops of its training photos, and its reference artwork when it gave some) are pasted onto real-photo
backgrounds (the opencv-doc train third, `photos`, and its own product-free training photos) at any
angle, scale, perspective and light, with product-free frames among them. Training data only: the
validation and test composites are drawn by `composite`'s own code, so a figure on them never grades
this code against itself.

Every frame is seeded by `[seed, index]`: the same inputs give the same set.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

LONG_SIDE = (640, 960)  # frames are written this long: training runs at 320, larger buys nothing
PACK_SIDE = (0.12, 0.55)  # a pasted pack's longer side, as a share of the frame's longer side
ANY_ANGLE = 0.5  # the share of packs turned to any angle; the rest tilt by up to 20 degrees
EMPTY_SHARE = 0.15  # frames with no pack: product-free negatives
REFERENCE_SHARE = 0.25  # of the packs, when the brand gave reference artwork


@dataclass
class Source:
    """A pack to paste: its class id and its picture (a crop of a photo, or reference artwork)."""
    cls: int
    image: Image.Image
    reference: bool = False


def crops(photos: list[tuple[Path, list[tuple[int, float, float, float, float]]]], limit: int = 1200) -> list[Source]:
    """Each labelled pack of the photos (path, [(class, x1, y1, x2, y2)]) cut out at its box, no larger than
    `limit` px on its longer side."""
    out = []
    for path, boxes in photos:
        with Image.open(path) as im:
            rgb = im.convert("RGB")
        for c, x1, y1, x2, y2 in boxes:
            box = tuple(int(round(v)) for v in (x1, y1, x2, y2))
            if box[2] - box[0] < 8 or box[3] - box[1] < 8:
                continue
            crop = rgb.crop(box)
            if max(crop.size) > limit:
                crop.thumbnail((limit, limit))
            out.append(Source(int(c), crop))
    return out


def _homography(src, dst) -> np.ndarray:
    a, b = [], []
    for (x, y), (u, v) in zip(src, dst):
        a += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        b += [u, v]
    return np.append(np.linalg.solve(np.array(a, float), np.array(b, float)), 1).reshape(3, 3)


def place_quad(rng: np.random.Generator, wh: tuple[int, int], frame_wh: tuple[int, int]) -> np.ndarray:
    """Where a pack's corners land: scaled, turned (any angle for ANY_ANGLE of the packs), its corners
    jittered for perspective, anywhere the whole pack fits."""
    W, H = frame_wh
    w, h = wh
    s = rng.uniform(*PACK_SIDE) * max(W, H) / max(w, h)
    w, h = w * s, h * s
    q = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    q += rng.uniform(-0.1, 0.1, (4, 2)) * [w, h]
    deg = rng.uniform(0, 360) if rng.random() < ANY_ANGLE else rng.uniform(-20, 20)
    a = math.radians(deg)
    q = q @ np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    lo, hi = q.min(0), q.max(0)
    cx = rng.uniform(-lo[0], W - hi[0]) if hi[0] - lo[0] < W else W / 2
    cy = rng.uniform(-lo[1], H - hi[1]) if hi[1] - lo[1] < H else H / 2
    return q + [cx, cy]


def light(rng: np.random.Generator, rgb: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Brightness, contrast and a white-balance error (warm or cool), float32 0..255 in and out."""
    mean = rgb.mean()
    x = (rgb - mean) * rng.uniform(0.7, 1.3) + mean
    x = x * rng.uniform(0.55, 1.35)
    gains = np.clip(1 + rng.normal(0, 0.09 * strength, 3), 0.7, 1.3)
    if rng.random() < 0.4:  # a warm or a cold light
        t = rng.uniform(0.05, 0.2) * rng.choice([-1, 1])
        gains = gains * [1 + t, 1, 1 - 1.3 * t]
    return np.clip(x * gains, 0, 255)


def paste(frame: np.ndarray, src: Source, quad: np.ndarray, rng: np.random.Generator) -> None:
    """Warps `src` onto `quad` of `frame` (H, W, 3 float32) with its own light and a feathered edge."""
    H, W = frame.shape[:2]
    w, h = src.image.size
    inv = np.linalg.inv(_homography([(0, 0), (w, 0), (w, h), (0, h)], quad))
    coeffs = tuple((inv / inv[2, 2]).flatten()[:8])
    lit = Image.fromarray(light(rng, np.asarray(src.image, np.float32)).astype(np.uint8))
    layer = np.asarray(lit.transform((W, H), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR),
                       np.float32)
    mask = Image.new("L", (w, h), 255).transform((W, H), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR)
    alpha = np.asarray(mask.filter(ImageFilter.GaussianBlur(0.8)), np.float32)[..., None] / 255.0
    frame *= 1 - alpha
    frame += layer * alpha


def camera(rng: np.random.Generator, frame: np.ndarray) -> bytes:
    """The whole frame: a colour cast, blur, sensor noise and JPEG."""
    x = frame * np.clip(1 + rng.normal(0, 0.05, 3), 0.85, 1.15)
    x = x + rng.normal(0, rng.uniform(0, 5), x.shape)
    im = Image.fromarray(np.clip(x, 0, 255).astype(np.uint8))
    r = rng.uniform(0, 1.5)
    if r > 0.3:
        im = im.filter(ImageFilter.GaussianBlur(r))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=int(rng.integers(50, 96)))
    return buf.getvalue()


def background(rng: np.random.Generator, bank: list[np.ndarray]) -> np.ndarray:
    """A random part (60-100% of each side) of a random background, scaled to LONG_SIDE, maybe turned."""
    src = bank[int(rng.integers(0, len(bank)))]
    h, w = src.shape[:2]
    cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    im = Image.fromarray(np.ascontiguousarray(np.rot90(src[y0:y0 + ch, x0:x0 + cw], int(rng.integers(0, 4)))))
    s = rng.uniform(*LONG_SIDE) / max(im.size)
    im = im.resize((max(1, round(im.size[0] * s)), max(1, round(im.size[1] * s))), Image.Resampling.BILINEAR)
    return np.asarray(im, np.float32).copy()


def _overlap(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return iw * ih / max(1e-6, min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])))


def frame(rng: np.random.Generator, sources: list[Source], bank: list[np.ndarray]) -> tuple[bytes, list, int, int]:
    """One synthetic frame: (JPEG, [(class, x1, y1, x2, y2)], width, height)."""
    bg = background(rng, bank)
    H, W = bg.shape[:2]
    boxes = []
    if rng.random() >= EMPTY_SHARE and sources:
        refs = [s for s in sources if s.reference]
        photos_ = [s for s in sources if not s.reference] or refs
        for _ in range(int(rng.choice([1, 1, 2, 2, 3]))):
            pool = refs if refs and rng.random() < REFERENCE_SHARE else photos_
            src = pool[int(rng.integers(0, len(pool)))]
            for _attempt in range(10):
                q = place_quad(rng, src.image.size, (W, H))
                box = (*np.clip(q.min(0), 0, [W, H]), *np.clip(q.max(0), 0, [W, H]))
                if all(_overlap(box, b[1:]) < 0.1 for b in boxes):
                    break
            else:
                continue
            paste(bg, src, q, rng)
            boxes.append((src.cls, *map(float, box)))
    return camera(rng, bg), boxes, W, H


def write(out: Path, split: str, sources: list[Source], bank: list[np.ndarray], count: int, seed: int,
          prefix: str = "synth") -> list[dict]:
    """`count` frames into out/images/<split>, YOLO labels into out/labels/<split>; returns their rows
    (also appended to out/<split>.jsonl, framing `synth`)."""
    img_dir, lbl_dir = out / "images" / split, out / "labels" / split
    img_dir.mkdir(parents=True, exist_ok=True)
    lbl_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        jpeg, boxes, W, H = frame(rng, sources, bank)
        name = f"{prefix}-{i:05d}"
        (img_dir / f"{name}.jpg").write_bytes(jpeg)
        (lbl_dir / f"{name}.txt").write_text("".join(
            f"{c} {(x1 + x2) / 2 / W:.6f} {(y1 + y2) / 2 / H:.6f} {(x2 - x1) / W:.6f} {(y2 - y1) / H:.6f}\n"
            for c, x1, y1, x2, y2 in boxes))
        rows.append({"image": f"{name}.jpg", "framing": "synth", "items": [b[0] for b in boxes]})
    with (out / f"{split}.jsonl").open("a") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return rows
