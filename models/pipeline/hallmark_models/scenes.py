"""Scene composition: packs placed into photographed-looking scenes, with their YOLO labels.

Framings the users have: `kiosk` (one pack, maybe hand-held, fills much of the view), `conveyor`
(several smaller packs, any orientation, motion blur), `shelf` (rows of packs among other brands), and
`empty` (no pack of the brand: the detector must stay quiet). Every scene varies perspective, scale,
rotation, occlusion, lighting, blur, noise and JPEG artefacts.

`World` (opt-in, for training data; without it every scene is drawn exactly as before, random stream
included): real photographs (the `photos` train third only) as backgrounds for half the scenes and as
product-free hard negatives (framing `photo`: a real photo, sometimes with other brands' packs, no pack of
the brand), and a stronger camera: colour casts and white-balance errors, vignetting, more perspective,
any rotation at the kiosk, packs partly out of the frame, and fingers over the label. `mixed_lighting`
(opt-in again, so older training sets stay reproducible): each pack lit apart from its background, with
its own contrast and white balance, as a pack held under a lamp in front of a daylit room is.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from . import artwork, textures
from .brands import Brand, class_table

FRAMINGS = ("kiosk", "conveyor", "shelf", "empty")
FRAMING_WEIGHTS = (0.42, 0.28, 0.17, 0.13)
SKIN = ((255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 58, 32))


@dataclass
class World:
    """What makes training scenes look like the world: real photos (RGB arrays) and a stronger camera."""
    photos: list = field(default_factory=list)
    strong_camera: bool = True
    mixed_lighting: bool = False
    # With strong_camera: half the frames come from a sensor with fewer pixels than the frame (a cheap
    # webcam, digital zoom, a crop of a wide view), upscaled, so packs are soft and their print is lost.
    low_resolution: bool = False
    # The share of packs (the brand's and distractors, every framing) turned to any angle in [0, 360): a
    # belt carries packs at every angle and a hand holds one any way up, not only by quarter turns.
    any_angle: float = 0.0
    # Unlabelled objects that are no pack in every scene (coins and other round things, textured, printed
    # and coloured objects: `textures.hard_negative`), so that no shape, colour or print alone makes an item.
    hard_negatives: bool = False


WORLD_FRAMINGS = ("kiosk", "conveyor", "shelf", "empty", "photo")
WORLD_FRAMING_WEIGHTS = (0.38, 0.25, 0.15, 0.08, 0.14)


def photo_background(rng: np.random.Generator, photo: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """A random crop of a photo (40-100% of its shorter side, the scene's aspect), scaled to size."""
    W, H = size
    h, w = photo.shape[:2]
    crop_h = min(h, int(w * H / W)) * rng.uniform(0.4, 1.0)
    crop_w = crop_h * W / H
    x0 = rng.uniform(0, max(0.0, w - crop_w))
    y0 = rng.uniform(0, max(0.0, h - crop_h))
    im = Image.fromarray(photo).crop((int(x0), int(y0), int(x0 + crop_w), int(y0 + crop_h)))
    if rng.random() < 0.5:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)  # the photo only: packs are never mirrored
    return im.resize(size, Image.BILINEAR)


@dataclass
class Item:
    class_id: int
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in scene pixels
    visible: float  # fraction of the pack's area not hidden by occluders or the frame


@dataclass
class Scene:
    image: Image.Image
    items: list[Item]
    framing: str

    def yolo_labels(self) -> str:
        w, h = self.image.size
        rows = []
        for it in self.items:
            x1, y1, x2, y2 = it.box
            rows.append(f"{it.class_id} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}")
        return "\n".join(rows) + ("\n" if rows else "")

    def jpeg(self, quality: int) -> bytes:
        buf = io.BytesIO()
        self.image.save(buf, "JPEG", quality=quality)
        return buf.getvalue()


