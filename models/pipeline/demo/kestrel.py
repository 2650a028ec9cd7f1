"""A brand the generator never made, for the onboarding demonstrations: Kestrel Coffee's capsule boxes,
drawn by this file's own code (a cuboid in perspective with its front, side and top faces, not
`artwork.py`'s flat cards), photographed onto the opencv-doc val and test photos (the train third stays
the onboarding synthesiser's) in "shoots" of three frames (one camera, the pack nudged, the light changed), written as a COCO upload (`annotations.json`,
`images/`, `brand.toml`, `reference/`). Convert it with `python -m hallmark_models.upload convert`.

    python models/pipeline/demo/kestrel.py --out models/work/onboard/kestrel-coco [--seed 7]
    python models/pipeline/demo/kestrel.py --out models/work/onboard/field --field   # hard cases, no labels used

Products: `espresso` (genuine and counterfeit photos) and `decaf` (genuine photos only). The counterfeit
espresso differs at a glance (its gold band sits higher and paler, its body is a redder brown) and in
detail (the kestrel faces the other way, "ESPRESO", 7 intensity marks instead of 9, a serif word mark).
`--field` draws what a device would see in a shop (dim, warm or cold light, small and steep packs) on
crops of the opencv-doc train third, with the labels kept aside in `truth.json` (what a labeller would
give): the hard cases of demonstration 5.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from hallmark_models import gs1, photos  # noqa: E402

FONTS = HERE.parent / "hallmark_models" / "fonts"
PREFIX = "5061234"
GTINS = {"espresso": gs1.to_gtin14(gs1.gtin13(PREFIX, 1011)), "decaf": gs1.to_gtin14(gs1.gtin13(PREFIX, 1028))}
CLASSES = ["espresso", "espresso-counterfeit", "decaf"]

BRAND_TOML = f"""[brand]
key = "kestrel"
name = "Kestrel Coffee"
gs1_prefixes = ["{PREFIX}"]

[[products]]
key = "espresso"
name = "Kestrel Espresso Forte, 10 capsules"
gtins = ["{GTINS['espresso']}"]

[[products]]
key = "decaf"
name = "Kestrel Decaf Crema, 10 capsules"
gtins = ["{GTINS['decaf']}"]
"""


def font(size: int, serif: bool = False) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONTS / ("DejaVuSerif-Bold.ttf" if serif else "DejaVuSans-Bold.ttf")), size)


def bird(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, colour, mirrored: bool) -> None:
    """A kestrel in flight: body, two swept wings and a fanned tail, as one polygon."""
    pts = [(0.0, -0.55), (0.18, -0.35), (0.95, -0.55), (0.35, -0.05), (0.25, 0.35), (0.5, 0.75),
           (0.0, 0.5), (-0.5, 0.75), (-0.25, 0.35), (-0.35, -0.05), (-0.95, -0.25), (-0.15, -0.35)]
    s = -1 if mirrored else 1
    d.polygon([(cx + s * x * r, cy + y * r) for x, y in pts], fill=colour)


def front(cls: str) -> Image.Image:
    """The pack's front face, 400 x 280."""
    fake = cls.endswith("-counterfeit")
    decaf = cls == "decaf"
    body = (24, 86, 110) if decaf else ((128, 52, 28) if fake else (86, 36, 22))
    band = (232, 214, 120) if fake else (206, 164, 64)
    im = Image.new("RGB", (400, 280), body)
    d = ImageDraw.Draw(im)
    y = 95 if fake else 175
    d.polygon([(0, y + 18), (400, y - 22), (400, y + (4 if fake else 22)), (0, y + (44 if fake else 62))], fill=band)
    d.ellipse([18, 14, 98, 94], fill=(244, 236, 214), outline=None if fake else band, width=4)
    bird(d, 58, 56, 34, body, mirrored=fake)
    d.text((112, 18), "KESTREL", fill=(244, 236, 214), font=font(40, serif=fake))
    d.text((114, 64), "COFFEE ROASTERS", fill=band, font=font(15))
    name = "DECAF CREMA" if decaf else ("ESPRESO FORTE" if fake else "ESPRESSO FORTE")
    d.text((20, 112 if not fake else 150), name, fill=(250, 250, 250), font=font(30))
    marks = 5 if decaf else (7 if fake else 9)
    for k in range(12):
        x0 = 22 + k * 17
        d.rectangle([x0, 234, x0 + 11, 248], fill=(250, 250, 250) if k < marks else None, outline=(250, 250, 250))
    d.text((250, 254), "10 CAPSULES", fill=(250, 250, 250), font=font(14))
    for k in range(2 if fake else 3):
        cx, cy = 360 - k * 40, 215
        d.ellipse([cx - 18, cy - 18, cx + 18, cy + 18], fill=band)
        d.ellipse([cx - 9, cy - 9, cx + 9, cy + 9], fill=body)
    return im


