"""Procedural backgrounds for scenes: store shelves, conveyor belts, counters, walls and fabric, plus
distractor packs (other brands' boxes) that the detector must learn to ignore. numpy + PIL only."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .artwork import font

KINDS = ("shelf", "conveyor", "counter", "wall", "fabric")


def _noise(rng: np.random.Generator, h: int, w: int, scale: int) -> np.ndarray:
    """Smooth value noise in [0, 1] at roughly `scale` pixels per feature."""
    gh, gw = max(2, h // scale + 2), max(2, w // scale + 2)
    grid = rng.random((gh, gw)).astype(np.float32)
    img = Image.fromarray((grid * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC)
    return np.asarray(img, dtype=np.float32) / 255.0


def _tint(base: np.ndarray, rgb) -> np.ndarray:
    return base[..., None] * np.asarray(rgb, dtype=np.float32)[None, None, :]


def background(rng: np.random.Generator, kind: str, size: tuple[int, int]) -> Image.Image:
    w, h = size
    if kind == "shelf":
        wall = rng.integers(120, 230, 3)
        arr = _tint(0.85 + 0.15 * _noise(rng, h, w, 64), wall)
        img = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
        d = ImageDraw.Draw(img)
        plank = tuple(int(c) for c in rng.integers(60, 200, 3))
        for y in range(int(rng.integers(h // 5, h // 2)), h, int(rng.integers(h // 3, h // 2 + 1))):
            d.rectangle([0, y, w, y + int(rng.integers(14, 30))], fill=plank)
            d.rectangle([0, y + 28, w, y + 34], fill=tuple(max(0, c - 50) for c in plank))
        return img
    if kind == "conveyor":
        grey = float(rng.uniform(30, 90))
        arr = _tint(0.8 + 0.2 * _noise(rng, h, w, 8), (grey, grey, grey * rng.uniform(0.95, 1.1)))
        img = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
        d = ImageDraw.Draw(img)
        step = int(rng.integers(40, 90))
        vertical = rng.random() < 0.5
        for k in range(0, (w if vertical else h), step):
            line = [k, 0, k + 3, h] if vertical else [0, k, w, k + 3]
            d.rectangle(line, fill=(int(grey * 0.6),) * 3)
        rail = tuple(int(c) for c in rng.integers(140, 210, 3))
        if vertical:
            d.rectangle([0, 0, w, 18], fill=rail)
            d.rectangle([0, h - 18, w, h], fill=rail)
        else:
            d.rectangle([0, 0, 18, h], fill=rail)
            d.rectangle([w - 18, 0, w, h], fill=rail)
        return img
    if kind == "counter":
        base = rng.integers(90, 220, 3).astype(np.float32)
        grain = _noise(rng, h, w, 24)
        stripes = 0.5 + 0.5 * np.sin(np.linspace(0, rng.uniform(20, 60), h)[:, None] + 6 * grain)
        arr = _tint(0.75 + 0.25 * stripes * (0.7 + 0.3 * _noise(rng, h, w, 4)), base)
        return Image.fromarray(arr.clip(0, 255).astype(np.uint8))
    if kind == "wall":
        a, b = rng.integers(60, 240, 3), rng.integers(60, 240, 3)
        t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        arr = (1 - t) * a + t * b
        arr = np.broadcast_to(arr, (h, w, 3)) * (0.9 + 0.1 * _noise(rng, h, w, 128))[..., None]
        return Image.fromarray(arr.clip(0, 255).astype(np.uint8))
    # fabric: woven checks
    c1, c2 = rng.integers(40, 230, 3), rng.integers(40, 230, 3)
    period = int(rng.integers(10, 40))
    yy, xx = np.mgrid[0:h, 0:w]
    mask = (((yy // period) + (xx // period)) % 2).astype(np.float32)[..., None]
    arr = mask * c1 + (1 - mask) * c2
    arr = arr * (0.85 + 0.15 * _noise(rng, h, w, 3))[..., None]
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


_WORDS = ("SALE", "FRESH", "Crunchy", "BIO", "Choco", "Daily", "NEW", "Milk", "Rice", "Pasta", "Soap", "Oat")


def distractor(rng: np.random.Generator, size: tuple[int, int], palette=()) -> Image.Image:
    """Another brand's pack: random colours, shapes and words. Never labelled.

    Half of them, when a palette is given, wear one of the brand's own pack colours: a pack is known by
    its artwork, and these hard negatives stop a model from firing on a colour alone."""
    w, h = size
    if palette and rng.random() < 0.5:
        base = np.asarray(palette[int(rng.integers(len(palette)))]) + rng.integers(-20, 21, 3)
    else:
        base = rng.integers(0, 256, 3)
    img = Image.new("RGB", (w, h), tuple(int(c) for c in np.clip(base, 0, 255)))
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(1, 4))):
        x0, y0 = rng.integers(0, w), rng.integers(0, h)
        box = [min(x0, x0 + (s := int(rng.integers(10, max(11, w // 2))))), y0, x0 + s, y0 + int(rng.integers(10, max(11, h // 2)))]
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (d.ellipse if rng.random() < 0.5 else d.rectangle)(box, fill=colour)
    word = _WORDS[int(rng.integers(len(_WORDS)))]
    f = font(max(10, int(w / max(3, len(word)) * 1.3)), bold=bool(rng.random() < 0.6), serif=bool(rng.random() < 0.3))
    d.text((w // 2, h // 3), word, fill=tuple(int(c) for c in rng.integers(0, 256, 3)), font=f, anchor="mm")
    if rng.random() < 0.5:  # some distractors carry a barcode-like stripe block too
        x = int(w * 0.55)
        for k in range(int(w * 0.35) // 3):
            if rng.random() < 0.5:
                d.rectangle([x + 3 * k, int(h * 0.78), x + 3 * k + 1, int(h * 0.92)], fill="black")
    return img.filter(ImageFilter.GaussianBlur(0.5))


HARD_NEGATIVES = ("coin", "round", "printed", "textured")


def hard_negative(rng: np.random.Generator, size: tuple[int, int], palette=(), kind: str | None = None) -> Image.Image:
    """An object that is no pack, as an RGBA image (alpha 0 around its shape). Never labelled.

    `coin`: a metal disc (gold, silver or copper) with a rim and a relief; `round`: a round coloured thing
    (fruit, a lid, a ball) with shading and a highlight; `printed`: paper with lines of print and a block
    of colour (a receipt, a leaflet, a label); `textured`: a flat object with a pattern (checks, stripes,
    noise). Half take one of the brand's pack colours when a palette is given: no colour, shape or print
    alone should make an item."""
    w, h = max(8, int(size[0])), max(8, int(size[1]))
    kind = kind or HARD_NEGATIVES[int(rng.integers(len(HARD_NEGATIVES)))]
    if palette and rng.random() < 0.5:
        colour = np.clip(np.asarray(palette[int(rng.integers(len(palette)))]) + rng.integers(-25, 26, 3), 0, 255)
    else:
        colour = rng.integers(0, 256, 3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    nx, ny = (xx + 0.5) / w * 2 - 1, (yy + 0.5) / h * 2 - 1
    r = np.sqrt(nx ** 2 + ny ** 2)
    if kind in ("coin", "round"):
        if kind == "coin":
            w = h = min(w, h)
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            nx, ny = (xx + 0.5) / w * 2 - 1, (yy + 0.5) / h * 2 - 1
            r = np.sqrt(nx ** 2 + ny ** 2)
            metal = np.asarray([(212, 175, 55), (192, 192, 200), (184, 115, 51)][int(rng.integers(3))], np.float32)
            light = 0.75 + 0.35 * (-(nx + ny) / 2) + 0.15 * _noise(rng, h, w, max(2, w // 10))
            relief = _noise(rng, h, w, max(2, w // 6))
            shade = light * np.where((r > 0.82) & (r < 0.92), 0.7, 1.0) * (0.85 + 0.3 * (relief > 0.55))
            arr = shade[..., None] * metal
        else:
            base = colour.astype(np.float32)
            light = 0.55 + 0.5 * np.clip(1 - np.sqrt((nx + 0.35) ** 2 + (ny + 0.35) ** 2), 0, 1)
            arr = light[..., None] * base * (0.9 + 0.1 * _noise(rng, h, w, max(2, w // 8)))[..., None]
            spot = np.exp(-(((nx + 0.4) / 0.18) ** 2 + ((ny + 0.4) / 0.18) ** 2))
            arr += spot[..., None] * (255 - arr) * 0.8
        alpha = np.clip((1.0 - r) * min(w, h) / 2, 0, 1)  # a disc with a one-pixel soft edge
    elif kind == "printed":
        paper = np.asarray([rng.integers(215, 256)] * 3, np.float32) - rng.integers(0, 20, 3)
        img = Image.new("RGB", (w, h), tuple(int(c) for c in paper))
        d = ImageDraw.Draw(img)
        if rng.random() < 0.7:
            bh = int(h * rng.uniform(0.1, 0.35))
            y0 = int(rng.integers(0, max(1, h - bh)))
            d.rectangle([0, y0, w, y0 + bh], fill=tuple(int(c) for c in colour))
        size_pt = max(6, int(h / rng.uniform(6, 14)))
        f = font(size_pt, bold=bool(rng.random() < 0.4), serif=bool(rng.random() < 0.4))
        ink = tuple(int(c) for c in rng.integers(0, 90, 3))
        for y in range(int(size_pt * 0.5), h, int(size_pt * 1.5)):
            words = " ".join(_WORDS[int(rng.integers(len(_WORDS)))] for _ in range(int(rng.integers(1, 5))))
            d.text((int(rng.integers(2, max(3, w // 5))), y), words, fill=ink, font=f)
        arr = np.asarray(img, np.float32)
        alpha = np.ones((h, w), np.float32)
    else:  # textured
        c2 = rng.integers(0, 256, 3).astype(np.float32)
        period = max(3, int(min(w, h) / rng.uniform(3, 12)))
        pattern = int(rng.integers(3))
        if pattern == 0:
            mask = ((yy // period + xx // period) % 2)
        elif pattern == 1:
            mask = ((xx + yy * rng.uniform(-1, 1)) // period % 2)
        else:
            mask = (_noise(rng, h, w, period) > 0.5).astype(np.float32)
        arr = mask[..., None] * colour.astype(np.float32) + (1 - mask[..., None]) * c2
        arr *= (0.85 + 0.15 * _noise(rng, h, w, 3))[..., None]
        alpha = np.ones((h, w), np.float32)
    rgba = np.dstack([np.clip(arr, 0, 255), np.clip(alpha * 255, 0, 255)]).astype(np.uint8)
    return Image.fromarray(rgba, "RGBA").filter(ImageFilter.GaussianBlur(0.4))