class ArtCache:
    """Rendered artwork per (class, variant): packs of one class differ only by their serial number."""

    def __init__(self, brand: Brand, variants: int = 4, serial_base: int = 0):
        self.brand, self.variants, self.serial_base = brand, variants, serial_base
        self.table = class_table(brand)
        self._cache: dict[tuple[int, int], Image.Image] = {}

    def get(self, class_id: int, variant: int) -> Image.Image:
        key = (class_id, variant % self.variants)
        if key not in self._cache:
            product, role = self.table[class_id]
            art = artwork.render(self.brand, product, role, serial=self.serial_base + key[1] * 7919 + class_id)
            self._cache[key] = art.convert("RGBA")
        return self._cache[key]


def _perspective_coeffs(dst: np.ndarray, src: np.ndarray) -> list[float]:
    """PIL PERSPECTIVE coefficients mapping output points `dst` back to input points `src`."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return np.linalg.solve(np.asarray(rows, dtype=np.float64), np.asarray(rhs, dtype=np.float64)).tolist()


def _quad(rng, center, size, angle, jitter):
    w, h = size
    corners = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    corners += rng.uniform(-jitter, jitter, corners.shape) * np.array([w, h])
    c, s = math.cos(angle), math.sin(angle)
    rot = corners @ np.array([[c, s], [-s, c]])
    return rot + np.asarray(center)


def _warp(art: Image.Image, quad: np.ndarray) -> tuple[Image.Image, int, int]:
    """The pack warped onto `quad`: an RGBA patch and its top-left corner in the scene."""
    x0, y0 = np.floor(quad.min(axis=0)).astype(int)
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
    # Pre-shrink so the warp (which does not prefilter) does not alias fine print and bars.
    side = max(np.linalg.norm(quad[1] - quad[0]), np.linalg.norm(quad[2] - quad[1]), 8)
    scale = min(1.0, 1.5 * side / max(art.size))
    src_img = art.resize((max(2, int(art.width * scale)), max(2, int(art.height * scale))), Image.LANCZOS) if scale < 1 else art
    sw, sh = src_img.size
    src = np.array([[0, 0], [sw, 0], [sw, sh], [0, sh]], dtype=np.float64)
    coeffs = _perspective_coeffs(quad - np.array([x0, y0]), src)
    patch = src_img.transform((int(x1 - x0), int(y1 - y0)), Image.PERSPECTIVE, coeffs, Image.BILINEAR)
    return patch, int(x0), int(y0)


def _hand(rng, canvas: Image.Image, quad: np.ndarray, reach: tuple[float, float] = (1.6, 2.1)) -> Image.Image:
    """A hand gripping the pack at one edge: returns its mask (to account for occlusion). A longer
    `reach` lays the fingers across the label."""
    w, h = canvas.size
    mask = Image.new("L", (w, h), 0)
    md = ImageDraw.Draw(mask)
    edge = int(rng.integers(4))
    a, b = quad[edge], quad[(edge + 1) % 4]
    t = rng.uniform(0.3, 0.7)
    px, py = a + t * (b - a)
    centre = np.mean(quad, axis=0)
    out = np.array([px, py]) - centre
    out /= max(np.linalg.norm(out), 1e-6)
    side = np.linalg.norm(b - a)
    r = side * rng.uniform(0.12, 0.2)
    palm = np.array([px, py]) + out * r * 1.2
    md.ellipse([palm[0] - r * 1.3, palm[1] - r * 1.3, palm[0] + r * 1.3, palm[1] + r * 1.3], fill=255)
    ortho = np.array([-out[1], out[0]])
    for k in range(4):  # fingers reaching onto the pack
        base = palm + ortho * (k - 1.5) * r * 0.55
        tip = base - out * r * rng.uniform(*reach)
        md.line([tuple(base), tuple(tip)], fill=255, width=max(3, int(r * 0.45)))
        md.ellipse([tip[0] - r * 0.22, tip[1] - r * 0.22, tip[0] + r * 0.22, tip[1] + r * 0.22], fill=255)
    arm = palm + out * r * 6
    md.line([tuple(palm), tuple(arm)], fill=255, width=int(r * 2.2))
    skin = SKIN[int(rng.integers(len(SKIN)))]
    shade = Image.new("RGB", (w, h), skin)
    canvas.paste(shade, (0, 0), mask.filter(ImageFilter.GaussianBlur(1.2)))
    return mask


def _place(rng, framing: str, n: int, W: int, H: int, strong: bool = False, any_angle: float = 0.0):
    """Centres, longest sides and angles for `n` packs, avoiding heavy overlap. `strong`: any rotation
    at the kiosk now and then, and packs reaching past the frame's edge. `any_angle`: the share of packs
    turned to an angle drawn in [0, 360) instead (0 draws nothing: older sets stay as they were)."""
    placed = []
    for _ in range(n * 30):
        if len(placed) == n:
            break
        if framing == "kiosk":
            side = rng.uniform(0.45, 0.9) * min(W, H)
            angle = math.radians(rng.uniform(-25, 25))
            if strong and rng.random() < 0.25:
                angle = math.radians(rng.uniform(-180, 180))
        elif framing == "conveyor":
            side = rng.uniform(0.2, 0.36) * min(W, H)
            angle = math.radians(rng.uniform(-180, 180) if rng.random() < 0.35 else rng.uniform(-30, 30))
        else:  # shelf
            side = rng.uniform(0.22, 0.4) * min(W, H)
            angle = math.radians(rng.uniform(-8, 8))
        if any_angle and rng.random() < any_angle:
            angle = math.radians(rng.uniform(0, 360))
        margin = side * (rng.uniform(0.15, 0.45) if strong else 0.45)
        c = np.array([rng.uniform(margin, W - margin), rng.uniform(margin, H - margin)])
        if all(np.linalg.norm(c - pc) > 0.62 * (side + ps) for pc, ps, _ in placed):
            placed.append((c, side, angle))
    return placed


def compose(rng: np.random.Generator, arts: ArtCache, framing: str, size=(960, 720), world: World | None = None) -> Scene:
    W, H = size
    strong = bool(world and world.strong_camera)
    if framing == "photo":  # a real photo, no pack of the brand: a product-free hard negative
        canvas = photo_background(rng, world.photos[int(rng.integers(len(world.photos)))], size)
    elif world and world.photos and rng.random() < 0.5:
        canvas = photo_background(rng, world.photos[int(rng.integers(len(world.photos)))], size)
    else:
        kind = {"kiosk": ("counter", "wall", "fabric", "shelf"), "conveyor": ("conveyor",),
                "shelf": ("shelf",), "empty": textures.KINDS}[framing]
        canvas = textures.background(rng, kind[int(rng.integers(len(kind)))], size)

    # Distractor packs of other brands, behind the brand's packs; some in the brand's own colours.
    palette = [p.colour for p in arts.brand.products] + [p.off_shade for p in arts.brand.products if any(p.off_shade)]
    n_distract = {"kiosk": int(rng.integers(0, 2)), "conveyor": int(rng.integers(0, 3)),
                  "shelf": int(rng.integers(2, 6)), "empty": int(rng.integers(1, 5))}.get(framing, 0)
    if framing == "photo":  # drawn apart: the dict above draws every entry, and must keep drawing as before
        n_distract = int(rng.integers(0, 3))
    any_angle = world.any_angle if world else 0.0
    for c, side, angle in _place(rng, "shelf" if framing in ("empty", "photo") else framing, n_distract, W, H,
                                 any_angle=any_angle):
        dw, dh = int(side * rng.uniform(0.5, 0.9)), int(side)
        patch, x0, y0 = _warp(textures.distractor(rng, (max(dw, 12), max(dh, 12)), palette).convert("RGBA"),
                              _quad(rng, c, (dw, dh), angle, 0.04))
        canvas.paste(patch, (x0, y0), patch)
    if world and world.hard_negatives:
        # Objects that are no pack, behind the packs: more of them where there is no pack at all.
        n_objects = int(rng.integers(1, 5)) if framing in ("empty", "photo") else int(rng.integers(0, 3))
        for _ in range(n_objects):
            side = rng.uniform(0.08, 0.4) * min(W, H)
            c = np.array([rng.uniform(0, W), rng.uniform(0, H)])
            obj = textures.hard_negative(rng, (int(side), int(side * rng.uniform(0.6, 1.0))), palette)
            patch, x0, y0 = _warp(obj, _quad(rng, c, obj.size, rng.uniform(0, 2 * math.pi), 0.05))
            canvas.paste(patch, (x0, y0), patch)

    n = {"kiosk": 1 if rng.random() < 0.85 else 2, "conveyor": int(rng.integers(2, 6)),
         "shelf": int(rng.integers(2, 6)), "empty": 0, "photo": 0}[framing]
    n_classes = len(arts.table)
    items, quads, masks = [], [], []
    for c, side, angle in _place(rng, framing, n, W, H, strong, any_angle):
        class_id = int(rng.integers(n_classes))
        art = arts.get(class_id, int(rng.integers(1 << 30)))
        aspect = art.width / art.height
        size_wh = (side * aspect, side) if aspect <= 1 else (side, side / aspect)
        jitter = 0.06 if framing == "kiosk" else 0.03
        quad = _quad(rng, c, size_wh, angle, jitter * (rng.uniform(1, 2.2) if strong else 1))
        patch, x0, y0 = _warp(art, quad)
        # Item lighting: exposure and a specular glare across the pack.
        rgb = np.asarray(patch, dtype=np.float32)
        rgb[..., :3] *= rng.uniform(0.7, 1.2)
        if rng.random() < 0.3:
            ph, pw = rgb.shape[:2]
            yy, xx = np.mgrid[0:ph, 0:pw]
            gx, gy = rng.uniform(0, pw), rng.uniform(0, ph)
            glare = np.exp(-(((xx - gx) / (pw * 0.25)) ** 2 + ((yy - gy) / (ph * 0.15)) ** 2)) * rng.uniform(0.3, 0.7)
            rgb[..., :3] += glare[..., None] * (255 - rgb[..., :3])
        if world and world.mixed_lighting:
            rgb[..., :3] = _pack_light(rng, rgb[..., :3], rgb[..., 3] > 127)
        patch = Image.fromarray(rgb.clip(0, 255).astype(np.uint8), "RGBA")
        # Soft shadow, then the pack.
        alpha = patch.getchannel("A")
        shadow = Image.new("RGBA", patch.size, (0, 0, 0, 0))
        shadow.putalpha(alpha.point(lambda a: a * 0.45).filter(ImageFilter.GaussianBlur(6)))
        off = int(side * 0.03)
        canvas.paste(shadow, (x0 + off, y0 + off), shadow)
        canvas.paste(patch, (x0, y0), patch)
        full = Image.new("L", size, 0)
        full.paste(alpha, (x0, y0), alpha)
        items.append(class_id)
        quads.append(quad)
        masks.append(np.asarray(full) > 127)

    # Occluders drawn over the packs: hands at the kiosk, now and then a stray pack elsewhere.
    occluder = np.zeros((H, W), dtype=bool)
    if framing == "kiosk" and quads and rng.random() < 0.55:
        reach = (2.4, 3.6) if strong and rng.random() < 0.5 else (1.6, 2.1)  # fingers over the label
        occluder |= np.asarray(_hand(rng, canvas, quads[0], reach)) > 127
    if framing in ("conveyor", "shelf") and quads and rng.random() < 0.3:
        q = quads[int(rng.integers(len(quads)))]
        corner = q[int(rng.integers(4))]
        side = np.linalg.norm(q[1] - q[0]) * 0.5
        patch, x0, y0 = _warp(textures.distractor(rng, (int(side) + 12, int(side) + 12)).convert("RGBA"),
                              _quad(rng, corner, (side, side), rng.uniform(0, 6.28), 0.03))
        canvas.paste(patch, (x0, y0), patch)
        m = Image.new("L", size, 0)
        m.paste(patch.getchannel("A"), (x0, y0), patch.getchannel("A"))
        occluder |= np.asarray(m) > 127

    # Later packs hide earlier ones: visibility per pack from the masks drawn after it.
    scene_items = []
    for i, (class_id, quad, mask) in enumerate(zip(items, quads, masks)):
        hidden = occluder.copy()
        for later in masks[i + 1:]:
            hidden |= later
        area = max(1.0, abs(_shoelace(quad)))
        visible = float((mask & ~hidden).sum()) / area
        x1, y1 = quad.min(axis=0).clip([0, 0], [W, H])
        x2, y2 = quad.max(axis=0).clip([0, 0], [W, H])
        if visible >= 0.55 and x2 - x1 > 4 and y2 - y1 > 4:
            scene_items.append(Item(class_id, (float(x1), float(y1), float(x2), float(y2)), min(1.0, visible)))

    image = _camera(rng, canvas, framing)
    if strong:
        image = _strong_camera(rng, image)
        if world.low_resolution and rng.random() < 0.5:
            image = _low_resolution(rng, image)
    return Scene(image, scene_items, framing)


def _strong_camera(rng, img: Image.Image) -> Image.Image:
    """What cheap kiosk cameras add: a colour cast / white-balance error per channel and vignetting."""
    arr = np.asarray(img, dtype=np.float32)
    H, W = arr.shape[:2]
    arr = arr * np.clip(1 + rng.normal(0, 0.1, 3), 0.7, 1.3).astype(np.float32)
    if rng.random() < 0.6:
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        r2 = ((xx - W / 2) / (W / 2)) ** 2 + ((yy - H / 2) / (H / 2)) ** 2
        arr = arr * (1 - rng.uniform(0.1, 0.5) * r2 / 2)[..., None]
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def _low_resolution(rng, img: Image.Image) -> Image.Image:
    """The frame as a sensor 2.5 to 6 times coarser sees it, scaled back up: at 960x720 that is 384 to 160
    pixels across, fewer than the detector's input, so the detail is gone before the model sees the frame."""
    W, H = img.size
    f = rng.uniform(2.5, 6.0)
    down = (Image.BOX, Image.BILINEAR)[int(rng.integers(2))]
    up = (Image.BILINEAR, Image.BICUBIC)[int(rng.integers(2))]
    small = img.resize((max(1, round(W / f)), max(1, round(H / f))), down)
    return small.resize((W, H), up)