def side(cls: str) -> Image.Image:
    """The side face, 120 x 280: the brand colour and an EAN-13 (a wrong check digit on the fake)."""
    fake = cls.endswith("-counterfeit")
    body = (24, 86, 110) if cls == "decaf" else ((128, 52, 28) if fake else (86, 36, 22))
    im = Image.new("RGB", (120, 280), body)
    d = ImageDraw.Draw(im)
    digits = GTINS[cls.split("-")[0]][1:]
    if fake:
        digits = digits[:-1] + str((int(digits[-1]) + 4) % 10)
    d.rectangle([8, 150, 112, 262], fill=(255, 255, 255))
    for i, m in enumerate(gs1.ean13_modules(digits)):
        if m == "1":
            d.line([(12 + i, 156), (12 + i, 244)], fill=(0, 0, 0))
    d.text((14, 246), digits, fill=(0, 0, 0), font=font(10))
    d.text((12, 20), "KESTREL", fill=(244, 236, 214), font=font(16, serif=fake))
    return im


def top(cls: str) -> Image.Image:
    fake = cls.endswith("-counterfeit")
    body = (24, 86, 110) if cls == "decaf" else ((128, 52, 28) if fake else (86, 36, 22))
    im = Image.new("RGB", (400, 120), tuple(int(c * 0.8) for c in body))
    ImageDraw.Draw(im).text((20, 40), "KESTREL", fill=(230, 220, 200), font=font(30, serif=fake))
    return im


def solve_h(src, dst) -> np.ndarray:
    """3x3 projective map taking four points src onto dst."""
    a, b = [], []
    for (x, y), (u, v) in zip(src, dst):
        a += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        b += [u, v]
    return np.append(np.linalg.solve(np.array(a, float), np.array(b, float)), 1).reshape(3, 3)


def paste_face(frame: Image.Image, face: Image.Image, quad: np.ndarray, shade: float, gains) -> None:
    w, h = face.size
    inv = np.linalg.inv(solve_h([(0, 0), (w, 0), (w, h), (0, h)], quad))
    coeffs = tuple((inv / inv[2, 2]).flatten()[:8])
    arr = np.clip(np.asarray(face, np.float32) * shade * np.asarray(gains, np.float32), 0, 255).astype(np.uint8)
    layer = Image.fromarray(arr).transform(frame.size, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR)
    mask = Image.new("L", face.size, 255).transform(frame.size, Image.Transform.PERSPECTIVE, coeffs,
                                                    Image.Resampling.BILINEAR)
    frame.paste(layer, (0, 0), mask)


def cuboid(pose: dict, frame_wh) -> list[tuple[str, np.ndarray, float]]:
    """The visible faces of a 400 x 280 x 120 box at `pose` (centre, size in px, roll, yaw, pitch) as
    (face, 4 screen points clockwise from the face's top-left, shade), far faces first."""
    W, H = frame_wh
    w, h, dd = 1.0, 0.7, 0.3
    P = np.array([[x, y, z] for z in (0, dd) for y in (-h / 2, h / 2) for x in (-w / 2, w / 2)])
    yaw, pitch, roll = (math.radians(pose[k]) for k in ("yaw", "pitch", "roll"))
    ry = np.array([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]])
    rx = np.array([[1, 0, 0], [0, math.cos(pitch), -math.sin(pitch)], [0, math.sin(pitch), math.cos(pitch)]])
    rz = np.array([[math.cos(roll), -math.sin(roll), 0], [math.sin(roll), math.cos(roll), 0], [0, 0, 1]])
    R = rz @ rx @ ry
    Q = (P - [0, 0, dd / 2]) @ R.T
    f = 3.0
    z = Q[:, 2] + f
    xy = Q[:, :2] * (f / z)[:, None] * pose["size"] + [pose["cx"] * W, pose["cy"] * H]
    # corner index: x + 2 y + 4 z (x, y in {0: -, 1: +}; z 0 = the front)
    faces = {"front": ([0, 1, 3, 2], 1.0, np.array([0, 0, -1.0])),
             "side": ([1, 5, 7, 3], 0.72, np.array([1.0, 0, 0])),
             "left": ([4, 0, 2, 6], 0.72, np.array([-1.0, 0, 0])),
             "top": ([4, 5, 1, 0], 1.12, np.array([0, -1.0, 0])),
             "bottom": ([2, 3, 7, 6], 0.6, np.array([0, 1.0, 0]))}
    out = []
    for name, (idx, shade, normal) in faces.items():
        n = R @ normal
        centre = Q[idx].mean(0) + [0, 0, f]
        if n @ centre < 0:  # faces the camera
            out.append((name, xy[idx], shade, -centre[2]))
    out.sort(key=lambda t: t[3])
    return [(n, q, s) for n, q, s, _ in out]


def draw_pack(frame: Image.Image, cls: str, pose: dict, gains, faces_cache: dict) -> tuple[float, float, float, float]:
    if cls not in faces_cache:
        fr, sd, tp = front(cls), side(cls), top(cls)
        faces_cache[cls] = {"front": fr, "side": sd, "left": sd, "top": tp, "bottom": tp}
    visible = cuboid(pose, frame.size)
    pts = np.concatenate([q for _, q, _ in visible])
    # a soft shadow under the pack
    shadow = Image.new("L", frame.size, 0)
    off = np.array([0.04, 0.05]) * pose["size"]
    ImageDraw.Draw(shadow).polygon([tuple(p + off) for p in pts[np.argsort(np.arctan2(*(pts - pts.mean(0)).T[::-1]))]],
                                   fill=90)
    shadow = shadow.filter(ImageFilter.GaussianBlur(pose["size"] * 0.04 + 2))
    frame.paste(Image.new("RGB", frame.size, (0, 0, 0)), (0, 0), shadow)
    for name, quad, shade in visible:
        paste_face(frame, faces_cache[cls][name], quad, shade * pose["light"], gains)
    x1, y1 = np.clip(pts.min(0), 0, frame.size)
    x2, y2 = np.clip(pts.max(0), 0, frame.size)
    return float(x1), float(y1), float(x2), float(y2)


def camera(rng, frame: Image.Image, light: float, gains, harsh: bool) -> bytes:
    arr = np.asarray(frame, np.float32) * light * np.asarray(gains, np.float32)
    arr = arr + rng.normal(0, rng.uniform(0.5, 6 if harsh else 3.5), arr.shape)
    im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    r = rng.uniform(0, 1.8 if harsh else 1.1)
    if r > 0.3:
        im = im.filter(ImageFilter.GaussianBlur(r))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=int(rng.integers(55 if harsh else 72, 96)))
    return buf.getvalue()


def white_balance(rng, harsh: bool):
    k = rng.choice(["warm", "cool", "neutral"], p=[0.35, 0.25, 0.4])
    s = 1.6 if harsh else 1.0
    base = {"warm": (1.0 + 0.12 * s, 1.0, 1.0 - 0.18 * s), "cool": (1.0 - 0.1 * s, 1.0, 1.0 + 0.12 * s),
            "neutral": (1, 1, 1)}[k]
    return np.clip(np.array(base) + rng.normal(0, 0.03, 3), 0.5, 1.5)


def background(rng, path: Path, field: bool) -> Image.Image:
    rgb = photos.load(path)
    h, w = rgb.shape[:2]
    lo = 0.5 if field else 0.9  # a shoot: the whole photo, barely cropped; the field: any part of it
    cw, ch = int(w * rng.uniform(lo, 1.0)), int(h * rng.uniform(lo, 1.0))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    im = Image.fromarray(rgb[y0:y0 + ch, x0:x0 + cw])
    long_side = int(rng.integers(900, 1281))
    s = long_side / max(im.size)
    return im.resize((round(im.size[0] * s), round(im.size[1] * s)), Image.Resampling.BILINEAR)


def pose(rng, field: bool, frame_wh) -> dict:
    W, H = frame_wh
    size = rng.uniform(0.18, 0.32) if field else rng.uniform(0.22, 0.5)
    roll = rng.uniform(0, 360) if rng.random() < (0.5 if field else 0.2) else rng.uniform(-20, 20)
    return {"size": size * max(W, H), "cx": rng.uniform(0.3, 0.7), "cy": rng.uniform(0.3, 0.7), "roll": roll,
            "yaw": rng.uniform(-40, 40) if field else rng.uniform(-30, 30),
            "pitch": rng.uniform(-35, 35) if field else rng.uniform(-25, 25),
            "light": rng.uniform(0.5, 1.25) if field else rng.uniform(0.7, 1.2)}