def _pack_light(rng, rgb: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """The pack's own light: contrast about its mean colour (washed out under glare, or harsh) and a
    white-balance error of its own, apart from the whole frame's."""
    mean = rgb[inside].mean(0) if inside.any() else rgb.reshape(-1, 3).mean(0)
    rgb = mean + (rgb - mean) * rng.uniform(0.6, 1.3)
    return rgb * np.clip(1 + rng.normal(0, 0.1, 3), 0.7, 1.3).astype(np.float32)


def _shoelace(q: np.ndarray) -> float:
    x, y = q[:, 0], q[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _camera(rng, img: Image.Image, framing: str) -> Image.Image:
    """Scene lighting and camera: light falloff, white balance, blur, motion blur, sensor noise."""
    arr = np.asarray(img, dtype=np.float32)
    H, W = arr.shape[:2]
    gx, gy = rng.uniform(-1, 1, 2)
    ramp = 1 + rng.uniform(0.1, 0.45) * (gx * np.linspace(-1, 1, W)[None, :] + gy * np.linspace(-1, 1, H)[:, None]) / 1.4
    arr *= (ramp * rng.uniform(0.55, 1.25))[..., None]
    t = rng.uniform(-0.07, 0.07)
    arr *= np.array([1 + t, 1.0, 1 - t], dtype=np.float32)
    if framing == "conveyor" and rng.random() < 0.4:
        k = int(rng.integers(3, 9))
        kernel = np.ones(k, dtype=np.float32) / k
        axis = int(rng.integers(2))
        arr = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), axis, arr)
    out = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
    if rng.random() < 0.45:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.8)))
    arr = np.asarray(out, dtype=np.float32)
    arr += rng.normal(0, rng.uniform(0, 7), arr.shape).astype(np.float32)
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def pick_framing(rng: np.random.Generator, world: World | None = None) -> str:
    if world is not None and world.photos:
        return WORLD_FRAMINGS[int(rng.choice(len(WORLD_FRAMINGS), p=WORLD_FRAMING_WEIGHTS))]
    return FRAMINGS[int(rng.choice(len(FRAMINGS), p=FRAMING_WEIGHTS))]