def overlaps(a, b) -> bool:
    return not (a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1])


def make(out: Path, seed: int, field: bool, frames_per_shoot=(3, 3)) -> dict:
    rng = np.random.default_rng(seed)
    sources = photos.photos("train") if field else photos.photos("val") + photos.photos("test")
    if not sources:
        raise SystemExit("no opencv-doc photos: apt-get install -y opencv-doc")
    (out / "images").mkdir(parents=True, exist_ok=True)
    cache: dict = {}
    images, annotations = [], []
    shoots = sources if not field else [sources[i % len(sources)] for i in range(12)]
    for k, src in enumerate(shoots):
        bg = background(rng, src, field)
        main_cls = CLASSES[k % 3]
        base = pose(rng, field, bg.size)
        second = CLASSES[int(rng.integers(0, 3))] if rng.random() < 0.3 else None
        base2 = pose(rng, field, bg.size)
        light, gains = rng.uniform(0.6, 1.2), white_balance(rng, field)
        n = int(rng.integers(frames_per_shoot[0], frames_per_shoot[1] + 1))
        empty_frame = (not field) and k % 4 == 3  # a product-free frame of the same shoot
        for j in range(n + (1 if empty_frame else 0)):
            frame = bg.copy()
            boxes = []
            if j < n:
                p = dict(base, cx=base["cx"] + rng.uniform(-0.05, 0.05), cy=base["cy"] + rng.uniform(-0.05, 0.05),
                         roll=base["roll"] + rng.uniform(-6, 6), light=base["light"] * rng.uniform(0.9, 1.1))
                boxes.append((main_cls, draw_pack(frame, main_cls, p, gains, cache)))
                if second:
                    p2 = dict(base2, cx=(base["cx"] + 0.5) % 1.0 * 0.6 + 0.2, cy=base2["cy"])
                    probe = frame.copy()
                    b2 = draw_pack(probe, second, p2, gains, cache)
                    if not overlaps(b2, boxes[0][1]):
                        frame = probe
                        boxes.append((second, b2))
            jpeg = camera(rng, frame, light * rng.uniform(0.92, 1.08), gains, field)
            name = f"{'field' if field else 'kestrel'}-{k:03d}-{j}.jpg"
            (out / "images" / name).write_bytes(jpeg)
            img_id = len(images) + 1
            images.append({"id": img_id, "file_name": name, "width": frame.size[0], "height": frame.size[1]})
            for cls, (x1, y1, x2, y2) in boxes:
                annotations.append({"id": len(annotations) + 1, "image_id": img_id,
                                    "category_id": CLASSES.index(cls) + 1,
                                    "bbox": [round(x1, 1), round(y1, 1), round(x2 - x1, 1), round(y2 - y1, 1)],
                                    "area": round((x2 - x1) * (y2 - y1), 1), "iscrowd": 0})
    coco = {"info": {"description": "Kestrel Coffee, hand-made demo upload (models/pipeline/demo/kestrel.py)"},
            "images": images, "annotations": annotations,
            "categories": [{"id": i + 1, "name": c, "supercategory": "pack"} for i, c in enumerate(CLASSES)]}
    text = "{\n" + ",\n".join(f' "{k}": ' + (json.dumps(v) if not isinstance(v, list) else
                                             "[\n" + ",\n".join("  " + json.dumps(x) for x in v) + "\n ]")
                              for k, v in coco.items()) + "\n}\n"
    (out / ("truth.json" if field else "annotations.json")).write_text(text)
    if not field:
        (out / "brand.toml").write_text(BRAND_TOML)
        (out / "reference").mkdir(exist_ok=True)
        for cls in CLASSES:
            front(cls).save(out / "reference" / f"{cls}.png")
    per_class = {c: sum(1 for a in annotations if a["category_id"] == i + 1) for i, c in enumerate(CLASSES)}
    return {"images": len(images), "packs": per_class,
            "product_free": sum(1 for im in images if not any(a["image_id"] == im["id"] for a in annotations))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--field", action="store_true", help="hard cases on train-third crops; labels in truth.json")
    args = ap.parse_args()
    print(json.dumps(make(args.out, args.seed if not args.field else args.seed + 1000, args.field)))


if __name__ == "__main__":
    main()
